"""events -> requests, sessions and clients, with labels and the reasons that decided them.

Work that depends only on a user agent (catalogue match, browser parsing) is done once per
distinct user agent, verification once per distinct (address, claimed agent), page types once per
distinct path and query. Everything else per client runs in client buckets
(`trafficlens.classify.buckets`), one at a time, each writing its share to the run's work folder:
its clients' identity labels, sessions, features, readings and the behavioural threats' per-client
rows and its requests' attack-rule matches; then its labels with behaviour; then, after the threats
of groups of clients (over those rows and matches), its requests, sessions and clients. What
crosses buckets is per distinct value or per client, not per request (but for the few requests an
attack rule matches): the shared aggregates, the attack rules' matches per distinct value, the
sums the evidence reads, the per-client rows and the threat findings.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import queue
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from trafficlens.classify import spark as on_spark
from trafficlens.classify.agents import Catalogue, load_catalogue, match_user_agents
from trafficlens.classify.behaviour import (
    ADDRESS_COUNTS,
    EVIDENCE_INPUTS,
    FEATURES,
    LOG_CTES,
    ORDERED_COLUMNS,
    SHARED_TABLES,
    address_counts_sql,
    session_features_sql,
)
from trafficlens.classify.buckets import (
    ROWS_PER_BUCKET,
    address_tables,
    bucket_count,
    classify_bucket,
    fits_in_memory,
    heavy_requests,
    load_shared,
    release_sessionised,
    save_threat_rows,
    shared_aggregates,
    threat_rows,
)
from trafficlens.classify.evidence import site_norm_parts, site_norms, with_automation_score
from trafficlens.classify.labels import (
    client_signatures,
    cohort_counts,
    combine_behaviour,
    combine_threats,
    label_clients,
)
from trafficlens.classify.model import BehaviourModel, load_model
from trafficlens.classify.pages import load_page_rules, page_type_sql
from trafficlens.classify.threats import (
    REQUEST_ROBOTS,
    REQUEST_ROBOTS_COLUMNS,
    AttackRule,
    RobotsSource,
    RobotsVersion,
    ThreatConfig,
    attack_tables,
    attack_values,
    client_threats,
    judge_robots,
    load_attack_rules,
    load_robots,
    request_attacks,
    request_findings,
    request_threat_summary,
    robots_tokens,
    robots_violations,
    write_robots_versions,
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
from trafficlens.spark import check_engine, spark_session
from trafficlens.store import STAGING_VARIABLE, Area, Lake, connect, glob_escape, sql_literal

# Columns every labelled table carries (DESIGN.md, "requests add"), in this order: the labels of a
# request, less the ids and page type each table has its own way.
LABELS = tuple(c for c in LABEL_SCHEMA if c not in ("client_id", "session_id", "page_type"))
# What clients add beyond the labels: what the user agent parser says of the browser, and where
# its address is (hosting provider, ASN, country).
CLIENT_EXTRAS = ("browser", "os", "device", *NETWORK_SCHEMA)


@dataclass
class ClassifySummary:
    """What one classify run wrote."""

    lake: str | Path
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


def _clients_table(con: duckdb.DuckDBPyConnection, rows: int, bucket_rows: int) -> tuple[bool, int]:
    """Creates `clients` in DuckDB, one row per client of the events view, each with its bucket
    and ADDRESS_COUNTS (what its features read of the clients sharing its address and network);
    returns whether the events record `ip_ranges` (written with --ip-privacy, one list per
    pseudonymised address) and the number of buckets. A table, not a frame: a long log has
    millions of clients."""
    recorded = "ip_ranges" in con.sql("SELECT * FROM events LIMIT 0").columns
    ranges = "any_value(ip_ranges)" if recorded else "NULL::VARCHAR[]"
    n = bucket_count(rows, bucket_rows)
    # A stable id (md5, not a library hash that may change between versions), so client ids in
    # reports and saved queries survive a re-classify; its bucket is `buckets.bucket_of`'s, but for
    # a client of more than `buckets.heavy_requests`, which gets one of its own.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE clients AS
            WITH g AS MATERIALIZED (
                SELECT substr(md5(site || chr(31) || coalesce(client_ip, '-') || chr(31)
                                  || coalesce(user_agent, '-')), 1, 16) AS client_id,
                       site, client_ip, user_agent, min(ts) AS first_seen, max(ts) AS last_seen,
                       count(*) AS requests, max(signature_agent) AS signature_agent, {ranges} AS ip_ranges
                FROM events GROUP BY site, client_ip, user_agent),
            h AS (SELECT client_id, row_number() OVER (ORDER BY client_id) - 1 AS k
                  FROM g WHERE requests > {heavy_requests(bucket_rows)}),
            b AS (SELECT g.*, coalesce({n} + h.k, ('0x' || substr(client_id, 1, 8))::UBIGINT % {n})::INTEGER AS bucket
                  FROM g LEFT JOIN h USING (client_id))
            {address_counts_sql("b")}"""
    )
    ((heavy,),) = con.execute(f"SELECT count(*) FROM clients WHERE bucket >= {n}").fetchall()
    return recorded, n + int(heavy)


