"""Client buckets: classify's per-client work, one share of the clients at a time.

Everything a client's sessions, features and behaviour reading depend on is that client's own
requests, plus a few small aggregates over the whole log (`behaviour.SHARED_CTES`: per site,
address, network and form page). So the clients are split by a hash of their id into buckets,
the shared aggregates are computed once (those per address and network over the clients, handed
to each bucket for its own: `address_tables`), and each bucket is sessionised, described and read
by the models alone: memory is set by the size of a bucket, not of the log (a busy client's own
bucket larger than an ordinary one is sessionised within DuckDB's memory limit: `fits_in_memory`).

`classify_bucket` is the unit of work: a DuckDB connection holding the bucket's events and the
shared tables in, the bucket's sessionised requests, sessions and features out, no state kept
between calls. `threat_rows` is what the threat layer reads of a bucket (each client's rows for
the behavioural threats, the attack rules' matches of its requests), computed over the same
sessionised requests. `classify_bucket_arrow` wraps both for engines that hand over Arrow batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import polars as pl
import pyarrow as pa

from trafficlens.classify.behaviour import (
    EVIDENCE_INPUTS,
    FEATURES,
    ORDERED_COLUMNS,
    REF_HOST,
    SHARED_CTES,
    SHARED_TABLES,
    client_features,
    session_features_sql,
    shared_aggregates_sql,
    sources_sql,
)
from trafficlens.classify.model import BehaviourModel
from trafficlens.classify.threats import AttackRule, ThreatConfig, attack_rows_sql, client_rows_sql
from trafficlens.store import sql_literal

# Requests per bucket: a bucket's sessionised rows and the windows over them stay well inside the
# memory classify is given (DuckDB's memory_limit), whatever the log's length.
ROWS_PER_BUCKET = 200_000
# Rows of a slice of a bucket's frame as DuckDB reads it (a thread a slice).
SCAN_SLICE_ROWS = 25_000
# The folder of the run's work area holding each bucket's per-client rows of the threats.
THREAT_ROWS = "threat_rows"
# The temporary tables a bucket's threat rows are kept in while it runs: later rows read earlier ones.
THREAT_SAVED = "bucket_threat_"


def bucket_count(rows: int, rows_per_bucket: int = ROWS_PER_BUCKET) -> int:
    """How many buckets `rows` requests need."""
    return max(1, math.ceil(rows / rows_per_bucket))


def bucket_of(client_id: pl.Expr, buckets: int) -> pl.Expr:
    """A client's bucket: its id (hex digits of an md5) read as a number, modulo `buckets`; the same
    on every machine and engine. But for the clients of more than `heavy_requests` requests: those
    get buckets of their own, numbered from `buckets` in the order of their ids."""
    return (client_id.str.slice(0, 8).str.to_integer(base=16) % buckets).cast(pl.Int32)


def heavy_requests(rows_per_bucket: int) -> float:
    """A client of more requests than this gets a bucket of its own: one busy crawler or proxy
    address would otherwise make its bucket several times the others' (a client is never split)."""
    return rows_per_bucket / 2


def fits_in_memory(rows: int, rows_per_bucket: int) -> bool:
    """Whether a bucket of `rows` requests is sessionised in a frame (`classify_bucket`, faster): an
    ordinary bucket is (hashed clients share them out evenly, below `rows_per_bucket` on average);
    a busy client's own bucket larger than that (a monitor, a crawler's address over a month, up to
    millions of requests) is sessionised within DuckDB's memory limit, so that no bucket held in
    memory is much larger than an ordinary one."""
    return 4 * rows <= 5 * rows_per_bucket


SESSION_GAP = 30 * 60  # seconds; DESIGN.md: a session ends after 30 minutes without a request


# The order `sessionise` reads a client's events in, and a bucket's, as SQL (nulls first, as
# polars sorts them).
CLIENT_ORDER = "ts NULLS FIRST, source NULLS FIRST, line_no NULLS FIRST"
SESSION_ORDER = f"client_id NULLS FIRST, {CLIENT_ORDER}"


