"""Networks and countries: where each class's traffic comes from (country, network owner), how
much of it is sent from hosting providers' ranges, and the undeclared automation per provider.

Every figure is the report's `network` section for the sidebar's filters; where the lake cannot
say (no network columns, no database given to classify), the page says what to run instead.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.dashboards import common
from trafficlens.dashboards.common import ACTOR_CLASSES, CLASS_COLORS, fmt_count, fmt_pct, label, md
from trafficlens.report.network import NETWORK_TABLES

ctx = common.start_page(
    "Networks and countries",
    "Where each class's traffic comes from: countries and network owners, the share sent from "
    "hosting providers' ranges, and the undeclared automation per provider.",
)
totals = common.require_requests(ctx)
st.caption(common.describe_period(ctx))

net = ctx.section("network")
RANGES_HINT = (
    f"{md('trafficlens ranges update', code=True)} (the providers' published ranges), then "
    f"{md(f'trafficlens classify --lake {ctx.lake}', code=True)}"
)
GEO_HINT = (
    f"{md(f'trafficlens classify --lake {ctx.lake} --geo PATH', code=True)} with a MaxMind GeoLite2/GeoIP2 or DB-IP "
    "`.mmdb`, or an iptoasn TSV (repeat `--geo` to combine an ASN and a country database)"
)
if net["note"] and all(net[name].is_empty() for name in NETWORK_TABLES):
    # A lake classified before clients carried network columns: nothing below would hold anything.
    note = str(net["note"])
    st.info(
        f"**{md(note[:1].upper() + note[1:])}.**\n\nHosting providers: {RANGES_HINT}. ASN and country: {GEO_HINT}.",
        icon=common.INFO,
    )
    st.stop()

hosting: pl.DataFrame = net["hosting_share"]
undeclared: pl.DataFrame = net["undeclared_by_provider"]
by_country: pl.DataFrame = net["by_country"]
by_network: pl.DataFrame = net["by_network"]
requests = int(totals["requests"])
from_hosting = int(hosting["hosting_requests"].sum() or 0) if hosting.height else 0
known_country = by_country.filter(pl.col("country").is_not_null()) if by_country.height else by_country
known_network = by_network.filter(pl.col("asn").is_not_null()) if by_network.height else by_network
country_share = float(known_country["requests"].sum() or 0) / requests if requests else 0.0
network_share = float(known_network["requests"].sum() or 0) / requests if requests else 0.0

k1, k2, k3, k4 = st.columns(4)
k1.metric(
    "From hosting ranges",
    fmt_pct(from_hosting / requests) if hosting.height else "–",
    help=f"{from_hosting:,} of {requests:,} requests come from addresses in a hosting or cloud provider's "
    "published ranges (a data centre, not a home or mobile line).",
    border=True,
)
k2.metric(
    "Undeclared from hosting",
    fmt_count(int(undeclared["requests"].sum() or 0)) if undeclared.height else "0",
    help="Requests of undeclared automation (a browser user agent, automated behaviour) sent from hosting "
    f"providers' ranges, by {int(undeclared['clients'].sum() or 0):,} clients.",
    border=True,
)
k3.metric(
    "Countries",
    f"{known_country.height:,}" if known_country.height else "–",
    help=f"Countries known for {fmt_pct(country_share)} of requests (from the databases given to classify).",
    border=True,
)
k4.metric(
    "Networks (AS)",
    f"{known_network.height:,}" if known_network.height else "–",
    help=f"Autonomous systems known for {fmt_pct(network_share)} of requests.",
    border=True,
)
if net["note"]:  # some columns only: say which, and what adds them
    st.caption(f"_The clients carry no {md(', '.join(net['missing']))}: {RANGES_HINT}; {GEO_HINT}._")

CLASS_TITLES = [label(c) for c in ACTOR_CLASSES]
CLASS_SCALE = common.color_scale(CLASS_COLORS, labels=True)


def class_columns() -> dict[str, object]:
    """Each class's requests as a column of its own."""
    return {c: common.count_column(label(c)) for c in ACTOR_CLASSES}


