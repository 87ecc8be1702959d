"""Data quality: the log sources in the lake and the lines that could not be read, by reason."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_count, fmt_pct

ctx = common.start_page(
    "Data quality",
    "What went into the lake, and what could not be read. "
    "These figures cover every ingest, whatever the days, sites or classes chosen on other pages.",
    filters=False,
)
dq = ctx.section("data_quality")
summary = dq["summary"]
sources: pl.DataFrame = dq["sources"]
rejects: pl.DataFrame = dq["rejects"]

k1, k2, k3, k4 = st.columns(4)
k1.metric("Sources", f"{summary['sources']:,}", help="Log files (or standard input) ingested.", border=True)
k2.metric("Lines read", fmt_count(summary["events"]), help=f"{summary['events']:,} requests.", border=True)
k3.metric("Lines rejected", fmt_count(summary["rejects"]), help=f"{summary['rejects']:,} lines.", border=True)
k4.metric("Reject share", fmt_pct(summary["reject_share"]), border=True)

st.subheader("Sources")
if sources.height:
    common.table(
        sources,
        {
            "source": st.column_config.TextColumn("Source", width="large"),
            "format": "Format",
            "events": common.count_column("Lines read"),
            "rejects": common.count_column("Rejected"),
            "runs": common.count_column("Ingest runs"),
            "last_ingested": common.time_column("Last ingested (UTC)"),
        },
    )
else:
    common.empty("No ingest recorded in the lake's manifest.")

st.subheader("Rejected lines")
if not rejects.height:
    st.success("Every line was read: nothing was rejected.", icon=common.OK)
else:
    by_reason = rejects.group_by("reason").agg(pl.col("lines").sum()).sort("lines", descending=True)
    if by_reason.height > 1:  # one reason needs no chart: the table says it
        common.chart(
            alt.Chart(by_reason)
            .mark_bar(color=common.palette.BAD)
            .encode(
                y=common.y_names("reason", by_reason["reason"].to_list()),
                x=alt.X("lines:Q", title="Lines"),
                tooltip=[alt.Tooltip("reason:N", title="Reason"), alt.Tooltip("lines:Q", title="Lines", format=",")],
            ),
            height=common.bars_height(by_reason.height),
        )
    common.table(
        rejects,
        {
            "reason": "Reason",
            "lines": common.count_column("Lines"),
            "example": st.column_config.TextColumn("Example line", width="large"),
            "source": "Source",
        },
        height=common.rows_height(rejects.height),
    )
    st.caption(
        "Every rejected line is kept in the lake: "
        + common.md(f'trafficlens query --lake {ctx.lake} "SELECT * FROM rejects LIMIT 20"', code=True)
        + "."
    )
