"""Raw access logs -> the lake's `events` and `rejects`, streaming, idempotent and atomic.

A source is known by its content, not its name: the manifest keeps a hash of its first bytes and
of the bytes just before where the last run stopped. Ingesting the same content again adds
nothing; a source that has grown since (an active log, or a rotated one that was appended to)
resumes where the last run stopped. So a rotation loses and doubles nothing, whether the live file
is renamed (and its server appends a little more to it before reopening) or copied and truncated.

A run stops before an unterminated last line while its file may still be written: the line is
read whole by a later run. It is read as it is once the source is finished (a stream that ended,
a compressed file, or a plain file left unchanged for `SETTLE_SECONDS`: see `OpenSource.finished`).

Every line read is an event, a reject (with its reason) or a skipped line (with its reason,
SKIP_REASONS); the manifest counts each per run. A source that cannot be read (unreadable, a
truncated archive) fails alone: the whole lines before the damage are kept, the others are
ingested, and the summary names it with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from trafficlens.errors import FormatError, InputError, OptionError
from trafficlens.ingest.detect import resolve_format
from trafficlens.ingest.formats import W3CFormat
from trafficlens.ingest.formats.custom import compile_log_format
from trafficlens.ingest.options import IngestOptions
from trafficlens.ingest.parse import parse_chunk
from trafficlens.ingest.privacy import protected_writer, protection
from trafficlens.ingest.sources import OpenSource, Source, iter_chunks, resolve_sources, split_lines
from trafficlens.ingest.spark import ingest_sources, list_remote
from trafficlens.ingest.writer import PARSE_WORKERS, Parsed, PartWriter, parse_in_order, prefetch
from trafficlens.progress import Progress
from trafficlens.schema import MANIFEST_SCHEMA
from trafficlens.spark import check_engine, spark_session
from trafficlens.store import STAGING_VARIABLE, URI, Lake, Transaction

HEAD_BYTES = 64 * 1024  # fingerprint and format-detection sample
TAIL_BYTES = 4096
SAMPLE_LINES = 1000


@dataclass
class SourceResult:
    """What ingest did with one source. Its lines read are events + rejects + skipped lines."""

    source: str
    format: str | None
    compression: str
    lines: int = 0
    events: int = 0
    rejects: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # lines skipped, by reason (SKIP_REASONS)
    status: str = "ingested"  # ingested | resumed | unchanged | empty | skipped | failed
    resumed_at_line: int = 0
    # An unterminated last line in a file that may still be written: left for a later run.
    waiting: bool = False
    note: str = ""

    @property
    def skipped_lines(self) -> int:
        return sum(self.skipped.values())


@dataclass
class IngestSummary:
    """What one ingest run did."""

    lake: str | Path
    results: list[SourceResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return len(self.results)

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.results)

    @property
    def events(self) -> int:
        return sum(r.events for r in self.results)

    @property
    def rejects(self) -> int:
        return sum(r.rejects for r in self.results)

    @property
    def skipped(self) -> dict[str, int]:
        """Lines skipped, by reason, over every source."""
        out: dict[str, int] = {}
        for r in self.results:
            for reason, n in r.skipped.items():
                out[reason] = out.get(reason, 0) + n
        return out

    @property
    def failed(self) -> list[SourceResult]:
        """The sources that could not be read to their end, each with its reason in `note`."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def formats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            if r.format and r.lines:
                out[r.format] = out.get(r.format, 0) + r.lines
        return out

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        fmts = ", ".join(f"{k} ({v:,})" for k, v in sorted(self.formats.items())) or "-"
        unchanged = sum(r.status == "unchanged" for r in self.results)
        skipped = sum(r.status == "skipped" for r in self.results)
        extra = f" ({unchanged} already ingested)" if unchanged else ""
        extra += f" ({skipped} skipped: no known format)" if skipped else ""
        extra += f" ({len(self.failed)} failed)" if self.failed else ""
        reasons = self.skipped
        skips = f", {sum(reasons.values()):,} skipped" if reasons else ""
        skips += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())) + ")" if reasons else ""
        waiting = sum(r.waiting for r in self.results)
        wait = f"; {waiting} unterminated last line(s) left for a later run" if waiting else ""
        return (
            f"{self.files} file(s){extra}, {self.lines:,} lines, {self.events:,} events, "
            f"{self.rejects:,} rejects{skips}{wait}; formats: {fmts}; {self.seconds:.1f}s, "
            f"{self.lines_per_second:,.0f} lines/s"
        )


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class _Stream:
    """Reads a source's decompressed bytes, tracking the offset and the bytes before it."""

    def __init__(self, src: OpenSource) -> None:
        self.src = src
        self.offset = 0
        self.tail = b""

    def read(self, n: int) -> bytes:
        data = self.src.read(n)
        self.offset += len(data)
        self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
        return data

    def readinto(self, b: memoryview) -> int:
        n = self.src.readinto(b)
        self.offset += n
        self.tail = (self.tail + bytes(b[max(0, n - TAIL_BYTES) : n]))[-TAIL_BYTES:]
        return n

    def read_full(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = self.read(min(n - got, 1 << 20))
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)


