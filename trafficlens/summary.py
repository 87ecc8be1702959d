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
    classes: pl.DataFrame | None = None
    agents: pl.DataFrame | None = None
    identities: pl.DataFrame | None = None
    ai_share: float | None = None


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
    classes = agents = identities = None
    ai_share = None
    if Lake(lake).has_table("requests"):
        classes = q(
            """select actor_class, count(*) as requests, count(*) / sum(count(*)) over () as share
               from requests group by 1 order by 2 desc"""
        )
        ai_share = q("select coalesce(avg(ai_driven::int), 0) from requests").item()
        agents = q(
            f"""select coalesce(coalesce(agent, operator) || ' (' || coalesce(operator, '?') || ', ' || purpose || ')',
                                '(unnamed ' || actor_class || ', ' || identity || ')') as agent, count(*) as requests
                from requests where automated group by 1 order by 2 desc, 1 limit {int(top)}"""
        )
        identities = q(
            """select identity, count(distinct client_id) as clients from requests
               group by 1 order by 2 desc"""
        )
    con.close()
    return LakeSummary(totals, status, formats, top_paths, top_uas, top_clients, rejects, classes, agents,
                       identities, ai_share)


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
    if s.classes is not None and s.classes.height:
        lines += ["", "Traffic by class"]
        for row in s.classes.iter_rows(named=True):  # four classes at most
            lines.append(f"  {row['requests']:>12,}  {row['share']:6.1%}  {row['actor_class']}")
        lines.append(f"  AI-driven: {s.ai_share:.1%} of requests")
    if s.agents is not None:
        lines += _table(f"Top {s.agents.height} automated agents", s.agents)
    if s.identities is not None:
        lines += _table("Clients by identity", s.identities)
    lines += _table("Status", s.status)
    lines += _table("Formats", s.formats)
    lines += _table(f"Top {s.top_paths.height} paths", s.top_paths)
    lines += _table(f"Top {s.top_user_agents.height} user agents", s.top_user_agents)
    lines += _table(f"Top {s.top_clients.height} addresses", s.top_clients.select("client_ip", "requests"))
    lines += _table("Rejects by reason", s.rejects)
    return "\n".join(lines)
