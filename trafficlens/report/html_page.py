"""The report as one self-contained HTML page: KPIs, inline SVG charts (no scripts, no network, so the
file opens anywhere) and the same tables as the terminal and Markdown reports."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import polars as pl

from trafficlens.report import colours as palette
from trafficlens.report.core import jsonable
from trafficlens.report.layout import (
    NUMERIC,
    Col,
    Note,
    Table,
    clip,
    fmt_bytes,
    fmt_int,
    fmt_pct,
    fmt_ratio,
    fmt_time,
    headline,
    report_items,
    table_cells,
)
from trafficlens.schema import ACTOR_CLASSES, AI_CATEGORIES

# One colour language with the dashboard (trafficlens.report.colours): classes in Okabe–Ito,
# AI kinds beside their class, bad things in one red.
AI_COLOURS = palette.AI_KIND_COLOURS
AI_LABELS = {
    "training_crawlers": "training crawlers",
    "search_crawlers": "search crawlers",
    "assistant_fetchers": "assistant fetchers",
    "agents": "agents",
    "other_ai": "other AI",
}


def _is_dark(colour: str) -> bool:
    """Whether white text reads on `colour` (#RRGGBB): its relative luminance is low."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.6


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def svg_stacked_columns(
    periods: list[str],
    series: dict[str, list[float]],
    colours: dict[str, str],
    labels: dict[str, str] | None = None,
    percent: bool = True,
    height: int = 220,
) -> str:
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
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_esc(value)}</text>'
        )
    for i, p in enumerate(periods):
        y = top + plot_h
        for k, vals in series.items():
            v = vals[i] / totals[i] if percent and totals[i] else vals[i]
            h = plot_h * v / peak
            if h > 0:
                y -= h
                tip = f"{p} {labels.get(k, k)}: " + (fmt_pct(v) if percent else fmt_int(vals[i]))
                parts.append(
                    f'<rect x="{left + i * bar + bar * 0.1:.1f}" y="{y:.1f}" width="{bar * 0.8:.1f}" '
                    f'height="{h:.1f}" fill="{colours.get(k, "#999")}"><title>{_esc(tip)}</title></rect>'
                )
        if n <= 16 or i % max(1, n // 12) == 0:
            parts.append(
                f'<text x="{left + (i + 0.5) * bar:.1f}" y="{height - bottom + 16}" class="axis" '
                f'text-anchor="middle">{_esc(p[5:] if len(p) == 10 else p)}</text>'
            )
    x = left
    for k in series:
        parts.append(
            f'<rect x="{x}" y="{height + 8}" width="12" height="12" fill="{colours.get(k, "#999")}"/>'
            f'<text x="{x + 16}" y="{height + 18}" class="legend">{_esc(labels.get(k, k))}</text>'
        )
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
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" class="label" text-anchor="end">{_esc(clip(label, 28))}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row - 6}" fill="{colour}">'
            f"<title>{_esc(label)}: {_esc(fmt(v))}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" class="value">{_esc(fmt(v))}</text>'
        )
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
                out.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{colours[k]}">'
                    f"<title>{_esc(name)} {_esc(k)}: {fmt_pct(parts.get(k, 0) / total)}</title></rect>"
                )
                if w > 44:
                    ink = "" if _is_dark(colours[k]) else ' style="fill:#1d2433"'  # readable on light shades
                    out.append(f'<text x="{x + 4:.1f}" y="{y + 16}" class="inbar"{ink}>{_esc(k)}</text>')
                x += w
    x = label_w
    for k in keys:
        if x > width - 80:
            break
        out.append(
            f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{colours[k]}"/>'
            f'<text x="{x + 16}" y="{height - 12}" class="legend">{_esc(k)}</text>'
        )
        x += 28 + 7 * len(k)
    out.append("</svg>")
    return "".join(out)


