"""events -> requests, sessions and clients, with labels and the reasons that decided them.

Work that depends only on a user agent (catalogue match, browser parsing) is done once per
distinct user agent, and verification once per distinct (address, claimed agent); DuckDB then
joins the labels back onto every request and writes the tables, streaming and partitioned.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.classify.agents import Catalogue, load_catalogue, match_user_agents
from trafficlens.classify.behaviour import EVIDENCE_INPUTS, FEATURES, ORDERED_COLUMNS, session_features_sql
from trafficlens.classify.buckets import ROWS_PER_BUCKET, bucket_count, bucket_of, classify_bucket, shared_aggregates
from trafficlens.classify.evidence import with_automation_score
from trafficlens.classify.labels import client_signatures, combine_behaviour, combine_threats, label_clients
from trafficlens.classify.model import BehaviourModel, load_model
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
    GeoDatabases,
    HostingRanges,
    KeyDirectory,
    attribute_addresses,
    attribute_recorded,
    default_ranges_dir,
    empty_hosting,
    empty_ranges,
    geo_for,
    hosting_for,
    hosting_recorded,
    load_geo,
    load_hosting,
    load_keys,
    load_ranges,
    verify_claims,
    verify_signatures,
)
from trafficlens.classify.verify.geo import geo_paths
from trafficlens.errors import LakeError, OptionError
from trafficlens.progress import Stages
from trafficlens.schema import LABEL_SCHEMA, NETWORK_SCHEMA, REQUEST_OWN_SCHEMA
from trafficlens.store import Lake, connect, glob_escape, sql_literal

# Columns every labelled table carries (DESIGN.md, "requests add"), in this order: the labels of a
# request, less the ids and page type each table has its own way.
LABELS = tuple(c for c in LABEL_SCHEMA if c not in ("client_id", "session_id", "page_type"))
# What clients add beyond the labels: what the user agent parser says of the browser, and where
# its address is (hosting provider, ASN, country).
CLIENT_EXTRAS = ("browser", "os", "device", *NETWORK_SCHEMA)


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
    hosting: HostingRanges | None = None,
    geo: GeoDatabases | None = None,
    keys: KeyDirectory | None = None,
) -> tuple[pl.DataFrame, int]:
    """Every client of the events view with its identity labels and where its address is
    (NETWORK_SCHEMA: hosting provider, ASN, country; looked up once per distinct address); also
    the distinct user agents. Logged Web Bot Auth signatures are checked against `keys` (default:
    the key directories `trafficlens keys update` cached)."""
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
    signatures = _checked_signatures(con, keys)
    labelled = label_clients(clients.drop("ip_ranges"), ua_labels, verified, attributed, catalogue, signatures)
    net = network_of(clients["client_ip"], hosting, geo, clients if recorded else None)
    return labelled.join(net, on="client_ip", how="left"), uas.len()


def _checked_signatures(con: duckdb.DuckDBPyConnection, keys: KeyDirectory | None) -> pl.DataFrame | None:
    """Per client, what its logged HTTP message signatures (Web Bot Auth) say, checked against the
    signers' cached key directories; None where the log records no signature."""
    columns = set(con.sql("SELECT * FROM events LIMIT 0").columns)
    if not {"signature", "signature_input", "signature_agent"} <= columns:
        return None  # a lake ingested before these headers were read
    signed = con.sql(
        """SELECT site, client_ip, user_agent, ts, host, method, path, query, signature_agent, signature,
                  signature_input
           FROM events WHERE signature IS NOT NULL AND signature_input IS NOT NULL"""
    ).pl()
    if signed.height == 0:
        return None
    return client_signatures(verify_signatures(signed, keys if keys is not None else load_keys()))


def network_of(
    addresses: pl.Series, hosting: HostingRanges | None, geo: GeoDatabases | None, recorded: pl.DataFrame | None = None
) -> pl.DataFrame:
    """`client_ip` and NETWORK_SCHEMA for each distinct address: the hosting provider whose
    published ranges hold it, and its ASN, AS organisation and country from the databases given.
    `recorded` (client_ip, ip_ranges): what ingest recorded of pseudonymised addresses, whose
    provider it names where the address itself cannot be looked up."""
    ips = addresses.drop_nulls().unique()
    out = hosting_for(ips, hosting if hosting is not None else empty_hosting())
    if recorded is not None:
        known = hosting_recorded(recorded).rename({"hosting": "_recorded"})
        out = (
            out.join(known, on="client_ip", how="left")
            .with_columns(hosting=pl.coalesce("hosting", "_recorded"))
            .drop("_recorded")
        )
    if geo is not None and geo.sources:
        out = out.join(geo_for(ips, geo), on="client_ip", how="left")
    return out.with_columns(
        [pl.lit(None, t).alias(c) for c, t in NETWORK_SCHEMA.items() if c not in out.columns]
    ).select("client_ip", *NETWORK_SCHEMA)


