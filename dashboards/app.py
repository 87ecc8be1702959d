"""trafficlens dashboard: the router. Every page is a file under views/ that also runs alone.

trafficlens dashboard --lake trafficlens-lake
TRAFFICLENS_LAKE=trafficlens-lake streamlit run dashboards/app.py

Either way it listens on 127.0.0.1 only and sends no usage statistics (.streamlit/config.toml
beside this file; `trafficlens dashboard --host` or `--server.address` to serve it further).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# Not "pages/": Streamlit takes a pages/ folder beside the entry script for an old-style multipage
# app and serves its files directly on a deep link or a reload, around this router.
PAGES = Path(__file__).resolve().parent / "views"


def run() -> None:
    st.set_page_config(page_title="trafficlens", page_icon=":material/traffic:", layout="wide")
    st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button: this is a local tool
    page = st.navigation(
        {
            "Traffic": [
                st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
                st.Page(PAGES / "operators.py", title="AI operators and agents", icon=":material/smart_toy:"),
                st.Page(PAGES / "agents_at_work.py", title="Agents at work", icon=":material/shopping_cart:"),
                st.Page(PAGES / "referrals.py", title="Referrals and robots.txt", icon=":material/swap_horiz:"),
            ],
            "Security": [
                st.Page(PAGES / "security.py", title="Security", icon=":material/shield:"),
                st.Page(PAGES / "client_explorer.py", title="Client explorer", icon=":material/search:"),
            ],
            "Lake": [st.Page(PAGES / "data_quality.py", title="Data quality", icon=":material/fact_check:")],
        }
    )
    page.run()


run()
