"""events -> requests, sessions and clients, with labels and the reasons that decided them.

Work that depends only on a user agent (catalogue match, browser parsing) is done once per
distinct user agent, and verification once per distinct (address, claimed agent); DuckDB then
joins the labels back onto every request and writes the tables, streaming and partitioned.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.classify.agents import Catalogue, load_catalogue, match_user_agents
from trafficlens.classify.behaviour import FEATURES, client_features, session_features_sql
from trafficlens.classify.evidence import with_automation_score
from trafficlens.classify.labels import combine_behaviour, combine_threats, label_clients
from trafficlens.classify.model import load_model
from trafficlens.classify.pages import load_page_rules, page_type_sql
from trafficlens.classify.threats import (
    ThreatConfig,
    client_threats,
    load_attack_rules,
    request_findings,
    request_matches,
    request_threat_summary,
    robots_tokens,
    robots_violations,
)
from trafficlens.classify.verify import (
    attribute_addresses,
    attribute_recorded,
    default_ranges_dir,
    empty_ranges,
    load_ranges,
    verify_claims,
)
from trafficlens.errors import LakeError, OptionError
from trafficlens.progress import Stages
from trafficlens.schema import LABEL_SCHEMA, REQUEST_OWN_SCHEMA
from trafficlens.store import Lake, connect, glob_escape

SESSION_GAP_MINUTES = 30  # DESIGN.md: a session ends after 30 minutes without a request

# Columns every labelled table carries (DESIGN.md, "requests add"), in this order: the labels of a
# request, less the ids and page type each table has its own way.
LABELS = tuple(c for c in LABEL_SCHEMA if c not in ("client_id", "session_id", "page_type"))
# What clients add beyond the labels: what the user agent parser says of the browser.
CLIENT_EXTRAS = ("browser", "os", "device")


@dataclass
class ClassifySummary:
    """What one classify run wrote."""

    lake: Path
    requests: int
    sessions: int
    clients: int
    user_agents: int
    seconds: float
    ranges_loaded: int

    def describe(self) -> str:
        ranges = f"{self.ranges_loaded:,} published ranges" if self.ranges_loaded else "no published ranges loaded"
        return (
            f"{self.requests:,} requests, {self.sessions:,} sessions, {self.clients:,} clients "
            f"({self.user_agents:,} distinct user agents; {ranges}); {self.seconds:.1f}s"
        )


def _client_sql(recorded: bool) -> str:
    # A stable id (md5, not a library hash that may change between versions), so client ids in
    # reports and saved queries survive a re-classify. `recorded`: the events have `ip_ranges`
    # (written with --ip-privacy), one list per pseudonymised address.
    ranges = "any_value(ip_ranges)" if recorded else "NULL::VARCHAR[]"
    return f"""
        SELECT substr(md5(site || chr(31) || coalesce(client_ip, '-') || chr(31) || coalesce(user_agent, '-')), 1, 16)
                   AS client_id,
               site, client_ip, user_agent, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS requests,
               max(signature_agent) AS signature_agent, {ranges} AS ip_ranges
        FROM events GROUP BY site, client_ip, user_agent"""


def label_lake_clients(
    con: duckdb.DuckDBPyConnection,
    ranges: pl.DataFrame | None,
    rdns: bool,
    catalogue: Catalogue,
    stage: Stages | None = None,
) -> tuple[pl.DataFrame, int]:
    """Every client of the events view with its identity labels; also the distinct user agents."""
    stage = stage or Stages("classify", False)
    stage("grouping clients")
    recorded = "ip_ranges" in con.sql("SELECT * FROM events LIMIT 0").columns
    clients = con.sql(_client_sql(recorded)).pl()
    uas = clients["user_agent"].unique()
    stage(f"matching {uas.len():,} distinct user agents")
    ua_labels = match_user_agents(uas, catalogue)
    rng = ranges if ranges is not None else empty_ranges()
    claims = (
        clients.select("client_ip", "user_agent", "ip_ranges")
        .join(ua_labels.filter(pl.col("agent").is_not_null()), on="user_agent", nulls_equal=True)
        .select("client_ip", "agent", "operator", "verify_ranges", "verify_rdns", "ip_ranges")
        .unique(["client_ip", "agent"], maintain_order=True)
    )
    stage(f"verifying {claims.height:,} claimed identities")
    verified = verify_claims(claims, rng, rdns=rdns)
    browsers = clients.join(
        ua_labels.filter(~pl.col("automated")).select("user_agent"), on="user_agent", nulls_equal=True
    )
    attributed = attribute_addresses(browsers["client_ip"].unique(), rng) if rng.height else None
    if recorded:  # pseudonymised addresses: the ranges ingest recorded name the operator
        attributed = pl.concat([a for a in (attributed, attribute_recorded(browsers)) if a is not None])
    return label_clients(clients.drop("ip_ranges"), ua_labels, verified, attributed, catalogue), uas.len()


def check_options(
    *,
    ranges_dir: str | Path | None = None,
    pages: str | Path | None = None,
    robots: str | Path | None = None,
    threats: str | Path | None = None,
    model_dir: str | Path | None = None,
) -> None:
    """Refuse missing files and folders among classify's options, each in one line."""
    for opt, value in (("--pages", pages), ("--robots", robots), ("--threats", threats)):
        if value and not Path(value).is_file():
            raise OptionError(f"{opt} {value}: no such file")
    if model_dir and not Path(model_dir).is_dir():
        raise OptionError(f"--model-dir {model_dir}: no such folder")
    if ranges_dir and not Path(ranges_dir).is_dir():
        raise OptionError(
            f"--ranges {ranges_dir}: no such folder; `trafficlens ranges update --dir {ranges_dir}` fills one"
        )


