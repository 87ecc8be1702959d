"""Overview: the answer in five seconds (class shares, AI-driven share and its kinds, the top
operators, verified / declared / spoofed claims, malicious share, each against the days just
before), then how the shares move and which clients make a bar."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import CLASS_COLORS, fmt_count, fmt_pct, label, palette
from trafficlens.report import layout

ctx = common.start_page(
    "Overview", "Who reads the site: people, crawlers, scrapers and agents, and how much of it is AI."
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))
by = ctx.filters.by
report_by = common.report_period(by)

# --- the first screen: each figure for the days shown, against as many days just before --------

prev = ctx.previous()
if prev is not None and not prev.section("totals")["requests"]:
    prev = None  # nothing in those days (a gap in the logs): no comparison rather than +100%


def _both(name: str) -> tuple[Any, Any]:
    return ctx.section(name), prev.section(name) if prev else None


shares, shares_before = _both("shares")
ai, ai_before = _both("ai_share")
kinds, kinds_before = _both("ai_breakdown")
threats, threats_before = _both("threats")
ops, ops_before = _both("operators")
ids, ids_before = _both("identities")
vs = None
if prev is not None:
    vs = f"vs {prev.first:%b %d}" + ("" if prev.first == prev.last else f"–{prev.last:%b %d}")
if prev is None:
    st.caption(
        f"No change shown: the lake holds no {common.period_word('day', ctx.days)} before {ctx.first:%b %d}. "
        "Choose fewer days in the sidebar to compare them with the days just before."
    )


def _pts(now: float | None, before: float | None) -> str | None:
    """A share's change in percentage points ('+1.2 pts'), None without a previous period."""
    if prev is None or now is None or before is None:
        return None
    return f"{(now - before) * 100:+.1f} pts"


def _row(df: pl.DataFrame, key: str, value: str, column: str) -> float | None:
    rows = df.filter(pl.col(key) == value)[column] if df is not None and df.height else None
    return float(rows[0]) if rows is not None and len(rows) else (0.0 if df is not None else None)


# Classes: share of requests (the card) and of clients (its line), in the class's colour.
for col, cls in zip(st.columns(4), CLASS_COLORS):
    req = _row(shares, "actor_class", cls, "requests_share")
    cli = _row(shares, "actor_class", cls, "clients_share")
    with col.container(border=True):
        st.metric(
            label(cls),
            fmt_pct(req),
            delta=_pts(req, _row(shares_before, "actor_class", cls, "requests_share")),
            delta_color="off",  # more crawling is not in itself good or bad: the sign says it
            delta_description=vs,
            help=f"Share of requests; {fmt_count(_row(shares, 'actor_class', cls, 'requests'))} requests.",
        )
        cli_delta = _pts(cli, _row(shares_before, "actor_class", cls, "clients_share"))
        st.markdown(
            f"<span style='color:{CLASS_COLORS[cls]}'>■</span> {fmt_pct(cli)} of clients"
            + (f" ({cli_delta})" if cli_delta else ""),
            unsafe_allow_html=True,  # our own text: a colour swatch beside the class's name
        )

a1, a2, a3, a4 = st.columns(4)
with a1.container(border=True):
    st.metric(
        "AI-driven",
        fmt_pct(ai["share"]),
        delta=_pts(ai["share"], ai_before["share"] if ai_before else None),
        delta_color="off",
        delta_description=vs,
        help=f"{ai['requests']:,} requests made by or for an AI system, from {ai['clients']:,} clients.",
    )
    split = [
        f"{common.AI_CATEGORY_LABELS[r['category']]} {fmt_pct(r['share_of_all'])}"
        for r in kinds.filter(pl.col("requests") > 0).iter_rows(named=True)
    ]
    st.caption(" · ".join(split) or "no AI-driven requests")
with a2.container(border=True):
    summary = threats["summary"]
    st.metric(
        "Malicious",
        fmt_pct(summary["share"]),
        delta=_pts(summary["share"], threats_before["summary"]["share"] if threats_before else None),
        delta_color="inverse",  # a rise is bad news, a fall good, whatever the sign
        delta_description=vs,
        help="Requests that carry a threat other than a robots.txt violation.",
    )
    st.caption(f"{summary['requests']:,} requests from {summary['clients']:,} clients")
