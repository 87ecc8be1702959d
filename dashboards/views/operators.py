"""AI operators and agents: who reads the site, for what purpose, how often, at what bandwidth
cost, which pages, and whether they are who they claim to be."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import IDENTITY_COLORS, STATUS_COLORS, fmt_bytes, fmt_count, fmt_pct, label, md

ctx = common.start_page(
    "AI operators and agents", "Per operator and agent: volume over time, purpose, identity checks, bandwidth, pages."
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

operators_all: pl.DataFrame = ctx.section("operators")
agents_all: pl.DataFrame = ctx.section("agents")
verification: pl.DataFrame = ctx.section("verification")
ai = ctx.section("ai_share")
bandwidth = ctx.section("bandwidth")["by_operator"]
by = ctx.filters.by

ai_only = st.toggle(
    "AI operators only",
    value=False,
    key="tl_ai_only",
    help="On: only operators of AI systems. Off (the default, so that a spoofed Googlebot is not hidden): "
    "also search engines, SEO tools, monitors, feed readers and other named bots.",
)
operators = operators_all.filter(pl.col("ai_driven")) if ai_only else operators_all
agents = agents_all.filter(pl.col("ai_driven")) if ai_only else agents_all

k1, k2, k3, k4 = st.columns(4)
k1.metric(
    "AI-driven requests",
    fmt_count(ai["requests"]),
    help=f"{ai['requests']:,} requests, {fmt_pct(ai['share'])} of all, from {ai['clients']:,} clients.",
    border=True,
)
k2.metric(
    "AI-driven bandwidth",
    fmt_bytes(ai["bytes"]),
    help=f"{fmt_pct(ai['bytes_share'])} of all bytes served.",
    border=True,
)
k3.metric(
    "Operators" if not ai_only else "AI operators",
    f"{operators.height:,}",
    help=f"{agents.height:,} named agents.",
    border=True,
)
spoofed = int(verification["spoofed"].sum() or 0)
k4.metric(
    "Spoofed clients",
    f"{spoofed:,}",
    help="Clients that claim a checkable agent and fail the check (address outside the operator's published ranges).",
    border=True,
)

if not operators.height:
    st.info(
        "No requests from named operators in this selection."
        if not ai_only
        else "No AI operators in this selection: turn off “AI operators only” to see the other named bots.",
        icon=common.INFO,
    )
    st.stop()

TOP = 15
top = operators.head(TOP)
op_order = top["operator"].to_list()
left, right = st.columns(2)
with left:
    st.subheader("Requests by operator")
    bars = top.with_columns(
        pl.col("purposes")
        .map_elements(lambda ps: ", ".join(label(p) for p in ps), return_dtype=pl.String)
        .alias("purpose_text"),
        pl.col("agents").list.join(", ").alias("agent_text"),
        pl.when(pl.col("ai_driven")).then(pl.lit("AI-driven")).otherwise(pl.lit("Not AI")).alias("kind"),
    )
    chart = (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            y=common.y_names("operator", op_order),
            x=alt.X("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=["AI-driven", "Not AI"], range=[common.palette.AI, common.palette.NEUTRAL]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("operator:N", title="Operator"),
                alt.Tooltip("requests:Q", title="Requests", format=","),
                alt.Tooltip("share:Q", title="Share of all", format=".1%"),
                alt.Tooltip("clients:Q", title="Clients", format=","),
                alt.Tooltip("purpose_text:N", title="Purposes"),
                alt.Tooltip("agent_text:N", title="Agents"),
            ],
        )
    )
    text = chart.mark_text(align="left", dx=3, color="gray").encode(
        text=alt.Text("share:Q", format=".1%"), color=alt.value("gray")
    )
    common.chart(chart + text, height=common.bars_height(top.height, legend=True))
with right:
    st.subheader("Requests over time")
    trend: pl.DataFrame = ctx.trends()["operators"]
    trend = trend.filter(pl.col("operator").is_in(op_order[:8]))
    short = common.too_short(ctx, trend["period"].n_unique())
    if short:
        common.empty(short)
    else:
        common.chart(
            alt.Chart(trend)
            .mark_line(point=True)
            .encode(
                x=common.period_x(by, trend["period"].unique().sort().to_list()),
                y=alt.Y("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
                color=alt.Color(
                    "operator:N",
                    title=None,
                    scale=alt.Scale(domain=op_order[:8], range=list(common.palette.SERIES[:8])),
                    legend=alt.Legend(orient="top", columns=4),
                ),
                tooltip=[
                    common.period_tooltip(by),
                    alt.Tooltip("operator:N", title="Operator"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                    alt.Tooltip("bytes:Q", title="Bytes", format="~s"),
                ],
            ),
            height=common.bars_height(top.height, legend=True),
        )
    st.caption(f"The {min(8, len(op_order))} busiest operators, per {by}.")

left, right = st.columns(2)
with left:
    st.subheader("Are they who they claim to be?")
    # Per claimed agent: a spoofer names the agent but is not its operator's, so it counts under
    # the agent (agents) and never under the operator (operators).
    claimed = agents.head(TOP)
    ident = (
        claimed.select(
            "agent",
            "operator",
            *[pl.col(f"{i}_clients").alias(i) for i in ("verified", "declared", "spoofed", "undeclared")],
        )
        .unpivot(index=["agent", "operator"], variable_name="identity", value_name="clients")
        .filter(pl.col("clients") > 0)
    )
    # The mark beside each name (✓ ? ✗ ~) is the second cue: the legend reads without its colours.
    names = {i: f"{common.palette.IDENTITY_MARKS[i]} {label(i)}" for i in IDENTITY_COLORS if i != "none"}
    ident = ident.with_columns(pl.col("identity").replace_strict(names), pl.col("identity").alias("_id"))
    ident = ident.with_columns(
        pl.col("_id").replace_strict({k: i for i, k in enumerate(names)}, return_dtype=pl.Int64).alias("o")
    )
    common.chart(
        alt.Chart(ident)
        .mark_bar()
        .encode(
            y=common.y_names("agent", claimed["agent"].to_list()),
            x=alt.X("clients:Q", title="Clients claiming the agent", stack="normalize", axis=alt.Axis(format="%")),
            color=alt.Color(
                "identity:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(domain=list(names.values()), range=[IDENTITY_COLORS[k] for k in names]),
            ),
            order=alt.Order("o:Q"),
            tooltip=[
                alt.Tooltip("agent:N", title="Agent"),
                alt.Tooltip("operator:N", title="Operator"),
                alt.Tooltip("identity:N", title="Identity"),
                alt.Tooltip("clients:Q", title="Clients", format=","),
            ],
        ),
        height=common.bars_height(claimed.height, legend=True),
    )
    st.caption(
        "Verified: the address is in the operator's published ranges. Declared: the claim cannot be checked. "
        "Spoofed: the check failed (these clients are not counted as the operator's). Undeclared: a browser "
        "user agent with automated behaviour."
    )
with right:
    st.subheader("Status mix")
    status = top.select("operator", *[pl.col(f"status_{s}").alias(s) for s in STATUS_COLORS]).unpivot(
        index="operator", variable_name="status", value_name="share"
    )
    common.chart(
        alt.Chart(status)
        .mark_bar()
        .encode(
            y=common.y_names("operator", op_order),
            x=alt.X("share:Q", title="Share of its requests", stack="normalize", axis=alt.Axis(format="%")),
            color=alt.Color(
                "status:N", title=None, scale=common.color_scale(STATUS_COLORS), legend=alt.Legend(orient="top")
            ),
            tooltip=[
                alt.Tooltip("operator:N", title="Operator"),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
            ],
        ),
        height=common.bars_height(top.height, legend=True),
    )

st.subheader("Bandwidth by operator")
bw = bandwidth.filter(pl.col("operator").is_in(operators["operator"].to_list())).head(TOP)
if bw.height:
    bw_chart = (
        alt.Chart(bw)
        .mark_bar(color=common.palette.NEUTRAL)
        .encode(
            x=alt.X("operator:N", title=None, sort=bw["operator"].to_list(), axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("bytes:Q", title="Bytes", axis=alt.Axis(format="~s")),
            tooltip=[
                alt.Tooltip("operator:N", title="Operator"),
                alt.Tooltip("bytes:Q", title="Bytes", format="~s"),
                alt.Tooltip("share:Q", title="Share of all bytes", format=".1%"),
                alt.Tooltip("bytes_per_request:Q", title="Bytes per request", format="~s"),
            ],
        )
    )
    common.chart(bw_chart, height=260)
else:
    common.empty("No bytes recorded for these operators.")

st.subheader("Agents")
agent_view = agents.with_columns(
    pl.col("purpose").map_elements(label, return_dtype=pl.String).alias("purpose_label"),
    pl.col("actor_class").map_elements(label, return_dtype=pl.String).alias("class_label"),
)
common.table(
    agent_view,
    {
        "agent": st.column_config.TextColumn("Agent", width="medium"),
        "operator": st.column_config.TextColumn("Operator", width="small"),
        "purpose_label": st.column_config.TextColumn("Purpose", width="small"),
        "class_label": st.column_config.TextColumn("Class", width="small"),
        "requests": common.count_column("Requests"),
        "share": common.pct_column("Share of all"),
        "clients": common.count_column("Clients"),
        "verified_clients": common.count_column("Verified"),
        "declared_clients": common.count_column("Declared"),
        "spoofed_clients": common.count_column("Spoofed"),
        "pages": common.count_column("Pages"),
        "bytes": common.bytes_column("Bytes"),
        "status_4xx": common.pct_column("4xx", bar=False),
        "malicious_requests": common.count_column("Malicious requests"),
        "first_seen": common.time_column("First seen"),
        "last_seen": common.time_column("Last seen"),
    },
    height=common.rows_height(agent_view.height),
)

st.subheader("One operator")
choice = st.selectbox("Operator", operators["operator"].to_list(), key="tl_operator")
if choice:
    row = operators.filter(pl.col("operator") == choice).row(0, named=True)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Requests", fmt_count(row["requests"]), help=f"{row['requests']:,} requests")
    c2.metric("Share of all", fmt_pct(row["share"]))
    c3.metric(
        "Pages", fmt_count(row["pages"]), help="Page views: not assets, feeds, robots.txt, sitemaps or API calls."
    )
    c4.metric("Bandwidth", fmt_bytes(row["bytes"]))
    c5.metric("4xx/5xx share", fmt_pct((row["status_4xx"] or 0) + (row["status_5xx"] or 0)))
    st.caption(
        "Purposes: "
        + ", ".join(label(p) for p in row["purposes"])
        + " · agents: "
        + md(", ".join(row["agents"]) or None)
    )
    f = ctx.filters
    paths: pl.DataFrame = ctx.explore(
        "top_paths", operator=choice, since=f.since, until=f.until, sites=f.sites, classes=f.classes, limit=20
    )
    st.markdown(f"**Top paths of {md(choice)}**")
    common.table(
        paths,
        {
            "path": st.column_config.TextColumn("Path", width="large"),
            "page_type": st.column_config.TextColumn("Page type", width="small"),
            "requests": common.count_column("Requests"),
            "share": common.pct_column("Share of its requests"),
            "clients": common.count_column("Clients"),
            "status_2xx": common.pct_column("2xx", bar=False),
            "status_3xx": common.pct_column("3xx", bar=False),
            "status_4xx": common.pct_column("4xx", bar=False),
            "status_5xx": common.pct_column("5xx", bar=False),
        },
    )

if verification.height:
    st.subheader("Identity checks per claimed agent")
    common.table(
        verification,
        {
            "agent": "Agent",
            "operator": "Operator",
            "clients": common.count_column("Clients"),
            "verified": common.count_column("Verified"),
            "declared": common.count_column("Declared"),
            "spoofed": common.count_column("Spoofed"),
            "spoofed_share": common.pct_column("Spoofed share", color=common.palette.BAD),
            "spoofed_requests": common.count_column("Spoofed requests"),
            "spoofed_addresses": common.count_column("Spoofed addresses"),
            "top_spoofed_addresses": st.column_config.ListColumn("Top spoofing addresses", width="large"),
        },
    )
