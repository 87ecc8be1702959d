"""The report as text: an 80-column terminal table, Markdown, or one self-contained HTML page.

All three render the same sections of trafficlens.report.Report with the same column choices
(TABLES); HTML adds inline SVG charts (no scripts, no network), so the file opens anywhere.
"""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from trafficlens.report import AI_CATEGORIES, Report, jsonable
from trafficlens.schema import ACTOR_CLASSES

WIDTH = 80
CLASS_COLOURS = {"human": "#4c78a8", "crawler": "#f58518", "scraper": "#e45756", "agent": "#72b7b2"}
AI_COLOURS = {
    "training_crawlers": "#f58518", "search_crawlers": "#54a24b", "assistant_fetchers": "#b279a2",
    "agents": "#72b7b2", "other_ai": "#bab0ac",
}
AI_LABELS = {
    "training_crawlers": "training crawlers", "search_crawlers": "search crawlers",
    "assistant_fetchers": "assistant fetchers", "agents": "agents", "other_ai": "other AI",
}


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
    "int": fmt_int, "pct": fmt_pct, "bytes": fmt_bytes, "x": fmt_ratio, "num": fmt_num, "time": fmt_time,
    "list": fmt_list, "text": fmt_text,
}
NUMERIC = {"int", "pct", "bytes", "x", "num"}


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
    Table("shares", None, "Traffic by class", (
        Col("actor_class", "class", width=8), Col("requests", "requests", "int"), Col("requests_share", "share", "pct"),
        Col("clients", "clients", "int"), Col("clients_share", "share", "pct"), Col("bytes", "bytes", "bytes"),
        Col("bytes_share", "share", "pct"))),
    Table("ai_breakdown", None, "AI-driven traffic by kind", (
        Col("category", "kind", width=19), Col("requests", "requests", "int"), Col("share_of_ai", "of AI", "pct"),
        Col("share_of_all", "of all", "pct"), Col("clients", "clients", "int"), Col("operators", "operators", "list"))),
    Table("growth", None, "Growth: the last period against the one before (per day of data)", (
        Col("segment", "segment", width=10), Col("period", "period", "time"), Col("requests", "requests", "int"),
        Col("previous_requests", "previous", "int"), Col("ratio", "growth", "x"), Col("change", "change", "pct"))),
    Table("operators", None, "Operators", (
        Col("operator", "operator", width=16), Col("requests", "requests", "int"), Col("share", "share", "pct"),
        Col("bytes", "bytes", "bytes"), Col("status_4xx", "4xx", "pct"),
        Col("verified_clients", "verif", "int"), Col("spoofed_clients", "spoof", "int"),
        Col("purposes", "purposes", "list"))),
    Table("agents", None, "Agents", (
        Col("agent", "agent", width=20), Col("operator", "operator", width=12), Col("purpose", "purpose", width=12),
        Col("requests", "requests", "int"), Col("share", "share", "pct"), Col("verified_clients", "verif", "int"),
        Col("declared_clients", "decl", "int"), Col("spoofed_clients", "spoof", "int"))),
    Table("verification", None, "Verification: claims checked against the operators' ranges", (
        Col("agent", "agent", width=18), Col("clients", "clients", "int"), Col("verified", "verified", "int"),
        Col("spoofed", "spoofed", "int"), Col("spoofed_share", "share", "pct"),
        Col("spoofed_requests", "their reqs", "int"), Col("top_spoofed_addresses", "spoofing addresses", "list"))),
    Table("page_types", None, "Pages by class (share of each class's requests)", (
        Col("actor_class", "class", width=8), Col("page_type", "page type", width=10),
        Col("requests", "requests", "int"), Col("share", "share", "pct"), Col("clients", "clients", "int")),
        limit=60),
    Table("trends", "wide", "Trend by class", (
        Col("period", "period", "time"), Col("requests", "requests", "int"), Col("human", "human", "pct"),
        Col("crawler", "crawler", "pct"), Col("scraper", "scraper", "pct"), Col("agent", "agent", "pct"),
        Col("ai_share", "AI", "pct"), Col("malicious_share", "malicious", "pct")), limit=400),
    Table("trends", "ai", "Trend of AI-driven traffic", (
        Col("period", "period", "time"), Col("requests", "AI requests", "int"), Col("share", "AI share", "pct"),
        Col("training_crawlers", "training", "int"), Col("search_crawlers", "search", "int"),
        Col("assistant_fetchers", "assistant", "int"), Col("agents", "agents", "int")), limit=400),
    Table("threats", "by_threat", "Threats", (
        Col("threat", "threat", width=20), Col("requests", "requests", "int"), Col("share", "share", "pct"),
        Col("clients", "clients", "int"), Col("addresses", "addresses", "int"))),
    Table("threats", "top_clients", "Top malicious clients", (
        Col("client_ip", "address", width=15), Col("user_agent", "user agent", width=22),
        Col("requests", "requests", "int"), Col("threats", "threats", "list", width=18),
        Col("reasons", "reasons", "list")), limit=10),
    Table("referrals", "by_operator", "AI referrals: human visits sent by AI assistants", (
        Col("operator", "operator", width=14), Col("visits", "visits", "int"), Col("by_referer", "referer", "int"),
        Col("by_utm_source", "utm", "int"), Col("crawled_pages", "crawled pages", "int"),
        Col("crawl_to_refer", "crawl/refer", "num"))),
    Table("robots", None, "robots.txt: fetches and violations", (
        Col("agent", "agent", width=22), Col("requests", "requests", "int"), Col("robots_fetches", "fetches", "int"),
        Col("clients_fetching", "fetching", "int"), Col("clients", "clients", "int"),
        Col("violations", "violations", "int")), note="violations are recorded when classify is given --robots"),
    Table("bandwidth", "by_operator", "Bandwidth by operator", (
        Col("operator", "operator", width=22), Col("bytes", "bytes", "bytes"), Col("share", "share", "pct"),
        Col("requests", "requests", "int"), Col("bytes_per_request", "per request", "bytes"))),
    Table("data_quality", "rejects", "Data quality: lines that could not be read", (
        Col("reason", "reason", width=24), Col("lines", "lines", "int"), Col("source", "source"))),
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