def _previous(manifest: pl.DataFrame, head: bytes) -> dict | None:
    """The furthest earlier run over content that starts like `head`, if any."""
    best = None
    for head_len in manifest["head_len"].unique().to_list():
        if head_len > len(head):
            continue
        fp = _hash(head[:head_len])
        rows = manifest.filter((pl.col("head_len") == head_len) & (pl.col("fingerprint") == fp))
        if rows.height:
            row = rows.sort("end_offset").row(-1, named=True)
            if best is None or row["end_offset"] > best["end_offset"]:
                best = row
    return best


def _conform(manifest: pl.DataFrame) -> pl.DataFrame:
    """A manifest written before some of MANIFEST_SCHEMA's columns existed, with them (null)."""
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in MANIFEST_SCHEMA.items() if c not in manifest.columns]
    return manifest.with_columns(missing).select(list(MANIFEST_SCHEMA)) if missing else manifest


def _failed(result: SourceResult, error: Exception) -> SourceResult:
    # The summary names the source: its reason need not say it again.
    result.status = "failed"
    result.note = str(error).replace(f" {result.source}:", ":").removeprefix(f"{result.source}: ")
    return result


def _ingest_source(
    source: Source,
    tx: Transaction,
    writer: PartWriter,
    manifest: pl.DataFrame,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
    progress: Progress,
) -> tuple[SourceResult, dict | None]:
    """Read one source; a source that cannot be read fails alone (status `failed`, with why)."""
    result = SourceResult(source.name, None, "none")
    known = manifest
    while True:
        try:
            src = OpenSource(source)
        except InputError as e:
            return _failed(result, e), None
        result.compression = src.compression
        try:
            done = _read_source(src, result, tx, writer, known, opts, window, progress)
        except FormatError:
            raise
        except InputError as e:
            return _failed(result, e), None
        finally:
            src.close()
        if done is not None:
            return done
        known = manifest.clear()  # same first bytes, different content: a new source after all


