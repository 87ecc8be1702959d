"""ingest's sources parsed in parallel on Apache Spark (`--engine spark`).

The driver lists the sources, holds the lake's lock and commits; each Spark task reads whole
sources with the local engine's own reader (`run._ingest_source`: format detection, parsing,
resuming where the manifest says, privacy), writing its events and rejects into the run's staging
folder under a name of its own, and returns what it did. Sources that start with the same line go
to one task, in order, so that content named twice in one run (a file and its copy, a snapshot
and the live log) is read once, as the local engine does.

Sources are paths every executor sees (the machine itself in local mode, or a shared
filesystem), or URIs of Spark's filesystem (`s3a://`, `gs://`, `hdfs://`, `file://`: whatever the
cluster is set up to read), listed by the driver (`list_remote`) and handed to the tasks whole by
Spark's `binaryFile` reader, one file at a time, so that the same reader parses them. Remote files
are grouped by first line as local ones are: the same content named twice is read once there too.
"""

from __future__ import annotations

import bz2
import json
import re
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from trafficlens.errors import FormatError, InputError, OptionError
from trafficlens.ingest.options import IngestOptions
from trafficlens.ingest.sources import OpenSource, Source
from trafficlens.schema import MANIFEST_SCHEMA
from trafficlens.spark import error_line, quiet

if TYPE_CHECKING:
    from trafficlens.ingest.privacy import Privacy
    from trafficlens.store import Area

# What a task returns per group of sources: their results as JSON, or the format error that
# stopped it, and the files it uploaded into a lake at a URI as JSON (as Spark's DDL, and as the
# Arrow batches the task yields).
_DONE = "results string, error string, uploaded string"
_ARROW = pa.schema([("results", pa.string()), ("error", pa.string()), ("uploaded", pa.string())])
FIRST_LINE_BYTES = 4096


def _first_line(source: Source) -> bytes:
    """The source's first line (decompressed; at most FIRST_LINE_BYTES), or b'' where it cannot be
    read (its task then fails it with the reason)."""
    try:
        src = OpenSource(source)
    except InputError:
        return b""
    try:
        return src.read(FIRST_LINE_BYTES).split(b"\n", 1)[0]
    except (InputError, OSError):
        return b""
    finally:
        src.close()


def groups(sources: Sequence[Source]) -> list[list[int]]:
    """Source indexes grouped by first line, each group in the order given; groups in the order
    of their first source."""
    by_line: dict[bytes, list[int]] = {}
    for i, source in enumerate(sources):
        by_line.setdefault(_first_line(source), []).append(i)
    return sorted(by_line.values(), key=lambda g: g[0])


def list_remote(spark: Any, uri: str) -> list[Source]:
    """The files a URI names on Spark's filesystem: a file, a folder (recursively, without hidden
    files or Spark's own `_SUCCESS` and `_temporary`), or a glob; sorted by name."""
    try:
        path = spark._jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        found = fs.globStatus(path)
        files: list[tuple[str, int]] = []
        for status in found or []:
            if not status.isDirectory():
                files.append((str(status.getPath()), int(status.getLen())))
                continue
            base = str(status.getPath()).rstrip("/")
            listed = fs.listFiles(status.getPath(), True)
            inside = []
            while listed.hasNext():
                f = listed.next()
                name = str(f.getPath())
                if not any(part.startswith((".", "_")) for part in name[len(base) :].split("/") if part):
                    inside.append((name, int(f.getLen())))
            if not inside:
                raise InputError(f"folder {uri} holds no files; point at the log files or their folder")
            files += inside
    except InputError:
        raise
    except Exception as e:  # a filesystem Spark has no connector or no credentials for: what it said
        raise InputError(
            f"{uri}: Spark's filesystem cannot list it ({error_line(e)}); the cluster needs the "
            'filesystem\'s connector and credentials (README, "Running on a cluster")'
        ) from None
    if not files:
        raise InputError(f"no file matches {uri}")
    return [Source(name, None, remote=True, length=size) for name, size in sorted(set(files))]


def _remote_first_line(spark: Any, uri: str) -> bytes:
    """A remote file's first line (decompressed where gzip or bzip2; at most FIRST_LINE_BYTES), read
    through Spark's filesystem; b'' where it cannot be read (its task then says why)."""
    try:
        path = spark._jvm.org.apache.hadoop.fs.Path(uri)
        stream = path.getFileSystem(spark._jsc.hadoopConfiguration()).open(path)
        try:
            head = bytes(stream.readNBytes(FIRST_LINE_BYTES))
        finally:
            stream.close()
    except Exception:
        return b""
    try:
        if head.startswith(b"\x1f\x8b"):
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, FIRST_LINE_BYTES)
        elif head.startswith(b"BZh"):
            head = bz2.BZ2Decompressor().decompress(head, FIRST_LINE_BYTES)
    except (zlib.error, OSError, EOFError):
        return head  # compared as it is: equal files still group together
    return head.split(b"\n", 1)[0]


def _hadoop_literal(name: str) -> str:
    """A file's URI matching only itself where Spark reads paths as globs."""
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", name)