def sessionise(events: pl.DataFrame, presorted: bool = False) -> pl.DataFrame:
    """`events` (with client_id, page_type and endpoint) sorted by client and time, each with its
    `session_id` (a new session at a client's first request and after every gap of more than 30
    minutes: the client id and the session's number, from 1), and what
    the features read of its place among its client's requests: `counted` (a range fetch counts
    only where its session has no other request for the path, and then only the first), `gap` and
    `gap_all` (seconds since the previous counted request of its session, of its client); and
    `ref_host`, the host its referrer names.

    Vectorised over the bucket's rows sorted once, where SQL window functions would sort them for
    every window. `presorted`: `events` already come in SESSION_ORDER."""
    df = events if presorted else events.sort("client_id", "ts", "source", "line_no", nulls_last=False)
    new_client = (pl.col("client_id") != pl.col("client_id").shift(1)).fill_null(True)
    step = (pl.col("ts") - pl.col("ts").shift(1)).dt.total_microseconds() / 1e6
    # Sorted by client: a session's number is the running count of new sessions since the
    # client's first row, without grouping.
    df = df.with_columns(_client=new_client, _new=new_client | (step > SESSION_GAP)).with_columns(
        _n=pl.col("_new").cast(pl.Int64).cum_sum()
    )
    start = pl.when(pl.col("_client")).then(pl.col("_n")).forward_fill()
    df = df.with_columns(session_id=pl.col("client_id") + "-" + (pl.col("_n") - start + 1).cast(pl.String))
    # Range fetches are few: which of them count is worked out on them alone, and marked by row
    # number (a join would copy the whole bucket).
    ranged = df.with_row_index("_i").filter(pl.col("status") == 206).select("_i", "session_id", "path")
    if ranged.height:
        fetched_whole = (
            df.filter(pl.col("status").fill_null(0) != 206)
            .select("session_id", "path")
            .join(ranged.select("session_id", "path").unique(), on=["session_id", "path"], how="semi", nulls_equal=True)
            .unique()
        )
        kept = (
            ranged.unique(["session_id", "path"], keep="first", maintain_order=True)
            .join(fetched_whole, on=["session_id", "path"], how="anti", nulls_equal=True)
            .get_column("_i")
        )
        df = df.with_columns(
            counted=(pl.col("status").fill_null(0) != 206)
            | pl.int_range(pl.len(), dtype=pl.UInt32).is_in(kept.implode())
        )
    else:
        df = df.with_columns(counted=pl.lit(True))
    # Gaps to the previous counted request: carried forward past the rows that do not count.
    prev = {
        c: pl.when(pl.col("counted")).then(pl.col(c)).shift(1).forward_fill() for c in ("ts", "session_id", "client_id")
    }
    since = (pl.col("ts") - prev["ts"]).dt.total_microseconds() / 1e6
    return df.with_columns(
        gap=pl.when(pl.col("counted") & (prev["session_id"] == pl.col("session_id"))).then(since),
        gap_all=pl.when(pl.col("counted") & (prev["client_id"] == pl.col("client_id"))).then(since),
        # As DuckDB's regexp_extract gives it: '' where a referrer names no host.
        ref_host=pl.when(pl.col("referer").is_not_null()).then(
            pl.col("referer").str.extract(REF_HOST, 1).fill_null("")
        ),
    ).drop("_client", "_new", "_n", strict=False)


def shared_aggregates(con: duckdb.DuckDBPyConnection, source: str, names: Sequence[str] = tuple(SHARED_CTES)) -> None:
    """Creates the SHARED_TABLES `names` over `source`: every bucket's events."""
    for name in names:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {SHARED_TABLES[name]} AS {shared_aggregates_sql(name, source)}")


