"""The report as text: an 80-column terminal table, Markdown, or one self-contained HTML page.

All three render the same sections of trafficlens.report.Report with the same column choices
(layout.TABLES); the HTML page (html_page) adds inline SVG charts. `render` picks one by name.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from trafficlens.errors import OptionError
from trafficlens.report.html_page import render_html
from trafficlens.report.lake_report import Report
from trafficlens.report.layout import NUMERIC, Col, Note, clip, headline, report_items, table_cells
from trafficlens.schema import REPORT_FORMATS

WIDTH = 80


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


def render_table(sections: dict[str, Any], width: int = WIDTH) -> str:
    """The report for a terminal: headline, then each table within `width` columns."""
    out = ["trafficlens report", "=" * 18]
    for line in headline(sections):
        out += textwrap.wrap(line, width, subsequent_indent="  ")
    for item in report_items(sections):
        if isinstance(item, Note):
            out += ["", *textwrap.wrap(item.title, width), "-" * min(len(item.title), width)]
            # Commands and options in the note stay whole (`--geo`, `ranges update`).
            out += textwrap.wrap(
                f"({item.text})", width, initial_indent="  ", subsequent_indent="   ", break_on_hyphens=False
            )
            continue
        t, df = item
        cols = [c for c in t.cols if c.name in df.columns]
        cells = table_cells(df, t)
        out += ["", *textwrap.wrap(t.title, width), "-" * min(len(t.title), width)]
        if not cells:
            out.append("  (none)")
            continue
        widths = _fit(cols, cells, width)

        def fmt_row(vals: Sequence[str], widths: list[int] = widths, cols: list[Col] = cols) -> str:
            return (
                "  "
                + "  ".join(
                    (clip(v, w).rjust(w) if c.fmt in NUMERIC else clip(v, w).ljust(w))
                    for v, w, c in zip(vals, widths, cols)
                ).rstrip()
            )

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
    out = ["# trafficlens report", ""] + [f"- {line}" for line in headline(sections)]
    for item in report_items(sections):
        if isinstance(item, Note):
            out += ["", f"## {item.title}", "", f"_{_md(item.text)}_"]
            continue
        t, df = item
        cols = [c for c in t.cols if c.name in df.columns]
        out += ["", f"## {t.title}", ""]
        cells = table_cells(df, t)
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


def render(report: Report, fmt: str = "table", width: int = WIDTH) -> str:
    """The whole report in `fmt`: table, json, markdown or html."""
    if fmt not in REPORT_FORMATS:
        raise OptionError(f"--format {fmt}: choose one of {', '.join(REPORT_FORMATS)}")
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=1) + "\n"
    sections = report.sections()
    if fmt == "markdown":
        return render_markdown(sections)
    if fmt == "html":
        return render_html(sections)
    return render_table(sections, width)


__all__ = ["WIDTH", "render", "render_markdown", "render_table"]