with a3.container(border=True):
    counts = {r["identity"]: r["clients"] for r in ids.iter_rows(named=True)}
    before = {r["identity"]: r["clients"] for r in ids_before.iter_rows(named=True)} if ids_before is not None else {}
    claimed = sum(counts.get(k, 0) for k in ("verified", "declared", "spoofed"))
    spoofed = counts.get("spoofed", 0)
    st.metric(
        "Spoofed claims",
        f"{spoofed:,}",
        delta=f"{spoofed - before.get('spoofed', 0):+,}" if prev else None,
        delta_color="inverse",
        delta_description=vs,
        help="Clients that claim a known agent (Googlebot, GPTBot, …) and fail its check, of "
        f"{claimed:,} clients that claim one.",
    )
    st.caption(
        " · ".join(f"{palette.IDENTITY_MARKS[k]} {counts.get(k, 0):,} {k}" for k in ("verified", "declared", "spoofed"))
    )
with a4.container(border=True):
    st.markdown("**Top operators** · share of requests")
    if ops.height:
        before_share = dict(ops_before.select("operator", "share").iter_rows()) if ops_before is not None else {}
        lines = []
        for r in ops.head(4).iter_rows(named=True):
            change = _pts(r["share"], before_share.get(r["operator"], 0.0))
            ai_mark = " · AI" if r["ai_driven"] else ""
            lines.append(
                f"{common.md(r['operator'])}{ai_mark}: {fmt_pct(r['share'])}" + (f" ({change})" if change else "")
            )
        st.markdown("\n".join(f"- {line}" for line in lines))
    else:
        st.caption("No named operator in this selection.")

# --- over time -----------------------------------------------------------------------------

trends = ctx.trends()
ai_trend: pl.DataFrame = trends["ai"]
n_periods = ai_trend.height
classes: pl.DataFrame = trends["classes"].with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
    common.period_label(pl.col("period"), by).alias("when"),
)
order = [label(c) for c in CLASS_COLORS]
scale = common.color_scale(CLASS_COLORS, labels=True)
x = common.period_x(by, ai_trend["period"].to_list())
when = common.period_tooltip(by)
short = common.too_short(ctx, n_periods)
picked: Any = None
left, right = st.columns(2)
with left:
    st.subheader("Requests by class")
    if short and by == "hour":
        common.empty(short)
    else:
        # Click a bar for the clients that made it.
        pick = alt.selection_point(name="bar", fields=["period", "actor_class"], on="click")
        picked = st.altair_chart(
            alt.Chart(classes)
            .mark_bar()
            .encode(
                x=alt.X("when:O", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelOverlap=True)),
                y=alt.Y("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
                color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
                order=alt.Order("o:Q"),
                opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
                tooltip=[
                    when,
                    alt.Tooltip("class:N", title="Class"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                    alt.Tooltip("share:Q", title="Share", format=".1%"),
                ],
            )
            .add_params(pick)
            .transform_calculate(o=f"indexof({order!r}, datum['class'])")
            .properties(height=300),
            width="stretch",
            on_select="rerun",
            selection_mode="bar",
            key="tl_overview_bar",
        )
        st.caption("Click a bar for its clients.")
with right:
    st.subheader("Share of requests by class")
    if short:
        common.empty(short)
    else:
        common.chart(
            alt.Chart(classes)
            .mark_area(opacity=0.9)
            .encode(
                x=x,
                y=alt.Y("share:Q", title=None, stack="normalize", axis=alt.Axis(format="%")),
                color=alt.Color("class:N", title=None, scale=scale, sort=order, legend=alt.Legend(orient="top")),
                order=alt.Order("o:Q"),
                tooltip=[
                    when,
                    alt.Tooltip("class:N", title="Class"),
                    alt.Tooltip("share:Q", title="Share", format=".1%"),
                ],
            )
            .transform_calculate(o=f"indexof({order!r}, datum['class'])")
        )


def _drill_down(selection: Any) -> None:
    """The clients behind the clicked bar: its class, in its day (or the days of its week or month)."""
    point = common.selected(selection, "bar")
    if point is None:
        return
    cls = point.get("actor_class")
    start = common.parse_period(point.get("period"))
    if cls not in CLASS_COLORS or start is None:
        return
    first, last = common.period_days(start, by)
    first, last = max(first, ctx.first), min(last, ctx.last)
    hits: pl.DataFrame = ctx.explore(
        "search_clients", classes=(cls,), sites=ctx.filters.sites, since=first, until=last, limit=50
    )
    span = f"{first:%b %d}" if first == last else f"{first:%b %d}–{last:%b %d}"
    st.markdown(f"**{label(cls)} clients seen {span}** (the busiest 50; their requests over all days shown)")
    common.clients_table(ctx, hits, key="tl_overview_clients")


_drill_down(picked)

left, right = st.columns(2)
with left:
    st.subheader("AI-driven requests by kind")
    cats = [c for c in common.AI_CATEGORY_LABELS if c in ai_trend.columns]
    long = (
        ai_trend.select("period", *cats)
        .unpivot(index="period", on=cats, variable_name="kind", value_name="requests")
        .with_columns(pl.col("kind").replace_strict(common.AI_CATEGORY_LABELS))
    )
    if not long["requests"].sum():
        common.empty("No AI-driven requests in this selection.")
    elif short:
        common.empty(short)
    else:
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
                    legend=alt.Legend(orient="top", columns=2),
                ),
                tooltip=[
                    when,
                    alt.Tooltip("kind:N", title="Kind"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                ],
            )
        )