def check_options(
    *,
    ranges_dir: str | Path | None = None,
    pages: str | Path | None = None,
    robots: str | Path | None = None,
    threats: str | Path | None = None,
    model_dir: str | Path | None = None,
    geo: Sequence[str | Path] | None = None,
    keys_dir: str | Path | None = None,
) -> None:
    """Refuse missing files and folders among classify's options, each in one line, before any work."""
    for opt, value in (("--pages", pages), ("--robots", robots), ("--threats", threats)):
        if value and not Path(value).is_file():
            raise OptionError(f"{opt} {value}: no such file")
    if model_dir and not Path(model_dir).is_dir():
        raise OptionError(f"--model-dir {model_dir}: no such folder")
    if ranges_dir and not Path(ranges_dir).is_dir():
        raise OptionError(
            f"--ranges {ranges_dir}: no such folder; `trafficlens ranges update --dir {ranges_dir}` fills one"
        )
    if keys_dir and not Path(keys_dir).is_dir():
        raise OptionError(f"--keys {keys_dir}: no such folder; `trafficlens keys update --dir {keys_dir}` fills one")
    geo_paths(geo)


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
    memory_limit: str = "1GB",
    model_dir: str | Path | None = None,
    bucket_rows: int = ROWS_PER_BUCKET,
    geo: Sequence[str | Path] | None = None,
    keys_dir: str | Path | None = None,
) -> ClassifySummary:
    """Label every event of the lake and (re)write requests, sessions and clients.

    `behaviour=False` labels from identity alone and `detect_threats=False` skips the threat
    layer (training uses both to compute features).
    `ranges_dir` defaults to the folder `trafficlens ranges update` fills; without either, claims
    stay `declared`. `model_dir` is a folder `trafficlens train --out` wrote (default: the
    package's model). Re-running replaces the three tables whole, atomically. The hosting
    providers' range files are read from the ranges folder too; `geo` names ASN and country
    databases (.mmdb, iptoasn TSV, or folders of them; default: the cache's geo folder);
    `keys_dir` the signers' key directories Web Bot Auth signatures are checked against (default:
    the folder `trafficlens keys update` fills).

    Per-client work runs in buckets of about `bucket_rows` requests (`trafficlens.classify.buckets`),
    so that memory is set by `bucket_rows` and `memory_limit` (DuckDB's, spilling beyond it into the
    run's staging folder), not by the length of the log; the labels are the same for any size.
    """
    started = time.perf_counter()
    check_options(
        ranges_dir=ranges_dir,
        pages=pages,
        robots=robots,
        threats=threats,
        model_dir=model_dir,
        geo=geo,
        keys_dir=keys_dir,
    )
    store = Lake(lake)
    if not store.has_table("events"):
        raise LakeError(f"the lake at {store.root} has no events yet; run `trafficlens ingest LOG --lake {lake}` first")
    geo_dbs = load_geo(geo)
    # The model (and scikit-learn's import) loads on a thread while DuckDB groups the clients.
    loading = ThreadPoolExecutor(1)
    model_future = loading.submit(load_model, None if model_dir is None else Path(model_dir)) if behaviour else None
    try:
        rdir = Path(ranges_dir) if ranges_dir else default_ranges_dir()
        ranges = load_ranges(rdir) if rdir is not None else None
        hosting = load_hosting(rdir) if rdir is not None else None
        keys = load_keys(keys_dir)
        cat = catalogue or load_catalogue()
        page_rules = load_page_rules(pages)
        page_sql = page_type_sql(page_rules), page_type_sql(page_rules, what="endpoint")
        rules = load_attack_rules(attack_rules) if detect_threats else []
        cfg = ThreatConfig.load(threats)
        stage = Stages("classify", progress)
        with store.locked():
            con = connect(store)
            tx = store.begin()
            try:
                work = Path(tx.dir) / ".work"
                # DuckDB spills what does not fit in memory into the run's own staging folder.
                con.execute("SET temp_directory = ?", [str(Path(tx.dir) / ".spill")])
                con.execute("SET memory_limit = ?", [memory_limit])
                con.execute("SET TimeZone = 'UTC'")  # partition dates are UTC days, as DESIGN.md says
                # Rows are written by bucket and read by key: their order in a file means nothing,
                # and keeping it would hold whole results in memory.
                con.execute("SET preserve_insertion_order = false")
                labelled, n_uas = label_lake_clients(con, ranges, rdns, cat, stage, hosting, geo_dbs, keys)
                rows = int(labelled["requests"].sum())
                buckets = bucket_count(rows, bucket_rows)
                labelled = labelled.with_columns(bucket=bucket_of(pl.col("client_id"), buckets))
                con.register("client_identity", labelled.drop("signature_agent", "verify_ranges", "verify_rdns"))
                stage(f"page types, {buckets:,} bucket{'s' if buckets > 1 else ''} of clients")
                _stage_events(con, page_sql, work, buckets)
                model = model_future.result() if model_future is not None else None
                readings = _run_buckets(con, work, buckets, model, stage)
                final = labelled.drop("bucket")
                if model is not None:
                    pred = readings.drop(*EVIDENCE_INPUTS)
                    final = combine_behaviour(final, pred, model.nav_prior, model.nav_rates, readings)
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
                final = with_automation_score(final)
                con.register(
                    "client_labels",
                    final.drop("signature_agent", "verify_ranges", "verify_rdns").with_columns(
                        bucket=bucket_of(pl.col("client_id"), buckets)
                    ),
                )
                stage("writing requests, sessions and clients")
                _write_tables(con, Path(tx.dir), work)
                n_req = _count(con, tx.dir, "requests/*/*.parquet")
                n_sessions = _count(con, tx.dir, "sessions/*.parquet")
                con.close()
                for leftover in (".spill", ".work"):
                    shutil.rmtree(Path(tx.dir) / leftover, ignore_errors=True)
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
    finally:
        loading.shutdown(wait=True, cancel_futures=True)
        geo_dbs.close()
    return ClassifySummary(
        store.root,
        n_req,
        n_sessions,
        labelled.height,
        n_uas,
        time.perf_counter() - started,
        0 if ranges is None else ranges.height,
    )