def classify(
    lake: str | Path,
    ranges_dir: str | Path | None = None,
    rdns: bool = False,
    progress: bool | None = None,
    catalogue: Catalogue | None = None,
    pages: str | Path | None = None,
    behaviour: bool = True,
    threats: str | Path | None = None,
    robots: str | Path | None = None,
    attack_rules: str | Path | None = None,
    detect_threats: bool = True,
    memory_limit: str = "4GB",
    model_dir: str | Path | None = None,
) -> ClassifySummary:
    """Label every event of the lake and (re)write requests, sessions and clients.

    `behaviour=False` labels from identity alone and `detect_threats=False` skips the threat
    layer (training uses both to compute features).
    `ranges_dir` defaults to the folder `trafficlens ranges update` fills; without either, claims
    stay `declared`. `model_dir` is a folder `trafficlens train --out` wrote (default: the
    package's model). Re-running replaces the three tables whole, atomically.
    """
    started = time.perf_counter()
    check_options(ranges_dir=ranges_dir, pages=pages, robots=robots, threats=threats, model_dir=model_dir)
    store = Lake(lake)
    if not store.has_table("events"):
        raise LakeError(f"the lake at {store.root} has no events yet; run `trafficlens ingest LOG --lake {lake}` first")
    rdir = Path(ranges_dir) if ranges_dir else default_ranges_dir()
    ranges = load_ranges(rdir) if rdir is not None else None
    cat = catalogue or load_catalogue()
    page_rules = load_page_rules(pages)
    page_sql = page_type_sql(page_rules), page_type_sql(page_rules, what="endpoint")
    rules = load_attack_rules(attack_rules) if detect_threats else []
    cfg = ThreatConfig.load(threats)
    stage = Stages("classify", progress)
    model = None if not behaviour else load_model(None if model_dir is None else Path(model_dir))
    with store.locked():
        con = connect(store)
        tx = store.begin()
        try:
            # DuckDB spills what does not fit in memory into the run's own staging folder.
            con.execute("SET temp_directory = ?", [str(tx.dir / ".spill")])
            con.execute("SET memory_limit = ?", [memory_limit])
            con.execute("SET TimeZone = 'UTC'")  # partition dates are UTC days, as DESIGN.md says
            labelled, n_uas = label_lake_clients(con, ranges, rdns, cat, stage)
            con.register("client_identity", labelled.drop("signature_agent", "verify_ranges", "verify_rdns"))
            stage(f"sessions of {labelled.height:,} clients")
            _sessionise(con, page_sql)
            stage("behaviour features")
            feats = client_features(con)
            final = labelled
            if model is not None:
                stage(f"behaviour model on {feats.height:,} clients")
                final = combine_behaviour(labelled, model.predict(feats), model.nav_prior, model.nav_rates, feats)
            request_matches(con, rules, cfg)
            if detect_threats:
                stage("attack patterns and behavioural threats")
                con.register(
                    "client_browsers",
                    final.filter(pl.col("identity").is_in(["none", "undeclared"])).select("client_id"),
                )
                con.register(
                    "client_tools",
                    final.filter(
                        (pl.col("purpose") == "tool")
                        | pl.col("reasons").list.contains("ua:empty")
                        | pl.col("reasons").list.contains("ua:generic:bare_product")
                    ).select("client_id"),
                )
                found = [client_threats(con, cfg), request_threat_summary(con)]
                if robots:
                    found.append(robots_violations(con, robots, robots_tokens(final, cat)))
                final = combine_threats(final, pl.concat(found, how="vertical_relaxed"))
            request_findings(con, robots=bool(robots) and detect_threats)
            final = final.join(feats.select("client_id", *FEATURES), on="client_id", how="left")
            final = with_automation_score(final)
            con.register("client_labels", final.drop("signature_agent", "verify_ranges", "verify_rdns"))
            stage("writing requests, sessions and clients")
            _write_tables(con, Path(tx.dir))
            n_req = _count(con, tx.dir, "requests/*/*.parquet")
            n_sessions = _count(con, tx.dir, "sessions/*.parquet")
            shutil.rmtree(Path(tx.dir) / ".spill", ignore_errors=True)
            for t in ("requests", "sessions", "clients"):
                tx.replace_table(t)
            tx.commit()
        except BaseException:
            tx.abort()
            raise
        finally:
            con.close()
            stage.close()
        store.refresh_views()
    return ClassifySummary(
        store.root,
        n_req,
        n_sessions,
        labelled.height,
        n_uas,
        time.perf_counter() - started,
        0 if ranges is None else ranges.height,
    )


