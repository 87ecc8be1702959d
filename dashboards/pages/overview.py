"""Overview: how much traffic is human, crawler, scraper, agent; how much is AI-driven or
malicious; how each share moves and how fast traffic grows."""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # common.py, when this page runs alone
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import altair as alt  # noqa: E402
import polars as pl  # noqa: E402
import streamlit as st  # noqa: E402

import common  # noqa: E402
from common import CLASS_COLORS, fmt_count, fmt_pct, label  # noqa: E402

ctx = common.start_page("Overview", "Who reads the site: people, crawlers, scrapers and agents, and how much of it is AI.")
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

ai = ctx.section("ai_share")
threats = ctx.section("threats")
growth: pl.DataFrame = ctx.section("growth")
trends = ctx.section("trends")
ai_trend: pl.DataFrame = trends["ai"]
by = ctx.filters.by


def _growth(segment: str) -> dict | None:
    rows = growth.filter(pl.col("segment") == segment).to_dicts()
    return rows[0] if rows and rows[0]["previous_period"] is not None else None


def _vs(g: dict | None) -> str:
    return f"per day, {g['period']} vs {g['previous_period']}" if g else ""


g_all, g_ai, g_mal = _growth("all"), _growth("ai_driven"), _growth("malicious")
per_period = trends["classes"].group_by("period").agg(pl.col("requests").sum()).sort("period")["requests"].to_list()
k1, k2, k3, k4 = st.columns(4)
k1.metric(
    "Requests", fmt_count(totals["requests"]),
    help=f"{totals['requests']:,} requests from {totals['clients']:,} clients in {totals['sessions']:,} sessions.",
    chart_data=per_period, chart_type="bar", border=True,
)
k2.metric(
    "AI-driven share", fmt_pct(ai["share"]),
    delta=fmt_pct(g_ai["change"], signed=True) if g_ai and g_ai["change"] is not None else None,
    delta_description=_vs(g_ai) or None,
    help=f"{ai['requests']:,} requests made by or for an AI system. The delta is the growth of AI-driven "
         f"requests {_vs(g_ai) or 'against the previous period'}.",
    chart_data=[round(s * 100, 2) for s in ai_trend["share"].to_list()], chart_type="area", border=True,
)
k3.metric(
    "Malicious share", fmt_pct(threats["summary"]["share"]),
    delta=fmt_pct(g_mal["change"], signed=True) if g_mal and g_mal["change"] is not None else None,
    delta_color="inverse", delta_description=_vs(g_mal) or None,
    help=f"{threats['summary']['requests']:,} requests carry a threat other than a robots.txt violation, from "
         f"{threats['summary']['clients']:,} clients. The delta is their growth {_vs(g_mal) or ''}.",
    chart_data=[round(s * 100, 2) for s in ai_trend["malicious_share"].to_list()], chart_type="area", border=True,
)
if g_all and g_all["ratio"] is not None:
    k4.metric(
        f"Growth vs previous {by}", fmt_pct(g_all["change"], signed=True),
        delta=f"{g_all['per_day'] - g_all['previous_per_day']:+,.0f} requests per day",
        delta_description=f"{g_all['period']} vs {g_all['previous_period']}",
        help=f"Requests per day of data: {g_all['per_day']:,.0f} in the {by} of {g_all['period']} against "
             f"{g_all['previous_per_day']:,.0f} in the {by} of {g_all['previous_period']}.",
        border=True,
    )
else:
    k4.metric(f"Growth vs previous {by}", "–", help=f"Needs two {by}s of data: choose a shorter trend period.",
              border=True)

