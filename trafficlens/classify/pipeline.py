"""events -> requests, sessions and clients, with labels and the reasons that decided them.

Work that depends only on a user agent (catalogue match, browser parsing) is done once per
distinct user agent, and verification once per distinct (address, claimed agent); DuckDB then
joins the labels back onto every request and writes the tables, streaming and partitioned.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.classify.agents import STR_LIST, Catalogue, load_catalogue, match_user_agents
from trafficlens.classify.pages import load_page_rules, page_type_sql
from trafficlens.errors import LakeError
from trafficlens.store import Lake, connect

SESSION_GAP_MINUTES = 30  # DESIGN.md: a session ends after 30 minutes without a request

# Columns every labelled table carries (DESIGN.md, "requests add"), in this order.
LABELS = (
    "actor_class", "automated", "ai_driven", "purpose", "operator", "agent", "identity", "malicious",
    "threats", "confidence", "reasons",
)
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


class _Stages:
    """One line per stage on a terminal, silent otherwise."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\rclassify: {what} ({time.perf_counter() - self.t0:.1f}s)\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def ai_range_files(catalogue: Catalogue) -> set[str]:
    """Range files that hold an AI system's addresses (an AI entry names them for verification)."""
    return {f for a in catalogue.agents if a.ai_driven for f in a.verify_ranges}


def label_clients(clients: pl.DataFrame, ua_labels: pl.DataFrame, verified: pl.DataFrame | None,
                  attributed: pl.DataFrame | None, catalogue: Catalogue) -> pl.DataFrame:
    """Client rows (site, client_ip, user_agent, signature_agent, ...) -> the identity labels.

    `ua_labels` comes from match_user_agents; `verified` (client_ip, agent, identity, reasons)
    from the ranges layer; `attributed` (client_ip, operator, range_file) lists addresses inside
    an operator's published ranges. Precedence, each step with its reason:
    1. a `Signature-Agent` header naming a known agent's host: that agent, declared (a log
       cannot check the signature);
    2. a user agent naming a known agent: that agent; verified / spoofed / declared from its
       addresses;
    3. a browser user agent from inside an operator's ranges: that operator's agentic browser,
       undeclared;
    4. the user agent's generic labels (automated tools, empty or absurd user agents, browsers).
    """
    df = clients.join(ua_labels, on="user_agent", how="left", nulls_equal=True)

    # 1. Signed agents: the header names the agent's host (RFC 9421 / Web Bot Auth).
    hosts = catalogue.by_signature_agent()
    if hosts and "signature_agent" in df.columns:
        cat = catalogue.frame()
        sig = pl.DataFrame(
            {"_sig_host": list(hosts), "entry": list(hosts.values())}, schema={"_sig_host": pl.String, "entry": pl.Int32}
        ).join(cat, on="entry").drop("entry", "priority")
        host = (
            pl.col("signature_agent").str.strip_chars('" ').str.to_lowercase()
            .str.replace(r"^https?://", "").str.replace(r"[/:].*$", "")
        )
        df = df.with_columns(_sig_host=host).join(sig, on="_sig_host", how="left", suffix="_sig")
        signed = pl.col("agent_sig").is_not_null()
        df = df.with_columns(
            *[pl.when(signed).then(pl.col(f"{c}_sig")).otherwise(pl.col(c)).alias(c)
              for c in ("agent", "operator", "actor_class", "purpose", "ai_driven", "verify_ranges", "verify_rdns")],
            automated=pl.col("automated") | signed,
            reasons=pl.when(signed).then(
                pl.concat_list(pl.lit("header:signature_agent:") + pl.col("_sig_host"), pl.col("reasons"))
            ).otherwise(pl.col("reasons")),
            _signed=signed,
        ).drop([c for c in df.columns if c.endswith("_sig")] + ["_sig_host"])
    else:
        df = df.with_columns(_signed=pl.lit(False))

    # 2. Verification of claims.
    claims = pl.col("agent").is_not_null()
    if verified is not None and verified.height:
        df = df.join(
            verified.select("client_ip", "agent", pl.col("identity").alias("_vid"), pl.col("reasons").alias("_vr")),
            on=["client_ip", "agent"], how="left", nulls_equal=True,
        )
    else:
        df = df.with_columns(_vid=pl.lit(None, pl.String), _vr=pl.lit(None, STR_LIST))

    # 3. Browsers inside an operator's published ranges.
    if attributed is not None and attributed.height:
        df = df.join(
            attributed.select("client_ip", pl.col("operator").alias("_aop"), pl.col("range_file").alias("_arf")),
            on="client_ip", how="left",
        )
    else:
        df = df.with_columns(_aop=pl.lit(None, pl.String), _arf=pl.lit(None, pl.String))
    ai_files = sorted(ai_range_files(catalogue))
    browser = ~pl.col("automated").fill_null(False)
    in_ranges = browser & pl.col("_aop").is_not_null()
    ai_range = in_ranges & pl.col("_arf").is_in(ai_files)

    identity = (
        pl.when(pl.col("_signed")).then(pl.lit("declared"))
        .when(claims).then(pl.coalesce(pl.col("_vid"), pl.lit("declared")))
        .when(in_ranges).then(pl.lit("undeclared"))
        # Tools and generic bots say they are automated but not who they are.
        .when(pl.col("automated").fill_null(False)).then(pl.lit("declared"))
        .otherwise(pl.lit("none"))
    )
    spoofed = identity == "spoofed"
    empty = pl.lit([], STR_LIST)
    reasons = pl.concat_list(
        pl.col("reasons").fill_null(empty),
        pl.when(claims).then(pl.col("_vr").fill_null(empty)).otherwise(empty),
        pl.when(in_ranges).then(pl.concat_list(pl.lit("ip:operator_range:") + pl.col("_arf"))).otherwise(empty),
        pl.when(spoofed).then(pl.lit(["threat:spoofed_identity"], STR_LIST)).otherwise(empty),
    )
    confidence = (
        pl.when(spoofed | (identity == "verified")).then(0.99)
        .when(pl.col("_signed")).then(0.95)
        .when(claims).then(0.9)
        .when(in_ranges).then(0.8)
        .when(pl.col("automated").fill_null(False)).then(0.8)
        # A browser user agent alone says little: behaviour (a later layer) decides more.
        .otherwise(0.6)
    )
    return df.with_columns(
        identity=identity,
        actor_class=pl.when(in_ranges).then(pl.lit("agent")).otherwise(pl.col("actor_class").fill_null("human")),
        automated=pl.col("automated").fill_null(False) | in_ranges,
        ai_driven=pl.col("ai_driven").fill_null(False) | ai_range,
        purpose=pl.when(ai_range).then(pl.lit("ai_agent")).when(in_ranges).then(pl.lit("unknown"))
        .otherwise(pl.col("purpose").fill_null("human")),
        operator=pl.coalesce(pl.col("operator"), pl.col("_aop")),
        malicious=spoofed,
        threats=pl.when(spoofed).then(pl.lit(["spoofed_identity"], STR_LIST)).otherwise(empty),
        confidence=confidence,
        reasons=reasons,
    ).drop("_vid", "_vr", "_aop", "_arf", "_signed")