with right:
    growth: pl.DataFrame = ctx.section("growth")
    st.subheader(f"Growth, last {report_by} vs the one before")
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
        # Colour by meaning: malicious red when it rises and green when it falls; a class in its
        # own colour, the rest grey (more crawling is not in itself good or bad).
        pl.struct("segment", "change")
        .map_elements(lambda r: palette.segment_colour(r["segment"], r["change"]), return_dtype=pl.String)
        .alias("colour"),
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
                color=alt.Color("colour:N", scale=None, legend=None),
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
            .encode(text=alt.Text("change:Q", format="+.1%"), color=alt.value(palette.TEXT))
            .transform_filter("datum.up")
        )
        down = (
            bars.mark_text(align="right", dx=-4)
            .encode(text=alt.Text("change:Q", format="+.1%"), color=alt.value(palette.TEXT))
            .transform_filter("!datum.up")
        )
        common.chart(bars + up + down, height=common.bars_height(g.height))
        st.caption("Malicious in red when it rises, green when it falls; classes in their colours.")
    else:
        shorter = {"month": "Week or Day", "week": "Day"}.get(report_by)
        common.empty(
            f"The days shown fall in one {report_by}: nothing to compare"
            + (f"; choose {shorter} as the trend period." if shorter else "; choose more days.")
        )

st.subheader("Share of requests, clients and bytes by class")
band = ctx.section("likely_automated")
if band["clients"]:
    # Beside the confident shares, never inside them: people with some evidence of automation.
    st.caption(
        f"Likely automated: {band['clients']:,} clients labelled human "
        f"({fmt_pct(band['human_clients_share'])} of them) have an automation score of "
        f"{band['threshold']} or more: {fmt_pct(band['requests_share'])} of all requests"
        f"{layout.raised_by(band)}. They stay in the human share (`clients.automation_score` in the lake says "
        "how likely each one is; style is the behaviour models' judgement, which alone never labels a person)."
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
breakdown: pl.DataFrame = kinds.filter(pl.col("requests") > 0).with_columns(
    pl.col("category").replace_strict(common.AI_CATEGORY_LABELS).alias("kind"),
    pl.col("operators").list.join(", ").alias("operators_text"),
)
if breakdown.height:
    common.table(
        breakdown,
        {
            "kind": st.column_config.TextColumn("Kind", width="medium"),
            "requests": common.count_column("Requests"),
            "share_of_ai": common.pct_column("Share of AI-driven"),
            "share_of_all": common.pct_column("Share of all"),
            "clients": common.count_column("Clients"),
            "bytes": common.bytes_column("Bytes"),
            "operators_text": st.column_config.TextColumn("Operators", width="large"),
        },
    )
else:
    common.empty("No AI-driven requests in this selection.")