def _rows(sections: dict[str, Any], t: Table) -> pl.DataFrame | None:
    if (t.section, t.part) == ("trends", "wide") and sections.get("trends"):
        return trend_table(sections["trends"])
    v = sections.get(t.section)
    if v is None:
        return None
    if t.part is not None:
        v = v.get(t.part) if isinstance(v, dict) else None
    return v if isinstance(v, pl.DataFrame) else None


def _cells(df: pl.DataFrame, t: Table) -> list[list[str]]:
    cols = [c for c in t.cols if c.name in df.columns]
    return [[FORMATS[c.fmt](row[c.name]) for c in cols] for row in df.head(t.limit).iter_rows(named=True)]


def _headline(sections: dict[str, Any]) -> list[str]:
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
        lines.append("By class: " + ", ".join(
            f"{r['actor_class']} {fmt_pct(r['requests_share'])}" for r in shares.iter_rows(named=True)))
    ai = sections.get("ai_share")
    if ai and ai.get("requests"):
        split = ", ".join(f"{c}s {fmt_pct(v)}" for c, v in ai["by_class"].items() if c != "human" and v)
        lines.append(f"AI-driven traffic: {split}")
    growth = sections.get("growth")
    if isinstance(growth, pl.DataFrame) and growth.height:
        g = {r["segment"]: r for r in growth.iter_rows(named=True)}
        if g.get("ai_driven", {}).get("ratio") is not None:
            r = g["ai_driven"]
            lines.append(f"AI traffic {fmt_ratio(r['ratio'])} vs the previous {p['by'] if p else 'period'} "
                         f"({fmt_time(r['previous_period'])} -> {fmt_time(r['period'])}, per day of data)")
    return lines


# --- terminal table -------------------------------------------------------------------------

