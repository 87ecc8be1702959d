"""Who reads a path: the clients that requested one path, by class, operator and identity, when,
and with what answer; a client picked from the list opens with its reasons."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import CLASS_COLORS, fmt_count, fmt_pct, label

ctx = common.start_page(
    "Who reads a path",
    "One path (any query string), and every client that asked for it. The sidebar's filters apply here too.",
)
common.require_requests(ctx)
f = ctx.filters
top: pl.DataFrame = ctx.explore("top_paths", since=f.since, until=f.until, sites=f.sites, classes=f.classes, limit=100)
known = top["path"].to_list()

# The path is in the address too (?path=/pricing), so a view of one path can be shared.
wanted = st.query_params.get("path") or (known[0] if known else "/")
left, right = st.columns([3, 2])
typed = left.text_input(
    "Path",
    value=wanted,
    key="tl_path_typed",
    help="The exact path, without the query string: /pricing, /api/v1/products.",
).strip()
picked = right.selectbox(
    "Or one of the busiest", [None, *known], format_func=lambda p: "–" if p is None else p, key="tl_path_pick"
)
path = picked or typed or "/"
if st.query_params.get("path") != path:
    st.query_params["path"] = path

readers: pl.DataFrame = ctx.explore(
    "path_readers", path, since=f.since, until=f.until, sites=f.sites, classes=f.classes, limit=500
)
if not readers.height:
    st.info(
        f"No request for {common.md(path, code=True)} matches these filters. Paths are matched exactly, "
        "without the query string: pick one of the busiest, or widen the days and classes in the sidebar.",
        icon=common.INFO,
    )
    st.stop()

requests = int(readers["requests"].sum())
share_of = lambda mask: readers.filter(mask)["requests"].sum() / requests  # noqa: E731
k1, k2, k3, k4 = st.columns(4)
k1.metric("Requests", fmt_count(requests), help=f"{requests:,} requests for {path}.", border=True)
k2.metric(
    "Clients",
    fmt_count(readers.height),
    help="Clients (an address with a user agent) that requested it"
    + (" (the busiest 500 are listed)" if readers.height >= 500 else "")
    + ".",
    border=True,
)
k3.metric("AI-driven", fmt_pct(share_of(pl.col("ai_driven"))), help="Share of its requests.", border=True)
k4.metric("Malicious", fmt_pct(share_of(pl.col("malicious"))), help="Share of its requests.", border=True)

by = ctx.filters.by
hourly: pl.DataFrame = ctx.explore(
    "hourly_trends", since=f.since, until=f.until, sites=f.sites, classes=f.classes, path=path
)["classes"]
# The report's periods from the hours: a path's requests are few, one scan serves every period.
step = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo"}[by]
over_time = (
    hourly.with_columns(pl.col("period").dt.truncate(step))
    .group_by("period", "actor_class")
    .agg(pl.col("requests").sum())
    .with_columns(pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"))
    .sort("period")
)
periods = over_time["period"].unique().sort().to_list()
order = [label(c) for c in CLASS_COLORS]
left, right = st.columns([3, 2])
with left:
    st.subheader("Requests over time, by class")
    short = common.too_short(ctx, len(periods))
    if short:
        common.empty(short)
    else:
        common.chart(
            alt.Chart(over_time)
            .mark_bar()
            .encode(
                x=common.period_x(by, [p.date() for p in periods]),
                y=alt.Y("requests:Q", title="Requests", stack=True, axis=alt.Axis(format="~s")),
                color=alt.Color(
                    "class:N",
                    title=None,
                    scale=common.color_scale(CLASS_COLORS, labels=True),
                    sort=order,
                    legend=alt.Legend(orient="top"),
                ),
                tooltip=[
                    common.period_tooltip(by),
                    alt.Tooltip("class:N", title="Class"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                ],
            ),
            height=260,
        )
with right:
    st.subheader("Who, by operator")
    who = (
        readers.with_columns(
            # People have no operator; automation that names none is "unnamed" with its class.
            pl.when(pl.col("operator").is_not_null())
            .then(pl.col("operator"))
            .when(pl.col("actor_class") == "human")
            .then(pl.lit("People"))
            .otherwise(pl.concat_str(pl.lit("Unnamed "), pl.col("actor_class")))
            .alias("who")
        )
        .group_by("who")
        .agg(pl.col("requests").sum(), pl.len().alias("clients"))
        .sort("requests", "who", descending=[True, False])
        .head(10)
    )
    common.chart(
        alt.Chart(who)
        .mark_bar(color=common.palette.NEUTRAL)
        .encode(
            y=common.y_names("who", who["who"].to_list()),
            x=alt.X("requests:Q", title="Requests", axis=alt.Axis(format="~s")),
            tooltip=[
                alt.Tooltip("who:N", title="Operator"),
                alt.Tooltip("requests:Q", title="Requests", format=","),
                alt.Tooltip("clients:Q", title="Clients", format=","),
            ],
        ),
        height=common.bars_height(who.height),
    )

st.subheader("Its clients")
view = readers.with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}, default=None).alias("class_label"),
    common.identity_text().alias("identity_label"),
)
chosen = common.table(
    view,
    {
        "client_ip": st.column_config.TextColumn("Address", width=common.ADDRESS_WIDTH),
        "class_label": st.column_config.TextColumn("Class", width="small"),
        "operator": st.column_config.TextColumn("Operator", width="small"),
        "agent": st.column_config.TextColumn("Agent", width="small"),
        "identity_label": st.column_config.TextColumn("Identity", width="medium"),
        "malicious": st.column_config.CheckboxColumn("Malicious", width="small"),
        "requests": common.count_column("Requests"),
        "statuses": st.column_config.TextColumn("Statuses", width="small"),
        "first": st.column_config.DatetimeColumn("First", format="YYYY-MM-DD HH:mm", timezone="UTC"),
        "last": st.column_config.DatetimeColumn("Last", format="YYYY-MM-DD HH:mm", timezone="UTC"),
        "user_agent": st.column_config.TextColumn("User agent", width="large"),
    },
    height=common.rows_height(view.height, 420),
    on_select="rerun",
    selection_mode="single-row",
    key="tl_path_client",
)
rows = chosen.selection.rows if chosen is not None and hasattr(chosen, "selection") else []
if rows:
    with st.container(border=True):
        common.client_detail(ctx, view["client_id"][rows[0]])
else:
    st.caption("Select a row for that client's labels, reasons and requests.")