@dataclass
class Identity:
    """What the identity labels of any share of the clients read: the labels of every distinct
    user agent, the checked claims of every (address, claimed agent), the logged signatures, and
    the lookups of where an address is. Small, and computed once per run (`identity_inputs`)."""

    ua_labels: pl.DataFrame
    verified: pl.DataFrame
    ranges: pl.DataFrame
    catalogue: Catalogue
    signatures: pl.DataFrame | None
    recorded: bool
    hosting: HostingRanges | None
    geo: GeoDatabases | None

    def label(self, clients: pl.DataFrame) -> pl.DataFrame:
        """Client rows (`clients` table columns) -> their identity labels and where each address
        is (NETWORK_SCHEMA: hosting provider, ASN, country; looked up once per distinct address)."""
        browsers = clients.join(
            self.ua_labels.filter(~pl.col("automated")).select("user_agent"), on="user_agent", nulls_equal=True
        )
        attributed = attribute_addresses(browsers["client_ip"].unique(), self.ranges) if self.ranges.height else None
        if self.recorded:  # pseudonymised addresses: the ranges ingest recorded name the operator
            attributed = pl.concat([a for a in (attributed, attribute_recorded(browsers)) if a is not None])
        labelled = label_clients(
            clients.drop("ip_ranges"), self.ua_labels, self.verified, attributed, self.catalogue, self.signatures
        )
        net = network_of(clients["client_ip"], self.hosting, self.geo, clients if self.recorded else None)
        return labelled.join(net, on="client_ip", how="left")


