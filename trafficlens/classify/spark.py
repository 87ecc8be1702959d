"""classify's client buckets on Apache Spark (`--engine spark`).

What runs where:
- **Spark, over every request**: the clients (grouped by site, address and user agent, each with its
  id and bucket computed as `buckets.bucket_of` does), the page types and the attack rules' matches
  (once per distinct value, by the same SQL the local engine runs, in Python tasks), and the
  aggregates a client's features read of other clients (`behaviour.SHARED_CTES`): those per address
  and network are counts over the clients, the site's home host and its form pages' loaders are
  small and collected.
- **Spark, per bucket**: `buckets.classify_bucket_arrow`, the same function the local engine runs on
  a bucket (sessions, features, both models, the behavioural threats' per-client rows, the attack
  rules' matches of its requests), then, with `--robots`, `pipeline.judge_bucket_robots` (its
  requests judged against robots.txt with its clients' tokens), and last `pipeline.write_bucket`,
  which writes the bucket's requests, sessions and clients into the run's staging folder.
- **The driver, per client and per distinct value**: identity labels (the catalogue, verification,
  signatures, hosting and geography), the behaviour evidence, the threats of groups of clients over
  the buckets' per-client rows, which attack-rule matches fire (a probe only on a path the site does
  not serve), each client's robots.txt tokens (`--robots`), then the lake's own commit, so readers
  never see half a run. It reads no request but those an attack rule matched or robots.txt
  disallows.

The tasks read and write the run's staging folder by its path, which must then be one every
executor sees (the machine itself in local mode, or a shared filesystem on a cluster); or, for a
lake at a URI, a work area on the lake's storage (`store.Area`): each task copies its bucket's
files to its own disk and uploads what it writes, its share of the tables into the lake itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trafficlens.classify.behaviour import REF_HOST, SHARED_CTES
from trafficlens.classify.threats import AttackRule, RobotsVersion, attack_fields, field_hits_sql
from trafficlens.spark import quiet
from trafficlens.store import Area, Lake

_SUMMARY = "bucket int, requests long"
# Models loaded once per Python worker, not once per bucket.
_MODELS: dict[str | None, Any] = {}


def _network(ip: Any) -> Any:
    """`behaviour._network` as a Spark column: /24 for IPv4, /48 for IPv6, the part before '~' of a
    pseudonymised address."""
    from pyspark.sql import functions as F

    a = F.split_part(ip, F.lit("~"), F.lit(1))
    return (
        F.when(a.contains(":"), F.array_join(F.slice(F.split(a, ":"), 1, 3), ":"))
        .otherwise(F.regexp_replace(a, r"\.[0-9]+$", ""))
        .alias("net")
    )


def events_frame(spark: Any, lake: Lake, columns: Sequence[str], buckets: int) -> Any:
    """The lake's events as a Spark DataFrame with `columns` (the local engine's events view's,
    less the partition column), each file's schema merged."""
    from pyspark.sql import functions as F

    # A shuffle's partitions: a bucket each for the cogroup (Spark's default, 200, makes most of
    # them empty tasks on a small log), unless the session was told otherwise.
    if "spark.sql.shuffle.partitions" not in _set_by_user(spark):
        spark.conf.set("spark.sql.shuffle.partitions", str(max(buckets, spark.sparkContext.defaultParallelism)))

    # A lake at a URI: the files its list names (others may be a run's that died uncommitted).
    where = [str(lake.root / "events")] if lake.remote is None else lake.files("events")
    df = spark.read.option("mergeSchema", "true").parquet(*where)
    return df.select(*[F.col(c) if c in df.columns else F.lit(None).cast("string").alias(c) for c in columns])


