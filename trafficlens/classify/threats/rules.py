"""Attack rules: the patterns of catalogues/attack_rules.yml, matched per request.

The rules read the request target (URL-decoded twice, lower-cased), its path, the raw request
line, the method, the protocol and the user agent (and referer). They run once per distinct value,
behind one combined regex that lets the benign majority through in a single pass; matches are
joined back.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import yaml

from trafficlens.classify.agents import SAFE_LOADER
from trafficlens.errors import CatalogueError
from trafficlens.schema import THREATS
from trafficlens.store import sql_literal

RULE_FIELDS = ("target", "path", "user_agent", "method", "request_line", "protocol")


@dataclass(frozen=True)
class AttackRule:
    id: str
    threat: str
    field: str
    pattern: str
    description: str = ""


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
            try:
                con.execute("SELECT regexp_matches('', ?)", [raw["pattern"]])
            except duckdb.Error as e:
                raise CatalogueError(f"{p.name}: rule {rid}: bad pattern: {str(e).splitlines()[0]}") from None
            rules.append(AttackRule(rid, raw["threat"], raw["field"], raw["pattern"], raw.get("description", "")))
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


def request_matches(con: duckdb.DuckDBPyConnection, rules: list[AttackRule], table: str = "sessionised") -> None:
    """Creates `request_attacks(source, line_no, attack_rules, attack_threats)` for the requests of
    `table` that match any rule (requests that match none are absent)."""
    by_field: dict[str, list[AttackRule]] = {}
    for r in rules:
        by_field.setdefault(r.field, []).append(r)
    parts = []
    # Header rules read the referer too: both are headers the client writes as it likes.
    if "user_agent" in by_field:
        by_field["referer"] = by_field["user_agent"]
    for fld, rs in by_field.items():
        value = field_sql(fld)
        keys = {
            "user_agent": "user_agent",
            "referer": "referer",
            "method": "method",
            "protocol": "protocol",
            "request_line": "path, query, method, host, format",
        }.get(fld, "path, query, method")
        combined = "|".join(f"(?:{r.pattern})" for r in rs)
        cases = ", ".join(
            f"CASE WHEN regexp_matches(v, {sql_literal(r.pattern)}) THEN {sql_literal(r.id)} END" for r in rs
        )
        # Distinct values first, the combined regex lets the benign ones through in one pass.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE hits_{fld} AS
                SELECT {keys}, list_filter([{cases}], lambda x: x IS NOT NULL) AS ids
                FROM (SELECT {keys}, {value} AS v FROM (SELECT DISTINCT {keys} FROM {table}))
                WHERE regexp_matches(v, {sql_literal(combined)})"""
        )
        cond = " AND ".join(f"s.{k.strip()} IS NOT DISTINCT FROM h.{k.strip()}" for k in keys.split(","))
        parts.append(f"SELECT s.source, s.line_no, h.ids FROM {table} s JOIN hits_{fld} h ON {cond}")
    con.register("attack_rule_meta", pl.DataFrame({"id": [r.id for r in rules], "threat": [r.threat for r in rules]}))
    union = (
        " UNION ALL ".join(parts)
        if parts
        else ("SELECT NULL::VARCHAR AS source, NULL::BIGINT AS line_no, []::VARCHAR[] AS ids WHERE false")
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE request_attacks AS
            SELECT source, line_no, list_sort(list_distinct(list(rid))) AS attack_rules,
                   list_sort(list_distinct(list(m.threat))) AS attack_threats
            FROM (SELECT source, line_no, unnest(ids) AS rid FROM ({union})) u
            JOIN attack_rule_meta m ON m.id = u.rid
            GROUP BY source, line_no"""
    )


def request_threat_summary(con: duckdb.DuckDBPyConnection, per_threat: int = 3) -> pl.DataFrame:
    """Per client: the threats its requests' attack rules name, with up to `per_threat` rule ids
    each as reasons (`client_id, threat, reason`)."""
    return con.sql(
        f"""SELECT client_id, threat, 'attack:' || rid AS reason
            FROM (SELECT s.client_id, m.threat, a.rid,
                         row_number() OVER (PARTITION BY s.client_id, m.threat ORDER BY count(*) DESC, a.rid) AS k
                  FROM sessionised s
                  JOIN (SELECT source, line_no, unnest(attack_rules) AS rid FROM request_attacks) a
                    USING (source, line_no)
                  JOIN attack_rule_meta m ON m.id = a.rid
                  GROUP BY s.client_id, m.threat, a.rid)
            WHERE k <= {per_threat}"""
    ).pl()
