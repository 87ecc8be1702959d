"""Raw access logs -> the lake's `events` and `rejects`, streaming, idempotent and atomic.

A source is known by its content, not its name: the manifest keeps a hash of its first bytes and
of the bytes just before where the last run stopped. Ingesting the same content again adds
nothing; a source that has grown since (an active log, or a rotated one that was appended to)
resumes where the last run stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trafficlens.errors import FormatError, InputError, OptionError
from trafficlens.ingest.detect import resolve_format
from trafficlens.ingest.formats import W3CFormat
from trafficlens.ingest.formats.custom import compile_log_format
from trafficlens.ingest.options import IngestOptions
from trafficlens.ingest.parse import parse_chunk
from trafficlens.ingest.sources import OpenSource, Source, iter_chunks, resolve_sources, split_lines
from trafficlens.ingest.writer import PARSE_WORKERS, Parsed, PartWriter, parse_in_order, prefetch
from trafficlens.progress import Progress
from trafficlens.schema import MANIFEST_SCHEMA
from trafficlens.store import Lake, Transaction

HEAD_BYTES = 64 * 1024  # fingerprint and format-detection sample
TAIL_BYTES = 4096
SAMPLE_LINES = 1000


@dataclass
class SourceResult:
    source: str
    format: str | None
    compression: str
    lines: int = 0
    events: int = 0
    rejects: int = 0
    status: str = "ingested"  # ingested | resumed | unchanged | empty | skipped
    resumed_at_line: int = 0
    note: str = ""


@dataclass
class IngestSummary:
    """What one ingest run did."""

    lake: Path
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
        return (
            f"{self.files} file(s){extra}, {self.lines:,} lines, {self.events:,} events, "
            f"{self.rejects:,} rejects; formats: {fmts}; {self.seconds:.1f}s, "
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


def _ingest_source(
    source: Source, tx: Transaction, writer: PartWriter, manifest: pl.DataFrame, opts: IngestOptions, progress: Progress
) -> tuple[SourceResult, dict | None]:
    src = OpenSource(source)
    try:
        stream = _Stream(src)
        head = stream.read_full(HEAD_BYTES)
        result = SourceResult(source.name, None, src.compression)
        if not head:
            result.status = "empty"
            return result, None
        first, base_line, w3c_state, skip_partial = head, 0, None, False
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
                # The last run read an unterminated final line: the rest of it is skipped.
                skip_partial = not before.endswith(b"\n")
                result.status = "resumed"
                result.resumed_at_line = base_line
            elif source.path is None:
                raise InputError(
                    "standard input starts like an earlier source but differs from it; "
                    "save it to a file and ingest that"
                )
            else:
                # Same first bytes, different content: a new source after all.
                src.close()
                src = OpenSource(source)
                stream = _Stream(src)
                head = first = stream.read_full(HEAD_BYTES)
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

        line_no = base_line

        def framed(chunks: Iterator[bytes | memoryview]) -> Iterator[pl.DataFrame]:
            nonlocal line_no
            for chunk in chunks:
                lines = split_lines(chunk)
                n = len(lines)
                yield pl.DataFrame({"line": lines, "line_no": pl.int_range(line_no + 1, line_no + 1 + n, eager=True)})
                line_no += n

        def parse(frame: pl.DataFrame, state: list[str] | None) -> Parsed:
            events, rejects, state = parse_chunk(frame, fmt, opts, source.name, state, envelope)
            counts = dict(events.get_column("format").value_counts().iter_rows()) if events.height else {}
            return Parsed(frame.height, events, rejects, state, counts)

        formats_seen: dict[str, int] = {}
        # Four stages overlap: reading and cutting lines (a thread), parsing (a pool of threads,
        # one chunk each, in polars), handing the results over in order (here) and writing
        # Parquet (the writer's thread). W3C chunks are parsed in turn: each one's #Fields
        # directives hold for the next.
        frames = prefetch(framed(iter_chunks(stream.read, first, opts.chunk_bytes, skip_partial, stream.readinto)))
        workers = 1 if isinstance(fmt, W3CFormat) else PARSE_WORKERS
        for done in parse_in_order(frames, parse, w3c_state, workers):
            writer.add(done.events, done.rejects)
            w3c_state = done.state
            result.lines += done.lines
            result.events += done.events.height
            result.rejects += done.rejects.height
            for name, cnt in done.counts.items():
                formats_seen[name] = formats_seen.get(name, 0) + cnt
            progress.update(src.compressed_read, done.lines)
        if result.lines == 0 and result.status == "resumed":
            result.status = "unchanged"
            return result, None
        if formats_seen:
            result.format = max(formats_seen, key=formats_seen.__getitem__)
        entry = {
            "source": source.name,
            "fingerprint": fingerprint,
            "head_len": head_len,
            "start_offset": start_offset,
            "end_offset": stream.offset,
            "tail_hash": _hash(stream.tail),
            "start_line": base_line,
            "end_line": line_no,
            "events": result.events,
            "rejects": result.rejects,
            "format": result.format,
            "format_state": "\t".join(w3c_state) if w3c_state else None,
            "compression": src.compression,
            "run_id": tx.run_id,
            "ingested_at": datetime.now(UTC),
        }
        return result, entry
    finally:
        src.close()


def ingest(
    inputs: list[str],
    lake: str | Path,
    options: IngestOptions | None = None,
    progress: bool | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
) -> IngestSummary:
    """Ingest log files, folders, globs or `-` (standard input) into the lake's `events`.

    Example: `ingest(["/var/log/nginx/"], "lake")`. Re-running it adds nothing; a grown log adds
    only its new lines; an interrupted run leaves the lake as it was.
    """
    if not inputs:
        raise OptionError("give at least one log file, folder, glob, or - for standard input")
    opts = options or IngestOptions()
    opts.check()
    if opts.log_format:
        compile_log_format(opts.log_format)  # fail on a bad format string before touching the lake
    sources = resolve_sources(inputs, exclude=Path(lake).expanduser().resolve())
    store = Lake(lake, create=True)
    started = time.perf_counter()
    summary = IngestSummary(store.root)
    total = sum(s.size or 0 for s in sources) or None
    bar = Progress(total, "ingest", enabled=progress)
    with store.locked():
        manifest = store.read_manifest()
        tx = store.begin()
        writer = PartWriter(tx)
        try:
            new_rows: list[dict] = []
            for source in sources:
                bar.start_source(source.name)
                result, entry = _ingest_source(source, tx, writer, manifest, opts, bar)
                summary.results.append(result)
                if entry is not None:
                    new_rows.append(entry)
                    # The next sources of this run see this one (the same file named twice).
                    manifest = pl.concat([manifest, pl.DataFrame([entry], schema=MANIFEST_SCHEMA)])
                if on_source:
                    on_source(result)
            writer.close()
            if summary.results and all(r.status == "skipped" for r in summary.results):
                raise FormatError(f"{summary.results[0].source}: {summary.results[0].note}")
            if new_rows:
                manifest.write_parquet(tx.path("manifest.parquet"))
                tx.commit()
            else:
                tx.abort()
        except BaseException:
            writer.stop()
            tx.abort()
            raise
        finally:
            bar.close()
        store.refresh_views()
    summary.seconds = time.perf_counter() - started
    return summary