classes: pl.DataFrame = trends["classes"].with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
    common.period_label(pl.col("period"), by).alias("when"),
)
order = [label(c) for c in CLASS_COLORS]
scale = common.color_scale(CLASS_COLORS, labels=True)
x = alt.X("period:T", title=None, axis=alt.Axis(format="%b %d" if by != "month" else "%b %Y"))
left, right = st.columns(2)
with left:
    st.subheader("Requests by class")
    common.chart(alt.Chart(classes).mark_bar().encode(
        x=alt.X("when:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
        color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
        order=alt.Order("o:Q"),
        tooltip=[alt.Tooltip("period:T", title=by.capitalize()), alt.Tooltip("class:N", title="Class"),
                 alt.Tooltip("requests:Q", title="Requests", format=","),
                 alt.Tooltip("share:Q", title="Share", format=".1%")],
    ).transform_calculate(o=f"indexof({order!r}, datum['class'])"))
with right:
    st.subheader("Share of requests by class")
    common.chart(alt.Chart(classes).mark_area(opacity=0.9).encode(
        x=x,
        y=alt.Y("share:Q", title=None, stack="normalize", axis=alt.Axis(format="%")),
        color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
        order=alt.Order("o:Q"),
        tooltip=[alt.Tooltip("period:T", title=by.capitalize()), alt.Tooltip("class:N", title="Class"),
                 alt.Tooltip("share:Q", title="Share", format=".1%")],
    ).transform_calculate(o=f"indexof({order!r}, datum['class'])"))

left, right = st.columns(2)
with left:
    st.subheader("AI-driven requests by kind")
    cats = [c for c in common.AI_CATEGORY_LABELS if c in ai_trend.columns]
    long = ai_trend.select("period", *cats).unpivot(index="period", on=cats, variable_name="kind", value_name="requests").with_columns(
        pl.col("kind").replace_strict(common.AI_CATEGORY_LABELS)
    )
    if long["requests"].sum():
        common.chart(alt.Chart(long).mark_area(opacity=0.9).encode(
            x=x,
            y=alt.Y("requests:Q", title="Requests", stack=True, axis=alt.Axis(format="~s")),
            color=alt.Color("kind:N", title=None, scale=common.color_scale(common.AI_CATEGORY_COLORS),
                            legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("period:T", title=by.capitalize()), alt.Tooltip("kind:N", title="Kind"),
                     alt.Tooltip("requests:Q", title="Requests", format=",")],
        ))
    else:
        common.empty("No AI-driven requests in this selection.")
with right:
    st.subheader(f"Growth, last {by} vs the one before")
    g = growth.filter(pl.col("ratio").is_not_null()).with_columns(
        pl.col("segment").replace_strict({"all": "All traffic", "ai_driven": "AI-driven", "malicious": "Malicious",
                                          **{c: label(c) for c in CLASS_COLORS}}).alias("segment_label"),
        (pl.col("change") >= 0).alias("up"),
    )
    if g.height:
        seg_order = g["segment_label"].to_list()
        bars = alt.Chart(g).mark_bar().encode(
            y=alt.Y("segment_label:N", title=None, sort=seg_order),
            x=alt.X("change:Q", title="Change in requests per day", axis=alt.Axis(format="+%")),
            color=alt.Color("up:N", scale=alt.Scale(domain=[True, False], range=["#54A24B", "#E45756"]), legend=None),
            tooltip=[alt.Tooltip("segment_label:N", title="Segment"),
                     alt.Tooltip("per_day:Q", title="Per day now", format=",.0f"),
                     alt.Tooltip("previous_per_day:Q", title="Per day before", format=",.0f"),
                     alt.Tooltip("change:Q", title="Change", format="+.1%")],
        )
        text = bars.mark_text(align="left", dx=4, color="gray").encode(
            text=alt.Text("change:Q", format="+.1%"), color=alt.value("gray"))
        common.chart(bars + text)
    else:
        common.empty(f"Needs two {by}s of data: choose a shorter trend period in the sidebar.")

st.subheader("Share of requests, clients and bytes by class")
shares: pl.DataFrame = ctx.section("shares")
long = pl.concat([
    shares.select(pl.lit(m).alias("measure"), "actor_class", pl.col(f"{m}_share").alias("share"),
                  pl.col(m).alias("value"))
    for m in ("requests", "clients", "bytes")
]).with_columns(pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
                pl.col("measure").str.to_titlecase())
common.chart(alt.Chart(long).mark_bar().encode(
    y=alt.Y("measure:N", title=None, sort=["Requests", "Clients", "Bytes"]),
    x=alt.X("share:Q", title=None, stack="normalize", axis=alt.Axis(format="%")),
    color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
    order=alt.Order("o:Q"),
    tooltip=[alt.Tooltip("measure:N", title="Of"), alt.Tooltip("class:N", title="Class"),
             alt.Tooltip("share:Q", title="Share", format=".1%"), alt.Tooltip("value:Q", title="Count", format=",")],
).transform_calculate(o=f"indexof({order!r}, datum['class'])"), height=170)

st.subheader("AI-driven traffic")
breakdown: pl.DataFrame = ctx.section("ai_breakdown").filter(pl.col("requests") > 0).with_columns(
    pl.col("category").replace_strict(common.AI_CATEGORY_LABELS).alias("kind"),
    pl.col("operators").list.join(", ").alias("operators_text"),
)
if breakdown.height:
    common.table(breakdown, {
        "kind": "Kind", "requests": common.count_column("Requests"),
        "share_of_ai": common.pct_column("Share of AI-driven"), "share_of_all": common.pct_column("Share of all"),
        "clients": common.count_column("Clients"), "bytes": common.bytes_column("Bytes"),
        "operators_text": "Operators",
    })
else:
    common.empty("No AI-driven requests in this selection.")