def _client_sql() -> str:
    # A stable id (md5, not a library hash that may change between versions), so client ids in
    # reports and saved queries survive a re-classify.
    return """
        SELECT substr(md5(site || chr(31) || coalesce(client_ip, '-') || chr(31) || coalesce(user_agent, '-')), 1, 16)
                   AS client_id,
               site, client_ip, user_agent, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS requests,
               max(signature_agent) AS signature_agent
        FROM events GROUP BY site, client_ip, user_agent"""


def label_lake_clients(con: duckdb.DuckDBPyConnection, ranges: pl.DataFrame | None, rdns: bool,
                       catalogue: Catalogue, stage: _Stages | None = None) -> tuple[pl.DataFrame, int]:
    """Every client of the events view with its identity labels; also the distinct user agents."""
    from trafficlens import ranges as R

    stage = stage or _Stages(False)
    stage("grouping clients")
    clients = con.sql(_client_sql()).pl()
    uas = clients["user_agent"].unique()
    stage(f"matching {uas.len():,} distinct user agents")
    ua_labels = match_user_agents(uas, catalogue)
    rng = ranges if ranges is not None else R.empty_ranges()
    claims = (
        clients.select("client_ip", "user_agent")
        .join(ua_labels.filter(pl.col("agent").is_not_null()), on="user_agent", nulls_equal=True)
        .select("client_ip", "agent", "operator", "verify_ranges", "verify_rdns")
        .unique(["client_ip", "agent"], maintain_order=True)
    )
    stage(f"verifying {claims.height:,} claimed identities")
    verified = R.verify_claims(claims, rng, rdns=rdns)
    browsers = clients.join(ua_labels.filter(~pl.col("automated")).select("user_agent"), on="user_agent",
                            nulls_equal=True)
    attributed = R.attribute_addresses(browsers["client_ip"].unique(), rng) if rng.height else None
    return label_clients(clients, ua_labels, verified, attributed, catalogue), uas.len()


