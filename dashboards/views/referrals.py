"""Referrals and robots.txt: the human visits AI assistants send back, against how much their
operators crawl, and which crawlers fetch and respect robots.txt."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_count, fmt_pct, label, md

ctx = common.start_page(
    "Referrals and robots.txt",
    "What AI assistants give back (visits they refer) for what "
    "their operators take (pages crawled), and who reads robots.txt.",
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

ref = ctx.section("referrals")
summary = ref["summary"]
by_operator: pl.DataFrame = ref["by_operator"]
by_source: pl.DataFrame = ref["by_source"]
robots: pl.DataFrame = ctx.section("robots")

ratios = by_operator.filter(pl.col("crawl_to_refer").is_not_null())
k1, k2, k3, k4 = st.columns(4)
k1.metric(
    "AI-referred visits",
    fmt_count(summary["visits"]),
    help="Human visits whose first AI-attributed request came from an AI assistant (referer or utm_source).",
    border=True,
)
k2.metric(
    "Of all human visits",
    fmt_pct(summary["share_of_human_visits"]),
    help=f"{summary['visits']:,} of {summary['human_visits']:,} human visits.",
    border=True,
)
k3.metric(
    "Crawl-to-refer ratio",
    f"{float(ratios['crawled_pages'].sum()) / float(ratios['visits'].sum()):,.0f}" if ratios.height else "–",
    help="Pages crawled per referred visit: the automated page requests of the operators that refer "
    "visitors, per human visit they referred.",
    border=True,
)
k4.metric(
    "robots.txt fetches",
    fmt_count(int(robots["robots_fetches"].sum() or 0)),
    help=f"By {int(robots['clients_fetching'].sum() or 0):,} automated clients.",
    border=True,
)

left, right = st.columns(2)
with left:
    st.subheader("Referred visits by operator")
    visits = (
        by_operator.filter(pl.col("visits") > 0)
        .unpivot(index="operator", on=["by_referer", "by_utm_source"], variable_name="via", value_name="n")
        .with_columns(pl.col("via").replace_strict({"by_referer": "Referer", "by_utm_source": "utm_source"}))
    )
    if visits.height:
        order = by_operator.filter(pl.col("visits") > 0)["operator"].to_list()
        common.chart(
            alt.Chart(visits)
            .mark_bar()
            .encode(
                y=common.y_names("operator", order),
                x=alt.X("n:Q", title="Visits", stack=True),
                color=alt.Color(
                    "via:N",
                    title="Attributed by",
                    scale=alt.Scale(
                        domain=["Referer", "utm_source"],
                        range=[common.palette.OKABE_ITO["blue"], common.palette.OKABE_ITO["sky_blue"]],
                    ),
                    legend=alt.Legend(orient="top"),
                ),
                tooltip=[
                    alt.Tooltip("operator:N", title="Operator"),
                    alt.Tooltip("via:N", title="Attributed by"),
                    alt.Tooltip("n:Q", title="Visits", format=","),
                ],
            ),
            height=common.bars_height(len(order), legend=True),
        )
    else:
        common.empty("No human visits referred by AI assistants in this selection.")
with right:
    st.subheader("Crawl-to-refer ratio")
    if ratios.height:
        widest = float(ratios["crawl_to_refer"].cast(pl.Float64).fill_null(0).max() or 1.0)  # type: ignore[arg-type]
        chart = (
            alt.Chart(ratios)
            .mark_bar(color=common.CLASS_COLORS["crawler"])
            .encode(
                y=common.y_names("operator", "-x"),
                # Room right of the longest bar for its label.
                x=alt.X(
                    "crawl_to_refer:Q",
                    title="Pages crawled per referred visit",
                    scale=alt.Scale(domain=[0, widest * 1.15], nice=False),
                ),
                tooltip=[
                    alt.Tooltip("operator:N", title="Operator"),
                    alt.Tooltip("crawl_to_refer:Q", title="Pages per visit", format=",.0f"),
                    alt.Tooltip("crawled_pages:Q", title="Pages crawled", format=","),
                    alt.Tooltip("visits:Q", title="Visits referred", format=","),
                ],
            )
        )
        text = chart.mark_text(align="left", dx=3).encode(
            text=alt.Text("crawl_to_refer:Q", format=",.0f"), color=alt.value("gray")
        )
        common.chart(chart + text, height=common.bars_height(ratios.height))
    else:
        common.empty("No operator both crawled and referred visits in this selection.")
    never = by_operator.filter((pl.col("visits") == 0) & (pl.col("crawled_pages") > 0))
    if never.height:
        st.caption(
            "Crawled but referred no visit: "
            + ", ".join(f"{md(r['operator'])} ({r['crawled_pages']:,} pages)" for r in never.iter_rows(named=True))
        )

if by_source.height:
    st.subheader("Where referred visits come from")
    common.table(
        by_source.with_columns(pl.col("via").replace({"referer": "Referer"})),
        {
            "operator": "Operator",
            "assistant": "Assistant",
            "via": "Attributed by",
            "source": "Source",
            "visits": common.count_column("Visits"),
        },
    )

st.subheader("Inferred from assistants' fetches")
inferred = ctx.section("inferred_referrals")
inf_sum = inferred["summary"]
i1, i2, i3 = st.columns(3)
i1.metric(
    "Inferred AI visits",
    fmt_count(inf_sum["visits"]),
    help=f"People landing with no referrer on a page a user-triggered assistant fetched at most "
    f"{inf_sum['window_s']:,.0f} s before; not among the AI-referred visits above.",
    border=True,
)
i2.metric(
    "Expected by chance",
    fmt_count(inf_sum["expected_by_chance"]),
    help="The same count with time reversed (landings just before such a fetch, which a click "
    "from an answer cannot make): about how many of the inferred are coincidence.",
    border=True,
)
i3.metric(
    "Net estimate",
    fmt_count(inf_sum["net_estimate"]),
    help="Inferred visits less those expected by chance.",
    border=True,
)
if inferred["by_agent"].height:
    common.table(
        inferred["by_agent"],
        {
            "agent": "Assistant",
            "operator": "Operator",
            "visits": common.count_column("Inferred visits"),
            "median_seconds": st.column_config.NumberColumn("Median seconds after the fetch", format="%.0f"),
        },
    )
    with st.expander("The inferred visits and their evidence"):
        common.table(
            inferred["visits"].select("landed", "path", "agent", "seconds_after", "reason"),
            {
                "landed": common.time_column("Landed"),
                "path": "Page",
                "agent": "Fetched by",
                "seconds_after": st.column_config.NumberColumn("Seconds after", format="%.0f"),
                "reason": "Reason",
            },
            height=common.rows_height(inferred["visits"].height),
        )
else:
    common.empty("No person landed without a referrer on a page an assistant had just fetched.")

st.subheader("robots.txt")
if robots.height:
    rb = robots.with_columns(pl.col("purpose").map_elements(label, return_dtype=pl.String).alias("purpose_label"))
    fetchers = rb.filter(pl.col("robots_fetches") > 0).head(20)
    left, right = st.columns([3, 2])
    with left:
        if fetchers.height:
            common.chart(
                alt.Chart(fetchers)
                .mark_bar(color=common.palette.NEUTRAL)
                .encode(
                    y=common.y_names("agent", fetchers["agent"].to_list()),
                    x=alt.X("robots_fetches:Q", title="robots.txt fetches"),
                    tooltip=[
                        alt.Tooltip("agent:N", title="Agent"),
                        alt.Tooltip("operator:N", title="Operator"),
                        alt.Tooltip("robots_fetches:Q", title="Fetches", format=","),
                        alt.Tooltip("clients_fetching:Q", title="Clients fetching", format=","),
                        alt.Tooltip("clients:Q", title="Clients", format=","),
                    ],
                ),
                height=common.bars_height(fetchers.height),
            )
        else:
            common.empty("No automated client fetched robots.txt in this selection.")
    with right:
        violations = int(rb["violations"].sum() or 0)
        st.metric(
            "robots.txt violations",
            fmt_count(violations),
            help="Requests for paths robots.txt disallows, by clients it applies to.",
            border=True,
        )
        if not violations:
            st.caption(
                "Violations are recorded when classify is given the site's robots.txt: "
                "`trafficlens analyze LOG... --robots robots.txt`."
            )
        never = rb.filter(pl.col("robots_fetches") == 0).head(8)
        if never.height:
            st.caption("Named bots that never fetched robots.txt: " + md(", ".join(never["agent"].to_list())))
    common.table(
        rb,
        {
            "agent": "Agent",
            "operator": "Operator",
            "purpose_label": "Purpose",
            "requests": common.count_column("Requests"),
            "robots_fetches": common.count_column("robots.txt fetches"),
            "clients_fetching": common.count_column("Clients fetching"),
            "clients": common.count_column("Clients"),
            "violations": common.count_column("Violations"),
            "violating_clients": common.count_column("Violating clients"),
            "first_fetch": common.time_column("First fetch"),
        },
        height=common.rows_height(robots.height),
    )
else:
    common.empty("No automated traffic in this selection.")

st.subheader("robots.txt as it was")
hist = ctx.section("robots_history")
if hist["summary"]["versions"]:
    st.caption(
        f"{hist['summary']['versions']} version(s), each request judged by the one in force when it came "
        "(classify --robots FOLDER of robots-YYYY-MM-DD.txt)."
    )
    common.table(
        hist["versions"].with_columns(pl.col("signals").list.join("; ")),
        {
            "start": common.time_column("In force from"),
            "name": "File",
            "groups": common.count_column("Groups"),
            "disallow_rules": common.count_column("Disallow rules"),
            "signals": "Usage signals",
        },
    )
    if hist["obey"].height:
        st.markdown("**Time to obey a change that disallowed more**")
        common.table(
            hist["obey"].with_columns(pl.col("new_disallows").list.join(" ")),
            {
                "change": common.time_column("Change"),
                "agent": "Agent",
                "new_disallows": "Newly disallowed",
                "disallowed_after": common.count_column("Disallowed requests after"),
                "last_disallowed": common.time_column("Last of them"),
                "obeyed": st.column_config.CheckboxColumn("Obeyed"),
                "time_to_obey_s": st.column_config.NumberColumn("Seconds to obey", format="%.0f"),
                "refetched_before_obeying": st.column_config.CheckboxColumn("Read robots.txt again before"),
                "first_robots_after": common.time_column("First robots.txt read after"),
            },
        )
    against = hist["signals"].filter(~pl.col("allowed") & (pl.col("pages") > 0))
    if against.height:
        st.markdown("**Pages fetched against a usage signal about the agent's own purpose**")
        common.table(
            against.drop("allowed"),
            {
                "agent": "Agent",
                "purpose": "Purpose",
                "version": "Version",
                "signal": "Signal (set to no)",
                "pages": common.count_column("Pages fetched"),
            },
        )
    elif hist["signals"].height:
        st.caption("No agent fetched pages against a signal about its purpose.")
else:
    st.caption(
        "Give classify the site's robots.txt versions to judge each request by the one in force: "
        "`trafficlens classify --robots FOLDER` (files named robots-YYYY-MM-DD.txt)."
    )