def with_clients(events: Any, buckets: int) -> Any:
    """`events` with each request's `client_id` and `bucket`: the local engine's md5 of site, address
    and user agent, and the bucket `buckets.bucket_of` gives it."""
    from pyspark.sql import functions as F

    sep = F.lit(chr(31))
    key = F.concat(
        F.col("site"), sep, F.coalesce(F.col("client_ip"), F.lit("-")), sep, F.coalesce(F.col("user_agent"), F.lit("-"))
    )
    client_id = F.substring(F.md5(key), 1, 16)
    bucket = (F.conv(F.substring(client_id, 1, 8), 16, 10).cast("long") % F.lit(buckets)).cast("int")
    return events.withColumn("client_id", client_id).withColumn("bucket", bucket)


def clients_frame(events: Any, recorded: bool) -> Any:
    """One row per client (the local engine's `clients` table, with its bucket)."""
    from pyspark.sql import functions as F

    ranges = F.any_value("ip_ranges") if recorded else F.lit(None).cast("array<string>")
    return events.groupBy("client_id", "bucket", "site", "client_ip", "user_agent").agg(
        F.min("ts").alias("first_seen"),
        F.max("ts").alias("last_seen"),
        F.count(F.lit(1)).alias("requests"),
        F.max("signature_agent").alias("signature_agent"),
        ranges.alias("ip_ranges"),
    )


def heavy_buckets(clients: Any, events: Any, buckets: int, bucket_rows: int) -> tuple[Any, Any]:
    """The clients and the events with the buckets of the local engine's
    `_clients_table`: a client of more than `buckets.heavy_requests` requests in a bucket of its
    own, numbered from `buckets` in the order of the clients' ids."""
    from pyspark.sql import functions as F

    from trafficlens.classify.buckets import heavy_requests

    heavy = [r["client_id"] for r in clients.filter(F.col("requests") > heavy_requests(bucket_rows)).collect()]
    if not heavy:
        return clients, events
    own = clients.sparkSession.createDataFrame(
        [(c, buckets + k) for k, c in enumerate(sorted(heavy))], "client_id string, own_bucket int"
    )

    def moved(frame: Any) -> Any:
        joined = frame.join(F.broadcast(own), "client_id", "left")
        return joined.withColumn("bucket", F.coalesce("own_bucket", "bucket")).drop("own_bucket")

    return moved(clients).select(*clients.columns), moved(events).select(*events.columns)