def ingest_sources(
    spark: Any,
    sources: Sequence[Source],
    staging: Path,
    protection: tuple[Privacy, bytes],
    manifest: pl.DataFrame,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
    lake: Area | None = None,
    uploaded: dict[str, str] | None = None,
) -> list[tuple[Any, dict | None]]:
    """Every source read in a Spark task; (SourceResult, manifest entry or None) per source, in
    the order given. A format given by the user that a source does not match is a FormatError, as
    in the local engine. With `lake` (a lake at a URI that the tasks reach themselves), each task
    writes on its own disk and uploads its files into the lake under names of their own, added to
    `uploaded` for the run's commit to list."""
    for s in sources:
        if (s.path is None and not s.remote) or s.stream:
            raise OptionError(f"{s.name}: a stream is read once, by the local engine; ingest it without --engine spark")
    here = [i for i, s in enumerate(sources) if not s.remote]
    todo = [[here[k] for k in g] for g in groups([sources[i] for i in here])]
    by_line: dict[bytes, list[int]] = {}
    for i, s in enumerate(sources):
        if s.remote:
            by_line.setdefault(_remote_first_line(spark, s.name), []).append(i)
    remote = sorted(by_line.values(), key=lambda g: g[0])
    folder = str(staging)
    privacy, secret = protection

    def read_group(ids: list[int], files: Iterator[tuple[int, Source]]) -> pa.RecordBatch:
        """A group's sources read in order by one writer, each seeing the manifest entries of the
        ones before; its results, or the format error that stopped it."""
        from trafficlens.ingest.privacy import protected_writer
        from trafficlens.ingest.run import _ingest_source
        from trafficlens.progress import Progress
        from trafficlens.store import Transaction, upload_run_files

        if lake is not None:
            own = tempfile.TemporaryDirectory(prefix="trafficlens-ingest-")
            tx = Transaction.at(Path(own.name) / Path(folder).name)
        else:
            tx = Transaction.at(Path(folder))
        writer = protected_writer(tx, opts, privacy, secret, tag=f"-s{ids[0]}")
        known, done = manifest, []
        try:
            for i, source in files:
                result, entry = _ingest_source(
                    source, tx, writer, known, opts, window, Progress(None, "ingest", enabled=False)
                )
                if entry is not None:
                    known = pl.concat([known, pl.DataFrame([entry], schema=MANIFEST_SCHEMA)])
                    entry = {**entry, "ingested_at": entry["ingested_at"].isoformat()}
                done.append({"i": i, "result": asdict(result), "entry": entry})
            writer.close()
            sent = {} if lake is None else upload_run_files(lake, tx.dir, tx.run_id)
        except FormatError as e:
            writer.stop()
            return pa.RecordBatch.from_pydict({"results": [None], "error": [str(e)], "uploaded": [None]}, schema=_ARROW)
        except BaseException:
            writer.stop()
            raise
        finally:
            if lake is not None:
                own.cleanup()
        return pa.RecordBatch.from_pydict(
            {"results": [json.dumps(done)], "error": [None], "uploaded": [json.dumps(sent)]}, schema=_ARROW
        )

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for group in batch.column("group").to_pylist():
                ids = json.loads(group)
                yield read_group(ids, ((i, sources[i]) for i in ids))

    def read_remote(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # One file per batch, in its group's order (sorted within the partition): each is written
        # to the task's disk as it comes, so a group's files are never in memory together, and the
        # group is read there under its URIs.
        group: list[tuple[int, Source]] = []
        current = None
        with tempfile.TemporaryDirectory(prefix="trafficlens-") as tmp:
            for batch in batches:
                for row in batch.to_pylist():
                    i, g = int(row["i"]), int(row["g"])
                    if group and g != current:
                        yield read_group([k for k, _ in group], iter(group))
                        for _, done in group:  # read: the disk holds one group at a time
                            Path(str(done.path)).unlink()
                        group = []
                    current = g
                    local = Path(tmp) / f"{g}-{i}"
                    local.write_bytes(row["content"])
                    group.append((i, Source(sources[i].name, local)))
            if group:
                yield read_group([k for k, _ in group], iter(group))

    rows = []
    with quiet():
        if todo:
            frame = spark.createDataFrame([(json.dumps(g),) for g in todo], "group string")
            rows += frame.repartition(len(todo)).mapInArrow(read, _DONE).collect()
        if remote:
            rows += _remote_rows(spark, sources, remote, read_remote)
    errors = [r["error"] for r in rows if r["error"]]
    if errors:
        raise FormatError(errors[0])
    if uploaded is not None:
        for r in rows:
            uploaded.update(json.loads(r["uploaded"] or "{}"))
    from trafficlens.ingest.run import SourceResult

    out: dict[int, tuple[Any, dict | None]] = {}
    for r in rows:
        for d in json.loads(r["results"]):
            entry = d["entry"]
            if entry is not None:
                entry["ingested_at"] = datetime.fromisoformat(entry["ingested_at"])
            out[d["i"]] = (SourceResult(**d["result"]), entry)
    return [out[i] for i in range(len(sources))]


def _remote_rows(spark: Any, sources: Sequence[Source], remote: list[list[int]], read_remote: Any) -> list[Any]:
    """The remote groups read in Spark tasks: the files' contents from Spark's `binaryFile` reader,
    one to an Arrow batch (a log file is large), each group's in one task and in order."""
    plan = [(sources[i].name, g, k, i) for g, ids in enumerate(remote) for k, i in enumerate(ids)]
    order = spark.createDataFrame(plan, "path string, g int, k int, i int")
    # Each distinct file once (the same URI is named once; equal content under two names is read
    # twice by Spark and once by the group's task, which finds it in the manifest).
    files = (
        spark.read.format("binaryFile").load(sorted({_hadoop_literal(p) for p, *_ in plan})).select("path", "content")
    )
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "1")
    try:
        joined = order.join(files, "path").repartition(len(remote), "g").sortWithinPartitions("g", "k")
        return list(joined.select("i", "g", "content").mapInArrow(read_remote, _DONE).collect())
    except Exception as e:
        raise InputError(f"cannot read the remote logs: {error_line(e)}") from None
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


__all__ = ["groups", "ingest_sources", "list_remote"]