def _fit(cols: Sequence[Col], cells: list[list[str]], width: int) -> list[int]:
    """Column widths that fit `width`: numbers keep theirs, text shares what is left."""
    natural = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    widths = [min(n, c.width) if c.width and c.fmt not in NUMERIC else n for n, c in zip(natural, cols)]
    spare = width - 2 - sum(widths) - 2 * (len(cols) - 1)
    if spare < 0:
        # Shrink the last text column (lists, reasons), then the others, never below 6.
        for i in reversed([i for i, c in enumerate(cols) if c.fmt not in NUMERIC]):
            cut = min(-spare, widths[i] - 6)
            if cut > 0:
                widths[i] -= cut
                spare += cut
            if spare >= 0:
                break
    return widths


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def render_table(sections: dict[str, Any], width: int = WIDTH) -> str:
    """The report for a terminal: headline, then each table within `width` columns."""
    out = ["trafficlens report", "=" * 18]
    for line in _headline(sections):
        out += textwrap.wrap(line, width, subsequent_indent="  ")
    for t in TABLES:
        df = _rows(sections, t)
        if df is None:
            continue
        cols = [c for c in t.cols if c.name in df.columns]
        cells = _cells(df, t)
        out += ["", *textwrap.wrap(t.title, width), "-" * min(len(t.title), width)]
        if not cells:
            out.append("  (none)")
            continue
        widths = _fit(cols, cells, width)
        fmt_row = lambda vals: "  " + "  ".join(  # noqa: E731
            (_clip(v, w).rjust(w) if c.fmt in NUMERIC else _clip(v, w).ljust(w)) for v, w, c in zip(vals, widths, cols)
        ).rstrip()
        out.append(fmt_row([c.header for c in cols]))
        out += [fmt_row(r) for r in cells]
        if df.height > t.limit:
            out.append(f"  … {df.height - t.limit:,} more (--format json has them all)")
        if t.note:
            out.append(f"  ({t.note})")
    return "\n".join(out) + "\n"


# --- Markdown -------------------------------------------------------------------------------

def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: dict[str, Any]) -> str:
    """The report as Markdown: a headline list, then one table per section."""
    out = ["# trafficlens report", ""] + [f"- {line}" for line in _headline(sections)]
    for t in TABLES:
        df = _rows(sections, t)
        if df is None:
            continue
        cols = [c for c in t.cols if c.name in df.columns]
        out += ["", f"## {t.title}", ""]
        cells = _cells(df, t)
        if not cells:
            out.append("(none)")
            continue
        out.append("| " + " | ".join(c.header for c in cols) + " |")
        out.append("|" + "|".join("---:" if c.fmt in NUMERIC else "---" for c in cols) + "|")
        out += ["| " + " | ".join(_md(v) for v in r) + " |" for r in cells]
        if df.height > t.limit:
            out.append(f"\n{df.height - t.limit:,} more rows in the JSON report.")
        if t.note:
            out.append(f"\n_{t.note}_")
    return "\n".join(out) + "\n"


# --- HTML with SVG charts -------------------------------------------------------------------

