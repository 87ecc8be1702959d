"""Overview: how much traffic is human, crawler, scraper, agent; how much is AI-driven or
malicious; how each share moves and how fast traffic grows."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import CLASS_COLORS, fmt_count, fmt_pct, label

ctx = common.start_page(
    "Overview", "Who reads the site: people, crawlers, scrapers and agents, and how much of it is AI."
)
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


def _points(column: str) -> tuple[str | None, str | None]:
    """The change of a share between the last two periods, in percentage points, and 'vs <period>'."""
    if ai_trend.height < 2:
        return None, None
    prev, cur = ai_trend.tail(2).to_dicts()
    if prev[column] is None or cur[column] is None:
        return None, None
    return f"{(cur[column] - prev[column]) * 100:+.1f} pts", f"vs {common.period_name(prev['period'], by)}"


def _spark(values: list) -> list | None:
    return values if len(values) > 1 else None  # one point draws no line


g_all = _growth("all")
per_period = trends["classes"].group_by("period").agg(pl.col("requests").sum()).sort("period")["requests"].to_list()
k1, k2, k3, k4 = st.columns(4)
KPI_HEIGHT = 180  # the cards line up whether or not they carry a sparkline
k1.metric(
    "Requests",
    fmt_count(totals["requests"]),
    help=f"{totals['requests']:,} requests from {totals['clients']:,} clients in {totals['sessions']:,} sessions. "
    f"The line: requests per {by}.",
    chart_data=_spark(per_period),
    chart_type="area",
    border=True,
    height=KPI_HEIGHT,
)
delta, vs = _points("share")
k2.metric(
    "AI-driven share",
    fmt_pct(ai["share"]),
    delta=delta,
    delta_description=vs,
    help=f"{ai['requests']:,} requests made by or for an AI system. The delta: how its share of requests moved "
    f"from the {by} before the last to the last; the line: its share per {by}.",
    chart_data=_spark([round(s * 100, 2) for s in ai_trend["share"].to_list()]),
    chart_type="area",
    border=True,
    height=KPI_HEIGHT,
)
delta, vs = _points("malicious_share")
k3.metric(
    "Malicious share",
    fmt_pct(threats["summary"]["share"]),
    delta=delta,
    delta_color="inverse",
    delta_description=vs,
    help=f"{threats['summary']['requests']:,} requests carry a threat other than a robots.txt violation, from "
    f"{threats['summary']['clients']:,} clients. The delta: how their share moved from the {by} before the "
    f"last to the last; the line: their share per {by}.",
    chart_data=_spark([round(s * 100, 2) for s in ai_trend["malicious_share"].to_list()]),
    chart_type="area",
    border=True,
    height=KPI_HEIGHT,
)
if g_all and g_all["ratio"] is not None:
    k4.metric(
        f"Growth vs previous {by}",
        fmt_pct(g_all["change"], signed=True),
        delta=f"{g_all['per_day'] - g_all['previous_per_day']:+,.0f} a day",
        delta_description=f"vs {common.period_name(g_all['previous_period'], by)}",
        help=f"Requests per day of data: {g_all['per_day']:,.0f} in the {by} of {g_all['period']} against "
        f"{g_all['previous_per_day']:,.0f} in the {by} of {g_all['previous_period']}.",
        border=True,
        height=KPI_HEIGHT,
    )
else:
    k4.metric(
        f"Growth vs previous {by}",
        "–",
        help=f"Needs two {by}s of data: choose a shorter trend period.",
        border=True,
        height=KPI_HEIGHT,
    )

classes: pl.DataFrame = trends["classes"].with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
    common.period_label(pl.col("period"), by).alias("when"),
)
order = [label(c) for c in CLASS_COLORS]
scale = common.color_scale(CLASS_COLORS, labels=True)
x = common.period_x(by, ai_trend["period"].to_list())
when = common.period_tooltip(by)
left, right = st.columns(2)
with left:
    st.subheader("Requests by class")
    common.chart(
        alt.Chart(classes)
        .mark_bar()
        .encode(
            x=alt.X("when:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
            color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
            order=alt.Order("o:Q"),
            tooltip=[
                when,
                alt.Tooltip("class:N", title="Class"),
                alt.Tooltip("requests:Q", title="Requests", format=","),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
            ],
        )
        .transform_calculate(o=f"indexof({order!r}, datum['class'])")
    )
with right:
    st.subheader("Share of requests by class")
    common.chart(
        alt.Chart(classes)
        .mark_area(opacity=0.9)
        .encode(
            x=x,
            y=alt.Y("share:Q", title=None, stack="normalize", axis=alt.Axis(format="%")),
            color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
            order=alt.Order("o:Q"),
            tooltip=[when, alt.Tooltip("class:N", title="Class"), alt.Tooltip("share:Q", title="Share", format=".1%")],
        )
        .transform_calculate(o=f"indexof({order!r}, datum['class'])")
    )

left, right = st.columns(2)
with left:
    st.subheader("AI-driven requests by kind")
    cats = [c for c in common.AI_CATEGORY_LABELS if c in ai_trend.columns]
    long = (
        ai_trend.select("period", *cats)
        .unpivot(index="period", on=cats, variable_name="kind", value_name="requests")
        .with_columns(pl.col("kind").replace_strict(common.AI_CATEGORY_LABELS))
    )
    if long["requests"].sum():
        common.chart(
            alt.Chart(long)
            .mark_area(opacity=0.9)
            .encode(
                x=x,
                y=alt.Y("requests:Q", title="Requests", stack=True, axis=alt.Axis(format="~s")),
                color=alt.Color(
                    "kind:N",
                    title=None,
                    scale=common.color_scale(common.AI_CATEGORY_COLORS),
                    legend=alt.Legend(orient="top", columns=3),
                ),
                tooltip=[
                    when,
                    alt.Tooltip("kind:N", title="Kind"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                ],
            )
        )
    else:
        common.empty("No AI-driven requests in this selection.")
with right:
    st.subheader(f"Growth, last {by} vs the one before")
    g = growth.filter(pl.col("ratio").is_not_null()).with_columns(
        pl.col("segment")
        .replace_strict(
            {
                "all": "All traffic",
                "ai_driven": "AI-driven",
                "malicious": "Malicious",
                **{c: label(c) for c in CLASS_COLORS},
            }
        )
        .alias("segment_label"),
        (pl.col("change") >= 0).alias("up"),
    )
    if g.height:
        seg_order = g["segment_label"].to_list()
        # Room beyond the longest bars for their labels.
        lo, hi = min(0.0, float(g["change"].min())), max(0.0, float(g["change"].max()))  # type: ignore[arg-type]
        pad = (hi - lo) * 0.25 or 0.1
        bars = (
            alt.Chart(g)
            .mark_bar()
            .encode(
                y=common.y_names("segment_label", seg_order),
                x=alt.X(
                    "change:Q",
                    title="Change in requests per day",
                    axis=alt.Axis(format="+%"),
                    scale=alt.Scale(domain=[lo - (pad if lo < 0 else 0), hi + pad], nice=False),
                ),
                color=alt.Color(
                    "up:N", scale=alt.Scale(domain=[True, False], range=["#54A24B", "#E45756"]), legend=None
                ),
                tooltip=[
                    alt.Tooltip("segment_label:N", title="Segment"),
                    alt.Tooltip("per_day:Q", title="Per day now", format=",.0f"),
                    alt.Tooltip("previous_per_day:Q", title="Per day before", format=",.0f"),
                    alt.Tooltip("change:Q", title="Change", format="+.1%"),
                ],
            )
        )
        # Labels beyond the end of each bar: right of a rise, left of a fall.
        up = (
            bars.mark_text(align="left", dx=4)
            .encode(text=alt.Text("change:Q", format="+.1%"), color=alt.value("gray"))
            .transform_filter("datum.up")
        )
        down = (
            bars.mark_text(align="right", dx=-4)
            .encode(text=alt.Text("change:Q", format="+.1%"), color=alt.value("gray"))
            .transform_filter("!datum.up")
        )
        common.chart(bars + up + down, height=common.bars_height(g.height))
    else:
        common.empty(f"Needs two {by}s of data: choose a shorter trend period in the sidebar.")

st.subheader("Share of requests, clients and bytes by class")
shares: pl.DataFrame = ctx.section("shares")
band = ctx.section("likely_automated")
if band["clients"]:
    # Beside the confident shares, never inside them: people with some evidence of automation.
    st.caption(
        f"Likely automated: {band['clients']:,} clients labelled human "
        f"({fmt_pct(band['human_clients_share'])} of them) have an automation score of "
        f"{band['threshold']} or more: {fmt_pct(band['requests_share'])} of all requests. They stay in the "
        "human share (`clients.automation_score` in the lake says how likely each one is)."
    )
long = pl.concat(
    [
        shares.select(
            pl.lit(m).alias("measure"), "actor_class", pl.col(f"{m}_share").alias("share"), pl.col(m).alias("value")
        )
        for m in ("requests", "clients", "bytes")
    ]
).with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
    pl.col("measure").str.to_titlecase(),
)
common.chart(
    alt.Chart(long)
    .mark_bar()
    .encode(
        y=common.y_names("measure", ["Requests", "Clients", "Bytes"]),
        x=alt.X("share:Q", title=None, stack="normalize", axis=alt.Axis(format="%")),
        color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
        order=alt.Order("o:Q"),
        tooltip=[
            alt.Tooltip("measure:N", title="Of"),
            alt.Tooltip("class:N", title="Class"),
            alt.Tooltip("share:Q", title="Share", format=".1%"),
            alt.Tooltip("value:Q", title="Count", format=","),
        ],
    )
    .transform_calculate(o=f"indexof({order!r}, datum['class'])"),
    height=common.bars_height(3, legend=True),
)

st.subheader("AI-driven traffic")
breakdown: pl.DataFrame = (
    ctx.section("ai_breakdown")
    .filter(pl.col("requests") > 0)
    .with_columns(
        pl.col("category").replace_strict(common.AI_CATEGORY_LABELS).alias("kind"),
        pl.col("operators").list.join(", ").alias("operators_text"),
    )
)
if breakdown.height:
    common.table(
        breakdown,
        {
            "kind": "Kind",
            "requests": common.count_column("Requests"),
            "share_of_ai": common.pct_column("Share of AI-driven"),
            "share_of_all": common.pct_column("Share of all"),
            "clients": common.count_column("Clients"),
            "bytes": common.bytes_column("Bytes"),
            "operators_text": "Operators",
        },
    )
else:
    common.empty("No AI-driven requests in this selection.")