PALETTE = palette.SERIES

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
td.nw,th.nw{white-space:nowrap;overflow-wrap:normal} td.l,th.l{min-width:14em}
.chip{display:inline-block;background:#eef0f4;border-radius:4px;padding:0 5px;margin:1px 3px 1px 0;font-size:12px;
white-space:nowrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
details{display:inline} summary{display:inline;cursor:pointer;color:#5b6474;font-size:12px}
.scroll{overflow-x:auto} .clamp{display:-webkit-box;-webkit-line-clamp:2;line-clamp:2;-webkit-box-orient:vertical;
overflow:hidden;max-width:24em}
"""


# Columns that must stay on one line (an address cut after two characters reads as nothing).
NOWRAP = {"client_ip", "addresses", "top_spoofed_addresses", "agent", "operator", "first_seen", "last_seen"}
# A list cell shows this many items; the rest fold under "+N more" (reasons were ten-line walls).
LIST_SHOWN = 4
# Long free text (a user agent) shows two lines; the whole of it is its tooltip.
CLAMPED = {"user_agent", "example"}


def _list_cell(values: Any) -> str:
    """A list as small chips, the first LIST_SHOWN shown and the rest folded."""
    items = [str(v) for v in (values or [])]
    if not items:
        return "-"
    shown = items if len(items) <= LIST_SHOWN + 1 else items[:LIST_SHOWN]
    chips = "".join(f'<span class="chip">{_esc(v)}</span>' for v in shown)
    if len(items) > LIST_SHOWN + 1:  # "+1 more" would hide no more than it shows
        rest = "".join(f'<span class="chip">{_esc(v)}</span>' for v in items[LIST_SHOWN:])
        chips += f"<details><summary>+{len(items) - LIST_SHOWN} more</summary>{rest}</details>"
    return chips


def _cell(value: Any, text: str, c: Col) -> str:
    if c.fmt == "list":
        return _list_cell(value)
    if c.name in CLAMPED:
        return f'<span class="clamp" title="{_esc(text)}">{_esc(text)}</span>'
    return _esc(text)


def _html_table(df: pl.DataFrame, t: Table) -> str:
    cols = [c for c in t.cols if c.name in df.columns]
    cells = table_cells(df, t)
    if not cells:
        return '<p class="note">None.</p>'

    def cls(c: Col) -> str:
        names = [
            "n" if c.fmt in NUMERIC else "",
            "nw" if c.name in NOWRAP else "",
            "l" if c.fmt == "list" or c.name in CLAMPED else "",
        ]
        return " ".join(n for n in names if n)

    head = "".join(f'<th class="{cls(c)}">{_esc(c.header)}</th>' for c in cols)
    rows = df.head(t.limit).iter_rows(named=True)
    body = "".join(
        "<tr>" + "".join(f'<td class="{cls(c)}">{_cell(row[c.name], v, c)}</td>' for v, c in zip(r, cols)) + "</tr>"
        for r, row in zip(cells, rows)
    )
    more = f'<p class="note">{df.height - t.limit:,} more rows in the JSON report.</p>' if df.height > t.limit else ""
    note = f'<p class="note">{_esc(t.note)}</p>' if t.note else ""
    # A wide table scrolls inside its card on a phone rather than squeezing every column.
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}{note}'


def _charts(sections: dict[str, Any]) -> dict[str, str]:
    """SVG charts placed before the tables they illustrate, keyed by table title."""
    charts: dict[str, str] = {}
    trends = sections.get("trends") or {}
    cls = trends.get("classes")
    if isinstance(cls, pl.DataFrame) and cls.height:
        periods = [fmt_time(p) for p in cls["period"].unique(maintain_order=True).to_list()]
        series = {
            c: cls.filter(pl.col("actor_class") == c)["requests"].cast(pl.Float64).to_list() for c in ACTOR_CLASSES
        }
        charts["Trend by class"] = svg_stacked_columns(periods, series, palette.CLASS_COLOURS)
        charts["Traffic by class"] = charts["Trend by class"]  # shares over time, first thing shown
    ai = trends.get("ai")
    if isinstance(ai, pl.DataFrame) and ai.height:
        periods = [fmt_time(p) for p in ai["period"].to_list()]
        series = {c: ai[c].cast(pl.Float64).to_list() for c in AI_CATEGORIES if c in ai.columns}
        charts["Trend of AI-driven traffic"] = svg_stacked_columns(
            periods, series, AI_COLOURS, AI_LABELS, percent=False
        )
    ops = sections.get("operators")
    if isinstance(ops, pl.DataFrame) and ops.height:
        items = [
            (r["operator"], float(r["requests"]), palette.AI if r["ai_driven"] else palette.NEUTRAL)
            for r in ops.head(15).iter_rows(named=True)
        ]
        charts["Operators"] = svg_bars(items) + '<p class="note">blue: AI operators; grey: others</p>'
    pts = sections.get("page_types")
    if isinstance(pts, pl.DataFrame) and pts.height:
        kind_colours = palette.PAGE_TYPE_COLOURS
        rows = {
            c: {
                r["page_type"]: float(r["requests"])
                for r in pts.filter(pl.col("actor_class") == c).iter_rows(named=True)
            }
            for c in ACTOR_CLASSES
            if c in pts["actor_class"].to_list()
        }
        charts["Pages by class (share of each class's requests)"] = svg_mix(rows, kind_colours)
    th = (sections.get("threats") or {}).get("by_threat")
    if isinstance(th, pl.DataFrame) and th.height:
        charts["Threats"] = svg_bars(
            [(r["threat"], float(r["requests"]), palette.BAD) for r in th.iter_rows(named=True)]
        )
    bw = (sections.get("bandwidth") or {}).get("by_operator")
    if isinstance(bw, pl.DataFrame) and bw.height:
        charts["Bandwidth by operator"] = svg_bars(
            [(r["operator"], float(r["bytes"]), palette.NEUTRAL) for r in bw.head(12).iter_rows(named=True)], fmt_bytes
        )
    net = sections.get("network") or {}
    hs = net.get("hosting_share")
    if isinstance(hs, pl.DataFrame) and hs.height and (hs["hosting_requests"] > 0).any():
        charts["Networks: the share of each class from hosting providers' ranges"] = svg_bars(
            [
                (
                    r["actor_class"],
                    float(r["hosting_share"] or 0),
                    palette.CLASS_COLOURS.get(r["actor_class"], palette.NEUTRAL),
                )
                for r in hs.iter_rows(named=True)
            ],
            fmt_pct,
        )
    und = net.get("undeclared_by_provider")
    if isinstance(und, pl.DataFrame) and und.height:
        charts["Undeclared automation by hosting provider"] = svg_bars(
            [
                (r["provider"], float(r["requests"]), palette.IDENTITY_COLOURS["undeclared"])
                for r in und.head(12).iter_rows(named=True)
            ]
        )
    # Countries and networks a database named: the unknown rest is a figure in the table, not a bar.
    for part, title, name in (
        ("by_country", "Traffic by country", lambda r: str(r["country"])),
        ("by_network", "Traffic by network (AS)", lambda r: f"AS{r['asn']} {r['as_org'] or ''}".strip()),
    ):
        df = net.get(part)
        key = "country" if part == "by_country" else "asn"
        if isinstance(df, pl.DataFrame) and key in df.columns:
            known = df.filter(pl.col(key).is_not_null()).head(12)
            if known.height:
                charts[title] = svg_bars(
                    [(name(r), float(r["requests"]), palette.NEUTRAL) for r in known.iter_rows(named=True)]
                )
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
    body = [
        f'<h1>trafficlens report</h1><p class="sub">{"<br>".join(_esc(x) for x in headline(sections))}</p>',
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>' for v, k in kpis)
        + "</div>",
    ]
    charts = _charts(sections)
    for item in report_items(sections):
        if isinstance(item, Note):  # a section the lake cannot fill: what would fill it
            body.append(f'<h2>{_esc(item.title)}</h2><div class="card"><p class="note">{_esc(item.text)}</p></div>')
            continue
        tb, df = item
        chart = charts.get(tb.title, "")
        body.append(
            f"<h2>{_esc(tb.title)}</h2>"
            + (f'<div class="card">{chart}</div>' if chart else "")
            + f'<div class="card">{_html_table(df, tb)}</div>'
        )
    data = json.dumps(jsonable(sections), separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>trafficlens report</title>'
        f"<style>{CSS}</style></head><body><main>{''.join(body)}"
        "<footer>Generated by trafficlens. The full report is embedded as JSON "
        '(script id="trafficlens-report").</footer></main>'
        f'<script type="application/json" id="trafficlens-report">{data}</script></body></html>\n'
    )


__all__ = ["render_html", "svg_bars", "svg_mix", "svg_stacked_columns"]