def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def svg_stacked_columns(periods: list[str], series: dict[str, list[float]], colours: dict[str, str],
                        labels: dict[str, str] | None = None, percent: bool = True, height: int = 220) -> str:
    """Stacked columns, one per period (shares of each period when `percent`)."""
    if not periods:
        return ""
    labels = labels or {}
    n = len(periods)
    width, left, bottom, top = 760, 48, 36, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(series[k][i] for k in series) for i in range(n)]
    peak = 1.0 if percent else max(totals + [1])
    bar = plot_w / n
    parts = [f'<svg viewBox="0 0 {width} {height + 28}" role="img" class="chart">']
    for f in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h * (1 - f)
        value = f"{f * 100:.0f}%" if percent else fmt_int(peak * f) if peak >= 10 else f"{peak * f:.1f}"
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_esc(value)}</text>')
    for i, p in enumerate(periods):
        y = top + plot_h
        for k, vals in series.items():
            v = vals[i] / totals[i] if percent and totals[i] else vals[i]
            h = plot_h * v / peak
            if h > 0:
                y -= h
                tip = f"{p} {labels.get(k, k)}: " + (fmt_pct(v) if percent else fmt_int(vals[i]))
                parts.append(f'<rect x="{left + i * bar + bar * 0.1:.1f}" y="{y:.1f}" width="{bar * 0.8:.1f}" '
                             f'height="{h:.1f}" fill="{colours.get(k, "#999")}"><title>{_esc(tip)}</title></rect>')
        if n <= 16 or i % max(1, n // 12) == 0:
            parts.append(f'<text x="{left + (i + 0.5) * bar:.1f}" y="{height - bottom + 16}" class="axis" '
                         f'text-anchor="middle">{_esc(p[5:] if len(p) == 10 else p)}</text>')
    x = left
    for k in series:
        parts.append(f'<rect x="{x}" y="{height + 8}" width="12" height="12" fill="{colours.get(k, "#999")}"/>'
                     f'<text x="{x + 16}" y="{height + 18}" class="legend">{_esc(labels.get(k, k))}</text>')
        x += 28 + 7 * len(labels.get(k, k))
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(items: list[tuple[str, float, str]], fmt: Callable[[Any], str] = fmt_int) -> str:
    """Horizontal bars: (label, value, colour) per row, largest first as given."""
    if not items:
        return ""
    width, label_w, row = 760, 190, 22
    peak = max(v for _, v, _ in items) or 1
    height = row * len(items) + 6
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">']
    for i, (label, v, colour) in enumerate(items):
        y = i * row + 3
        w = (width - label_w - 90) * v / peak
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" class="label" text-anchor="end">{_esc(_clip(label, 28))}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row - 6}" fill="{colour}">'
                     f'<title>{_esc(label)}: {_esc(fmt(v))}</title></rect>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" class="value">{_esc(fmt(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_mix(rows: dict[str, dict[str, float]], colours: dict[str, str]) -> str:
    """100% stacked horizontal bars: for each row (a class), its parts (page types)."""
    if not rows:
        return ""
    width, label_w, row = 760, 90, 30
    keys = sorted({k for parts in rows.values() for k in parts}, key=lambda k: -sum(r.get(k, 0) for r in rows.values()))
    height = row * len(rows) + 40
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">']
    for i, (name, parts) in enumerate(rows.items()):
        y, x = i * row + 4, float(label_w)
        total = sum(parts.values()) or 1
        out.append(f'<text x="{label_w - 8}" y="{y + 17}" class="label" text-anchor="end">{_esc(name)}</text>')
        for k in keys:
            w = (width - label_w - 10) * parts.get(k, 0) / total
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{colours[k]}">'
                           f'<title>{_esc(name)} {_esc(k)}: {fmt_pct(parts.get(k, 0) / total)}</title></rect>')
                if w > 44:
                    out.append(f'<text x="{x + 4:.1f}" y="{y + 16}" class="inbar">{_esc(k)}</text>')
                x += w
    x = label_w
    for k in keys:
        if x > width - 80:
            break
        out.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{colours[k]}"/>'
                   f'<text x="{x + 16}" y="{height - 12}" class="legend">{_esc(k)}</text>')
        x += 28 + 7 * len(k)
    out.append("</svg>")
    return "".join(out)


PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
           "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2433;margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
