"""Agents at work: which pages agents use (product, search, account, auth, cart, checkout)
against people, crawlers and scrapers, and how far each class gets towards checkout."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import CLASS_COLORS, PAGE_TYPES, fmt_count, fmt_pct, label

ctx = common.start_page(
    "Agents at work",
    "Where agents go on the site compared with people: products, search, accounts, sign-in, cart and checkout.",
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

pt: pl.DataFrame = ctx.section("page_types")
shares: pl.DataFrame = ctx.section("shares")
agents: pl.DataFrame = ctx.section("agents")
TASK_TYPES = ("product", "search", "account", "auth", "cart", "checkout")
FUNNEL = ("product", "cart", "checkout")
class_order = [label(c) for c in CLASS_COLORS]
class_scale = common.color_scale(CLASS_COLORS, labels=True)
pt = pt.with_columns(
    pl.col("actor_class").replace_strict({c: label(c) for c in CLASS_COLORS}).alias("class"),
    pl.col("page_type").map_elements(label, return_dtype=pl.String).alias("page"),
)

agent_row = shares.filter(pl.col("actor_class") == "agent").row(0, named=True)
agent_pt = pt.filter(pl.col("actor_class") == "agent")
task_requests = int(agent_pt.filter(pl.col("page_type").is_in(TASK_TYPES))["requests"].sum() or 0)
checkout_clients = int(agent_pt.filter(pl.col("page_type") == "checkout")["clients"].sum() or 0)
k1, k2, k3, k4 = st.columns(4)
k1.metric("Agent requests", fmt_count(agent_row["requests"]), help=f"{agent_row['requests']:,} requests", border=True)
k2.metric("Agent share of requests", fmt_pct(agent_row["requests_share"]), border=True)
k3.metric(
    "Agent requests on task pages",
    fmt_pct(task_requests / agent_row["requests"] if agent_row["requests"] else 0),
    help="Product, search, account, sign-in, cart and checkout pages.",
    border=True,
)
k4.metric(
    "Agents reaching checkout",
    f"{checkout_clients:,}",
    help="Agent clients with at least one checkout request.",
    border=True,
)

st.subheader("Page-type mix per class")
page_order = [label(p) for p in PAGE_TYPES]
common.chart(
    alt.Chart(pt)
    .mark_bar()
    .encode(
        y=common.y_names("class", class_order),
        x=alt.X("share:Q", title="Share of the class's requests", stack="normalize", axis=alt.Axis(format="%")),
        color=alt.Color(
            "page:N",
            title=None,
            sort=page_order,
            # Three families of shades (pages read, pages acted on, machine fetches): no colour twice.
            scale=alt.Scale(domain=page_order, range=[common.PAGE_TYPE_COLORS[p] for p in PAGE_TYPES]),
            legend=alt.Legend(orient="bottom", columns=8, symbolType="square"),
        ),
        order=alt.Order("o:Q"),
        tooltip=[
            alt.Tooltip("class:N", title="Class"),
            alt.Tooltip("page:N", title="Page type"),
            alt.Tooltip("share:Q", title="Share", format=".1%"),
            alt.Tooltip("requests:Q", title="Requests", format=","),
            alt.Tooltip("clients:Q", title="Clients", format=","),
        ],
    )
    .transform_calculate(o=f"indexof({page_order!r}, datum.page)"),
    height=common.bars_height(4, legend=True) + 30,
)

left, right = st.columns(2)
with left:
    st.subheader("Task pages: agents against people")
    task = pt.filter(pl.col("page_type").is_in(TASK_TYPES))
    task_order = [label(p) for p in TASK_TYPES]
    if task.height:
        common.chart(
            alt.Chart(task)
            .mark_bar()
            .encode(
                x=alt.X("page:N", title=None, sort=task_order, axis=alt.Axis(labelAngle=0)),
                xOffset=alt.XOffset("class:N", sort=class_order),
                y=alt.Y("share:Q", title="Share of the class's requests", axis=alt.Axis(format="%")),
                color=alt.Color(
                    "class:N", title=None, scale=class_scale, sort=class_order, legend=alt.Legend(orient="top")
                ),
                tooltip=[
                    alt.Tooltip("class:N", title="Class"),
                    alt.Tooltip("page:N", title="Page type"),
                    alt.Tooltip("share:Q", title="Share", format=".1%"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                ],
            )
        )
    else:
        common.empty("No requests on product, search, account, sign-in, cart or checkout pages.")
with right:
    st.subheader("Funnel: product → cart → checkout")
    funnel = pt.filter(pl.col("page_type").is_in(FUNNEL)).select("class", "actor_class", "page_type", "page", "clients")
    first = funnel.filter(pl.col("page_type") == FUNNEL[0]).select("class", pl.col("clients").alias("base"))
    funnel = funnel.join(first, on="class", how="left").with_columns(
        (pl.col("clients") / pl.col("base")).alias("of_product")
    )
    if funnel.height:
        funnel_order = [label(p) for p in FUNNEL]
        line = (
            alt.Chart(funnel)
            .mark_line(point=alt.OverlayMarkDef(size=60))
            .encode(
                x=alt.X("page:N", title=None, sort=funnel_order, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("of_product:Q", title="Share of the class's product viewers", axis=alt.Axis(format="%")),
                color=alt.Color(
                    "class:N", title=None, scale=class_scale, sort=class_order, legend=alt.Legend(orient="top")
                ),
                tooltip=[
                    alt.Tooltip("class:N", title="Class"),
                    alt.Tooltip("page:N", title="Step"),
                    alt.Tooltip("clients:Q", title="Clients", format=","),
                    alt.Tooltip("of_product:Q", title="Of product viewers", format=".1%"),
                ],
            )
        )
        # The count beside each point: 100% of 7 clients is not 100% of 7,000.
        counts = line.mark_text(align="left", dx=7, dy=-7, fontSize=11).encode(
            text=alt.Text("clients:Q", format=","), color=alt.Color("class:N", scale=class_scale, legend=None)
        )
        common.chart(line + counts)
        bases = ", ".join(
            f"{r['class'].lower()} {r['base']:,}" for r in first.sort("class").iter_rows(named=True) if r["base"]
        )
        st.caption(
            "Clients of each class that reached the step (at least one request on its pages), as a share "
            f"of those that viewed a product ({bases}); the figures beside the points are clients."
        )
    else:
        common.empty("No product, cart or checkout requests.")

st.subheader("AI-driven share of each page type")
by_type = (
    pt.group_by("page_type", "page")
    .agg(pl.col("requests").sum(), pl.col("ai_requests").sum())
    .with_columns((pl.col("ai_requests") / pl.col("requests")).alias("ai_share"))
    .filter(pl.col("requests") > 0)
    .sort("ai_share", "requests", descending=True)
)
common.chart(
    alt.Chart(by_type)
    .mark_bar(color=common.palette.AI)
    .encode(
        x=alt.X("page:N", title=None, sort=by_type["page"].to_list(), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ai_share:Q", title="AI-driven share", axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("page:N", title="Page type"),
            alt.Tooltip("ai_share:Q", title="AI-driven share", format=".1%"),
            alt.Tooltip("ai_requests:Q", title="AI-driven requests", format=","),
            alt.Tooltip("requests:Q", title="All requests", format=","),
        ],
    ),
    height=240,
)

st.subheader("Named agents")
named = agents.filter(pl.col("actor_class") == "agent").with_columns(
    pl.col("purpose").map_elements(label, return_dtype=pl.String).alias("purpose_label")
)
if named.height:
    common.table(
        named,
        {
            "agent": "Agent",
            "operator": "Operator",
            "purpose_label": "Purpose",
            "requests": common.count_column("Requests"),
            "clients": common.count_column("Clients"),
            "pages": common.count_column("Pages"),
            "verified_clients": common.count_column("Verified"),
            "spoofed_clients": common.count_column("Spoofed"),
            "undeclared_clients": common.count_column("Undeclared"),
            "status_4xx": common.pct_column("4xx", bar=False),
            "malicious_requests": common.count_column("Malicious requests"),
        },
    )
    st.caption(
        "Agents that do not name themselves (browser user agents with automated behaviour) are in the "
        "class figures above, and in the Client explorer under class Agent."
    )
else:
    common.empty("No named agents in this selection.")