def load_shared(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
    """`tables` (by SHARED_CTES name) made the shared tables of `con`, replacing any before."""
    for name, table in tables.items():
        con.register("_shared_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {SHARED_TABLES[name]} AS SELECT * FROM _shared_arrow")
        con.unregister("_shared_arrow")


def address_tables(clients: pl.DataFrame) -> dict[str, pa.Table]:
    """The rows of the shared tables per address and network (ADDRESS_CTES) that a bucket reads,
    from its clients' rows with ADDRESS_COUNTS (`behaviour.address_counts_sql`)."""
    return {
        "ip": clients.select("site", "client_ip", "ip_user_agents").unique().to_arrow(),
        "nets": clients.select("site", "net", "user_agent", "same_ua").unique().to_arrow(),
        "netall": clients.select("site", "net", pl.col("net_clients").alias("clients")).unique().to_arrow(),
    }


@dataclass
class BucketResult:
    """What one bucket gives the rest of classify: per client, the models' reading with the raw
    aggregates the evidence reads (`readings`), and the features written to the clients table."""

    readings: pl.DataFrame
    features: pl.DataFrame


def sessionise_sql(source: str) -> str:
    """SQL: `sessionise` of `source` in DuckDB, the same columns and values, for a bucket too large
    to hold in memory (DuckDB spills past its memory limit; a frame cannot)."""

    # Seconds between timestamps to the bit as `sessionise` computes them: whole microseconds times
    # a millionth (polars divides by a constant so).
    def since(partition: str) -> str:
        return f"(epoch_us(ts) - epoch_us(lag(ts) OVER (PARTITION BY {partition} ORDER BY {CLIENT_ORDER}))) * 1e-6"

    # Which range fetches count: the rule the features' SQL applies (`behaviour.sources_sql`), in
    # `sessionise`'s order.
    return f"""
    WITH s AS (
        SELECT * EXCLUDE (new),
               client_id || '-' || sum(new::INT) OVER (
                   PARTITION BY client_id ORDER BY {CLIENT_ORDER} ROWS UNBOUNDED PRECEDING) AS session_id
        FROM (SELECT *, coalesce({since("client_id")} > {SESSION_GAP}, true) AS new FROM {source})
    ),
    {sources_sql("s", order=CLIENT_ORDER)},
    c AS (
        SELECT s.*, coalesce(s.status, 0) <> 206 OR k.line_no IS NOT NULL AS counted
        FROM s LEFT JOIN (SELECT source, line_no FROM src WHERE status = 206) k
          ON s.source IS NOT DISTINCT FROM k.source AND s.line_no IS NOT DISTINCT FROM k.line_no
    )
    SELECT *,
           CASE WHEN counted THEN {since("session_id, counted")} END AS gap,
           CASE WHEN counted THEN {since("client_id, counted")} END AS gap_all,
           CASE WHEN referer IS NOT NULL THEN coalesce(regexp_extract(referer, {sql_literal(REF_HOST)}, 1), '') END
               AS ref_host
    FROM c"""


def classify_bucket(
    con: duckdb.DuckDBPyConnection,
    source: str,
    model: BehaviourModel | None,
    sessionised: str = "sessionised",
    in_memory: bool = True,
) -> BucketResult:
    """One bucket: `source` (a table or query of the bucket's events with client_id, page_type and
    endpoint) -> the table `sessionised` (in `con`: the bucket's requests, sessionised, with
    ORDERED_COLUMNS) and the features and model readings of its clients. `in_memory`: sessionised
    in a frame (faster), else in DuckDB within its memory limit, for a bucket larger than memory
    allows (one client of millions of requests). Drop `sessionised` with `release_sessionised`.
    The SHARED_TABLES must exist in `con`."""
    if in_memory:
        # Sorted by DuckDB as it reads them: one copy of the bucket in memory, not two.
        frame = sessionise(con.sql(f"SELECT * FROM {source} ORDER BY {SESSION_ORDER}").pl(), presorted=True)
        # In slices, not one chunk: DuckDB scans a frame's chunks on as many threads as it has.
        con.register(sessionised, pl.concat(list(frame.iter_slices(SCAN_SLICE_ROWS)) or [frame], rechunk=False))
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sessionised} AS {sessionise_sql(source)}")
    feats = client_features(con, sessionised, shared=True)
    readings = feats.select("client_id", *EVIDENCE_INPUTS)
    if model is not None:
        readings = readings.join(model.predict(feats), on="client_id", how="left")
    return BucketResult(readings, feats.select("client_id", *FEATURES))


