"""What the report shows, whatever it is rendered as: its tables (TABLES: the section, columns and
format of each), the value formats and the headline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

# --- value formats ------------------------------------------------------------------------


def fmt_int(v: Any) -> str:
    return "-" if v is None else f"{int(v):,}"


def fmt_pct(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v) * 100
    return f"{v:.1f}%" if v >= 0.1 or v == 0 else f"{v:.2f}%"


def fmt_bytes(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(v) < 1000 or unit == "TB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} PB"


def fmt_ratio(v: Any) -> str:
    return "-" if v is None else f"x{float(v):.2f}" if float(v) < 10 else f"x{float(v):,.0f}"


def fmt_num(v: Any) -> str:
    return "-" if v is None else f"{float(v):,.1f}"


def fmt_money(v: Any) -> str:
    return "-" if v is None else f"{float(v):,.2f}"


def fmt_time(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return v.isoformat() if isinstance(v, date) else str(v)


def fmt_list(v: Any) -> str:
    return ", ".join(str(x) for x in v) if v else "-"


def fmt_text(v: Any) -> str:
    return "-" if v is None else str(v)


FORMATS: dict[str, Callable[[Any], str]] = {
    "int": fmt_int,
    "pct": fmt_pct,
    "bytes": fmt_bytes,
    "x": fmt_ratio,
    "num": fmt_num,
    "money": fmt_money,
    "time": fmt_time,
    "list": fmt_list,
    "text": fmt_text,
}
NUMERIC = {"int", "pct", "bytes", "x", "num", "money"}


@dataclass(frozen=True)
class Col:
    """One shown column: its name in the frame, header, format and (for text) widest width."""

    name: str
    header: str
    fmt: str = "text"
    width: int = 0  # text columns: at most this wide on a terminal (0: as wide as the rest leaves)


@dataclass(frozen=True)
class Table:
    """One table of the report: where its rows come from and which columns it shows."""

    section: str
    part: str | None
    title: str
    cols: tuple[Col, ...]
    limit: int = 15
    note: str = ""


TABLES: tuple[Table, ...] = (
    Table(
        "shares",
        None,
        "Traffic by class",
        (
            Col("actor_class", "class", width=8),
            Col("requests", "requests", "int"),
            Col("requests_share", "share", "pct"),
            Col("clients", "clients", "int"),
            Col("clients_share", "share", "pct"),
            Col("bytes", "bytes", "bytes"),
            Col("bytes_share", "share", "pct"),
        ),
    ),
    Table(
        "ai_breakdown",
        None,
        "AI-driven traffic by kind",
        (
            Col("category", "kind", width=19),
            Col("requests", "requests", "int"),
            Col("share_of_ai", "of AI", "pct"),
            Col("share_of_all", "of all", "pct"),
            Col("clients", "clients", "int"),
            Col("operators", "operators", "list"),
        ),
    ),
    Table(
        "growth",
        None,
        "Growth: the last period against the one before (per day of data)",
        (
            Col("segment", "segment", width=10),
            Col("period", "period", "time"),
            Col("requests", "requests", "int"),
            Col("previous_requests", "previous", "int"),
            Col("ratio", "growth", "x"),
            Col("change", "change", "pct"),
        ),
    ),
    Table(
        "operators",
        None,
        "Operators",
        (
            Col("operator", "operator", width=16),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("bytes", "bytes", "bytes"),
            Col("status_4xx", "4xx", "pct"),
            Col("verified_clients", "verif", "int"),
            Col("spoofed_clients", "spoof", "int"),
            Col("purposes", "purposes", "list"),
        ),
    ),
    Table(
        "agents",
        None,
        "Agents",
        (
            Col("agent", "agent", width=20),
            Col("operator", "operator", width=12),
            Col("purpose", "purpose", width=12),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("verified_clients", "verif", "int"),
            Col("declared_clients", "decl", "int"),
            Col("spoofed_clients", "spoof", "int"),
        ),
    ),
    Table(
        "verification",
        None,
        "Verification: claims checked against the operators' ranges",
        (
            Col("agent", "agent", width=18),
            Col("clients", "clients", "int"),
            Col("verified", "verified", "int"),
            Col("spoofed", "spoofed", "int"),
            Col("spoofed_share", "share", "pct"),
            Col("spoofed_requests", "their reqs", "int"),
            Col("top_spoofed_addresses", "spoofing addresses", "list"),
        ),
    ),
    Table(
        "page_types",
        None,
        "Pages by class (share of each class's requests)",
        (
            Col("actor_class", "class", width=8),
            Col("page_type", "page type", width=10),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("clients", "clients", "int"),
        ),
        limit=60,
    ),
    Table(
        "trends",
        "wide",
        "Trend by class",
        (
            Col("period", "period", "time"),
            Col("requests", "requests", "int"),
            Col("human", "human", "pct"),
            Col("crawler", "crawler", "pct"),
            Col("scraper", "scraper", "pct"),
            Col("agent", "agent", "pct"),
            Col("ai_share", "AI", "pct"),
            Col("malicious_share", "malicious", "pct"),
        ),
        limit=400,
    ),
    Table(
        "trends",
        "ai",
        "Trend of AI-driven traffic",
        (
            Col("period", "period", "time"),
            Col("requests", "AI requests", "int"),
            Col("share", "AI share", "pct"),
            Col("training_crawlers", "training", "int"),
            Col("search_crawlers", "search", "int"),
            Col("assistant_fetchers", "assistant", "int"),
            Col("agents", "agents", "int"),
        ),
        limit=400,
    ),
    Table(
        "threats",
        "by_threat",
        "Threats",
        (
            Col("threat", "threat", width=20),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("clients", "clients", "int"),
            Col("addresses", "addresses", "int"),
        ),
    ),
    Table(
        "threats",
        "top_clients",
        "Top malicious clients",
        (
            Col("client_ip", "address", width=15),
            Col("user_agent", "user agent", width=22),
            Col("requests", "requests", "int"),
            Col("threats", "threats", "list", width=18),
            Col("reasons", "reasons", "list"),
        ),
        limit=10,
    ),
    Table(
        "referrals",
        "by_operator",
        "AI referrals: human visits sent by AI assistants",
        (
            Col("operator", "operator", width=14),
            Col("visits", "visits", "int"),
            Col("by_referer", "referer", "int"),
            Col("by_utm_source", "utm", "int"),
            Col("crawled_pages", "crawled pages", "int"),
            Col("crawl_to_refer", "crawl/refer", "num"),
        ),
    ),
    Table(
        "inferred_referrals",
        "by_agent",
        "AI referrals inferred: no referrer, a page an assistant had just fetched",
        (
            Col("agent", "assistant", width=18),
            Col("operator", "operator", width=14),
            Col("visits", "visits", "int"),
            Col("median_seconds", "median s after", "num"),
        ),
        note="not among the visits above; --format json has expected_by_chance",
    ),
    Table(
        "robots",
        None,
        "robots.txt: fetches and violations",
        (
            Col("agent", "agent", width=22),
            Col("requests", "requests", "int"),
            Col("robots_fetches", "fetches", "int"),
            Col("clients_fetching", "fetching", "int"),
            Col("clients", "clients", "int"),
            Col("violations", "violations", "int"),
        ),
        note="violations are recorded when classify is given --robots",
    ),
    Table(
        "robots_history",
        "obey",
        "robots.txt changes: how long each agent took to obey",
        (
            Col("agent", "agent", width=18),
            Col("change", "change", "time"),
            Col("disallowed_after", "disallowed", "int"),
            Col("obeyed", "obeyed", "text"),
            Col("time_to_obey_s", "seconds to obey", "num"),
            Col("refetched_before_obeying", "re-read", "text"),
        ),
        note="from classify --robots FOLDER of robots-YYYY-MM-DD.txt versions",
    ),
    Table(
        "discovery",
        "by_agent",
        "Discovery: robots.txt, sitemaps, llms.txt, Markdown copies, pages",
        (
            Col("agent", "agent", width=22),
            Col("robots", "robots", "int"),
            Col("sitemap", "sitemaps", "int"),
            Col("llms_txt", "llms.txt", "int"),
            Col("llms_full_txt", "llms-full", "int"),
            Col("markdown", "markdown", "int"),
            Col("pages", "pages", "int"),
        ),
    ),
    Table(
        "purpose_check",
        "by_agent",
        "Declared purpose against behaviour",
        (
            Col("agent", "agent", width=18),
            Col("purpose", "purpose", width=13),
            Col("pages", "pages", "int"),
            Col("pages_per_visit_p90", "pages/visit", "num"),
            Col("coverage", "coverage", "pct"),
            Col("referred_visits", "referred", "int"),
            Col("score", "score", "num"),
        ),
        limit=10,
    ),
    Table(
        "pay_per_crawl",
        "by_operator",
        "Pay-per-crawl replay: what the pricing policy would charge or refuse",
        (
            Col("operator", "operator", width=18),
            Col("requests", "requests", "int"),
            Col("charged", "charged", "int"),
            Col("amount", "owed", "money"),
            Col("refused", "refused", "int"),
            Col("bytes_refused", "saved", "bytes"),
            Col("referred_visits", "referred", "int"),
        ),
        note="by the shipped policy (USD per request) unless given --pricing FILE",
    ),
    Table(
        "bandwidth",
        "by_operator",
        "Bandwidth by operator",
        (
            Col("operator", "operator", width=22),
            Col("bytes", "bytes", "bytes"),
            Col("share", "share", "pct"),
            Col("requests", "requests", "int"),
            Col("bytes_per_request", "per request", "bytes"),
        ),
    ),
    Table(
        "network",
        "hosting_share",
        "Networks: the share of each class from hosting providers' ranges",
        (
            Col("actor_class", "class", width=8),
            Col("requests", "requests", "int"),
            Col("hosting_requests", "from hosting", "int"),
            Col("hosting_share", "share", "pct"),
            Col("clients", "clients", "int"),
            Col("hosting_clients", "hosting clients", "int"),
        ),
        note="hosting: the providers' published ranges (trafficlens ranges update)",
    ),
    Table(
        "network",
        "undeclared_by_provider",
        "Undeclared automation by hosting provider",
        (
            Col("provider", "provider", width=22),
            Col("requests", "requests", "int"),
            Col("share", "of undeclared", "pct"),
            Col("clients", "clients", "int"),
            Col("services", "services", "list"),
        ),
    ),
    Table(
        "network",
        "by_country",
        "Traffic by country",
        (
            Col("country", "country", width=7),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("clients", "clients", "int"),
            Col("human", "human", "int"),
            Col("crawler", "crawler", "int"),
            Col("scraper", "scraper", "int"),
            Col("agent", "agent", "int"),
        ),
        note="-: in no database given to classify (--geo PATH: a .mmdb or an iptoasn TSV)",
    ),
    Table(
        "network",
        "by_network",
        "Traffic by network (AS)",
        (
            Col("asn", "ASN", "text"),
            Col("as_org", "organisation", width=20),
            Col("requests", "requests", "int"),
            Col("share", "share", "pct"),
            Col("human", "human", "int"),
            Col("crawler", "crawler", "int"),
            Col("scraper", "scraper", "int"),
            Col("agent", "agent", "int"),
        ),
        note="-: in no database given to classify (--geo PATH: a .mmdb or an iptoasn TSV)",
    ),
    Table(
        "data_quality",
        "rejects",
        "Data quality: lines that could not be read",
        (Col("reason", "reason", width=24), Col("lines", "lines", "int"), Col("source", "source")),
    ),
)


def trend_table(trends: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per period: requests, each class's share, the AI-driven and malicious shares."""
    cls, ai = trends["classes"], trends["ai"]
    if cls.is_empty():
        return pl.DataFrame(schema={"period": pl.Date, "requests": pl.Int64})
    wide = cls.pivot(on="actor_class", index="period", values="share", aggregate_function="first")
    totals = cls.group_by("period").agg(pl.col("requests").sum())
    return (
        totals.join(wide, on="period")
        .join(ai.select("period", pl.col("share").alias("ai_share"), "malicious_share"), on="period", how="left")
        .sort("period")
    )


