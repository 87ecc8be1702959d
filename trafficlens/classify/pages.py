"""Page types from request paths: configurable rules, applied as one SQL CASE over the lake.

The default rules (catalogues/page_rules.yml) fit shops, media and travel sites; a site gives its
own with `--pages FILE` in the same shape. The first rule that fits decides; none fitting is
`other`. Threat rules find a site's login, sign-up and payment endpoints through these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import yaml

from trafficlens.errors import CatalogueError
from trafficlens.schema import PAGE_TYPES
from trafficlens.store import sql_literal

ENDPOINTS = ("login", "signup", "payment")  # what threat rules watch


@dataclass(frozen=True)
class PageRule:
    page_type: str
    path: str
    query: str | None = None
    endpoint: str | None = None  # login, signup or payment: what threat rules watch


def default_rules_path() -> Path:
    return Path(str(resources.files("trafficlens") / "catalogues" / "page_rules.yml"))


def load_page_rules(path: str | Path | None = None) -> list[PageRule]:
    """Rules from a YAML list of {page_type, path, query?}; checked with DuckDB's regex engine."""
    p = Path(path) if path else default_rules_path()
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise CatalogueError(f"--pages {p}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise CatalogueError(f"--pages {p}: not valid YAML: {e}") from None
    if not isinstance(doc, list) or not doc:
        raise CatalogueError(f"--pages {p}: expected a list of rules like {{page_type: cart, path: '^/cart'}}")
    rules = []
    con = duckdb.connect()
    try:
        for i, raw in enumerate(doc, 1):
            if not isinstance(raw, dict) or "page_type" not in raw or "path" not in raw:
                raise CatalogueError(f"--pages {p}: rule {i} needs page_type and path")
            if raw["page_type"] not in PAGE_TYPES:
                raise CatalogueError(
                    f"--pages {p}: rule {i}: page_type {raw['page_type']!r} is not one of {', '.join(PAGE_TYPES)}"
                )
            if raw.get("endpoint") not in (None, *ENDPOINTS):
                raise CatalogueError(f"--pages {p}: rule {i}: endpoint must be one of {', '.join(ENDPOINTS)}")
            rule = PageRule(str(raw["page_type"]), str(raw["path"]), raw.get("query"), raw.get("endpoint"))
            for rx in filter(None, (rule.path, rule.query)):
                try:
                    con.execute("SELECT regexp_matches('', ?)", [rx])
                except duckdb.Error as e:
                    raise CatalogueError(f"--pages {p}: rule {i}: bad regex {rx!r}: {str(e).splitlines()[0]}") from None
            rules.append(rule)
    finally:
        con.close()
    return rules


def page_type_sql(rules: list[PageRule], path: str = "path", query: str = "query", what: str = "page_type") -> str:
    """A SQL expression giving the page type (or, with what="endpoint", the endpoint: null for
    most requests) of a row with `path` and `query` columns. The first rule that fits decides."""
    p, q = f"lower(coalesce({path}, ''))", f"lower(coalesce({query}, ''))"
    whens = []
    for r in rules:
        cond = f"regexp_matches({p}, {sql_literal(r.path)})"
        if r.query:
            cond += f" AND regexp_matches({q}, {sql_literal(r.query)})"
        if what == "endpoint":
            whens.append(f"WHEN {cond} THEN {sql_literal(r.endpoint) if r.endpoint else 'NULL'}")
        else:
            whens.append(f"WHEN {cond} THEN {sql_literal(r.page_type)}")
    return "CASE " + " ".join(whens) + (" ELSE NULL END" if what == "endpoint" else " ELSE 'other' END")
