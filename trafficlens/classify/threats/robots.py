"""robots.txt violations: automated clients fetching paths the site's robots.txt disallows them,
read as RFC 9309 reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.classify.agents import Catalogue
from trafficlens.errors import CatalogueError
from trafficlens.store import sql_literal

# The rows a threat check finds, typed for when it finds none.
FINDING_SCHEMA: dict[str, pl.DataType] = {"client_id": pl.String(), "threat": pl.String(), "reason": pl.String()}


@dataclass
class RobotsGroup:
    agents: list[str]
    rules: list[tuple[bool, str]]  # (allow, path pattern)


def parse_robots(text: str) -> list[RobotsGroup]:
    """robots.txt -> groups of (user-agent tokens, Allow/Disallow rules), as RFC 9309 reads it:
    consecutive User-agent lines open a group; rules belong to the group above them."""
    groups: list[RobotsGroup] = []
    current: RobotsGroup | None = None
    last_was_agent = False
    for raw in text.splitlines():  # a robots.txt is small: a loop per line is fine here
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (x.strip() for x in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if current is None or not last_was_agent:
                current = RobotsGroup([], [])
                groups.append(current)
            current.agents.append(value.lower())
            last_was_agent = True
        elif key in ("allow", "disallow") and current is not None:
            last_was_agent = False
            if value or key == "allow":
                current.rules.append((key == "allow", value))
        else:
            last_was_agent = False
    return groups


def _robots_regex(pattern: str) -> str:
    """A robots path pattern (`*` any, `$` end) -> an anchored RE2 regex."""
    end = pattern.endswith("$")
    body = "".join(".*" if ch == "*" else re.escape(ch) for ch in (pattern[:-1] if end else pattern))
    return "^" + body + ("$" if end else "")


def robots_tokens(labelled: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """`client_id, token`: the robots.txt tokens each automated client answers to. A named agent
    answers to its entry's tokens (none for fetchers whose operators say they act for a user and
    do not read robots.txt); automation that names no agent answers to `*`."""
    tokens = pl.DataFrame(
        [(a.name, t) for a in catalogue.agents for t in a.robots],
        schema={"agent": pl.String, "token": pl.String},
        orient="row",
    )
    named = labelled.filter(pl.col("agent").is_not_null()).select("client_id", "agent").join(tokens, on="agent")
    anon = labelled.filter(pl.col("automated") & pl.col("agent").is_null()).select("client_id", token=pl.lit("*"))
    return pl.concat([named.select("client_id", "token"), anon])


def robots_violations(
    con: duckdb.DuckDBPyConnection, robots_file: str | Path, tokens: pl.DataFrame, table: str = "sessionised"
) -> pl.DataFrame:
    """`client_id, threat, reason` for automated clients fetching paths their group disallows;
    also `request_robots(source, line_no, client_id, token, reason)`, the disallowed requests.

    `tokens` has client_id and token (a robots.txt token the client's agent answers to, or `*`
    for automation that names none). The most specific group wins (the longest token that the
    client answers to), then within it the longest matching rule, Allow winning a tie.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE request_robots "
        "(source VARCHAR, line_no BIGINT, client_id VARCHAR, token VARCHAR, reason VARCHAR)"
    )
    p = Path(robots_file)
    try:
        groups = parse_robots(p.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise CatalogueError(f"--robots {p}: cannot read it ({e.strerror})") from None
    rows = [(a, i) for i, g in enumerate(groups) for a in g.agents]
    if not rows or tokens.height == 0:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    con.register("robots_groups", pl.DataFrame(rows, schema={"token": pl.String, "grp": pl.Int32}, orient="row"))
    con.register("client_tokens", tokens.with_columns(pl.col("token").str.to_lowercase()))
    # Each client's group: its own token's, else the `*` group.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE client_group AS
           SELECT client_id, arg_max(grp, length(g.token)) AS grp, arg_max(g.token, length(g.token)) AS token
           FROM client_tokens t JOIN robots_groups g ON g.token = t.token OR (g.token = '*' AND t.token IS NOT NULL)
           GROUP BY client_id"""
    )
    cases = []
    for i, g in enumerate(groups):
        for allow, pat in g.rules:
            rx = _robots_regex(pat) if pat else "^$"
            score = len(pat) * 2 + (1 if allow else 0)  # longest rule wins; Allow wins ties
            cases.append(
                f"CASE WHEN c.grp = {i} AND regexp_matches(coalesce(s.path, '') || coalesce('?' || s.query, ''), "
                f"{sql_literal(rx)}) THEN {score} END"
            )
    if not cases:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    best = f"greatest({', '.join(cases)})" if len(cases) > 1 else cases[0]
    # Each disallowed request keeps its own finding (`request_robots`), its client the count.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE request_robots AS
            SELECT source, line_no, client_id, token, 'robots:disallowed:' || token AS reason
            FROM (SELECT s.source, s.line_no, s.client_id, c.token, {best} AS score
                  FROM {table} s JOIN client_group c USING (client_id)
                  WHERE s.page_type <> 'robots')
            WHERE score IS NOT NULL AND score % 2 = 0"""
    )
    return con.sql(
        """SELECT client_id, 'robots_violation' AS threat,
                  'robots:disallowed:' || any_value(token) || ':requests=' || count(*) AS reason
           FROM request_robots GROUP BY client_id"""
    ).pl()