def by_class_bars(df: pl.DataFrame, name: str, title: str) -> None:
    """Horizontal bars of requests, one per row of `df` (named by `name`), split by class."""
    long = (
        df.unpivot(index=[name, "requests", "share"], on=list(ACTOR_CLASSES), variable_name="cls", value_name="n")
        .filter(pl.col("n") > 0)
        .with_columns(
            pl.col("cls").replace_strict({c: label(c) for c in ACTOR_CLASSES}).alias("class_label"),
            # Stacked in the classes' order (people first), as on every other page.
            pl.col("cls").replace_strict({c: i for i, c in enumerate(ACTOR_CLASSES)}).alias("cls_order"),
        )
    )
    # A top legend starts where the bars do: beside long network names, four classes in a row
    # would run off a phone's screen, so they take two rows there.
    wide = max((len(str(v)) for v in df[name].to_list()), default=0) > 12
    legend = alt.Legend(orient="top", columns=2 if wide else 4)
    common.chart(
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=common.y_names(name, df[name].to_list()),
            x=alt.X("n:Q", title="Requests", stack=True, axis=alt.Axis(format=",.0f", tickCount=6)),
            color=alt.Color("class_label:N", title=None, scale=CLASS_SCALE, sort=CLASS_TITLES, legend=legend),
            order=alt.Order("cls_order:Q"),
            tooltip=[
                alt.Tooltip(f"{name}:N", title=title),
                alt.Tooltip("class_label:N", title="Class"),
                alt.Tooltip("n:Q", title="Requests", format=","),
                alt.Tooltip("requests:Q", title="All classes", format=","),
                alt.Tooltip("share:Q", title="Share of all", format=".1%"),
            ],
        ),
        height=common.bars_height(df.height, legend=True),
    )


def share_text(share: pl.Expr) -> pl.Expr:
    """A bar's label as the page writes shares (0.04% as <0.1%: a small share never reads as none)."""
    return share.map_elements(common.fmt_pct, return_dtype=pl.String).alias("share_text")


TOP = 15

st.subheader("Hosting share of each class")
left, right = st.columns([2, 3])
with left:
    shares = hosting.filter(pl.col("hosting_requests") > 0).with_columns(
        pl.col("actor_class").replace_strict({c: label(c) for c in ACTOR_CLASSES}).alias("class_label"),
        share_text(pl.col("hosting_share")),
    )
    if shares.height:
        bars = (
            alt.Chart(shares)
            .mark_bar()
            .encode(
                y=common.y_names("class_label", [label(c) for c in shares["actor_class"]]),
                x=alt.X(
                    "hosting_share:Q",
                    title="Share of the class's requests",
                    axis=alt.Axis(format="%"),
                    # Room right of the longest bar for its label.
                    scale=alt.Scale(domain=[0, min(1.0, float(shares["hosting_share"].max() or 0) * 1.2)], nice=False),  # type: ignore[arg-type]
                ),
                color=alt.Color("class_label:N", scale=CLASS_SCALE, legend=None),
                tooltip=[
                    alt.Tooltip("class_label:N", title="Class"),
                    alt.Tooltip("hosting_share:Q", title="From hosting", format=".1%"),
                    alt.Tooltip("hosting_requests:Q", title="Requests from hosting", format=","),
                    alt.Tooltip("hosting_clients:Q", title="Clients from hosting", format=","),
                ],
            )
        )
        text = bars.mark_text(align="left", dx=3).encode(text="share_text:N", color=alt.value(common.palette.TEXT))
        common.chart(bars + text, height=common.bars_height(shares.height))
    else:
        common.empty(
            "No request in this selection comes from a hosting provider's published ranges. If classify had "
            f"none of the providers' range files: {RANGES_HINT}."
        )
with right:
    common.table(
        hosting.with_columns(
            pl.col("actor_class").replace_strict({c: label(c) for c in ACTOR_CLASSES}).alias("class_label")
        ),
        {
            "class_label": st.column_config.TextColumn("Class", width="small"),
            "requests": common.count_column("Requests"),
            "hosting_requests": common.count_column("From hosting"),
            "hosting_share": common.pct_column("Share", help="Of the class's requests."),
            "clients": common.count_column("Clients"),
            "hosting_clients": common.count_column("Hosting clients"),
        },
    )