def identity_inputs(
    con: duckdb.DuckDBPyConnection,
    ranges: pl.DataFrame | None,
    rdns: bool,
    catalogue: Catalogue,
    stage: Stages,
    recorded: bool,
    hosting: HostingRanges | None = None,
    geo: GeoDatabases | None = None,
    keys: KeyDirectory | None = None,
) -> Identity:
    """The distinct user agents of the `clients` table matched against the catalogue, every
    (address, claimed agent) verified, and logged Web Bot Auth signatures checked against `keys`
    (default: the key directories `trafficlens keys update` cached)."""
    uas = con.sql("SELECT DISTINCT user_agent FROM clients").pl()["user_agent"]
    stage(f"matching {uas.len():,} distinct user agents")
    ua_labels = match_user_agents(uas, catalogue)
    rng = ranges if ranges is not None else empty_ranges()
    con.register(
        "claimed_user_agents",
        ua_labels.filter(pl.col("agent").is_not_null()).select(
            "user_agent", "agent", "operator", "verify_ranges", "verify_rdns"
        ),
    )
    # The operator and what to verify against are the agent's catalogue entry's, the same for every
    # user agent naming it; an address's recorded ranges are the same on each of its rows.
    claims = con.sql(
        """SELECT c.client_ip, u.agent, any_value(u.operator) AS operator,
                  any_value(u.verify_ranges) AS verify_ranges, any_value(u.verify_rdns) AS verify_rdns,
                  any_value(c.ip_ranges) AS ip_ranges
           FROM clients c JOIN claimed_user_agents u ON c.user_agent IS NOT DISTINCT FROM u.user_agent
           GROUP BY c.client_ip, u.agent ORDER BY c.client_ip, u.agent"""
    ).pl()
    con.unregister("claimed_user_agents")
    stage(f"verifying {claims.height:,} claimed identities")
    verified = verify_claims(claims, rng, rdns=rdns)
    return Identity(ua_labels, verified, rng, catalogue, _checked_signatures(con, keys), recorded, hosting, geo)


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
    robots: RobotsSource | None = None,
    threats: str | Path | None = None,
    model_dir: str | Path | None = None,
    geo: Sequence[str | Path] | None = None,
    keys_dir: str | Path | None = None,
) -> None:
    """Refuse missing files and folders among classify's options, each in one line, before any work."""
    for opt, value in (("--pages", pages), ("--threats", threats)):
        if value and not Path(value).is_file():
            raise OptionError(f"{opt} {value}: no such file")
    if robots:
        load_robots(robots)  # a missing file, a folder without dated versions, a bad date: said now
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
    robots: RobotsSource | None = None,
    attack_rules: str | Path | None = None,
    detect_threats: bool = True,
    memory_limit: str = "700MB",
    model_dir: str | Path | None = None,
    bucket_rows: int = ROWS_PER_BUCKET,
    bucket_workers: int = 1,
    geo: Sequence[str | Path] | None = None,
    keys_dir: str | Path | None = None,
    engine: str = "local",
    master: str | None = None,
    spark_conf: Sequence[str] = (),
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
    `engine="spark"` runs the buckets on Apache Spark (`trafficlens.classify.spark`): on `master`
    (default `local[*]`, or the session already active) with `spark_conf` (`key=value` strings).

    Per-client work runs in buckets of about `bucket_rows` requests (`trafficlens.classify.buckets`),
    so that memory is set by `bucket_rows` and `memory_limit` (DuckDB's, spilling beyond it into the
    run's staging folder), not by the length of the log; the labels are the same for any size.
    `bucket_workers` buckets are worked on at once, each on a DuckDB connection and a share of the
    cores of its own (the local engine): faster where one bucket leaves cores idle, a bucket's memory
    more for each; the labels are the same for any number.
    """
    started = time.perf_counter()
    check_engine(engine, master, spark_conf)
    if bucket_workers < 1:
        raise OptionError(f"--bucket-workers {bucket_workers}: give 1 or more")
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
        raise LakeError(f"the lake at {store.name} has no events yet; run `trafficlens ingest LOG --lake {lake}` first")
    geo_dbs = load_geo(geo)
    # The model (and scikit-learn's import) loads on a thread while DuckDB groups the clients.
    loading = ThreadPoolExecutor(1)
    engines = contextlib.ExitStack()
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
        spark = engines.enter_context(spark_session(master, spark_conf)) if engine == "spark" else None
        with store.locked():
            con = connect(store)
            tx = store.begin()
            # On Spark with a lake at a URI (and no shared staging folder named), the driver and the
            # tasks share the run's work area on the lake's storage, and the tasks write their
            # share of the tables into the lake itself.
            area = None
            if spark is not None and store.remote is not None and not os.environ.get(STAGING_VARIABLE):
                area = store.remote.area(f"_work/{tx.run_id}")
            try:
                work = Path(tx.dir) / ".work"
                spill = Path(tx.dir) / ".spill"
                _configure(con, memory_limit, spill)
                rows = _count_events(con)
                if spark is None:
                    stage("grouping clients")
                    recorded, buckets = _clients_table(con, rows, bucket_rows)
                    ids: Sequence[int] = range(buckets)
                else:
                    stage("grouping clients on Spark")
                    events, clients, recorded, ids = _spark_clients(spark, con, store, work, rows, bucket_rows, area)
                    buckets = max(ids, default=0) + 1
                    no_clients = None  # each bucket Spark wrote holds clients
                identity = identity_inputs(con, ranges, rdns, cat, stage, recorded, hosting, geo_dbs, keys)
                if detect_threats:
                    stage("attack patterns, once per distinct value")
                    attack_values(con, rules, "events", None if spark is None else on_spark.attack_hits(events, rules))
                if spark is None:
                    stage(f"page types, {buckets:,} bucket{'s' if buckets > 1 else ''} of clients")
                    _stage_events(con, page_sql, work, buckets)
                    no_clients = _stage_clients(con, work, buckets)
                else:
                    stage(f"sessions and behaviour of {len(ids):,} bucket{'s' if len(ids) != 1 else ''} on Spark")
                    columns = _event_columns(con)
                    on_spark.run_buckets(
                        spark,
                        events,
                        clients,
                        columns,
                        page_sql,
                        work,
                        model_dir,
                        behaviour,
                        threat_rows(cfg, rules) if detect_threats else {},
                        _threat_tables(con, rules) if detect_threats else {},
                        area,
                    )
                model = model_future.result() if model_future is not None else None
                per_bucket = threat_rows(cfg, rules, "bucket_sessionised") if detect_threats else {}
                staged = work if spark is None else None
                with _workers(con, bucket_workers, len(ids), memory_limit, spill, staged, rules) as workers:
                    sums = _run_buckets(
                        workers,
                        work,
                        ids,
                        buckets,
                        bucket_rows,
                        model,
                        identity,
                        stage,
                        per_bucket,
                        no_clients,
                        spark is not None,
                    )
                    if model is not None:
                        _combine_behaviour(workers, work, ids, model, sums, stage)
                found = pl.DataFrame(schema={"client_id": pl.String, "threat": pl.String, "reason": pl.String})
                if detect_threats:
                    stage("attack patterns and behavioural threats")
                    found = _threats(con, work, ids, cfg, rules, robots, cat, spark, area)
                else:
                    con.execute(
                        "CREATE TEMP TABLE request_attacks (source VARCHAR, line_no BIGINT, client_id VARCHAR, "
                        "path VARCHAR, attack_rules VARCHAR[], attack_threats VARCHAR[])"
                    )
                request_findings(con, robots=bool(robots) and detect_threats)
                _drop_tables_but(con, "request_findings")
                if spark is None:
                    _write_tables(
                        con, Path(tx.dir), work, ids, found if detect_threats else None, stage, bucket_workers
                    )
                else:
                    final_labels(work, ids, found if detect_threats else None)
                    con.execute("COPY request_findings TO ? (FORMAT parquet)", [str(work / "findings.parquet")])
                    stage(f"writing requests, sessions and clients of {len(ids):,} buckets on Spark")
                    if area is not None:
                        area.put(work / "final", "final")
                        area.put(work / "findings.parquet", "findings.parquet")
                    into = None if store.remote is None else store.remote.area()
                    written = on_spark.write_buckets(
                        spark, Path(tx.dir), work, ids, memory_limit, area, into, tx.run_id
                    )
                    tx.uploaded.update({rel: stored for rel, stored, _ in written})
                if area is None:
                    n_req = _count(con, tx.dir, "requests/*/*.parquet")
                    n_sessions = _count(con, tx.dir, "sessions/*.parquet")
                else:  # the tasks' files are in the lake already
                    n_req = sum(n for rel, _, n in written if rel.startswith("requests/"))
                    n_sessions = sum(n for rel, _, n in written if rel.startswith("sessions/"))
                con.close()
                for leftover in (".spill", ".work"):
                    shutil.rmtree(Path(tx.dir) / leftover, ignore_errors=True)
                if robots and detect_threats:
                    write_robots_versions(load_robots(robots), Path(tx.dir) / "robots_txt" / "versions.parquet")
                # robots_txt too: a run without --robots leaves no versions it did not judge by.
                for t in ("requests", "sessions", "clients", "robots_txt"):
                    tx.replace_table(t)
                tx.commit()
            except BaseException:
                if spark is not None:  # no task may write into the staging folder once it is gone
                    spark.sparkContext.cancelAllJobs()
                tx.abort()
                raise
            finally:
                if area is not None:
                    area.remove()
                con.close()
                stage.close()
            store.refresh_views()
    finally:
        loading.shutdown(wait=True, cancel_futures=True)
        geo_dbs.close()
        engines.close()
    return ClassifySummary(
        store.location,
        n_req,
        n_sessions,
        sums.clients,
        identity.ua_labels.height,
        time.perf_counter() - started,
        0 if ranges is None else ranges.height,
    )


def _configure(con: duckdb.DuckDBPyConnection, memory_limit: str, spill: Path) -> None:
    """The settings of a run's DuckDB connections (its own and its bucket workers')."""
    # DuckDB spills what does not fit in memory into the run's own staging folder.
    con.execute("SET temp_directory = ?", [str(spill)])
    con.execute("SET memory_limit = ?", [memory_limit])
    # What a stage freed goes back to the system while the next runs: without it DuckDB's
    # allocator keeps the peak of every stage over the whole log until the run ends.
    con.execute("SET allocator_background_threads = true")
    con.execute("SET TimeZone = 'UTC'")  # partition dates are UTC days, as DESIGN.md says
    # Rows are written by bucket and read by key: their order in a file means nothing, and keeping
    # it would hold whole results in memory.
    con.execute("SET preserve_insertion_order = false")
    # A write by partition keeps a buffer per partition and thread: small ones keep its memory
    # bounded whatever the number of partitions (and it runs faster).
    con.execute(f"SET partitioned_write_flush_threshold = {FLUSH_ROWS}")


_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}

C = TypeVar("C")
T = TypeVar("T")


def _share_of(memory_limit: str, n: int) -> str:
    """DuckDB's `memory_limit` split between `n` connections (as given where it is not a size)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", memory_limit)
    unit = m.group(2).lower() if m else ""
    if n == 1 or m is None or unit not in _BYTES:
        return memory_limit
    return f"{int(float(m.group(1)) * _BYTES[unit] / n)}B"


