"""Security: malicious traffic over time, by threat, and the client profiles behind it, each
with the reasons for its verdict."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_count, fmt_pct, label

ctx = common.start_page(
    "Security",
    "Malicious traffic: spoofed identities, attacks, credential stuffing, "
    "card testing, abusive scraping, and who is behind it.",
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

threats = ctx.section("threats")
summary = threats["summary"]
by_threat: pl.DataFrame = threats["by_threat"]
top: pl.DataFrame = threats["top_clients"]
verification: pl.DataFrame = ctx.section("verification")
trend: pl.DataFrame = ctx.trends()["ai"]
by = ctx.filters.by

k1, k2, k3, k4 = st.columns(4)
k1.metric(
    "Malicious requests",
    fmt_count(summary["requests"]),
    help=f"{summary['requests']:,} requests by clients with a threat other than a robots.txt violation.",
    border=True,
)
k2.metric("Malicious share", fmt_pct(summary["share"]), help="Of all requests in this selection.", border=True)
k3.metric(
    "Malicious clients", fmt_count(summary["clients"]), help=f"From {summary['addresses']:,} addresses.", border=True
)
k4.metric(
    "Spoofed clients",
    fmt_count(int(verification["spoofed"].sum() or 0)),
    help="Clients that claim a known agent and fail its identity check.",
    border=True,
)

if not summary["requests"] and not by_threat.height:
    st.success("No threats found in this selection.", icon=common.OK)
    st.stop()

left, right = st.columns(2)
with left:
    st.subheader("Malicious requests over time")
    short = common.too_short(ctx, trend.height)
    trend = trend.with_columns(common.period_label(pl.col("period"), by).alias("when"))
    base = alt.Chart(trend).encode(x=alt.X("when:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(color=common.palette.BAD, opacity=0.85).encode(
        y=alt.Y(
            "malicious_requests:Q",
            title="Malicious requests",
            axis=alt.Axis(format="~s", titleColor=common.palette.BAD),
        ),
        tooltip=[
            common.period_tooltip(by),
            alt.Tooltip("malicious_requests:Q", title="Malicious requests", format=","),
            alt.Tooltip("malicious_share:Q", title="Share of requests", format=".1%"),
        ],
    )
    line = base.mark_line(color=common.palette.INK, point=alt.OverlayMarkDef(color=common.palette.INK)).encode(
        y=alt.Y("malicious_share:Q", title="Share of all requests", axis=alt.Axis(format="%")),
        tooltip=[common.period_tooltip(by), alt.Tooltip("malicious_share:Q", title="Share of requests", format=".1%")],
    )
    if short:
        common.empty(short)
    elif not trend["malicious_requests"].sum():
        common.empty("No malicious requests in this selection.")
    else:
        common.chart(alt.layer(bars, line).resolve_scale(y="independent"))
        st.caption("Bars: malicious requests. Line: their share of all requests.")
with right:
    st.subheader("Requests by threat")
    bt = by_threat.with_columns(
        pl.col("threat").map_elements(label, return_dtype=pl.String).alias("name"),
        (pl.col("threat") == "robots_violation").alias("info"),
    )
    # Click a bar for the clients that show the threat.
    pick = alt.selection_point(name="threat", fields=["threat"], on="click")
    base = alt.Chart(bt).encode(
        y=common.y_names("name", bt["name"].to_list()),
        # Room right of the longest bar for its "N clients" label.
        x=alt.X(
            "requests:Q",
            title="Requests",
            axis=alt.Axis(format="~s"),
            scale=alt.Scale(domain=[0, float(bt["requests"].max() or 1) * 1.35], nice=False),  # type: ignore[arg-type]
        ),
    )
    bars = (
        base.mark_bar()
        .encode(
            color=alt.Color(
                "info:N",
                scale=alt.Scale(domain=[False, True], range=[common.palette.BAD, common.palette.NEUTRAL]),
                legend=None,
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
            tooltip=[
                alt.Tooltip("name:N", title="Threat"),
                alt.Tooltip("requests:Q", title="Requests that show it", format=","),
                alt.Tooltip("share:Q", title="Share of all requests", format=".1%"),
                alt.Tooltip("clients:Q", title="Clients", format=","),
                alt.Tooltip("addresses:Q", title="Addresses", format=","),
            ],
        )
        .add_params(pick)
    )
    text = (
        base.mark_text(align="left", dx=3)
        .encode(text="who:N", color=alt.value(common.palette.TEXT))
        .transform_calculate(who="format(datum.clients, ',') + (datum.clients == 1 ? ' client' : ' clients')")
    )
    picked_threat = st.altair_chart(
        (bars + text).properties(height=common.bars_height(bt.height)),
        width="stretch",
        on_select="rerun",
        selection_mode="threat",
        key="tl_threat_bar",
    )
    st.caption(
        "Requests that matched the threat themselves (an attack rule, a disallowed path); "
        "for a threat seen in a client's behaviour (stuffing, floods, scraping), its requests."
    )
    if bt.filter(pl.col("info")).height:
        st.caption("A robots.txt violation (grey) alone does not make a client malicious.")

point = common.selected(picked_threat, "threat")
chosen = point.get("threat") if point else None
if chosen in common.THREATS:
    f = ctx.filters
    st.subheader(f"Clients that show {label(chosen).lower()}")
    hits: pl.DataFrame = ctx.explore(
        "search_clients", threats=(chosen,), classes=f.classes, sites=f.sites, since=f.since, until=f.until, limit=200
    )
    common.clients_table(ctx, hits, key="tl_threat_clients")

st.subheader("Top malicious clients")
st.caption("Select a row to see the client's reasons, sessions and raw requests.")
view = top.with_columns(
    pl.col("actor_class").map_elements(label, return_dtype=pl.String).alias("class_label"),
    common.identity_text().alias("identity_label"),
)
picked = common.table(
    view,
    {
        "client_ip": st.column_config.TextColumn("Address", width=common.ADDRESS_WIDTH),
        "class_label": st.column_config.TextColumn("Class", width="small"),
        "agent": st.column_config.TextColumn("Claims", width="small"),
        "identity_label": st.column_config.TextColumn("Identity", width="medium"),
        "requests": common.count_column("Malicious requests"),
        "error_share": common.pct_column("4xx/5xx share"),
        "threats": st.column_config.ListColumn("Threats", width="medium"),
        "reasons": st.column_config.ListColumn("Reasons", width="large"),
        "user_agent": st.column_config.TextColumn("User agent", width="medium"),
        "first_seen": common.time_column("First seen"),
        "last_seen": common.time_column("Last seen"),
    },
    height=common.rows_height(view.height, 460),
    on_select="rerun",
    selection_mode="single-row",
    key="tl_threat_pick",
)
rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
if rows:
    with st.container(border=True):
        common.client_detail(ctx, view["client_id"][rows[0]])

if verification.height and int(verification["spoofed"].sum() or 0):
    st.subheader("Spoofed identities")
    spoof = verification.filter(pl.col("spoofed") > 0).with_columns(
        pl.col("top_spoofed_addresses").list.join(", ").alias("addresses_text")
    )
    common.table(
        spoof,
        {
            "agent": "Claimed agent",
            "operator": "Operator",
            "spoofed": common.count_column("Spoofed clients"),
            "spoofed_share": common.pct_column("Of its clients"),
            "spoofed_requests": common.count_column("Requests"),
            "spoofed_addresses": common.count_column("Addresses"),
            "addresses_text": "Top addresses",
        },
    )