def _read_source(
    src: OpenSource,
    result: SourceResult,
    tx: Transaction,
    writer: PartWriter,
    manifest: pl.DataFrame,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
    progress: Progress,
) -> tuple[SourceResult, dict | None] | None:
    """Read a source from where the manifest says it was left; None when it must be read anew."""
    source = src.source
    stream = _Stream(src)
    head = stream.read_full(HEAD_BYTES)
    if not head:
        result.status = "empty"
        return result, None
    first, before, base_line, w3c_state = head, b"", 0, None
    fingerprint, head_len, start_offset = _hash(head), len(head), 0
    prev = _previous(manifest, head)
    if prev is not None:
        end = prev["end_offset"]
        if end <= len(head):
            before, first = head[:end], head[end:]
        else:
            stream.read_full(end - stream.offset)
            before, first = stream.tail, b""
        if stream.offset < end:
            result.status = "unchanged"  # a shorter copy of content already ingested
            return result, None
        if _hash(before[-TAIL_BYTES:]) == prev["tail_hash"]:
            fingerprint, head_len, start_offset = prev["fingerprint"], prev["head_len"], end
            base_line = prev["end_line"]
            w3c_state = prev["format_state"].split("\t") if prev["format_state"] else None
            result.status = "resumed"
            result.resumed_at_line = base_line
            if not before.endswith(b"\n"):
                # The last run read an unterminated last line (its source looked finished, yet
                # it grew): what follows is the rest of that line, read as a line of its own
                # under the same number.
                base_line -= 1
        elif source.stream or source.path is None:
            name = "standard input" if source.path is None else source.name
            raise InputError(
                f"{name} starts like an earlier source but differs from it; save it to a file and ingest that"
            )
        else:
            return None
    sample = head.decode("utf-8", "replace").splitlines()[:SAMPLE_LINES]
    try:
        fmt, envelope = resolve_format(sample, opts)
    except FormatError as e:
        if opts.format or opts.log_format:
            raise
        # One unreadable file (a README in a log folder, say) does not stop the others.
        result.status = "skipped"
        result.note = str(e)
        return result, None
    result.format = fmt.name

    # Where the lines read so far end: byte offset, the bytes just before it, line number.
    offset, tail, line_no = start_offset, before[-TAIL_BYTES:], base_line

    def framed(chunks: Iterator[bytes | memoryview]) -> Iterator[tuple[pl.DataFrame, tuple[int, bytes, int]]]:
        nonlocal offset, tail, line_no
        for chunk in chunks:
            lines = split_lines(chunk)
            n = len(lines)
            frame = pl.DataFrame({"line": lines, "line_no": pl.int_range(line_no + 1, line_no + 1 + n, eager=True)})
            offset += len(chunk)
            tail = (tail + bytes(chunk[-TAIL_BYTES:]))[-TAIL_BYTES:]
            line_no += n
            yield frame, (offset, tail, line_no)

    def parse(item: tuple[pl.DataFrame, tuple[int, bytes, int]], state: list[str] | None) -> Parsed:
        frame, end = item
        events, rejects, state, skipped = parse_chunk(frame, fmt, opts, source.name, state, envelope, window)
        counts = dict(events.get_column("format").value_counts().iter_rows()) if events.height else {}
        return Parsed(frame.height, events, rejects, state, counts, skipped, end)

    formats_seen: dict[str, int] = {}
    done_end = (start_offset, before[-TAIL_BYTES:], base_line)
    # Four stages overlap: reading and cutting lines (a thread), parsing (a pool of threads,
    # one chunk each, in polars), handing the results over in order (here) and writing
    # Parquet (the writer's thread). W3C chunks are parsed in turn: each one's #Fields
    # directives hold for the next.
    chunks = iter_chunks(stream.read, first, opts.chunk_bytes, src.finished, stream.readinto)
    workers = 1 if isinstance(fmt, W3CFormat) else PARSE_WORKERS
    try:
        for done in parse_in_order(prefetch(framed(chunks)), parse, w3c_state, workers):
            writer.add(done.events, done.rejects)
            w3c_state = done.state
            done_end = done.end
            result.lines += done.lines
            result.events += done.events.height
            result.rejects += done.rejects.height
            for reason, cnt in done.skipped.items():
                result.skipped[reason] = result.skipped.get(reason, 0) + cnt
            for name, cnt in done.counts.items():
                formats_seen[name] = formats_seen.get(name, 0) + cnt
            progress.update(src.compressed_read, done.lines)
    except FormatError:
        raise
    except InputError as e:
        # The whole lines read before the error are kept; a later run resumes after them.
        _failed(result, e)
    else:
        result.waiting = stream.offset > done_end[0]
    if result.lines == 0:
        if result.status == "resumed":
            result.status = "unchanged"
        return result, None
    if formats_seen:
        result.format = max(formats_seen, key=formats_seen.__getitem__)
    end_offset, end_tail, end_line = done_end
    if end_offset < head_len:
        # Known by the lines it gave, not by a last line held back: that one may yet change.
        fingerprint, head_len = _hash(head[:end_offset]), end_offset
    entry = {
        "source": source.name,
        "fingerprint": fingerprint,
        "head_len": head_len,
        "start_offset": start_offset,
        "end_offset": end_offset,
        "tail_hash": _hash(end_tail),
        "start_line": base_line,
        "end_line": end_line,
        "lines": result.lines,
        "events": result.events,
        "rejects": result.rejects,
        "skipped": result.skipped_lines,
        "skipped_reasons": json.dumps(result.skipped, sort_keys=True) if result.skipped else None,
        "format": result.format,
        "format_state": "\t".join(w3c_state) if w3c_state else None,
        "compression": src.compression,
        "run_id": tx.run_id,
        "ingested_at": datetime.now(UTC),
    }
    return result, entry