def release_sessionised(con: duckdb.DuckDBPyConnection, sessionised: str) -> None:
    """`classify_bucket`'s sessionised requests let go of, a frame or a table."""
    con.unregister(sessionised)  # a registered frame; where it is a table, nothing
    con.execute(f"DROP TABLE IF EXISTS {sessionised}")


def threat_rows(cfg: ThreatConfig, rules: list[AttackRule], sessionised: str = "sessionised") -> dict[str, str]:
    """What the threat layer reads of a bucket, over its sessionised requests, by the name of the
    folder of the run's work area each is written to (one query each): the behavioural threats'
    per-client rows (`threats.client_rows_sql`), which the threats of groups of clients read, and
    the attack rules' matches of its requests with its readers of the paths probes name
    (`threats.attack_rows_sql`, reading the tables of `threats.attack_values`)."""
    queries = {
        **client_rows_sql(cfg, table=sessionised, saved=THREAT_SAVED),
        **attack_rows_sql(rules, cfg, sessionised, saved=THREAT_SAVED),
    }
    return {f"{THREAT_ROWS}/{name}": sql for name, sql in queries.items()}


def save_threat_rows(
    con: duckdb.DuckDBPyConnection, rows: Mapping[str, str], write: Callable[[str, str], None]
) -> None:
    """Each of `rows` (`threat_rows`) computed in turn into a temporary table, which later ones
    read, and handed to `write(folder, table)`; the tables dropped after."""
    tables = {folder: THREAT_SAVED + folder.rsplit("/", 1)[1] for folder in rows}
    try:
        for folder, sql in rows.items():
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tables[folder]} AS {sql}")
            write(folder, tables[folder])
    finally:
        for table in tables.values():
            con.execute(f"DROP TABLE IF EXISTS {table}")


def classify_bucket_arrow(
    events: pa.Table,
    shared: dict[str, pa.Table],
    model: BehaviourModel | None,
    threats: Mapping[str, str] | None = None,
    threat_tables: Mapping[str, pa.Table] | None = None,
) -> dict[str, pa.Table]:
    """`classify_bucket` for engines that pass Arrow: the bucket's events and the shared tables in
    (by SHARED_CTES name), `sessionised`, `sessions` (without labels), `readings` and `features`
    out, and the rows of `threats` (`threat_rows` over `sessionised`), which read `threat_tables`."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("bucket_events", events)
        load_shared(con, shared)
        for name, table in (threat_tables or {}).items():
            con.register(name, table)
        result = classify_bucket(con, "bucket_events", model)
        rows: dict[str, pa.Table] = {}

        def keep(folder: str, table: str) -> None:
            rows[folder] = con.sql(f"SELECT * FROM {table}").to_arrow_table()

        save_threat_rows(con, threats or {}, keep)
        return {
            "sessionised": con.sql(
                f"SELECT * EXCLUDE ({', '.join(ORDERED_COLUMNS)}) FROM sessionised"
            ).to_arrow_table(),
            "sessions": con.sql(session_features_sql("sessionised")).to_arrow_table(),
            "readings": result.readings.to_arrow(),
            "features": result.features.to_arrow(),
            **rows,
        }
    finally:
        con.close()


__all__ = [
    "ROWS_PER_BUCKET",
    "CLIENT_ORDER",
    "SESSION_GAP",
    "SESSION_ORDER",
    "THREAT_ROWS",
    "THREAT_SAVED",
    "BucketResult",
    "address_tables",
    "bucket_count",
    "bucket_of",
    "classify_bucket",
    "classify_bucket_arrow",
    "fits_in_memory",
    "heavy_requests",
    "load_shared",
    "release_sessionised",
    "save_threat_rows",
    "sessionise",
    "sessionise_sql",
    "shared_aggregates",
    "threat_rows",
]
