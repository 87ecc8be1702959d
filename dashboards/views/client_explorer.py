"""Client explorer: find clients by address, user agent, class or threat, then look at one:
its labels and the reasons for them, its behaviour features, sessions and raw requests."""

from __future__ import annotations

import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import THREATS, label

ctx = common.start_page(
    "Client explorer",
    "A client is one address with one user agent on one site. The sidebar's days, sites and classes apply here too.",
)
LIMIT = 200

with st.form("tl_search", border=True):
    c1, c2, c3 = st.columns([2, 3, 3])
    address = c1.text_input("Address contains", key="tl_q_address", placeholder="e.g. 203.0.113.")
    agent = c2.text_input("User agent contains", key="tl_q_ua", placeholder="e.g. GPTBot, python-requests")
    threats = c3.multiselect(
        "Threats (any of)", THREATS, key="tl_q_threats", format_func=label, placeholder="Any or none"
    )
    c4, c5, _ = st.columns([2, 2, 4])
    malicious_only = c4.toggle("Malicious only", key="tl_q_malicious")
    ai_only = c5.toggle("AI-driven only", key="tl_q_ai")
    st.form_submit_button("Search", type="primary", icon=":material/search:")

f = ctx.filters
hits: pl.DataFrame = ctx.explore(
    "search_clients",
    address=address or None,
    user_agent=agent or None,
    classes=f.classes,
    threats=tuple(threats),
    malicious=True if malicious_only else None,
    ai_driven=True if ai_only else None,
    sites=f.sites,
    since=f.since,
    until=f.until,
    limit=LIMIT,
)
if not hits.height:
    st.info("No client matches this search: loosen it, or widen the days and classes in the sidebar.", icon=common.INFO)
    st.stop()

more = " (the busiest; narrow the search to see others)" if hits.height >= LIMIT else ""
st.markdown(f"**{hits.height:,} clients**{more} · select a row for its details")
view = hits.with_columns(
    pl.col("actor_class").map_elements(label, return_dtype=pl.String).alias("class_label"),
    common.identity_text().alias("identity_label"),
    pl.col("threats").list.eval(pl.element().str.replace_all("_", " ")).alias("threat_list"),
)
picked = common.table(
    view,
    common.CLIENT_COLUMNS,
    height=common.rows_height(hits.height, 380),
    on_select="rerun",
    selection_mode="single-row",
    key="tl_client_pick",
)

rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
client_id = view["client_id"][rows[0] if rows else 0]
if not rows and hits.height > 1:
    st.caption("Showing the first client of the list: select another row to see its details.")
with st.container(border=True):
    common.client_detail(ctx, client_id)
