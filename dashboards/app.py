"""trafficlens dashboard: the router. Every page is a file under views/ that also runs alone.

trafficlens dashboard --lake trafficlens-lake
TRAFFICLENS_LAKE=trafficlens-lake streamlit run dashboards/app.py

Either way it listens on 127.0.0.1 only, sends no usage statistics and fetches nothing from the
internet (.streamlit/config.toml beside this file; `trafficlens dashboard --host` or
`--server.address` to serve it further).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import streamlit as st

from trafficlens.dashboards.common import page_icon  # drawn here: nothing is fetched from the internet

# Not "pages/": Streamlit takes a pages/ folder beside the entry script for an old-style multipage
# app and serves its files directly on a deep link or a reload, around this router.
VIEWS = Path(__file__).resolve().parent / "views"


class Route(NamedTuple):
    """One page: the sidebar group it sits in, its file under views/, its title and icon."""

    group: str
    file: str
    title: str
    icon: str


# The pages, in the sidebar's order: a new page is one line here (the tests iterate this list).
ROUTES = [
    Route("Traffic", "overview.py", "Overview", ":material/dashboard:"),
    Route("Traffic", "operators.py", "AI operators and agents", ":material/smart_toy:"),
    Route("Traffic", "agents_at_work.py", "Agents at work", ":material/shopping_cart:"),
    Route("Traffic", "paths.py", "Who reads a path", ":material/route:"),
    Route("Traffic", "network.py", "Networks and countries", ":material/public:"),
    Route("Traffic", "referrals.py", "Referrals and robots.txt", ":material/swap_horiz:"),
    Route("Traffic", "discovery.py", "AI discovery", ":material/travel_explore:"),
    Route("Traffic", "pay_per_crawl.py", "Pay-per-crawl replay", ":material/paid:"),
    Route("Security", "security.py", "Security", ":material/shield:"),
    Route("Security", "client_explorer.py", "Client explorer", ":material/search:"),
    Route("Security", "alerts.py", "Alerts", ":material/notifications:"),
    Route("Lake", "data_quality.py", "Data quality", ":material/fact_check:"),
]


def run() -> None:
    st.set_page_config(page_title="trafficlens", page_icon=page_icon(), layout="wide")
    st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button: this is a local tool
    groups: dict[str, list[st.Page]] = {}
    for i, r in enumerate(ROUTES):
        groups.setdefault(r.group, []).append(st.Page(VIEWS / r.file, title=r.title, icon=r.icon, default=i == 0))
    st.navigation(groups).run()


if __name__ == "__main__":  # Streamlit runs the script as __main__; the tests import ROUTES
    run()
