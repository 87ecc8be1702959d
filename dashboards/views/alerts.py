"""Alerts: what changed on the last day of the selection against the days of data before it (the
same alerts as `trafficlens alerts`, with the shipped thresholds)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_count, md
from trafficlens.report.alerts import ALERT_KINDS

ctx = common.start_page(
    "Alerts",
    "New agents, operators far above their usual volume, new spoofing addresses, threat surges and "
    "identity checks that stopped verifying: the selection's days against the days before them.",
)
common.require_requests(ctx)
al = ctx.section("alerts")
alerts: pl.DataFrame = al["alerts"]
days = al["days"]
KIND_NAMES = {
    "new_agent": "New agents",
    "volume_surge": "Volume surges",
    "new_spoofing": "New spoofing",
    "threat_surge": "Threat surges",
    "identity_checks": "Identity checks off",
}
if days:
    looked = f"{days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "")
    st.caption(f"Looked at: {looked}, against {al['baseline_days']} day(s) of data before it (UTC days).")
cols = st.columns(len(ALERT_KINDS))
for col, kind in zip(cols, ALERT_KINDS, strict=True):
    col.metric(KIND_NAMES[kind], fmt_count(al["counts"][kind]), border=True)

if alerts.height:
    for kind in ALERT_KINDS:
        rows = alerts.filter(pl.col("kind") == kind)
        if rows.height:
            st.subheader(KIND_NAMES[kind])
            for message in rows["message"]:
                st.markdown(f"- {md(message)}")
    common.table(
        alerts.with_columns(pl.col("kind").replace_strict(KIND_NAMES)),
        {
            "kind": "Alert",
            "subject": "Subject",
            "day": st.column_config.DateColumn("Day"),
            "value": st.column_config.NumberColumn("Value", format="%.2f"),
            "baseline": st.column_config.NumberColumn("Baseline", format="%.2f"),
            "threshold": st.column_config.NumberColumn("Threshold", format="%.2f"),
            "message": "Message",
        },
        height=common.rows_height(alerts.height),
    )
elif days and al["baseline_days"] == 0:
    common.empty("No days of data before the selection's to compare with: choose a later period.")
else:
    common.empty("Nothing fired: no new agent, surge, spoofing wave or failing identity check.")
st.caption(
    "For scheduled runs: `trafficlens alerts --lake LAKE` records what fires in the lake's alerts "
    "table and exits 1 when anything does (thresholds: `--config FILE`)."
)
