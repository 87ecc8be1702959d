"""Discovery: how AI agents find their way into the site, from robots.txt and sitemaps through
the files offered to language models (llms.txt, Markdown copies of pages) to the pages."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_count, md
from trafficlens.report.discovery import DISCOVERY_STAGES

ctx = common.start_page(
    "AI discovery",
    "How each agent finds its way in: robots.txt, sitemaps, llms.txt and llms-full.txt, "
    "Markdown copies of pages, then the pages.",
)
common.require_requests(ctx)
st.caption(common.describe_period(ctx))

disc = ctx.section("discovery")
summary = disc["summary"]
by_agent: pl.DataFrame = disc["by_agent"]
STAGE_NAMES = {
    "robots": "robots.txt",
    "sitemap": "Sitemaps",
    "llms_txt": "llms.txt",
    "llms_full_txt": "llms-full.txt",
    "markdown": "Markdown copies",
    "pages": "Pages",
}

k1, k2, k3, k4 = st.columns(4)
k1.metric("Agents", fmt_count(summary["agents"]), help="Named agents, and unnamed automation by class.", border=True)
k2.metric(
    "Read robots.txt", fmt_count(summary["reached"]["robots"]), help="Agents that fetched robots.txt.", border=True
)
k3.metric(
    "Read llms.txt",
    fmt_count(len(summary["llms_txt_readers"])),
    help="Agents that fetched llms.txt or llms-full.txt.",
    border=True,
)
k4.metric(
    "Read Markdown copies",
    fmt_count(summary["reached"]["markdown"]),
    help="Agents that fetched a page's Markdown copy (.md).",
    border=True,
)
if summary["llms_txt_readers"]:
    st.caption("Agents that ever read llms.txt: " + md(", ".join(summary["llms_txt_readers"])))
else:
    st.caption("No agent read llms.txt or llms-full.txt in this selection.")

if by_agent.height:
    st.subheader("The funnel, agent by agent")
    top = by_agent.head(25)
    cells = top.select("agent", *DISCOVERY_STAGES).unpivot(index="agent", variable_name="stage", value_name="n")
    cells = cells.with_columns(pl.col("stage").replace_strict(STAGE_NAMES))
    base = alt.Chart(cells).encode(
        y=common.y_names("agent", top["agent"].to_list()),
        x=alt.X("stage:N", title=None, sort=list(STAGE_NAMES.values()), axis=alt.Axis(orient="top", labelAngle=0)),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("n:Q", title="Requests", scale=alt.Scale(type="symlog", scheme="blues")),
        tooltip=[
            alt.Tooltip("agent:N", title="Agent"),
            alt.Tooltip("stage:N", title="Stage"),
            alt.Tooltip("n:Q", title="Requests", format=","),
        ],
    )
    text = base.mark_text(fontSize=11).encode(text=alt.Text("n:Q", format=","), color=alt.value("black"))
    common.chart(heat + text, height=common.bars_height(top.height) + 30)
    firsts = {f"first_{s}": common.time_column(f"First: {STAGE_NAMES[s]}") for s in DISCOVERY_STAGES}
    common.table(
        by_agent,
        {
            "agent": "Agent",
            "operator": "Operator",
            "clients": common.count_column("Clients"),
            **{s: common.count_column(STAGE_NAMES[s]) for s in DISCOVERY_STAGES},
            **firsts,
        },
        height=common.rows_height(by_agent.height),
    )
else:
    common.empty("No automated traffic in this selection.")