def ingest(
    inputs: list[str],
    lake: str | Path,
    options: IngestOptions | None = None,
    progress: bool | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
    engine: str = "local",
    master: str | None = None,
    spark_conf: Sequence[str] = (),
) -> IngestSummary:
    """Ingest log files, folders, globs or `-` (standard input) into the lake's `events`.

    Example: `ingest(["/var/log/nginx/"], "lake")`. Re-running it adds nothing; a grown log adds
    only its new lines; an interrupted run leaves the lake as it was. A source that cannot be
    read (unreadable, a truncated archive) fails alone: the others are ingested and the summary's
    `failed` names it with its reason. `engine="spark"` reads the sources in Spark tasks
    (`trafficlens.ingest.spark`) on `master` with `spark_conf`, as classify does.
    """
    check_engine(engine, master, spark_conf)
    if not inputs:
        raise OptionError("give at least one log file, folder, glob, or - for standard input")
    opts = options or IngestOptions()
    opts.check()
    window = opts.window()
    if opts.log_format:
        compile_log_format(opts.log_format)  # fail on a bad format string before touching the lake
    # The lake's own folder is never read as a log (a lake at a URI is not on this disk).
    exclude = None if isinstance(lake, str) and URI.match(lake) else Path(lake).expanduser().resolve()

    # Local paths are checked before Spark starts; URIs are listed by Spark's filesystem once it has.
    def unlisted(uri: str) -> list[Source]:
        return [Source(uri, None, remote=True)]

    sources = resolve_sources(inputs, exclude=exclude, remote=unlisted if engine == "spark" else None)
    started = time.perf_counter()
    with contextlib.ExitStack() as engines:
        spark = engines.enter_context(spark_session(master, spark_conf)) if engine == "spark" else None
        if spark is not None and any(s.remote for s in sources):
            sources = resolve_sources(inputs, exclude=exclude, remote=lambda uri: list_remote(spark, uri))
        store = Lake(lake, create=True)
        summary = IngestSummary(store.location)
        total = sum(s.size or 0 for s in sources) or None
        bar = Progress(total, "ingest", enabled=progress)
        _run(sources, store, opts, window, summary, bar, on_source, spark)
    summary.seconds = time.perf_counter() - started
    return summary


def _run(
    sources: list[Source],
    store: Lake,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
    summary: IngestSummary,
    bar: Progress,
    on_source: Callable[[SourceResult], None] | None,
    spark: Any,
) -> None:
    """Every source read into one transaction of the lake, committed when anything was read."""
    with store.locked():
        manifest = _conform(store.read_manifest())
        tx = store.begin()
        privacy, secret = protection(opts, store, tx)  # --ip-privacy and --redact-query
        writer = protected_writer(tx, opts, privacy, secret)
        try:
            new_rows: list[dict] = []
            if spark is None:
                done: Iterator[tuple[SourceResult, dict | None]] = _each(
                    sources, tx, writer, manifest, opts, window, bar
                )
            else:
                bar.start_source(f"{len(sources)} source(s) on Spark")
                # A lake at a URI, and no staging folder the tasks share: they upload into it.
                lake = None if store.remote is None or os.environ.get(STAGING_VARIABLE) else store.remote.area()
                done = iter(
                    ingest_sources(spark, sources, tx.dir, (privacy, secret), manifest, opts, window, lake, tx.uploaded)
                )
            for result, entry in done:
                summary.results.append(result)
                if entry is not None:
                    new_rows.append(entry)
                if on_source:
                    on_source(result)
            writer.close()
            if summary.results and all(r.status == "skipped" for r in summary.results):
                raise FormatError(f"{summary.results[0].source}: {summary.results[0].note}")
            if summary.failed and not new_rows and all(r.status in ("failed", "skipped") for r in summary.results):
                # Nothing to commit and nothing there before: an error, naming every bad source.
                raise InputError("nothing could be read: " + "; ".join(f"{r.source}: {r.note}" for r in summary.failed))
            if new_rows:
                # What this run commits: the earlier runs' entries and its own.
                pl.concat([manifest, pl.DataFrame(new_rows, schema=MANIFEST_SCHEMA)]).write_parquet(
                    tx.path("manifest.parquet")
                )
                tx.commit()
            else:
                tx.abort()
        except BaseException:
            writer.stop()
            if spark is not None:  # no task may write into the staging folder once it is gone
                spark.sparkContext.cancelAllJobs()
            tx.abort()
            raise
        finally:
            bar.close()
        store.refresh_views()


def _each(
    sources: list[Source],
    tx: Transaction,
    writer: PartWriter,
    manifest: pl.DataFrame,
    opts: IngestOptions,
    window: tuple[datetime, datetime],
    bar: Progress,
) -> Iterator[tuple[SourceResult, dict | None]]:
    """The sources read in turn in this process, each seeing the manifest entries of the ones before
    (the same file named twice is read once)."""
    for source in sources:
        bar.start_source(source.name)
        result, entry = _ingest_source(source, tx, writer, manifest, opts, window, bar)
        if entry is not None:
            manifest = pl.concat([manifest, pl.DataFrame([entry], schema=MANIFEST_SCHEMA)])
        yield result, entry