def table_rows(sections: dict[str, Any], t: Table) -> pl.DataFrame | None:
    if (t.section, t.part) == ("trends", "wide") and sections.get("trends"):
        return trend_table(sections["trends"])
    v = sections.get(t.section)
    if v is None:
        return None
    if t.part is not None:
        v = v.get(t.part) if isinstance(v, dict) else None
    return v if isinstance(v, pl.DataFrame) else None


# The name a section goes by where its note stands in for its tables.
SECTION_TITLES = {"network": "Networks and countries"}


@dataclass(frozen=True)
class Note:
    """A section the lake cannot fill (it lacks the columns): its title and what would fill it."""

    title: str
    text: str


def report_items(sections: dict[str, Any]) -> list[tuple[Table, pl.DataFrame] | Note]:
    """The report's tables in order, each with its rows. Where a section's `note` says the lake
    lacks columns, its tables left empty for that reason give way to the note, said once."""
    items: list[tuple[Table, pl.DataFrame] | Note] = []
    noted: set[str] = set()
    for t in TABLES:
        df = table_rows(sections, t)
        if df is None:
            continue
        v = sections.get(t.section)
        if df.is_empty() and isinstance(v, dict) and v.get("missing") and v.get("note"):
            if t.section not in noted:
                noted.add(t.section)
                items.append(Note(SECTION_TITLES.get(t.section, t.section), str(v["note"])))
            continue
        items.append((t, df))
    return items