@contextlib.contextmanager
def _workers(
    con: duckdb.DuckDBPyConnection,
    workers: int,
    buckets: int,
    memory_limit: str,
    spill: Path,
    staged: Path | None = None,
    rules: list[AttackRule] | None = None,
) -> Iterator[list[duckdb.DuckDBPyConnection]]:
    """Connections to work on `buckets` buckets side by side (`_each_bucket`): `con` alone for one
    worker or one bucket, else `workers` of their own, DuckDB's memory and the cores shared out
    between them. With `staged` (the run's work folder, its events staged by `_stage_events`), each
    also holds what a bucket's classification reads besides its own rows: the staged events
    (`bucketed`), the shared aggregates and the tables of the attack rules' matches (`rules`)."""
    n = min(workers, buckets)
    if n <= 1:
        yield [con]
        return
    tables: dict[str, pa.Table] = {}
    if staged is not None:
        tables = {name: con.sql(f"SELECT * FROM {SHARED_TABLES[name]}").to_arrow_table() for name in LOG_CTES}
    attacks = _threat_tables(con, rules) if staged is not None and rules else {}
    opened: list[duckdb.DuckDBPyConnection] = []
    try:
        for i in range(n):
            w = duckdb.connect()
            opened.append(w)
            w.execute("SET enable_progress_bar = false")
            _configure(w, _share_of(memory_limit, n), spill / f"worker-{i}")
            # More threads than cores in all ran slower, not faster.
            w.execute(f"SET threads = {max(1, (os.cpu_count() or 1) // n)}")
            if staged is not None:
                w.execute(f"CREATE TEMP VIEW bucketed AS {_staged_sql(staged)}")
                load_shared(w, tables)
                for name, table in attacks.items():
                    w.register(name, table)
        yield opened
    finally:
        for w in opened:
            w.close()


def _each_bucket(
    cons: Sequence[C], ids: Sequence[int], work: Callable[[C, int], T], done: Callable[[int, T], None]
) -> None:
    """`work(con, b)` for each bucket of `ids`, on a thread per item of `cons` (DuckDB, polars and
    the models' trees release the interpreter's lock), and `done(b, result)` on this thread in the
    order of `ids`, so that what is summed over buckets is summed in one order."""
    if len(cons) == 1:
        for b in ids:
            done(b, work(cons[0], b))
        return
    free: queue.SimpleQueue[C] = queue.SimpleQueue()
    for c in cons:
        free.put(c)

    def run(b: int) -> T:
        c = free.get()
        try:
            return work(c, b)
        finally:
            free.put(c)

    pool = ThreadPoolExecutor(len(cons), thread_name_prefix="trafficlens-bucket")
    try:
        for b, future in zip(ids, [pool.submit(run, b) for b in ids], strict=True):
            done(b, future.result())
    except BaseException:
        for c in cons:  # an error or an interrupt: the buckets running stop now, not at their end
            if isinstance(c, duckdb.DuckDBPyConnection):
                c.interrupt()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _staged_sql(work: Path) -> str:
    """SQL: the events `_stage_events` wrote to `work`, with their bucket and shard."""
    files = sql_literal(glob_escape(str(work / "events")) + "/*/*.parquet")
    return f"SELECT * FROM read_parquet({files}, hive_partitioning = true)"


