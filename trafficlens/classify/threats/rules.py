"""Attack rules: the patterns of catalogues/attack_rules.yml, matched per request.

The rules read the request target (URL-decoded twice, lower-cased), its path, the raw request
line, the method, the protocol and the user agent (and referer). They run once per distinct value,
behind one combined regex that lets the benign majority through in a single pass; matches are
joined back. A rule's `kind` says what it reads: a `payload` (an exploit, an attack tool) and an
`exposure` (a file no site means to publish) fire on their own; a `probe` (a path a site may have)
fires only where the site does not serve the path (`served`). Distinct values are matched before
the buckets (`attack_values`), each bucket's requests joined to their matches (`attack_rows_sql`),
and what fires decided over every bucket's matches (`request_attacks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import yaml

from trafficlens.classify.agents import SAFE_LOADER
from trafficlens.classify.threats.config import ThreatConfig
from trafficlens.classify.threats.served import probe_keys, probe_served, served_readers_sql
from trafficlens.errors import CatalogueError
from trafficlens.schema import ATTACK_RULE_KINDS, THREATS
from trafficlens.store import sql_literal

RULE_FIELDS = ("target", "path", "user_agent", "method", "request_line", "protocol")


@dataclass(frozen=True)
class AttackRule:
    id: str
    threat: str
    field: str
    pattern: str
    description: str = ""
    kind: str = "payload"


def rules_path() -> Path:
    return Path(str(resources.files("trafficlens") / "catalogues" / "attack_rules.yml"))


def load_attack_rules(path: str | Path | None = None) -> list[AttackRule]:
    p = Path(path) if path else rules_path()
    doc = yaml.load(p.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or []
    rules, seen = [], set()
    con = duckdb.connect()
    try:
        for i, raw in enumerate(doc, 1):
            rid = raw.get("id")
            if not rid or rid in seen:
                raise CatalogueError(f"{p.name}: rule {i} needs a unique id (got {rid!r})")
            seen.add(rid)
            if raw.get("threat") not in THREATS:
                raise CatalogueError(f"{p.name}: rule {rid}: threat {raw.get('threat')!r} is not one of {THREATS}")
            if raw.get("field") not in RULE_FIELDS:
                raise CatalogueError(f"{p.name}: rule {rid}: field must be one of {RULE_FIELDS}")
            # A rule that does not say fires on its own, as every rule did before kinds.
            kind = raw.get("kind", "payload")
            if kind not in ATTACK_RULE_KINDS:
                raise CatalogueError(f"{p.name}: rule {rid}: kind {kind!r} is not one of {ATTACK_RULE_KINDS}")
            if kind == "probe" and raw["field"] != "path":
                raise CatalogueError(f"{p.name}: rule {rid}: a probe reads the path (whether the site serves it)")
            rules.append(AttackRule(rid, raw["threat"], raw["field"], raw["pattern"], raw.get("description", ""), kind))
        # Every pattern compiled by DuckDB's regex engine in one query; where one fails, each in
        # turn, to name it.
        try:
            con.execute(
                "SELECT count(*) FILTER (WHERE regexp_matches('', p)) FROM unnest(?) AS t(p)",
                [[r.pattern for r in rules]],
            )
        except duckdb.Error:
            for r in rules:
                try:
                    con.execute("SELECT regexp_matches('', ?)", [r.pattern])
                except duckdb.Error as e:
                    raise CatalogueError(f"{p.name}: rule {r.id}: bad pattern: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    return rules


# Percent escapes of the ASCII characters attacks are made of: decoded even where the whole
# value is not valid UTF-8 once decoded (Windows-1251 search terms, binary probes).
_ASCII_ESCAPES = {f"%{b:02x}": chr(b) for b in b" \"'<>/.\\()=;%{}$&?#+@`|:[]!*,-_~^"}


def url_decoded(expr: str) -> str:
    """SQL: `expr` lower-cased and percent-decoded once, bytes that decode to no valid UTF-8 kept
    as escapes apart from the ASCII ones."""
    low = f"lower({expr})"
    ascii_only = low
    for code, ch in _ASCII_ESCAPES.items():
        ascii_only = f"replace({ascii_only}, {sql_literal(code)}, {sql_literal(ch)})"
    return f"coalesce(try(lower(url_decode({low}))), {ascii_only})"


def field_sql(field: str) -> str:
    """How a rule's field is computed from a request's columns (as the rules file describes)."""
    target = "path || coalesce('?' || query, '')"
    return {
        "target": url_decoded(url_decoded(f"coalesce({target}, '')")),
        "path": url_decoded(url_decoded("coalesce(path, '')")),
        "user_agent": "lower(coalesce(user_agent, ''))",
        "referer": "lower(coalesce(referer, ''))",
        "method": "coalesce(method, '')",
        # A malformed request keeps its raw text in path (method null); a good one is rebuilt. In
        # the plain CLF formats a host can only come from an absolute-form target (GET http://…),
        # which is rebuilt too (the scheme is not logged apart: http).
        "request_line": "lower(CASE WHEN method IS NULL THEN coalesce(path, '') "
        "WHEN host IS NOT NULL AND format IN ('combined', 'common') "
        "THEN method || ' http://' || host || coalesce(" + target + ", '') "
        "ELSE method || ' ' || coalesce(" + target + ", '') END)",
        "protocol": "lower(coalesce(protocol, ''))",
    }[field]


# The columns a field's value is computed from: its matches are found once per distinct value.
_KEYS = {
    "user_agent": "user_agent",
    "referer": "referer",
    "method": "method",
    "protocol": "protocol",
    "request_line": "path, query, method, host, format",
}


def _by_field(rules: list[AttackRule]) -> dict[str, list[AttackRule]]:
    by_field: dict[str, list[AttackRule]] = {}
    for r in rules:
        by_field.setdefault(r.field, []).append(r)
    # Header rules read the referer too: both are headers the client writes as it likes.
    if "user_agent" in by_field:
        by_field["referer"] = by_field["user_agent"]
    return by_field


def attack_fields(rules: list[AttackRule]) -> dict[str, list[str]]:
    """Per field the rules read, the request columns its value is computed from."""
    return {fld: [k.strip() for k in _KEYS.get(fld, "path, query, method").split(",")] for fld in _by_field(rules)}


def field_hits_sql(rules: list[AttackRule], fld: str, source: str) -> str:
    """SQL: the distinct values of field `fld` over `source` that some rule matches, as the field's
    columns and the ids of the rules (`ids`). One combined regex lets the benign ones through in
    one pass; each rule is tried on the few that matched."""
    rs = _by_field(rules)[fld]
    keys = ", ".join(attack_fields(rules)[fld])
    combined = "|".join(f"(?:{r.pattern})" for r in rs)
    cases = ", ".join(f"CASE WHEN regexp_matches(v, {sql_literal(r.pattern)}) THEN {sql_literal(r.id)} END" for r in rs)
    return f"""SELECT {keys}, list_filter([{cases}], lambda x: x IS NOT NULL) AS ids
               FROM (SELECT {keys}, {field_sql(fld)} AS v FROM (SELECT DISTINCT {keys} FROM {source}))
               WHERE regexp_matches(v, {sql_literal(combined)})"""


def attack_values(
    con: duckdb.DuckDBPyConnection,
    rules: list[AttackRule],
    source: str = "events",
    hits: Mapping[str, pa.Table] | None = None,
) -> None:
    """The rules over every distinct value of `source` (all requests), before the buckets: per
    field, `hits_<field>` (`field_hits_sql`), `attack_rule_meta` (each rule's threat and kind) and
    `probe_keys` (see `served.probe_keys`). `hits`: the fields' matches computed elsewhere
    (`field_hits_sql` run by another engine), by field, instead of over `source`."""
    for fld in _by_field(rules):
        if hits is None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE hits_{fld} AS {field_hits_sql(rules, fld, source)}")
        else:
            con.register("_hits_arrow", hits[fld])
            con.execute(f"CREATE OR REPLACE TEMP TABLE hits_{fld} AS SELECT * FROM _hits_arrow")
            con.unregister("_hits_arrow")
    con.register(
        "attack_rule_meta",
        pl.DataFrame(
            {"id": [r.id for r in rules], "threat": [r.threat for r in rules], "kind": [r.kind for r in rules]},
            schema={"id": pl.String, "threat": pl.String, "kind": pl.String},
        ),
    )
    probe_keys(con, [r for r in rules if r.kind == "probe"], field_sql("path"))


def attack_tables(rules: list[AttackRule]) -> list[str]:
    """The tables `attack_values` makes that a bucket's step (`attack_rows_sql`) reads."""
    return [f"hits_{fld}" for fld in _by_field(rules)] + ["attack_rule_meta", "probe_keys"]


def attack_rows_sql(rules: list[AttackRule], cfg: ThreatConfig, table: str, saved: str = "") -> dict[str, str]:
    """Per share of the clients (a bucket, all of whose requests `table` holds), one query each, in
    order: `attack_hits` (source, line_no, site, path, client_id, rid: every match of `table`'s
    requests, before the site's answers are read) and `served_readers` (`served.served_readers_sql`),
    which with `saved` reads the first from the table `saved + 'attack_hits'` (the caller keeps it
    so). Reads the tables of `attack_values`."""
    parts = []
    for fld, keys in attack_fields(rules).items():
        cond = " AND ".join(f"s.{k} IS NOT DISTINCT FROM h.{k}" for k in keys)
        parts.append(
            f"SELECT s.source, s.line_no, s.site, s.path, s.client_id, h.ids FROM {table} s JOIN hits_{fld} h ON {cond}"
        )
    union = (
        " UNION ALL ".join(parts)
        if parts
        else (
            "SELECT NULL::VARCHAR AS source, NULL::BIGINT AS line_no, NULL::VARCHAR AS site, NULL::VARCHAR AS path, "
            "NULL::VARCHAR AS client_id, []::VARCHAR[] AS ids WHERE false"
        )
    )
    hits = f"SELECT DISTINCT source, line_no, site, path, client_id, unnest(ids) AS rid FROM ({union})"
    return {
        "attack_hits": hits,
        "served_readers": served_readers_sql(cfg, table, f"{saved}attack_hits" if saved else f"({hits})"),
    }


def request_attacks(con: duckdb.DuckDBPyConnection, cfg: ThreatConfig, hits: str, readers: str) -> None:
    """Creates `request_attacks(source, line_no, client_id, path, attack_rules, attack_threats)` for
    the requests whose rules fire (requests with none are absent): every payload and exposure
    match, and the probe matches on paths the site does not serve. `hits` and `readers` hold every
    bucket's `attack_rows_sql` rows (a table or query each)."""
    probe_served(con, cfg, hits, readers)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE request_attacks AS
           SELECT source, line_no, any_value(h.client_id) AS client_id, any_value(h.path) AS path,
                  list_sort(list_distinct(list(h.rid))) AS attack_rules,
                  list_sort(list_distinct(list(m.threat))) AS attack_threats
           FROM {hits} h JOIN attack_rule_meta m ON m.id = h.rid
           WHERE NOT EXISTS (SELECT 1 FROM probe_served p
                             WHERE p.rid = h.rid AND p.site IS NOT DISTINCT FROM h.site
                               AND p.path IS NOT DISTINCT FROM h.path)
           GROUP BY source, line_no"""
    )


def request_findings(con: duckdb.DuckDBPyConnection, robots: bool = False) -> None:
    """Creates `request_findings(source, line_no, client_id, request_threats, request_reasons)`: what
    each request matched itself (its attack rules, `attack:<id>`; with `robots`, the paths robots.txt
    disallows it, from `request_robots`), apart from what its client did."""
    own = [
        "SELECT source, line_no, client_id, unnest(attack_threats) AS threat, NULL AS reason FROM request_attacks",
        "SELECT source, line_no, client_id, NULL, 'attack:' || unnest(attack_rules) FROM request_attacks",
    ]
    if robots:
        own += [
            "SELECT source, line_no, client_id, 'robots_violation', NULL FROM request_robots",
            "SELECT source, line_no, client_id, NULL, reason FROM request_robots",
        ]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE request_findings AS
            SELECT source, line_no, any_value(client_id) AS client_id,
                   list_sort(list_distinct(list(threat))) AS request_threats,
                   list_sort(list_distinct(list(reason))) AS request_reasons
            FROM ({" UNION ALL ".join(own)}) GROUP BY source, line_no"""
    )


def request_threat_summary(con: duckdb.DuckDBPyConnection, per_threat: int = 3) -> pl.DataFrame:
    """Per client: the threats its requests' attack rules name, with up to `per_threat` rule ids
    each as reasons (`client_id, threat, reason`)."""
    return con.sql(
        f"""SELECT client_id, threat, 'attack:' || rid AS reason
            FROM (SELECT a.client_id, m.threat, a.rid,
                         row_number() OVER (PARTITION BY a.client_id, m.threat ORDER BY count(*) DESC, a.rid) AS k
                  FROM (SELECT client_id, unnest(attack_rules) AS rid FROM request_attacks) a
                  JOIN attack_rule_meta m ON m.id = a.rid
                  GROUP BY a.client_id, m.threat, a.rid)
            WHERE k <= {per_threat} ORDER BY client_id, threat, k"""
    ).pl()