def _sessionise(con: duckdb.DuckDBPyConnection, page_sql: tuple[str, str]) -> None:
    """`sessionised`: every event with its client_id, session_id, page_type and endpoint."""
    gap = SESSION_GAP_MINUTES
    # Page rules are regexes: run once per distinct path and query, then joined back.
    con.execute(
        f"""CREATE TEMP TABLE page_types AS
            SELECT path, query, {page_sql[0]} AS page_type, {page_sql[1]} AS endpoint
            FROM (SELECT DISTINCT path, query FROM events)"""
    )
    # Sessions: a new one starts at a client's first request and after every gap of more than
    # 30 minutes; session ids are the client id and the session's number. `date` is the events
    # view's partition column, not an event field: requests get their own partition from `ts`.
    con.execute(
        f"""CREATE TEMP TABLE sessionised AS
            SELECT e.* EXCLUDE (prev, date), c.client_id,
                   c.client_id || '-' || sum(CASE WHEN prev IS NULL OR ts - prev > INTERVAL {gap} MINUTE
                                              THEN 1 ELSE 0 END)
                       OVER (PARTITION BY c.client_id ORDER BY ts, source, line_no ROWS UNBOUNDED PRECEDING)
                       AS session_id,
                   p.page_type, p.endpoint
            FROM (SELECT *, lag(ts) OVER (PARTITION BY site, client_ip, user_agent ORDER BY ts, source, line_no)
                            AS prev
                  FROM events) e
            JOIN client_identity c
              ON e.site = c.site AND e.client_ip IS NOT DISTINCT FROM c.client_ip
             AND e.user_agent IS NOT DISTINCT FROM c.user_agent
            JOIN page_types p ON e.path IS NOT DISTINCT FROM p.path AND e.query IS NOT DISTINCT FROM p.query"""
    )


def _write_tables(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    labels = ", ".join(f"c.{c}" for c in LABELS)
    for t in ("requests", "sessions", "clients"):
        (out / t).mkdir(parents=True, exist_ok=True)
    # A request carries its client's verdict (threats, malicious, reasons) and, apart, what it
    # matched itself (request_threats, request_reasons).
    own = ", ".join(f"coalesce(a.{c}, []) AS {c}" for c in REQUEST_OWN_SCHEMA)
    con.execute(
        f"""COPY (SELECT s.* EXCLUDE (client_id, session_id, page_type, endpoint), s.client_id, s.session_id,
                         s.page_type, {labels}, {own}, strftime(s.ts, '%Y-%m-%d') AS date
                  FROM sessionised s JOIN client_labels c USING (client_id)
                  LEFT JOIN request_findings a USING (source, line_no))
            TO ? (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{{i}}')""",
        [str(out / "requests")],
    )
    con.execute(
        f"""COPY (SELECT s.*, {labels}
                  FROM ({session_features_sql()}) s JOIN client_labels c USING (client_id))
            TO ? (FORMAT parquet)""",
        [str(out / "sessions" / "part-0.parquet")],
    )
    extras = ", ".join(f"c.{c}" for c in (*CLIENT_EXTRAS, *FEATURES))
    con.execute(
        f"""COPY (SELECT c.client_id, c.site, c.client_ip, c.user_agent, c.first_seen, c.last_seen, c.requests,
                         s.sessions, {labels}, c.automation_score, {extras}
                  FROM client_labels c
                  JOIN (SELECT client_id, count(DISTINCT session_id) AS sessions FROM sessionised GROUP BY 1) s
                  USING (client_id))
            TO ? (FORMAT parquet)""",
        [str(out / "clients" / "part-0.parquet")],
    )


def _count(con: duckdb.DuckDBPyConnection, folder: Path, pattern: str) -> int:
    """Rows of the Parquet files `pattern` finds under `folder` (its name escaped: DuckDB globs it)."""
    row = con.execute("SELECT count(*) FROM read_parquet(?)", [glob_escape(str(folder)) + "/" + pattern]).fetchone()
    return int(row[0]) if row else 0