def _stage_events(con: duckdb.DuckDBPyConnection, page_sql: tuple[str, str], work: Path, buckets: int) -> None:
    """`bucketed`: every event with its client_id, bucket, page_type and endpoint; written to
    `work`, one folder per bucket, where there is more than one bucket; and the shared aggregates
    the buckets read."""
    # Page rules are regexes: run once per distinct path and query, then joined back.
    con.execute(
        f"""CREATE TEMP TABLE page_types AS
            SELECT path, query, {page_sql[0]} AS page_type, {page_sql[1]} AS endpoint
            FROM (SELECT DISTINCT path, query FROM events)"""
    )
    # `date` is the events view's partition column, not an event field: requests get their own
    # partition from `ts`.
    joined = """SELECT e.* EXCLUDE (date), c.client_id, c.bucket, p.page_type, p.endpoint
        FROM events e
        JOIN client_identity c
          ON e.site = c.site AND e.client_ip IS NOT DISTINCT FROM c.client_ip
         AND e.user_agent IS NOT DISTINCT FROM c.user_agent
        JOIN page_types p ON e.path IS NOT DISTINCT FROM p.path AND e.query IS NOT DISTINCT FROM p.query"""
    if buckets == 1:
        con.execute(f"CREATE TEMP VIEW bucketed AS {joined}")
    else:
        work.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY ({joined}) TO ? (FORMAT parquet, PARTITION_BY (bucket), FILENAME_PATTERN 'part-{{i}}')",
            [str(work / "events")],
        )
        files = sql_literal(glob_escape(str(work / "events")) + "/*/*.parquet")
        con.execute(f"CREATE TEMP VIEW bucketed AS SELECT * FROM read_parquet({files}, hive_partitioning = true)")
    shared_aggregates(con, "bucketed")