st.subheader("Undeclared automation by provider")
st.caption(
    "Browser user agents that behave as automation (identity *undeclared*), sent from a hosting "
    "provider's ranges: a data centre is where stealth scrapers run, not where people browse."
)
if undeclared.height:
    left, right = st.columns([2, 3])
    und = undeclared.head(TOP).with_columns(share_text(pl.col("share")))
    with left:
        bars = (
            alt.Chart(und)
            .mark_bar(color=common.IDENTITY_COLORS["undeclared"], stroke=common.palette.TEXT, strokeWidth=0.5)
            .encode(
                y=common.y_names("provider", und["provider"].to_list()),
                x=alt.X("requests:Q", title="Requests", axis=alt.Axis(format=",.0f", tickCount=6)),
                tooltip=[
                    alt.Tooltip("provider:N", title="Provider"),
                    alt.Tooltip("requests:Q", title="Requests", format=","),
                    alt.Tooltip("share:Q", title="Of undeclared", format=".1%"),
                    alt.Tooltip("clients:Q", title="Clients", format=","),
                ],
            )
        )
        text = bars.mark_text(align="left", dx=3).encode(text="share_text:N", color=alt.value(common.palette.TEXT))
        common.chart(bars + text, height=common.bars_height(und.height))
    with right:
        common.table(
            undeclared,
            {
                "provider": st.column_config.TextColumn("Provider", width="medium"),
                "requests": common.count_column("Requests"),
                "share": common.pct_column("Share", help="Of all undeclared automation's requests."),
                "clients": common.count_column("Clients"),
                "services": st.column_config.ListColumn("Services", width="medium"),
            },
        )
else:
    common.empty(
        "No undeclared automation from a hosting provider's ranges in this selection."
        + (f" Hosting is known from the providers' range files: {RANGES_HINT}." if not from_hosting else "")
    )

# Countries and networks: the rows a database named are drawn; the unknown rest is said in words.
for title, known, name, hint in (
    ("Requests by country", known_country, "country", f"No country is known for these clients: {GEO_HINT}."),
    # Said once in full above; a lake with countries but no networks lacks an ASN database.
    (
        "Requests by network owner",
        known_network,
        "network",
        "No network (AS) is known for these clients: "
        + ("the same `--geo` option adds it." if not known_country.height else f"{GEO_HINT}."),
    ),
):
    st.subheader(title)
    df = by_country if name == "country" else by_network
    unknown = int(df.filter(pl.col("country" if name == "country" else "asn").is_null())["requests"].sum() or 0)
    if not known.height:
        common.empty(hint)
        continue
    if name == "network":
        known = known.with_columns(
            pl.format("AS{} {}", pl.col("asn"), pl.col("as_org").fill_null("")).str.strip_chars().alias("network")
        )
    # Countries are short names: chart and table side by side. Network owners' names are long:
    # the chart and the table each take the page's width, so neither cuts a name or a class.
    if name == "country":
        chart_area, table_area = st.columns([2, 3])
    else:
        chart_area, table_area = st.container(), st.container()
    with chart_area:
        by_class_bars(known.head(TOP), name, "Country" if name == "country" else "Network")
    with table_area:
        config: dict[str, object] = (
            {"country": st.column_config.TextColumn("Country", width="small")}
            if name == "country"
            else {
                "asn": st.column_config.NumberColumn("ASN", format="%d", width="small"),
                "as_org": st.column_config.TextColumn("Organisation", width="medium"),
            }
        )
        common.table(
            known,
            {
                **config,
                "requests": common.count_column("Requests"),
                "share": common.pct_column("Share", help="Of all requests in this selection."),
                "clients": common.count_column("Clients"),
                **class_columns(),
            },
            height=common.rows_height(known.height),
        )
    if unknown:
        more = f"more databases: {GEO_HINT}" if name == "country" else "an ASN database adds them (`--geo`)"
        st.caption(
            f"{fmt_count(unknown)} requests ({fmt_pct(unknown / requests)}) come from addresses in no database "
            f"given to classify; {more}."
        )