.sub{color:#5b6474;margin:0 0 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:16px 0}
.kpi{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:12px 14px}
.kpi b{display:block;font-size:24px} .kpi span{color:#5b6474;font-size:13px}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:12px 14px;margin:10px 0}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{padding:4px 8px;border-bottom:1px solid #eef0f4;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{color:#5b6474;font-weight:600} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
svg.chart{width:100%;height:auto} .grid{stroke:#e6e8ee} .axis,.legend,.value{font-size:11px;fill:#5b6474}
.label{font-size:12px;fill:#1d2433} .inbar{font-size:11px;fill:#fff}
.note{color:#5b6474;font-size:13px} footer{color:#8a92a3;font-size:12px;margin:32px 0}
"""


def _html_table(df: pl.DataFrame, t: Table) -> str:
    cols = [c for c in t.cols if c.name in df.columns]
    cells = _cells(df, t)
    if not cells:
        return '<p class="note">None.</p>'
    head = "".join(f'<th class="{"n" if c.fmt in NUMERIC else ""}">{_esc(c.header)}</th>' for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if c.fmt in NUMERIC else ""}">{_esc(v)}</td>' for v, c in zip(r, cols)) + "</tr>"
        for r in cells
    )
    more = f'<p class="note">{df.height - t.limit:,} more rows in the JSON report.</p>' if df.height > t.limit else ""
    note = f'<p class="note">{_esc(t.note)}</p>' if t.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}{note}"


def _charts(sections: dict[str, Any]) -> dict[str, str]:
    """SVG charts placed before the tables they illustrate, keyed by table title."""
    charts: dict[str, str] = {}
    trends = sections.get("trends") or {}
    cls = trends.get("classes")
    if isinstance(cls, pl.DataFrame) and cls.height:
        periods = [fmt_time(p) for p in cls["period"].unique(maintain_order=True).to_list()]
        series = {c: cls.filter(pl.col("actor_class") == c)["requests"].cast(pl.Float64).to_list()
                  for c in ACTOR_CLASSES}
        charts["Trend by class"] = svg_stacked_columns(periods, series, CLASS_COLOURS)
        charts["Traffic by class"] = charts["Trend by class"]  # shares over time, first thing shown
    ai = trends.get("ai")
    if isinstance(ai, pl.DataFrame) and ai.height:
        periods = [fmt_time(p) for p in ai["period"].to_list()]
        series = {c: ai[c].cast(pl.Float64).to_list() for c in AI_CATEGORIES if c in ai.columns}
        charts["Trend of AI-driven traffic"] = svg_stacked_columns(periods, series, AI_COLOURS, AI_LABELS,
                                                                    percent=False)
    ops = sections.get("operators")
    if isinstance(ops, pl.DataFrame) and ops.height:
        items = [(r["operator"], float(r["requests"]), "#f58518" if r["ai_driven"] else "#9aa5b5")
                 for r in ops.head(15).iter_rows(named=True)]
        charts["Operators"] = svg_bars(items) + '<p class="note">orange: AI operators</p>'
    pts = sections.get("page_types")
    if isinstance(pts, pl.DataFrame) and pts.height:
        kinds = pts["page_type"].unique().sort().to_list()
        colours = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(kinds)}
        rows = {c: {r["page_type"]: float(r["requests"]) for r in pts.filter(pl.col("actor_class") == c).iter_rows(named=True)}
                for c in ACTOR_CLASSES if c in pts["actor_class"].to_list()}
        charts["Pages by class (share of each class's requests)"] = svg_mix(rows, colours)
    th = (sections.get("threats") or {}).get("by_threat")
    if isinstance(th, pl.DataFrame) and th.height:
        charts["Threats"] = svg_bars([(r["threat"], float(r["requests"]), "#e45756") for r in th.iter_rows(named=True)])
    bw = (sections.get("bandwidth") or {}).get("by_operator")
    if isinstance(bw, pl.DataFrame) and bw.height:
        charts["Bandwidth by operator"] = svg_bars([(r["operator"], float(r["bytes"]), "#4c78a8")
                                                    for r in bw.head(12).iter_rows(named=True)], fmt_bytes)
    return charts


def render_html(sections: dict[str, Any]) -> str:
    """One self-contained HTML page: KPIs, charts and the tables (the JSON report embedded too)."""
    t, ai = sections.get("totals") or {}, sections.get("ai_share") or {}
    growth = sections.get("growth")
    g = {r["segment"]: r for r in growth.iter_rows(named=True)} if isinstance(growth, pl.DataFrame) else {}
    n = t.get("requests") or 0
    kpis = [
        (fmt_int(n), "requests"),
        (fmt_pct(ai.get("share")), "AI-driven share"),
        (fmt_pct((t.get("automated_requests") or 0) / n if n else 0), "automated share"),
        (fmt_pct((t.get("malicious_requests") or 0) / n if n else 0), "malicious share"),
        (fmt_ratio(g.get("ai_driven", {}).get("ratio")), "AI traffic vs previous period"),
        (fmt_bytes(t.get("bytes")), "transferred"),
    ]
    body = [f'<h1>trafficlens report</h1><p class="sub">{"<br>".join(_esc(x) for x in _headline(sections))}</p>',
            '<div class="kpis">' + "".join(f'<div class="kpi"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>'
                                           for v, k in kpis) + "</div>"]
    charts = _charts(sections)
    for tb in TABLES:
        df = _rows(sections, tb)
        if df is None:
            continue
        chart = charts.get(tb.title, "")
        body.append(f"<h2>{_esc(tb.title)}</h2>" + (f'<div class="card">{chart}</div>' if chart else "")
                    + f'<div class="card">{_html_table(df, tb)}</div>')
    data = json.dumps(jsonable(sections), separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>trafficlens report</title>'
        f"<style>{CSS}</style></head><body><main>{''.join(body)}"
        "<footer>Generated by trafficlens. The full report is embedded as JSON "
        '(script id="trafficlens-report").</footer></main>'
        f'<script type="application/json" id="trafficlens-report">{data}</script></body></html>\n'
    )


def render(report: Report, fmt: str = "table", width: int = WIDTH) -> str:
    """The whole report in `fmt`: table, json, markdown or html."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=1) + "\n"
    sections = report.sections()
    if fmt == "markdown":
        return render_markdown(sections)
    if fmt == "html":
        return render_html(sections)
    return render_table(sections, width)


__all__ = ["TABLES", "render", "render_html", "render_markdown", "render_table"]
