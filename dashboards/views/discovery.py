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

st.subheader("Declared purpose against behaviour")
st.caption(
    "Does each agent do what its operator says it is for? An assistant's fetcher acting for a "
    "question reads a few pages; a search crawler's operator sends visitors back; a monitor checks a "
    "few paths. Only claims that held are judged."
)
pc = ctx.section("purpose_check")
checked: pl.DataFrame = pc["by_agent"]
if checked.height:
    flagged = checked.filter(pl.col("score") >= 0.5)
    if flagged.height:
        for r in flagged.iter_rows(named=True):
            st.markdown(
                f"- **{md(r['agent'])}** ({md(r['purpose'])}), score {r['score']:.1f}: {md(', '.join(r['reasons']))}"
            )
    else:
        st.caption("Every agent behaves as its purpose says.")
    common.table(
        checked.with_columns(pl.col("reasons").list.join(", ")),
        {
            "agent": "Agent",
            "operator": "Operator",
            "purpose": "Declared purpose",
            "score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.1f"),
            "reasons": "Reasons",
            "pages": common.count_column("Pages"),
            "visits": common.count_column("Visits"),
            "pages_per_visit_p90": st.column_config.NumberColumn("Pages a visit (90th pct)", format="%.0f"),
            "max_pages_per_visit": common.count_column("Largest visit (pages)"),
            "coverage": common.pct_column("Coverage of the site's pages"),
            "referred_visits": common.count_column("Visits its operator sent"),
        },
        height=common.rows_height(checked.height),
    )
else:
    common.empty("No agent whose claim held in this selection.")
