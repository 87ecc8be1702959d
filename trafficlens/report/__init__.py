"""Named questions over a classified lake, as polars frames (DESIGN.md, "Who it is for").

One set of functions that `trafficlens report`, `trafficlens analyze`'s summary, the dashboard and
the tests share:

    rep = Report("trafficlens-lake", since=date(2025, 10, 1), by="week")
    rep.shares()          # requests, clients and bytes by actor_class
    rep.to_dict()         # every section, as `trafficlens report --format json` prints it

Every section is DuckDB SQL over the lake's `requests` (and `sessions`, `rejects`, `manifest`)
views, filtered once by period, site and class. Section names and columns are the stable JSON
contract documented in the README.

The package: `core` (filters, the tables every section reads, the section cache), one module per
group of sections (`traffic`, `actors`, `threats`, `referrals`, `overview`), `lake_report` (the
Report that combines them), `summary` (analyze's text), `layout`, `render` and `html_page` (the
report as a terminal table, Markdown or HTML); beside them `explore` (the dashboard's per-client
queries), `export` (robots.txt and server rules), `query` (SQL on the lake) and `evaluate`
(labels against a simulation's truth).
"""

from __future__ import annotations

from trafficlens.report.core import jsonable
from trafficlens.report.lake_report import SECTIONS, Report, build_report
from trafficlens.report.referrals import Referrer, ai_referrers
from trafficlens.report.summary import lake_summary, render_summary

__all__ = [
    "SECTIONS",
    "Referrer",
    "Report",
    "ai_referrers",
    "build_report",
    "jsonable",
    "lake_summary",
    "render_summary",
]