def _stage_events(con: duckdb.DuckDBPyConnection, page_sql: tuple[str, str], work: Path, buckets: int) -> None:
    """`bucketed`: every event with its client_id, bucket, page_type and endpoint; written to
    `work`, by shard (`_per_shard` buckets a folder), where there is more than one bucket; and the
    shared aggregates the buckets read."""
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
        JOIN clients c
          ON e.site = c.site AND e.client_ip IS NOT DISTINCT FROM c.client_ip
         AND e.user_agent IS NOT DISTINCT FROM c.user_agent
        JOIN page_types p ON e.path IS NOT DISTINCT FROM p.path AND e.query IS NOT DISTINCT FROM p.query"""
    if buckets == 1:
        con.execute(f"CREATE TEMP VIEW bucketed AS {joined}")
    else:
        # One write opens a file and its buffers per partition, more than DuckDB's memory limit
        # holds for hundreds of buckets: beyond SHARDS buckets, a folder holds several (a shard),
        # and a bucket's read skips the other shards and filters its own rows out of its shard's
        # (cheaper than writing every event a second time, by bucket). Its buffers are smaller
        # than other writes': beside the clients' table, larger ones spilled to disk on a long log.
        work.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET partitioned_write_flush_threshold = {FLUSH_ROWS // 4}")
        query = f"SELECT *, bucket // {_per_shard(buckets)} AS shard FROM ({joined})"
        _write_by(con, query, "shard", work / "events", "part")
        con.execute(f"SET partitioned_write_flush_threshold = {FLUSH_ROWS}")
        con.execute(f"CREATE TEMP VIEW bucketed AS {_staged_sql(work)}")
    shared_aggregates(con, "bucketed", LOG_CTES)


def _stage_clients(con: duckdb.DuckDBPyConnection, work: Path, buckets: int) -> pl.DataFrame | None:
    """The clients table written to `work` by bucket and dropped from memory: a long log has
    millions of clients, and each bucket reads only its own. Returns the clients of a bucket none
    fell into (no rows; None for one bucket, which reads the table)."""
    if buckets == 1:
        return None
    none = con.sql("SELECT * EXCLUDE (bucket) FROM clients LIMIT 0").pl()
    _write_by(con, "SELECT * FROM clients", "bucket", work / "clients", "part")
    con.execute("DROP TABLE clients")
    return none


def _bucket_clients(
    con: duckdb.DuckDBPyConnection, work: Path, b: int, buckets: int, none: pl.DataFrame | None
) -> pl.DataFrame:
    """The clients of bucket `b`: the `clients` table's columns, less the bucket (`none`, a bucket
    no client fell into)."""
    if buckets == 1:
        return con.sql("SELECT * EXCLUDE (bucket) FROM clients").pl()
    folder = work / "clients" / f"bucket={b}"
    if none is not None and not folder.is_dir():
        return none
    files = sql_literal(glob_escape(str(folder)) + "/*.parquet")
    return con.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = false)").pl()


def _event_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The events view's columns, less its partition column."""
    return [c for c in con.sql("SELECT * FROM events LIMIT 0").columns if c != "date"]


def _spark_clients(
    spark: Any,
    con: duckdb.DuckDBPyConnection,
    store: Lake,
    work: Path,
    rows: int,
    bucket_rows: int,
    area: Area | None = None,
) -> tuple[Any, Any, bool, list[int]]:
    """The lake's events on Spark with each request's client id and bucket, and the clients grouped
    there, written to `work` by bucket (the local engine's `_clients_table` and `_stage_clients`)
    and seen by `con` as `clients`. Returns the events, the clients (as written), whether the
    events record ranges, and the buckets that hold clients."""
    columns = _event_columns(con)
    recorded = "ip_ranges" in columns
    n = bucket_count(rows, bucket_rows)
    events = on_spark.with_clients(on_spark.events_frame(spark, store, columns, n), n)
    # Read twice (the heavy clients, then written): kept rather than grouped again.
    grouped = on_spark.clients_frame(events, recorded).persist()
    clients, events = on_spark.heavy_buckets(grouped, events, n, bucket_rows)
    folder = work / "clients"
    where = str(folder) if area is None else area.uri_of("clients")
    clients.write.partitionBy("bucket").parquet(where)
    grouped.unpersist()
    if area is not None:
        area.get("clients", folder)
    ids = sorted(int(d.name.split("=", 1)[1]) for d in folder.iterdir() if d.name.startswith("bucket="))
    files = sql_literal(glob_escape(str(folder)) + "/*/*.parquet")
    con.execute(f"CREATE TEMP VIEW clients AS SELECT * FROM read_parquet({files}, hive_partitioning = true)")
    return events, spark.read.parquet(where), recorded, ids


# The most partitions one write opens at once (see `_stage_events`).
SHARDS = 48
# Rows a write by partition buffers per partition and thread before writing them out.
FLUSH_ROWS = 16_384


def _per_shard(buckets: int) -> int:
    """How many buckets' events one folder of the staged events holds."""
    return max(1, math.ceil(buckets / SHARDS))


def _bucket_events(b: int, buckets: int) -> str:
    """SQL: bucket `b`'s staged events (`_stage_events`), its shard's folder alone read."""
    shard = f"shard = {b // _per_shard(buckets)} AND " if buckets > 1 else ""
    return f"(SELECT * EXCLUDE (bucket{', shard' if buckets > 1 else ''}) FROM bucketed WHERE {shard}bucket = {b})"