def _per_client(clients: Any) -> Any:
    """Per client, its bucket, keys and ADDRESS_COUNTS: `behaviour.address_counts_sql` in Spark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    c = clients.select("bucket", "site", "client_ip", "user_agent", _network(F.col("client_ip")))
    return c.select(
        "bucket",
        "site",
        "client_ip",
        "user_agent",
        "net",
        F.count("user_agent").over(Window.partitionBy("site", "client_ip")).alias("ip_user_agents"),
        F.count("client_ip").over(Window.partitionBy("site", "net", "user_agent")).alias("same_ua"),
        F.count("client_ip").over(Window.partitionBy("site", "net")).alias("net_clients"),
    )


def page_types(events: Any, page_sql: tuple[str, str]) -> Any:
    """(path, query, page_type, endpoint) per distinct path and query, by the local engine's SQL,
    run in Python tasks over batches of distinct values."""
    sql = f"SELECT path, query, {page_sql[0]} AS page_type, {page_sql[1]} AS endpoint FROM batch"

    def typed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        con = duckdb.connect()
        for batch in batches:
            con.register("batch", pa.Table.from_batches([batch]))
            yield from con.sql(sql).to_arrow_table().to_batches()
            con.unregister("batch")

    schema = "path string, query string, page_type string, endpoint string"
    with quiet():
        return events.select("path", "query").distinct().mapInArrow(typed, schema)


def attack_hits(events: Any, rules: list[AttackRule]) -> dict[str, pa.Table]:
    """Per field the attack rules read, its distinct values that some rule matches
    (`threats.field_hits_sql`, the local engine's SQL, run in Python tasks over batches of
    distinct values), collected: matches are few."""
    out = {}
    for fld, keys in attack_fields(rules).items():
        sql = field_hits_sql(rules, fld, "batch")

        def matched(batches: Iterator[pa.RecordBatch], sql: str = sql) -> Iterator[pa.RecordBatch]:
            import duckdb

            con = duckdb.connect()
            for batch in batches:
                con.register("batch", pa.Table.from_batches([batch]))
                yield from con.sql(sql).to_arrow_table().to_batches()
                con.unregister("batch")

        schema = ", ".join(f"{k} string" for k in keys) + ", ids array<string>"
        with quiet():
            out[fld] = events.select(*keys).distinct().mapInArrow(matched, schema).toArrow()
    return out


def small_aggregates(bucketed: Any) -> dict[str, pa.Table]:
    """The shared aggregates `home` and `form_pages` (small: per site, per form page), over the
    requests the features count (a range fetch once per client and path, and not beside the whole
    file), collected."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = Window.partitionBy("client_id", "path").orderBy(
        F.col("ts").asc_nulls_last(), F.col("source").asc_nulls_last(), F.col("line_no").asc_nulls_last()
    )
    cols = ["site", "client_id", "path", "method", "status", "endpoint", "referer"]
    is_range = F.col("status").eqNullSafe(206)
    ranged = (
        bucketed.filter(F.col("status") == 206)
        .withColumn("_rn", F.row_number().over(first))
        .filter(F.col("_rn") == 1)
        .select(*cols)
    )
    # Of those files, the ones the client also fetched whole: looked for among the few ranged ones.
    keys = ranged.select("client_id", "path").distinct()
    rest = bucketed.filter(~is_range).select("client_id", "path")
    whole = rest.join(
        keys, (rest["client_id"] == keys["client_id"]) & rest["path"].eqNullSafe(keys["path"]), "left_semi"
    ).distinct()
    on = (ranged["client_id"] == whole["client_id"]) & ranged["path"].eqNullSafe(whole["path"])
    src = bucketed.filter(~is_range).select(*cols).unionByName(ranged.join(whole, on, "left_anti"))
    r = src.withColumn("ref_host", F.regexp_extract("referer", REF_HOST, 1))
    top = Window.partitionBy("site").orderBy(F.col("n").desc(), F.col("ref_host").asc())
    home = (
        r.filter(F.col("ref_host") != "")
        .groupBy("site", "ref_host")
        .agg(F.count(F.lit(1)).alias("n"))
        .withColumn("_rn", F.row_number().over(top))
        .filter(F.col("_rn") == 1)
        .select("site", F.col("ref_host").alias("ref_home"))
    )
    forms = (
        r.filter(F.col("endpoint").isNotNull() & (F.col("method") == "GET") & (F.col("status") < 400))
        .groupBy("site", "path")
        .agg(F.count_distinct("client_id").alias("loaders"))
    )
    return {"home": home.toArrow(), "form_pages": forms.toArrow()}


def _set_by_user(spark: Any) -> set[str]:
    """The settings the session was started with (its `--conf`, spark-defaults, the cluster's)."""
    return {k for k, _ in spark.sparkContext.getConf().getAll()}


def _model(model_dir: str | None) -> Any:
    if model_dir not in _MODELS:
        from trafficlens.classify.model import load_model

        _MODELS[model_dir] = load_model(None if model_dir is None else Path(model_dir))
    return _MODELS[model_dir]


