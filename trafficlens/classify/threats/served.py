"""What a site serves, read from what it answered: probe rules fire only where it does not.

A probe rule names a path that a site may well have (an admin panel, a product's endpoint, a
blog's /kibana/ pages): asking for it is an attack only where the site does not serve it. A path
is served when enough readers received it (`ThreatConfig.served_min_readers`): the path itself,
or the part of it the rule matched (`/kibana/` serves `/kibana/css/style.css`). A reader is a
client that sent no exploit, asked for few probe targets and received some path that no rule
matches; a scanner that a catch-all page answers 200 is none of these, so it cannot make its own
probes served. Everything is computed once per distinct (site, path, rule), as SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb

from trafficlens.classify.threats.config import ThreatConfig
from trafficlens.store import sql_literal

if TYPE_CHECKING:
    from trafficlens.classify.threats.rules import AttackRule


def success_sql(cfg: ThreatConfig, alias: str = "") -> str:
    """SQL: the request received the path (a body of some size, or a cached copy confirmed). A
    missing size (`-`) counts: some logs never write it."""
    a = f"{alias}." if alias else ""
    return (
        f"(({a}status BETWEEN 200 AND 299 AND coalesce({a}bytes, {cfg.served_min_bytes}) >= {cfg.served_min_bytes})"
        f" OR {a}status = 304)"
    )


def path_key(expr: str) -> str:
    """SQL: a path as served paths are compared: lower-cased, without trailing slashes (`/kibana`
    is answered by a redirect to `/kibana/`)."""
    return f"rtrim(lower(coalesce({expr}, '')), '/')"


def served_probes(
    con: duckdb.DuckDBPyConnection,
    probes: Sequence[AttackRule],
    path_value: str,
    cfg: ThreatConfig,
    table: str = "sessionised",
) -> None:
    """Creates `probe_served(site, path, rid)`: the probe matches of `attack_hits` (site, path,
    client_id, source, line_no, rid; `attack_rule_meta` gives each rule's kind) on a path the
    site serves, which do not fire. `path_value` is the SQL of the value the rules read (the
    decoded path), over a column `path`."""
    if not probes:
        con.execute("CREATE OR REPLACE TEMP TABLE probe_served (site VARCHAR, path VARCHAR, rid VARCHAR)")
        return
    prefix = " ".join(
        f"WHEN {sql_literal(r.id)} THEN regexp_extract(v, {sql_literal(f'^(.*?(?:{r.pattern}))')}, 1)" for r in probes
    )
    # The part of the path each probe matched, and the path itself: either one served is enough.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE probe_keys AS
            SELECT site, path, rid, {path_key("path")} AS k_path, rtrim(CASE rid {prefix} END, '/') AS k_prefix
            FROM (SELECT site, path, rid, {path_value} AS v
                  FROM (SELECT DISTINCT h.site, h.path, h.rid
                        FROM attack_hits h JOIN attack_rule_meta m ON m.id = h.rid WHERE m.kind = 'probe'))"""
    )
    # Clients that are not reading: an exploit or an exposure asked for, or many probe targets.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE attack_probers AS
            SELECT h.client_id
            FROM attack_hits h JOIN attack_rule_meta m ON m.id = h.rid
            LEFT JOIN probe_keys p ON p.site IS NOT DISTINCT FROM h.site AND p.path IS NOT DISTINCT FROM h.path
                                  AND p.rid = h.rid
            GROUP BY h.client_id
            HAVING bool_or(m.kind <> 'probe') OR count(DISTINCT p.k_prefix) > {cfg.reader_max_probes}"""
    )
    con.execute("CREATE OR REPLACE TEMP TABLE probe_served (site VARCHAR, path VARCHAR, rid VARCHAR)")
    if not con.execute("SELECT count(*) FROM probe_keys").fetchall()[0][0]:
        return
    ok = f"{success_sql(cfg, 's')} AND s.client_id NOT IN (SELECT client_id FROM attack_probers)"
    con.execute(
        f"""INSERT INTO probe_served
            WITH readers AS (SELECT DISTINCT s.client_id
                             FROM {table} s ANTI JOIN attack_hits h ON h.source = s.source AND h.line_no = s.line_no
                             WHERE {ok}),
                 cand AS (SELECT site, k_path AS k FROM probe_keys UNION SELECT site, k_prefix FROM probe_keys),
                 served AS (SELECT site, k
                            FROM (SELECT s.site, {path_key("s.path")} AS k, s.client_id FROM {table} s
                                  WHERE {ok} AND s.client_id IN (SELECT client_id FROM readers))
                            SEMI JOIN cand USING (site, k)
                            GROUP BY ALL HAVING count(DISTINCT client_id) >= {cfg.served_min_readers})
            SELECT DISTINCT p.site, p.path, p.rid
            FROM probe_keys p JOIN served s
              ON s.site IS NOT DISTINCT FROM p.site AND (s.k = p.k_path OR s.k = p.k_prefix)"""
    )