def classify(lake: str | Path, ranges_dir: str | Path | None = None, rdns: bool = False,
             progress: bool | None = None, catalogue: Catalogue | None = None,
             pages: str | Path | None = None) -> ClassifySummary:
    """Label every event of the lake and (re)write requests, sessions and clients.

    `ranges_dir` defaults to the folder `trafficlens ranges update` fills; without either, claims
    stay `declared`. Re-running replaces the three tables whole, atomically.
    """
    from trafficlens import ranges as R

    started = time.perf_counter()
    store = Lake(lake)
    if not store.has_table("events"):
        raise LakeError(f"the lake at {store.root} has no events yet; run `trafficlens ingest LOG --lake {lake}` first")
    rdir = Path(ranges_dir) if ranges_dir else R.default_ranges_dir()
    if ranges_dir and not Path(ranges_dir).is_dir():
        raise LakeError(f"--ranges {ranges_dir}: no such folder; `trafficlens ranges update --dir {ranges_dir}` fills one")
    ranges = R.load_ranges(rdir) if rdir is not None else None
    cat = catalogue or load_catalogue()
    page_sql = page_type_sql(load_page_rules(pages))
    stage = _Stages(progress)
    with store.locked():
        con = connect(store)
        try:
            labelled, n_uas = label_lake_clients(con, ranges, rdns, cat, stage)
            con.register("client_labels", labelled.drop("signature_agent", "verify_ranges", "verify_rdns"))
            tx = store.begin()
            try:
                stage(f"writing requests and sessions of {labelled.height:,} clients")
                _write_tables(con, Path(tx.dir), page_sql)
                n_req = con.execute(f"SELECT count(*) FROM read_parquet('{tx.dir}/requests/*/*.parquet')").fetchone()[0]
                n_sessions = con.execute(f"SELECT count(*) FROM read_parquet('{tx.dir}/sessions/*.parquet')").fetchone()[0]
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
        store.root, n_req, n_sessions, labelled.height, n_uas, time.perf_counter() - started,
        0 if ranges is None else ranges.height,
    )


def _write_tables(con: duckdb.DuckDBPyConnection, out: Path, page_sql: str) -> None:
    gap = SESSION_GAP_MINUTES
    labels = ", ".join(f"c.{c}" for c in LABELS)
    # Sessions: a new one starts at a client's first request and after every gap of more than
    # 30 minutes; session ids are the client id and the session's number.
    con.execute(
        f"""CREATE TEMP TABLE sessionised AS
            SELECT e.*, c.client_id,
                   c.client_id || '-' || sum(CASE WHEN prev IS NULL OR ts - prev > INTERVAL {gap} MINUTE
                                              THEN 1 ELSE 0 END)
                       OVER (PARTITION BY c.client_id ORDER BY ts, source, line_no ROWS UNBOUNDED PRECEDING)
                       AS session_id
            FROM (SELECT *, lag(ts) OVER (PARTITION BY site, client_ip, user_agent ORDER BY ts, source, line_no)
                            AS prev
                  FROM events) e
            JOIN client_labels c
              ON e.site = c.site AND e.client_ip IS NOT DISTINCT FROM c.client_ip
             AND e.user_agent IS NOT DISTINCT FROM c.user_agent"""
    )
    for t in ("requests", "sessions", "clients"):
        (out / t).mkdir(parents=True, exist_ok=True)
    con.execute(
        f"""COPY (SELECT s.* EXCLUDE (prev, client_id, session_id), s.client_id, s.session_id,
                         {page_sql} AS page_type, {labels}, strftime(s.ts, '%Y-%m-%d') AS date
                  FROM sessionised s JOIN client_labels c USING (client_id))
            TO '{out / "requests"}' (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{{i}}')"""
    )
    con.execute(
        f"""COPY (SELECT s.session_id, s.client_id, s.site, s.client_ip, s.user_agent, s.start, s."end",
                         s.requests, s.bytes, s.distinct_paths, {labels}
                  FROM (SELECT session_id, client_id, any_value(site) AS site, any_value(client_ip) AS client_ip,
                               any_value(user_agent) AS user_agent, min(ts) AS start, max(ts) AS "end",
                               count(*) AS requests, sum(bytes) AS bytes, count(DISTINCT path) AS distinct_paths
                        FROM sessionised GROUP BY session_id, client_id) s
                  JOIN client_labels c USING (client_id))
            TO '{out / "sessions" / "part-0.parquet"}' (FORMAT parquet)"""
    )
    extras = ", ".join(f"c.{c}" for c in CLIENT_EXTRAS)
    con.execute(
        f"""COPY (SELECT c.client_id, c.site, c.client_ip, c.user_agent, c.first_seen, c.last_seen, c.requests,
                         s.sessions, {labels}, {extras}
                  FROM client_labels c
                  JOIN (SELECT client_id, count(DISTINCT session_id) AS sessions FROM sessionised GROUP BY 1) s
                  USING (client_id))
            TO '{out / "clients" / "part-0.parquet"}' (FORMAT parquet)"""
    )