def run_buckets(
    spark: Any,
    events: Any,
    clients: Any,
    columns: Sequence[str],
    page_sql: tuple[str, str],
    work: Path,
    model_dir: str | Path | None,
    behaviour: bool,
    threats: Mapping[str, str],
    threat_tables: Mapping[str, pa.Table],
    area: Area | None = None,
) -> int:
    """Every bucket classified in Spark tasks by `buckets.classify_bucket_arrow`, each writing its
    sessionised requests, sessions, features and readings to `work` as the local engine does, and
    the rows the threat layer reads of it (`threats`, `buckets.threat_rows`, reading
    `threat_tables`: the attack rules' matches per distinct value, small). With `area` (a work area
    on the lake's storage), the tasks write there and the driver copies what it reads of them
    (the readings and the threat rows, per client) into `work`. Returns the requests classified."""
    from pyspark.sql import functions as F

    from trafficlens.classify.buckets import address_tables, classify_bucket_arrow

    # Read twice (the small aggregates, the buckets): kept rather than computed again in Python.
    types = page_types(events, page_sql).persist()
    on = events["path"].eqNullSafe(types["path"]) & events["query"].eqNullSafe(types["query"])
    bucketed = events.join(types, on).select(
        *[events[c] for c in columns], events["client_id"], "page_type", "endpoint", events["bucket"]
    )
    small = small_aggregates(bucketed)
    per_client = _per_client(clients)
    model = None if model_dir is None else str(model_dir)
    out = str(work)
    wanted = [*columns, "client_id", "page_type", "endpoint"]

    def bucket(events: pa.Table, mine: pa.Table) -> pa.Table:
        import polars as pl

        if events.num_rows == 0:
            return pa.table({"bucket": pa.array([], pa.int32()), "requests": pa.array([], pa.int64())})
        b = int(events.column("bucket")[0].as_py())
        frame = pl.from_arrow(mine)
        assert isinstance(frame, pl.DataFrame)
        # The rows of the whole log's shared tables whose keys are this bucket's clients'.
        shared = {**address_tables(frame), **small}
        result = classify_bucket_arrow(
            events.select(wanted), shared, _model(model) if behaviour else None, threats, threat_tables
        )
        for name, table in result.items():
            if area is None:
                pq.write_table(table, f"{out}/{name}/part-{b}.parquet")
            else:
                area.write_table(table, f"{name}/part-{b}.parquet")
        return pa.table({"bucket": pa.array([b], pa.int32()), "requests": pa.array([events.num_rows], pa.int64())})

    for name in ("sessionised", "sessions", "features", "readings", *threats):
        (work / name).mkdir(parents=True, exist_ok=True)
    assert set(SHARED_CTES) == {"ip", "nets", "netall", "home", "form_pages"}, "a shared aggregate Spark lacks"
    with quiet():
        done = (
            bucketed.groupBy("bucket")
            .cogroup(per_client.groupBy("bucket"))
            .applyInArrow(bucket, _SUMMARY)
            .agg(F.sum("requests").alias("n"))
            .collect()
        )
    types.unpersist()
    if area is not None:
        for name in ("readings", *threats):
            area.get(name, work / name)
    return int(done[0]["n"] or 0)


_DONE = "bucket int, rel string, stored string, rows long"


