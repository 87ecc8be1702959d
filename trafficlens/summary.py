"""A short, readable summary of what the lake holds (the end of `trafficlens analyze`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trafficlens.store import Lake, connect


@dataclass
class LakeSummary:
    """Figures and top lists over the lake's events."""

    totals: dict
    status: pl.DataFrame
    formats: pl.DataFrame
    top_paths: pl.DataFrame
    top_user_agents: pl.DataFrame
    top_clients: pl.DataFrame
    rejects: pl.DataFrame


def summarize(lake: str | Path, top: int = 10) -> LakeSummary:
    """Totals, status mix and top lists over all events in the lake."""
    con = connect(Lake(lake))
    q = lambda sql: con.sql(sql).pl()  # noqa: E731
    totals = q(
        """select count(*) as requests, count(distinct client_ip) as addresses,
                  count(distinct user_agent) as user_agents, count(distinct site) as sites,
                  coalesce(sum(bytes), 0) as bytes, min(ts) as first, max(ts) as last
           from events"""
    ).row(0, named=True)
    totals["rejects"] = q("select count(*) as n from rejects").item()
    status = q(
        """select (status // 100)::varchar || 'xx' as status, count(*) as requests
           from events group by 1 order by 1"""
    )
    formats = q("select format, count(*) as requests from events group by 1 order by 2 desc")
    top_paths = q(
        f"select path, count(*) as requests from events group by 1 order by 2 desc, 1 limit {int(top)}"
    )
    top_uas = q(
        f"""select coalesce(user_agent, '(none)') as user_agent, count(*) as requests
            from events group by 1 order by 2 desc, 1 limit {int(top)}"""
    )
    top_clients = q(
        f"""select client_ip, count(*) as requests, count(distinct user_agent) as user_agents
            from events group by 1 order by 2 desc, 1 limit {int(top)}"""
    )
    rejects = q(
        f"""select regexp_replace(reason, ':.*', '') as reason, count(*) as lines
            from rejects group by 1 order by 2 desc limit {int(top)}"""
    )
    con.close()
    return LakeSummary(totals, status, formats, top_paths, top_uas, top_clients, rejects)


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


def render_summary(s: LakeSummary) -> str:
    t = s.totals
    if not t["requests"]:
        return "The lake holds no events yet."
    period = f"{t['first']:%Y-%m-%d %H:%M} to {t['last']:%Y-%m-%d %H:%M} UTC"
    lines = [
        "",
        f"Period      {period}",
        f"Requests    {t['requests']:,}   from {t['addresses']:,} addresses, "
        f"{t['user_agents']:,} user agents, {t['sites']:,} site(s)",
        f"Bytes sent  {t['bytes']:,}",
        f"Rejects     {t['rejects']:,} lines that fit no format",
    ]
    lines += _table("Status", s.status)
    lines += _table("Formats", s.formats)
    lines += _table(f"Top {s.top_paths.height} paths", s.top_paths)
    lines += _table(f"Top {s.top_user_agents.height} user agents", s.top_user_agents)
    lines += _table(f"Top {s.top_clients.height} addresses", s.top_clients.select("client_ip", "requests"))
    lines += _table("Rejects by reason", s.rejects)
    return "\n".join(lines)
