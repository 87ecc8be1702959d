"""Pay-per-crawl replay: the automated requests already in the lake answered by a pricing policy
(charge, allow, refuse), and what each operator would have paid or been refused."""

from __future__ import annotations

import os

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import fmt_bytes, fmt_count, md

ctx = common.start_page(
    "Pay-per-crawl replay",
    "What each operator would have paid, or been refused, had a pricing policy answered "
    "its requests: from the logs already in the lake.",
)
common.require_requests(ctx)
st.caption(
    common.describe_period(ctx)
    + " · policy: "
    + ("the shipped one" if not os.environ.get(common.PRICING_ENV) else "`trafficlens dashboard --pricing`")
)

ppc = ctx.section("pay_per_crawl")
s = ppc["summary"]
by_operator: pl.DataFrame = ppc["by_operator"]

k1, k2, k3, k4 = st.columns(4)
k1.metric(
    f"Would be owed ({s['currency']})",
    f"{s['amount']:,.2f}",
    help=f"{s['charged']:,} requests charged, by {s['operators_charged']:,} operators.",
    border=True,
)
k2.metric(
    "Refused",
    fmt_count(s["refused"]),
    help=f"Requests answered 403, of {s['operators_refused']:,} operators (and unnamed automation).",
    border=True,
)
k3.metric(
    "Bandwidth saved",
    fmt_bytes(s["bytes_refused"]),
    help=f"Bytes the refused requests took; a further {fmt_bytes(s['bytes_charged'])} if the charged ones went unpaid (402).",
    border=True,
)
k4.metric(
    "Referred visits at risk",
    fmt_count(s["referrals_at_risk_refused"]),
    help="Human visits referred by AI assistants of the operators this policy refuses "
    f"({s['referrals_at_risk_charged']:,} by operators it charges).",
    border=True,
)

if by_operator.height:
    st.subheader("Each operator's requests, as the policy answers them")
    top = by_operator.head(20)
    parts = top.select("operator", "charged", "allowed", "refused").unpivot(
        index="operator", variable_name="answer", value_name="n"
    )
    parts = parts.with_columns(
        pl.col("answer").replace_strict({"charged": "Charged", "allowed": "Allowed", "refused": "Refused"})
    )
    common.chart(
        alt.Chart(parts)
        .mark_bar()
        .encode(
            y=common.y_names("operator", top["operator"].to_list()),
            x=alt.X("n:Q", title="Requests", stack=True),
            color=alt.Color(
                "answer:N",
                title="Answer",
                scale=alt.Scale(
                    domain=["Charged", "Allowed", "Refused"],
                    range=[
                        common.palette.OKABE_ITO["orange"],
                        common.palette.OKABE_ITO["bluish_green"],
                        common.palette.OKABE_ITO["vermillion"],
                    ],
                ),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("operator:N", title="Operator"),
                alt.Tooltip("answer:N", title="Answer"),
                alt.Tooltip("n:Q", title="Requests", format=","),
            ],
        ),
        height=common.bars_height(top.height, legend=True),
    )
    risky = by_operator.filter((pl.col("refused") > 0) & (pl.col("referred_visits") > 0))
    if risky.height:
        st.caption(
            "Refused, yet sending visitors: "
            + ", ".join(f"{md(r['operator'])} ({r['referred_visits']:,} visits)" for r in risky.iter_rows(named=True))
        )
    common.table(
        by_operator.with_columns(pl.col("agents").list.join(", ")),
        {
            "operator": "Operator",
            "agents": "Agents",
            "requests": common.count_column("Requests"),
            "charged": common.count_column("Charged"),
            "amount": st.column_config.NumberColumn(f"Owed ({s['currency']})", format="%.2f"),
            "allowed": common.count_column("Allowed"),
            "refused": common.count_column("Refused"),
            "bytes_refused": common.bytes_column("Bytes saved"),
            "bytes_charged": common.bytes_column("Bytes charged"),
            "referred_visits": common.count_column("Referred visits"),
        },
        height=common.rows_height(by_operator.height),
    )
else:
    common.empty("No automated traffic in this selection.")