def _write_by(con: duckdb.DuckDBPyConnection, query: str, key: str, folder: Path, prefix: str) -> None:
    """Rows of `query` written under `folder`, a folder per value of `key` (hive style)."""
    con.execute(
        f"""COPY ({query}) TO ? (FORMAT parquet, PARTITION_BY ({key}), FILENAME_PATTERN '{prefix}-{{i}}',
            OVERWRITE_OR_IGNORE)""",
        [str(folder)],
    )


def _save(frame: pl.DataFrame, path: Path) -> None:
    """A frame written to the run's work folder, through Arrow: its errors say what the system
    said (a full disk among them), where polars' would not."""
    pq.write_table(frame.to_arrow(), path)


def _labels_of(work: Path, name: str, b: int) -> Path:
    return work / name / f"part-{b}.parquet"


@dataclass
class WholeLog:
    """What the buckets add up to: per site and per (site, user agent), the sums the behaviour
    evidence reads (`evidence.site_norm_parts`, `labels.cohort_counts`), and the clients."""

    norms: list[pl.DataFrame]
    cohorts: list[pl.DataFrame]
    clients: int = 0


def _run_buckets(
    workers: Sequence[duckdb.DuckDBPyConnection],
    work: Path,
    ids: Sequence[int],
    buckets: int,
    bucket_rows: int,
    model: BehaviourModel | None,
    identity: Identity,
    stage: Stages,
    rows: Mapping[str, str],
    no_clients: pl.DataFrame | None,
    computed: bool = False,
) -> WholeLog:
    """Every bucket, on `workers` (`_workers`) side by side: its clients' identity labels, its
    sessionised requests, sessions (without labels), features and model readings written to `work`,
    and the rows the threat layer reads of it (`rows`: `buckets.threat_rows` over
    `bucket_sessionised`). Returns the number of clients and the sums the behaviour evidence reads.
    `computed`: another engine ran the buckets (`classify_bucket`) and wrote their files; only the
    identity labels and the sums are left."""
    for sub in ("sessionised", "sessions", "features", "readings", "identity", *rows):
        (work / sub).mkdir(parents=True, exist_ok=True)
    units = stage.units(len(ids), "bucket")
    sums = WholeLog([], [])

    def one(con: duckdb.DuckDBPyConnection, b: int) -> tuple[int, pl.DataFrame | None, pl.DataFrame | None]:
        mine = _bucket_clients(con, work, b, buckets, no_clients)
        labelled = identity.label(mine.drop(ADDRESS_COUNTS, strict=False))
        _save(labelled, _labels_of(work, "identity", b))
        if computed:
            readings = pl.read_parquet(_labels_of(work, "readings", b), glob=False)
        else:
            load_shared(con, address_tables(mine))
            in_memory = fits_in_memory(int(mine["requests"].sum()), bucket_rows)
            readings = _classify_here(con, work, b, buckets, model, rows, in_memory)
        clients = mine.height
        del mine
        norms = cohorts = None
        if model is not None:
            ident = labelled.select("client_id", "site", "user_agent", "identity")
            norms = site_norm_parts(ident.join(readings, on="client_id", how="left"))
            cohorts = cohort_counts(ident, readings.drop(*EVIDENCE_INPUTS))
        release_memory()
        return clients, norms, cohorts

    def done(b: int, result: tuple[int, pl.DataFrame | None, pl.DataFrame | None]) -> None:
        clients, norms, cohorts = result
        sums.clients += clients
        if norms is not None and cohorts is not None:
            sums.norms.append(norms)
            sums.cohorts.append(cohorts)
        units.advance(note="identity labels" if computed else "sessions and behaviour")

    _each_bucket(workers, ids, one, done)
    units.close()
    return sums


def _classify_here(
    con: duckdb.DuckDBPyConnection,
    work: Path,
    b: int,
    buckets: int,
    model: BehaviourModel | None,
    rows: Mapping[str, str],
    in_memory: bool = True,
) -> pl.DataFrame:
    """Bucket `b` classified in this process (`classify_bucket`, `in_memory` as there), its files
    and its threats' per-client `rows` (folder -> query over `bucket_sessionised`) written to
    `work`; returns its readings."""
    result = classify_bucket(con, _bucket_events(b, buckets), model, "bucket_sessionised", in_memory)

    def write(folder: str, table: str) -> None:
        con.execute(f"COPY {table} TO ? (FORMAT parquet)", [str(_labels_of(work, folder, b))])

    save_threat_rows(con, rows, write)
    con.execute(
        f"COPY (SELECT * EXCLUDE ({', '.join(ORDERED_COLUMNS)}) FROM bucket_sessionised) TO ? (FORMAT parquet)",
        [str(_labels_of(work, "sessionised", b))],
    )
    con.execute(
        f"COPY ({session_features_sql('bucket_sessionised')}) TO ? (FORMAT parquet)",
        [str(_labels_of(work, "sessions", b))],
    )
    release_sessionised(con, "bucket_sessionised")
    _save(result.features, _labels_of(work, "features", b))
    _save(result.readings, _labels_of(work, "readings", b))
    return result.readings


