"""ingest's sources parsed in parallel on Apache Spark (`--engine spark`).

The driver lists the sources, holds the lake's lock and commits; each Spark task reads whole
sources with the local engine's own reader (`run._ingest_source`: format detection, parsing,
resuming where the manifest says, privacy), writing its events and rejects into the run's staging
folder under a name of its own, and returns what it did. Sources that start with the same line go
to one task, in order, so that content named twice in one run (a file and its copy, a snapshot
and the live log) is read once, as the local engine does.

Sources are paths every executor sees: the machine itself in local mode, or a shared filesystem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from trafficlens.errors import FormatError, InputError, OptionError
from trafficlens.ingest.options import IngestOptions
from trafficlens.ingest.sources import OpenSource, Source
from trafficlens.schema import MANIFEST_SCHEMA
from trafficlens.spark import quiet

# What a task returns per group of sources: their results as JSON, or the format error that
# stopped it (as Spark's DDL, and as the Arrow batches the task yields).
_DONE = "results string, error string"
_ARROW = pa.schema([("results", pa.string()), ("error", pa.string())])
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


def ingest_sources(
    spark: Any,
    sources: Sequence[Source],
    root: Path,
    run_id: str,
    manifest: pl.DataFrame,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
) -> list[tuple[Any, dict | None]]:
    """Every source read in a Spark task; (SourceResult, manifest entry or None) per source, in
    the order given. A format given by the user that a source does not match is a FormatError, as
    in the local engine."""
    for s in sources:
        if s.path is None or s.stream:
            raise OptionError(f"{s.name}: a stream is read once, by the local engine; ingest it without --engine spark")
    todo = groups(sources)
    lake_root = str(root)

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from trafficlens.ingest.privacy import protected_writer
        from trafficlens.ingest.run import _ingest_source
        from trafficlens.progress import Progress
        from trafficlens.store import Lake, Transaction

        tx = Transaction(Lake(lake_root), run_id, existing=True)
        for batch in batches:
            for group in batch.column("group").to_pylist():
                ids = json.loads(group)
                writer = protected_writer(tx, opts, Path(lake_root), tag=f"-s{ids[0]}", record=False)
                known, done = manifest, []
                try:
                    for i in ids:
                        result, entry = _ingest_source(
                            sources[i], tx, writer, known, opts, window, Progress(None, "ingest", enabled=False)
                        )
                        if entry is not None:
                            known = pl.concat([known, pl.DataFrame([entry], schema=MANIFEST_SCHEMA)])
                            entry = {**entry, "ingested_at": entry["ingested_at"].isoformat()}
                        done.append({"i": i, "result": asdict(result), "entry": entry})
                    writer.close()
                except FormatError as e:
                    writer.stop()
                    yield pa.RecordBatch.from_pydict({"results": [None], "error": [str(e)]}, schema=_ARROW)
                    continue
                except BaseException:
                    writer.stop()
                    raise
                yield pa.RecordBatch.from_pydict({"results": [json.dumps(done)], "error": [None]}, schema=_ARROW)

    frame = spark.createDataFrame([(json.dumps(g),) for g in todo], "group string")
    with quiet():
        rows = frame.repartition(max(len(todo), 1)).mapInArrow(read, _DONE).collect()
    errors = [r["error"] for r in rows if r["error"]]
    if errors:
        raise FormatError(errors[0])
    from trafficlens.ingest.run import SourceResult

    out: dict[int, tuple[Any, dict | None]] = {}
    for r in rows:
        for d in json.loads(r["results"]):
            entry = d["entry"]
            if entry is not None:
                entry["ingested_at"] = datetime.fromisoformat(entry["ingested_at"])
            out[d["i"]] = (SourceResult(**d["result"]), entry)
    return [out[i] for i in range(len(sources))]


__all__ = ["groups", "ingest_sources"]
