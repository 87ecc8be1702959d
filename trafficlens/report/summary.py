"""A short, readable summary of what the lake holds (the end of `trafficlens analyze`).

Every figure is a section of the same Report that `trafficlens report` prints, so the summary and
the report always agree.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trafficlens.report.lake_report import Report
from trafficlens.report.layout import fmt_bytes


def _fit(text: object, width: int) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def _table(title: str, df: pl.DataFrame, width: int = 80) -> list[str]:
    if df.height == 0:
        return []
    label, count = df.columns[0], df.columns[1]
    out = ["", title]
    for row in df.iter_rows(named=True):  # a top list: a handful of rows
        out.append(f"  {row[count]:>12,}  {_fit(row[label], width - 16)}")
    return out


def render_summary(rep: Report) -> str:
    """Totals, the class mix, top lists and rejects, as plain text (`rep.top` rows per list)."""
    t = rep.totals()
    if not t["requests"]:
        return "The lake holds no events yet."
    p, quality = rep.period(), rep.data_quality()
    period = f"{p['first']:%Y-%m-%d %H:%M} to {p['last']:%Y-%m-%d %H:%M} UTC"
    lines = [
        "",
        f"Period      {period}",
        f"Requests    {t['requests']:,}   from {t['addresses']:,} addresses, "
        f"{rep.user_agents():,} user agents, {len(p['sites']):,} site(s)",
        f"Bytes sent  {fmt_bytes(t['bytes'])}",
        f"Rejects     {quality['summary']['rejects']:,} lines that fit no format",
    ]
    classes = rep.shares().filter(pl.col("requests") > 0).sort("requests", descending=True, maintain_order=True)
    if classes.height:
        lines += ["", "Traffic by class"]
        for row in classes.iter_rows(named=True):  # four classes at most
            lines.append(f"  {row['requests']:>12,}  {row['requests_share']:6.1%}  {row['actor_class']}")
        lines.append(f"  AI-driven: {rep.ai_share()['share']:.1%} of requests")
    agents = rep.automated()
    lines += _table(f"Top {agents.height} automated agents", agents)
    lines += _table("Clients by identity", rep.identities())
    lines += _table("Status", rep.status())
    lines += _table("Formats", rep.formats())
    paths, user_agents, addresses = rep.top_paths(), rep.top_user_agents(), rep.top_addresses()
    lines += _table(f"Top {paths.height} paths", paths)
    lines += _table(f"Top {user_agents.height} user agents", user_agents)
    lines += _table(f"Top {addresses.height} addresses", addresses.select("client_ip", "requests"))
    rejects = (
        quality["rejects"]
        .group_by("reason")
        .agg(pl.col("lines").sum())
        .sort(["lines", "reason"], descending=[True, False])
        .head(rep.top)
    )
    lines += _table("Rejects by reason", rejects)
    return "\n".join(lines)


def lake_summary(lake: str | Path, top: int = 10) -> str:
    """The summary of everything in `lake`, with `top` rows in each top list."""
    with Report(lake, top=top) as rep:
        return render_summary(rep)


__all__ = ["lake_summary", "render_summary"]