def _combine_behaviour(
    workers: Sequence[duckdb.DuckDBPyConnection],
    work: Path,
    ids: Sequence[int],
    model: BehaviourModel,
    sums: WholeLog,
    stage: Stages,
) -> None:
    """Each bucket's identity labels combined with its behaviour evidence (`labels/`), against the
    sites' norms and the user-agent cohorts of every bucket (small sums, gathered as they ran); a
    bucket a thread of `workers`."""
    norms = site_norms(parts=pl.concat(sums.norms))
    counts = pl.concat(sums.cohorts)
    (work / "labels").mkdir(parents=True, exist_ok=True)
    units = stage.units(len(ids), "bucket")

    def one(_: duckdb.DuckDBPyConnection, b: int) -> None:
        readings = pl.read_parquet(_labels_of(work, "readings", b), glob=False)
        combined = combine_behaviour(
            pl.read_parquet(_labels_of(work, "identity", b), glob=False),
            readings.drop(*EVIDENCE_INPUTS),
            model.nav_prior,
            model.nav_rates,
            readings,
            cohorts=counts,
            norms=norms,
        )
        _save(combined, _labels_of(work, "labels", b))
        release_memory()

    _each_bucket(workers, ids, one, lambda b, _: units.advance(note="behaviour evidence"))
    units.close()


def _threat_tables(con: duckdb.DuckDBPyConnection, rules: list[AttackRule]) -> dict[str, pa.Table]:
    """The tables of `threats.attack_values`, for engines that pass Arrow to their buckets."""
    return {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in attack_tables(rules)}


def _final_labels(work: Path, b: int) -> Path:
    """A bucket's labels before threats: with behaviour where a model read them, else identity's."""
    combined = _labels_of(work, "labels", b)
    return combined if combined.exists() else _labels_of(work, "identity", b)


def _threats(
    con: duckdb.DuckDBPyConnection,
    work: Path,
    ids: Sequence[int],
    cfg: ThreatConfig,
    rules: list[AttackRule],
    robots: RobotsSource | None,
    cat: Catalogue,
    spark: Any = None,
    area: Area | None = None,
) -> pl.DataFrame:
    """`client_id, threat, reason`: what the threat layer finds over what each bucket gave it
    (`buckets.threat_rows`), reading which clients are browsers and which are tools from the
    buckets' labels; and `request_attacks`, the attack rules that fire on each request."""
    rows = {
        name.rsplit("/", 1)[1]: f"read_parquet({sql_literal(glob_escape(str(work / name)) + '/*.parquet')})"
        for name in threat_rows(cfg, rules)
    }
    con.execute(f"CREATE OR REPLACE TEMP TABLE attack_hits AS SELECT * FROM {rows.pop('attack_hits')}")
    request_attacks(con, cfg, "attack_hits", rows.pop("served_readers"))
    parts = ", ".join(sql_literal(glob_escape(str(_final_labels(work, b)))) for b in ids)
    labels = f"read_parquet([{parts}])"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE client_browsers AS SELECT client_id FROM {labels} "
        "WHERE identity IN ('none', 'undeclared')"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE client_tools AS SELECT client_id FROM {labels}
            WHERE purpose = 'tool' OR list_contains(reasons, 'ua:empty')
               OR list_contains(reasons, 'ua:generic:bare_product')"""
    )
    # Each group's threats over every bucket's per-client rows, not over every request again.
    found = [client_threats(con, cfg, rows=rows), request_threat_summary(con)]
    if robots:
        found.append(_robots(con, work, ids, load_robots(robots), cat, spark, area))
    return pl.concat(found, how="vertical_relaxed")


def _robots(
    con: duckdb.DuckDBPyConnection,
    work: Path,
    ids: Sequence[int],
    versions: list[RobotsVersion],
    cat: Catalogue,
    spark: Any = None,
    area: Area | None = None,
) -> pl.DataFrame:
    """robots.txt judged bucket by bucket (`judge_bucket_robots`; in Spark's tasks on that engine):
    each bucket's clients' tokens from its labels (small), then the disallowed requests of each
    bucket, the only requests read back (`request_robots`); returns each client's finding."""
    for sub in ("robots_tokens", "robots"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for b in ids:
        _save(
            robots_tokens(pl.read_parquet(_final_labels(work, b), glob=False), cat),
            _labels_of(work, "robots_tokens", b),
        )
    if spark is None:
        for b in ids:
            judge_bucket_robots(con, work, b, versions)
    else:
        if area is not None:
            area.put(work / "robots_tokens", "robots_tokens")
        on_spark.judge_robots(spark, work, ids, versions, area)
        if area is not None:
            area.get("robots", work / "robots")
    files = sql_literal(glob_escape(str(work / "robots")) + "/*.parquet")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REQUEST_ROBOTS} AS SELECT * FROM read_parquet({files})"
        if ids
        else f"CREATE OR REPLACE TEMP TABLE {REQUEST_ROBOTS} ({REQUEST_ROBOTS_COLUMNS})"
    )
    return robots_violations(con)


def judge_bucket_robots(con: duckdb.DuckDBPyConnection, work: Path, b: int, versions: list[RobotsVersion]) -> None:
    """Bucket `b`'s sessionised requests judged against robots.txt (`threats.judge_robots`, with its
    clients' tokens), the disallowed ones written to the work area. The unit every engine runs."""
    tokens = pl.read_parquet(_labels_of(work, "robots_tokens", b), glob=False)
    requests = f"read_parquet({sql_literal(glob_escape(str(_labels_of(work, 'sessionised', b))))})"
    judge_robots(con, versions, tokens, requests)
    con.execute(f"COPY {REQUEST_ROBOTS} TO ? (FORMAT parquet)", [str(_labels_of(work, "robots", b))])