def table_cells(df: pl.DataFrame, t: Table) -> list[list[str]]:
    cols = [c for c in t.cols if c.name in df.columns]
    return [[FORMATS[c.fmt](row[c.name]) for c in cols] for row in df.head(t.limit).iter_rows(named=True)]


def headline(sections: dict[str, Any]) -> list[str]:
    """The answers first: period, totals, class shares and the AI share in a few lines."""
    p, t = sections.get("period"), sections.get("totals")
    lines: list[str] = []
    if p:
        span = f"{fmt_time(p['first'])} .. {fmt_time(p['last'])}" if p.get("first") else "no requests"
        lines.append(f"Period: {span} ({p['days']} days, trend by {p['by']}; sites: {fmt_list(p['sites'])})")
    if t:
        lines.append(
            f"Totals: {fmt_int(t['requests'])} requests, {fmt_int(t['clients'])} clients, "
            f"{fmt_int(t['sessions'])} sessions, {fmt_bytes(t['bytes'])}"
        )
        if t["requests"]:
            lines.append(
                f"Automated {fmt_pct(t['automated_requests'] / t['requests'])}, "
                f"AI-driven {fmt_pct(t['ai_requests'] / t['requests'])}, "
                f"malicious {fmt_pct(t['malicious_requests'] / t['requests'])} of requests"
            )
    shares = sections.get("shares")
    if isinstance(shares, pl.DataFrame) and shares.height:
        lines.append(
            "By class: "
            + ", ".join(f"{r['actor_class']} {fmt_pct(r['requests_share'])}" for r in shares.iter_rows(named=True))
        )
    band = sections.get("likely_automated")
    if band and band.get("clients"):
        lines.append(
            f"Likely automated, labelled human: {fmt_int(band['clients'])} clients, "
            f"{fmt_pct(band['requests_share'])} of requests ({fmt_pct(band['human_requests_share'])} of the human "
            f"share; automation score >= {band['threshold']}{raised_by(band)})"
        )
    ai = sections.get("ai_share")
    if ai and ai.get("requests"):
        split = ", ".join(f"{c}s {fmt_pct(v)}" for c, v in ai["by_class"].items() if c != "human" and v)
        lines.append(f"AI-driven traffic: {split}")
    growth = sections.get("growth")
    if isinstance(growth, pl.DataFrame) and growth.height:
        g = {r["segment"]: r for r in growth.iter_rows(named=True)}
        if g.get("ai_driven", {}).get("ratio") is not None:
            r = g["ai_driven"]
            lines.append(
                f"AI traffic {fmt_ratio(r['ratio'])} vs the previous {p['by'] if p else 'period'} "
                f"({fmt_time(r['previous_period'])} -> {fmt_time(r['period'])}, per day of data)"
            )
    return lines


def raised_by(band: dict[str, Any]) -> str:
    """`; raised by style 120, network 8`: the families whose evidence the band's clients show, the
    most common first (empty where none is counted, as in a lake classified before they were)."""
    counts = sorted(((n, f) for f, n in (band.get("raised_by") or {}).items() if n), key=lambda t: (-t[0], t[1]))
    return "; raised by " + ", ".join(f"{f} {fmt_int(n)}" for n, f in counts) if counts else ""


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
