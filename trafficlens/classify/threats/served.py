"""What a site serves, read from what it answered: probe rules fire only where it does not.

A probe rule names a path that a site may well have (an admin panel, a product's endpoint, a
blog's /kibana/ pages): asking for it is an attack only where the site does not serve it. A path
is served when enough readers received it (`ThreatConfig.served_min_readers`): the path itself,
or the part of it the rule matched (`/kibana/` serves `/kibana/css/style.css`). A reader is a
client that sent no exploit, asked for few probe targets and received some path that no rule
matches; a scanner that a catch-all page answers 200 is none of these, so it cannot make its own
probes served. The keys are computed once per distinct path and rule, before the buckets; each
bucket counts its readers of them; the sums decide, as SQL.
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


def probe_keys(con: duckdb.DuckDBPyConnection, probes: Sequence[AttackRule], path_value: str) -> None:
    """Creates `probe_keys(path, rid, k_path, k_prefix)`: each distinct path a probe rule matched
    (`hits_path`, the rules' matches per distinct path, query and method), with the keys that
    say it is served: the path itself and the part of it the rule matched. `path_value` is the
    SQL of the value the rules read (the decoded path), over a column `path`. Before the buckets:
    per distinct value, not per request."""
    con.execute("CREATE OR REPLACE TEMP TABLE probe_keys (path VARCHAR, rid VARCHAR, k_path VARCHAR, k_prefix VARCHAR)")
    if not probes:
        return
    prefix = " ".join(
        f"WHEN {sql_literal(r.id)} THEN regexp_extract(v, {sql_literal(f'^(.*?(?:{r.pattern}))')}, 1)" for r in probes
    )
    ids = ", ".join(sql_literal(r.id) for r in probes)
    con.execute(
        f"""INSERT INTO probe_keys
            SELECT path, rid, {path_key("path")}, rtrim(CASE rid {prefix} END, '/')
            FROM (SELECT path, rid, {path_value} AS v
                  FROM (SELECT DISTINCT path, rid FROM (SELECT path, unnest(ids) AS rid FROM hits_path)
                        WHERE rid IN ({ids})))"""
    )


def served_readers_sql(cfg: ThreatConfig, table: str, hits: str) -> str:
    """SQL: per site and served key (`probe_keys`), how many of `table`'s clients read it. `hits`
    names the rules' matches of `table`'s requests (`attack_hits`). A share of the clients at a
    time (a bucket): the counts of all the shares add up, since each client is in one."""
    # Clients that are not reading: an exploit or an exposure asked for, or many probe targets.
    probers = f"""
        SELECT h.client_id
        FROM {hits} h JOIN attack_rule_meta m ON m.id = h.rid
        LEFT JOIN probe_keys p ON p.path IS NOT DISTINCT FROM h.path AND p.rid = h.rid
        GROUP BY h.client_id
        HAVING bool_or(m.kind <> 'probe') OR count(DISTINCT p.k_prefix) > {cfg.reader_max_probes}"""
    ok = f"{success_sql(cfg, 's')} AND s.client_id NOT IN (SELECT client_id FROM probers)"
    # A path's key once per distinct path, not per request.
    return f"""
        WITH probers AS ({probers}),
             readers AS (SELECT DISTINCT s.client_id
                         FROM {table} s ANTI JOIN {hits} h ON h.source = s.source AND h.line_no = s.line_no
                         WHERE {ok}),
             cand AS (SELECT k_path AS k FROM probe_keys UNION SELECT k_prefix FROM probe_keys),
             keyed AS (SELECT path, k FROM (SELECT path, {path_key("path")} AS k FROM (SELECT DISTINCT path FROM {table}))
                       SEMI JOIN cand USING (k))
        SELECT s.site, p.k, count(DISTINCT s.client_id) AS readers
        FROM {table} s JOIN keyed p ON s.path IS NOT DISTINCT FROM p.path
        WHERE {ok} AND s.client_id IN (SELECT client_id FROM readers)
        GROUP BY ALL"""


def probe_served(con: duckdb.DuckDBPyConnection, cfg: ThreatConfig, hits: str, readers: str) -> None:
    """Creates `probe_served(site, path, rid)`: the probe matches of `hits` (every bucket's
    `attack_hits`) on a path the site serves, which do not fire; `readers` holds every bucket's
    `served_readers_sql` rows."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE probe_served AS
            WITH served AS (SELECT site, k FROM {readers} GROUP BY ALL HAVING sum(readers) >= {cfg.served_min_readers})
            SELECT DISTINCT h.site, h.path, h.rid
            FROM (SELECT DISTINCT site, path, rid FROM {hits}) h
            JOIN probe_keys p ON p.path IS NOT DISTINCT FROM h.path AND p.rid = h.rid
            JOIN served s ON s.site IS NOT DISTINCT FROM h.site AND (s.k = p.k_path OR s.k = p.k_prefix)"""
    )