def _write_tables(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    work: Path,
    ids: Sequence[int],
    found: pl.DataFrame | None,
    stage: Stages,
    workers: int = 1,
) -> None:
    """Each bucket's final labels (`final_labels`, `workers` at once), then its share of requests,
    sessions and clients (`write_bucket`): memory stays that of a bucket; each bucket's files sit
    beside the others'. The writes run one after the other: side by side on two cores they took as
    long (DuckDB's threads keep both busy on one)."""
    final_labels(work, ids, found, [None] * workers)
    units = stage.units(len(ids), "bucket")
    for b in ids:
        write_bucket(con, out, work, b)
        release_memory()
        units.advance(note="writing requests, sessions and clients")
    units.close()


def final_labels(work: Path, ids: Sequence[int], found: pl.DataFrame | None, threads: Sequence[Any] = (None,)) -> None:
    """Each bucket's labels with its threats combined and its automation scores (`final/`), a
    bucket on each of `threads` at once (`_each_bucket`)."""
    (work / "final").mkdir(parents=True, exist_ok=True)

    def one(_: Any, b: int) -> None:
        final = pl.read_parquet(_final_labels(work, b), glob=False)
        if found is not None:
            final = combine_threats(final, found.join(final.select("client_id"), on="client_id", how="semi"))
        _save(
            with_automation_score(final).drop("signature_agent", "verify_ranges", "verify_rdns"),
            _labels_of(work, "final", b),
        )

    _each_bucket(threads, ids, one, lambda b, _: None)


def write_bucket(
    con: duckdb.DuckDBPyConnection, out: Path, work: Path, b: int, findings: str = "request_findings"
) -> None:
    """Bucket `b`'s requests, sessions and clients written under `out`, each joined to its own
    clients' final labels only. `findings`: the table (or query) of what requests matched
    themselves (`threats.request_findings`). The unit every engine runs to write a bucket."""
    for t in ("requests", "sessions", "clients"):
        (out / t).mkdir(parents=True, exist_ok=True)

    def part(name: str) -> str:
        return sql_literal(glob_escape(str(_labels_of(work, name, b))))

    labels = ", ".join(f"c.{c}" for c in LABELS)
    # A request carries its client's verdict (threats, malicious, reasons) and, apart, what it
    # matched itself (request_threats, request_reasons).
    own = ", ".join(f"coalesce(a.{c}, []) AS {c}" for c in REQUEST_OWN_SCHEMA)
    extras = ", ".join(f"c.{c}" for c in CLIENT_EXTRAS) + ", " + ", ".join(f"f.{c}" for c in FEATURES)
    final = f"read_parquet({part('final')})"
    # The bucket's own findings first: joined whole, the findings of a long log would be hashed
    # again for every bucket.
    con.execute(
        f"""COPY (SELECT s.* EXCLUDE (client_id, session_id, page_type, endpoint), s.client_id, s.session_id,
                         s.page_type, {labels}, {own}, strftime(s.ts, '%Y-%m-%d') AS date
                  FROM read_parquet({part("sessionised")}) s JOIN {final} c USING (client_id)
                  LEFT JOIN (SELECT * EXCLUDE (client_id) FROM {findings}
                             WHERE client_id IN (SELECT client_id FROM {final})) a USING (source, line_no))
            TO ? (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{b}-{{i}}', OVERWRITE_OR_IGNORE)""",
        [str(out / "requests")],
    )
    con.execute(
        f"""COPY (SELECT s.*, {labels} FROM read_parquet({part("sessions")}) s JOIN {final} c USING (client_id))
            TO ? (FORMAT parquet)""",
        [str(out / "sessions" / f"part-{b}.parquet")],
    )
    con.execute(
        f"""COPY (SELECT c.client_id, c.site, c.client_ip, c.user_agent, c.first_seen, c.last_seen, c.requests,
                         s.sessions, {labels}, c.automation_score, {extras}
                  FROM {final} c
                  JOIN (SELECT client_id, count(*) AS sessions FROM read_parquet({part("sessions")}) GROUP BY 1) s
                  USING (client_id)
                  LEFT JOIN read_parquet({part("features")}) f USING (client_id))
            TO ? (FORMAT parquet)""",
        [str(out / "clients" / f"part-{b}.parquet")],
    )


def _drop_tables_but(con: duckdb.DuckDBPyConnection, *keep: str) -> None:
    """The run's temporary tables dropped, but `keep`: what the threat layer built over every
    request (matches, browsers, probers) would otherwise hold memory through the writes."""
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
        if name not in keep:
            con.execute(f'DROP TABLE "{name}"')


def release_memory() -> None:
    """What a bucket freed handed back to the system: Arrow's and the C library's allocators keep
    freed pages for reuse, and a run's resident memory would otherwise creep up bucket after
    bucket."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to trim
        return None


_LIBC = _libc()


def _count_events(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def _count(con: duckdb.DuckDBPyConnection, folder: Path, pattern: str) -> int:
    """Rows of the Parquet files `pattern` finds under `folder` (its name escaped: DuckDB globs it)."""
    row = con.execute("SELECT count(*) FROM read_parquet(?)", [glob_escape(str(folder)) + "/" + pattern]).fetchone()
    return int(row[0]) if row else 0