def _run_buckets(
    con: duckdb.DuckDBPyConnection, work: Path, buckets: int, model: BehaviourModel | None, stage: Stages
) -> pl.DataFrame:
    """Every bucket in turn: its sessionised requests, sessions (without labels) and features
    written to `work`, its clients' readings returned; then `sessionised` is a view over them all."""
    readings = []
    for sub in ("sessionised", "sessions", "features"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    units = stage.units(buckets, "bucket")
    for b in range(buckets):
        source = f"(SELECT * EXCLUDE (bucket) FROM bucketed WHERE bucket = {b})"
        result = classify_bucket(con, source, model, "bucket_sessionised")
        con.execute(
            f"COPY (SELECT * EXCLUDE ({', '.join(ORDERED_COLUMNS)}) FROM bucket_sessionised) TO ? (FORMAT parquet)",
            [str(work / "sessionised" / f"part-{b}.parquet")],
        )
        con.execute(
            f"COPY ({session_features_sql('bucket_sessionised')}) TO ? (FORMAT parquet)",
            [str(work / "sessions" / f"part-{b}.parquet")],
        )
        con.unregister("bucket_sessionised")
        result.features.write_parquet(work / "features" / f"part-{b}.parquet")
        readings.append(result.readings)
        units.advance()
    units.close()
    files = sql_literal(glob_escape(str(work / "sessionised")) + "/*.parquet")
    con.execute(f"CREATE TEMP VIEW sessionised AS SELECT * FROM read_parquet({files})")
    return pl.concat(readings, how="diagonal_relaxed")


def _write_tables(con: duckdb.DuckDBPyConnection, out: Path, work: Path) -> None:
    """requests, sessions and clients, one bucket at a time (each joined to its own clients'
    labels only): memory stays that of a bucket; each bucket's files sit beside the others'."""
    labels = ", ".join(f"c.{c}" for c in LABELS)
    for t in ("requests", "sessions", "clients"):
        (out / t).mkdir(parents=True, exist_ok=True)
    # A request carries its client's verdict (threats, malicious, reasons) and, apart, what it
    # matched itself (request_threats, request_reasons).
    own = ", ".join(f"coalesce(a.{c}, []) AS {c}" for c in REQUEST_OWN_SCHEMA)
    extras = ", ".join(f"c.{c}" for c in CLIENT_EXTRAS) + ", " + ", ".join(f"f.{c}" for c in FEATURES)
    for part_file in sorted((work / "sessionised").glob("part-*.parquet")):
        b = part_file.stem.removeprefix("part-")
        mine = f"(SELECT * EXCLUDE (bucket) FROM client_labels WHERE bucket = {int(b)})"

        def part(name: str, b: str = b) -> str:
            return glob_escape(str(work / name / f"part-{b}.parquet"))

        con.execute(
            f"""COPY (SELECT s.* EXCLUDE (client_id, session_id, page_type, endpoint), s.client_id, s.session_id,
                             s.page_type, {labels}, {own}, strftime(s.ts, '%Y-%m-%d') AS date
                      FROM read_parquet(?) s JOIN {mine} c USING (client_id)
                      LEFT JOIN request_findings a USING (source, line_no))
                TO ? (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{b}-{{i}}', OVERWRITE_OR_IGNORE)""",
            [part("sessionised"), str(out / "requests")],
        )
        con.execute(
            f"""COPY (SELECT s.*, {labels} FROM read_parquet(?) s JOIN {mine} c USING (client_id))
                TO ? (FORMAT parquet)""",
            [part("sessions"), str(out / "sessions" / f"part-{b}.parquet")],
        )
        con.execute(
            f"""COPY (SELECT c.client_id, c.site, c.client_ip, c.user_agent, c.first_seen, c.last_seen, c.requests,
                             s.sessions, {labels}, c.automation_score, {extras}
                      FROM {mine} c
                      JOIN (SELECT client_id, count(*) AS sessions FROM read_parquet(?) GROUP BY 1) s USING (client_id)
                      LEFT JOIN read_parquet(?) f USING (client_id))
                TO ? (FORMAT parquet)""",
            [part("sessions"), part("features"), str(out / "clients" / f"part-{b}.parquet")],
        )


def _count(con: duckdb.DuckDBPyConnection, folder: Path, pattern: str) -> int:
    """Rows of the Parquet files `pattern` finds under `folder` (its name escaped: DuckDB globs it)."""
    row = con.execute("SELECT count(*) FROM read_parquet(?)", [glob_escape(str(folder)) + "/" + pattern]).fetchone()
    return int(row[0]) if row else 0