def _in_bucket_tasks(
    spark: Any,
    ids: Sequence[int],
    unit: Callable[[Any, int], list[tuple[str, str, int]] | None],
    settings: Sequence[str] = (),
) -> list[tuple[str, str, int]]:
    """`unit(con, bucket)` for each bucket of `ids`, in a Spark task of its own, each task with a DuckDB
    connection of its own (`settings` run on it first). Returns what the units return (files they
    wrote into the lake: name in the layout, object, rows)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        for setting in settings:
            con.execute(setting)
        for batch in batches:
            for b in batch.column("bucket").to_pylist():
                files = unit(con, int(b)) or [("", "", 0)]
                yield pa.RecordBatch.from_pydict(
                    {
                        "bucket": pa.array([b] * len(files), pa.int32()),
                        "rel": [f[0] for f in files],
                        "stored": [f[1] for f in files],
                        "rows": pa.array([f[2] for f in files], pa.int64()),
                    }
                )
        con.close()

    frame = spark.createDataFrame([(int(b),) for b in ids], "bucket int")
    with quiet():
        rows = frame.repartition(max(len(ids), 1), "bucket").mapInArrow(run, _DONE).collect()
    return [(r["rel"], r["stored"], int(r["rows"])) for r in rows if r["rel"]]


def write_buckets(
    spark: Any,
    out: Path,
    work: Path,
    ids: Sequence[int],
    memory_limit: str,
    area: Area | None = None,
    lake: Area | None = None,
    run_id: str = "",
) -> list[tuple[str, str, int]]:
    """Each bucket's requests, sessions and clients written under `out` by `pipeline.write_bucket`
    in a Spark task of its own. With `area` (the run's work area on a lake's storage), each task
    copies its bucket's work files to its own disk, writes there, and uploads what it wrote into
    `lake` (that lake's folder) under names of its own (`store.upload_run_files`); returns those files (name in the
    layout, object, rows), for the run's commit to list."""
    from trafficlens.store import glob_escape, sql_literal

    staging, folder = str(out), str(work)
    findings = f"read_parquet({sql_literal(glob_escape(str(work / 'findings.parquet')))})"

    def write(con: Any, b: int) -> list[tuple[str, str, int]] | None:
        import tempfile

        from trafficlens.classify.pipeline import write_bucket
        from trafficlens.store import upload_run_files

        if area is None or lake is None:
            write_bucket(con, Path(staging), Path(folder), b, findings)
            return None
        with tempfile.TemporaryDirectory(prefix="trafficlens-bucket-") as tmp:
            mine, written = Path(tmp) / "work", Path(tmp) / "out"
            _fetch(area, ("final", "sessionised", "sessions", "features"), b, mine)
            area.get("findings.parquet", mine / "findings.parquet")
            found = f"read_parquet({sql_literal(glob_escape(str(mine / 'findings.parquet')))})"
            write_bucket(con, written, mine, b, found)
            rows = {
                f.relative_to(written).as_posix(): int(pq.read_metadata(f).num_rows) for f in written.rglob("*.parquet")
            }
            return [(rel, stored, rows.get(rel, 0)) for rel, stored in upload_run_files(lake, written, run_id).items()]

    settings = (
        "SET TimeZone = 'UTC'",  # partition dates are UTC days
        "SET preserve_insertion_order = false",
        f"SET memory_limit = {sql_literal(memory_limit)}",
    )
    return _in_bucket_tasks(spark, ids, write, settings)


def _fetch(area: Area, names: Sequence[str], b: int, local: Path) -> None:
    """Bucket `b`'s files of the work area's folders `names`, copied to the same places under `local`."""
    for name in names:
        area.get(f"{name}/part-{b}.parquet", local / name / f"part-{b}.parquet")


def judge_robots(
    spark: Any, work: Path, ids: Sequence[int], versions: list[RobotsVersion], area: Area | None = None
) -> None:
    """Each bucket's requests judged against robots.txt by `pipeline.judge_bucket_robots`, in a
    Spark task of its own: the driver reads back the disallowed requests only. With `area`, each
    task copies its bucket's files from it and writes its finding back to it."""
    folder = str(work)

    def judge(con: Any, b: int) -> None:
        import tempfile

        from trafficlens.classify.pipeline import judge_bucket_robots

        if area is None:
            judge_bucket_robots(con, Path(folder), b, versions)
            return
        with tempfile.TemporaryDirectory(prefix="trafficlens-bucket-") as tmp:
            mine = Path(tmp)
            _fetch(area, ("robots_tokens", "sessionised"), b, mine)
            (mine / "robots").mkdir()
            judge_bucket_robots(con, mine, b, versions)
            area.put(mine / "robots" / f"part-{b}.parquet", f"robots/part-{b}.parquet")

    _in_bucket_tasks(spark, ids, judge)


__all__ = [
    "attack_hits",
    "clients_frame",
    "events_frame",
    "judge_robots",
    "page_types",
    "run_buckets",
    "small_aggregates",
    "with_clients",
    "write_buckets",
]
