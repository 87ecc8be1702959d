"""Raw access logs -> the lake's `events` and `rejects`, streaming, idempotent and atomic.

A source is known by its content, not its name: the manifest keeps a hash of its first bytes and
of the bytes just before where the last run stopped. Ingesting the same content again adds
nothing; a source that has grown since (an active log, or a rotated one that was appended to)
resumes where the last run stopped.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from trafficlens import formats as F
from trafficlens.errors import FormatError, InputError
from trafficlens.progress import Progress
from trafficlens.readers import CHUNK_BYTES, OpenSource, Source, iter_chunks, resolve_sources, split_lines
from trafficlens.schema import EVENT_COLUMNS, EVENT_SCHEMA, MANIFEST_SCHEMA, REJECT_SCHEMA
from trafficlens.store import Lake, Transaction

HEAD_BYTES = 64 * 1024  # fingerprint and format-detection sample
TAIL_BYTES = 4096
SAMPLE_LINES = 1000
FLUSH_ROWS = 400_000  # rows buffered before a file is written: bounds memory
PARSE_WORKERS = 2  # chunks parsed at once: more only adds memory
# Parsed chunks waiting for the writer: enough to keep parsing while a file is written.
WRITE_QUEUE = 8
_DICTIONARY_COLUMNS = [c for c in EVENT_COLUMNS if c not in ("line_no", "bytes")]


@dataclass
class IngestOptions:
    """How to read the sources. Every field has a CLI option of the same name."""

    format: str | None = None
    log_format: str | None = None
    site: str | None = None
    tz: str | None = None
    json_map: str | None = None
    chunk_bytes: int = CHUNK_BYTES


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


def resolve_format(sample: list[str], opts: IngestOptions) -> tuple[F.Format, str | None]:
    """The format (named, custom, or the one that fits most sample lines) and any envelope."""
    envelope = detect_envelope(sample)
    if envelope is not None:
        sample = strip_envelope(pl.DataFrame({"line": sample}, schema={"line": pl.String}), envelope)[
            "line"
        ].to_list()
    return _resolve_format(sample, opts), envelope


def _resolve_format(sample: list[str], opts: IngestOptions) -> F.Format:
    if opts.log_format:
        return F.compile_log_format(opts.log_format)
    if opts.format:
        name = F.FORMAT_ALIASES.get(opts.format.lower().replace("-", "_"))
        if name is None:
            raise FormatError(f"unknown --format {opts.format!r}; choose one of {', '.join(F.ALL_FORMAT_NAMES)}")
        if name == "traefik" and sum(x.lstrip().startswith("{") for x in sample) <= len(sample) / 2:
            name = "traefik_clf"  # Traefik writes JSON or, by default, a CLF-like line
        if name in F.W3C_FORMATS:
            return F.W3C_FORMATS[name]
        if name in F.JSON_FORMATS or name == "json":
            return _json_format(name, opts)
        return F.REGEX_FORMATS[name]
    return detect_format(sample, opts)


def _json_format(name: str, opts: IngestOptions) -> F.JsonFormat:
    base = F.JSON_FORMATS.get(name, F.JSON_FORMATS["nginx_json"])
    if not opts.json_map:
        return base
    paths = dict(base.paths)
    paths.update(F.parse_json_map(opts.json_map))
    return F.JsonFormat("json", paths, ts_kind="auto", duration_unit=base.duration_unit)


def detect_envelope(sample: list[str]) -> str | None:
    """A syslog or container-runtime prefix on a good share of the lines, if any."""
    frame = pl.DataFrame({"line": [s for s in sample if s.strip()]}, schema={"line": pl.String})
    for rx in F.ENVELOPES.values():
        if frame.height and frame.select(pl.col("line").str.contains(rx).mean()).item() >= 0.3:
            return rx
    return None


def strip_envelope(lines: pl.DataFrame, envelope: str | None) -> pl.DataFrame:
    return lines if envelope is None else lines.with_columns(pl.col("line").str.replace(envelope, ""))


def detect_format(sample: list[str], opts: IngestOptions | None = None) -> F.Format:
    """Tell a log's format from a sample of its lines; junk lines among them do not matter."""
    opts = opts or IngestOptions()
    lines = [s for s in sample if s.strip()]
    if not lines:
        raise FormatError("the log is empty")
    directives = [s for s in lines if s.startswith("#Fields:")]
    data = [s for s in lines if not s.startswith("#")]
    tabbed = sum(s.count("\t") >= 20 for s in data[:50]) > len(data[:50]) / 2
    if directives:
        fields = [f.lower() for f in F.w3c_fields(directives[0])]
        return F.W3C_FORMATS["cloudfront" if tabbed or "x-edge-location" in fields else "w3c"]
    if tabbed and all(re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\t", s) for s in data[:5]):
        return F.W3C_FORMATS["cloudfront"]  # CloudFront without its header lines
    if sum(s.lstrip().startswith("{") for s in data) > len(data) / 2:
        return _json_format(F.detect_json(data).name, opts)
    frame = pl.DataFrame({"line": data}, schema={"line": pl.String})
    best, best_hits = None, 0
    for fmt in F.REGEX_FORMATS.values():
        hits = frame.select(pl.col("line").str.contains(fmt.tolerant or fmt.fast).sum()).item()
        if hits > best_hits:
            best, best_hits = fmt, hits
    if best is None:
        raise FormatError(
            "no known format fits the first lines; name it with --format "
            f"({', '.join(F.ALL_FORMAT_NAMES)}) or describe it with --log-format"
        )
    return best


# What str.strip_chars() strips (Unicode White_Space), and the comment mark.
_SKIP_FIRST = [
    *"\t\n\x0b\x0c\r \x85\xa0\u1680", *map(chr, range(0x2000, 0x200B)), *"\u2028\u2029\u202f\u205f\u3000#",
]


def parse_chunk(
    lines: pl.DataFrame,
    fmt: F.Format,
    opts: IngestOptions,
    source: str,
    w3c_fields: list[str] | None,
    envelope: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str] | None]:
    """Lines (`line`, `line_no`) -> (events, rejects, W3C fields in force after the chunk)."""
    # Blank lines, and comment lines outside W3C logs (which use them as directives), are no
    # log lines: skipped, not rejected.
    line = pl.col("line")
    # Only an empty line or one that starts with a space or '#' can be skipped; most chunks have
    # none, and the check that tells for sure (which copies every line) is then left out.
    if lines.select((line.str.len_bytes() == 0) | line.str.slice(0, 1).is_in(_SKIP_FIRST)).to_series().any():
        skip = line.str.strip_chars() == ""
        if not isinstance(fmt, F.W3CFormat):
            skip = skip | line.str.starts_with("#")
        lines = lines.filter(~skip)
    original = lines
    lines = strip_envelope(lines, envelope)
    parts: list[pl.DataFrame] = []
    if isinstance(fmt, F.W3CFormat):
        raw, miss, w3c_fields = F.parse_w3c(lines, fmt, w3c_fields)
        parts.append(F.finish(raw, fmt.name, "w3c", opts.tz, fmt.time_taken_unit, opts.site, source))
        misses = miss.rename({"_why": "reason"})
    elif isinstance(fmt, F.JsonFormat):
        raw, miss = F.parse_json(lines, fmt)
        parts.append(F.finish(raw, fmt.name, fmt.ts_kind, opts.tz, fmt.duration_unit, opts.site, source))
        misses = miss.select("line", "line_no", reason=pl.lit("not a JSON object with a time or client address"))
    else:
        miss = lines
        if fmt is F.REGEX_FORMATS["combined"]:
            # The usual case goes the fast way; what it cannot read falls to the regexes below.
            cut = F.fast_combined(lines.lazy()).collect()
            plain = cut.get_column("_plain")
            rest = None
            if not plain.all():
                cut, rest = cut.filter(plain), cut.filter(~plain)
            parts.append(F.finish_plain(cut, opts.site, source))
            miss = lines.clear()
            if rest is not None:
                ok = rest.get_column("_ok")
                if ok.any():
                    parts.append(F.finish(
                        F.fast_ts_text(rest.filter(ok)), "combined", "clf", opts.tz, "s", opts.site, source,
                        unescape=False,
                    ))
                miss = rest.filter(~ok).select("line", "line_no")
        # Lines the file's format misses get the other line formats before they are rejected:
        # shared logs mix vhost and plain lines, and proxies add their own.
        fallbacks = [] if fmt.name == "custom" else [f for f in F.REGEX_FORMATS.values() if f is not fmt]
        for f in [fmt, *fallbacks]:
            if miss.height == 0:
                break
            raw, miss = F.parse_regex(miss, f)
            if raw.height:
                parts.append(F.finish(raw, f.name, f.ts_kind, opts.tz, f.time_unit, opts.site, source))
        misses = miss.select("line", "line_no", reason=pl.lit(f"does not fit the {fmt.name} format"))
    events = pl.concat(parts, how="vertical_relaxed") if parts else F.finish(
        lines.clear(), fmt.name, "auto", opts.tz, "s", opts.site, source
    )
    bad_ts = events.filter(pl.col("ts").is_null()) if events.get_column("ts").null_count() else None
    if bad_ts is not None:
        events = events.filter(pl.col("ts").is_not_null())
    events = events.select(EVENT_COLUMNS)
    if bad_ts is not None:
        lookup = original.join(bad_ts.select("line_no", "_raw_ts"), on="line_no")
        misses = pl.concat(
            [
                misses,
                lookup.select(
                    "line", "line_no",
                    reason=pl.lit("unreadable time: ") + pl.col("_raw_ts").fill_null("(none)"),
                ),
            ],
            how="vertical_relaxed",
        )
    if envelope is not None:
        misses = misses.drop("line").join(original, on="line_no", how="left")  # keep the raw line
    rejects = misses.select(
        source=pl.lit(source),
        line_no=pl.col("line_no"),
        reason=pl.col("reason"),
        raw=pl.col("line"),
        format=pl.lit(fmt.name),
        ingested_at=pl.lit(datetime.now(timezone.utc)).cast(REJECT_SCHEMA["ingested_at"]),
    )
    return events.cast(EVENT_SCHEMA), rejects, w3c_fields  # type: ignore[arg-type]


class _PartWriter:
    """Buffers events per day and writes `events/date=YYYY-MM-DD/part-<run>-<n>.parquet` files."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.buffers: dict[str, list[pl.DataFrame]] = {}
        self.rows: dict[str, int] = {}
        self.rejects: list[pl.DataFrame] = []
        self.reject_rows = 0
        self.seq = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, events: pl.DataFrame, rejects: pl.DataFrame) -> None:
        """Hand a parsed chunk to the writing thread (raises its error, if it had one)."""
        if self._error is not None:
            raise self._error
        self._queue.put((events, rejects))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._add(*item)
                except BaseException as e:  # re-raised in the ingesting thread
                    self._error = e

    def _add(self, events: pl.DataFrame, rejects: pl.DataFrame) -> None:
        if events.height:
            lo, hi = events.select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).row(0)
            if lo.date() == hi.date():
                pieces = {(lo.date().isoformat(),): events}
            else:
                dated = events.with_columns(_d=pl.col("ts").dt.date().cast(pl.String))
                pieces = dated.partition_by("_d", as_dict=True, include_key=False)
            for (day,), part in pieces.items():
                self.buffers.setdefault(day, []).append(part)
                self.rows[day] = self.rows.get(day, 0) + part.height
        if rejects.height:
            self.rejects.append(rejects)
            self.reject_rows += rejects.height
        # Bounded memory: the biggest day goes out once the buffers hold too much.
        while sum(self.rows.values()) > FLUSH_ROWS:
            self._flush(max(self.rows, key=self.rows.__getitem__))
        if self.reject_rows > FLUSH_ROWS:
            self._flush_rejects()

    def _flush(self, day: str) -> None:
        frames = self.buffers.pop(day)
        self.rows.pop(day)
        self.seq += 1
        out = self.tx.path(f"events/date={day}/part-{self.tx.run_id}-{self.seq:05d}.parquet")
        # pyarrow's writer, fed polars' own string layout (no copy): the same values and
        # statistics as polars' writer for less work. Line numbers (consecutive) are
        # delta-encoded, byte counts plain, the rest dictionary-encoded.
        pq.write_table(
            pl.concat(frames).to_arrow(compat_level=pl.CompatLevel.newest()), out, compression="zstd",
            write_statistics=True, use_dictionary=_DICTIONARY_COLUMNS,
            column_encoding={"line_no": "DELTA_BINARY_PACKED"},
        )

    def _flush_rejects(self) -> None:
        if not self.rejects:
            return
        self.seq += 1
        out = self.tx.path(f"rejects/part-{self.tx.run_id}-{self.seq:05d}.parquet")
        pl.concat(self.rejects).write_parquet(out, compression="zstd")
        self.rejects, self.reject_rows = [], 0

    def close(self) -> None:
        """Write what is buffered; raises the writing thread's error, if any."""
        self.stop()
        if self._error is not None:
            raise self._error
        for day in list(self.buffers):
            self._flush(day)
        self._flush_rejects()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _prefetch(it: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Read and decompress the next chunk while the current one is parsed."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False  # the consumer has gone

    def run() -> None:
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


@dataclass
class _Parsed:
    """One chunk, parsed."""

    lines: int
    events: pl.DataFrame
    rejects: pl.DataFrame
    state: list[str] | None  # W3C fields in force after the chunk
    counts: dict[str, int]  # events per format


def _parse_in_order(
    frames: Iterator[pl.DataFrame],
    parse: Callable[[pl.DataFrame, list[str] | None], _Parsed],
    state: list[str] | None,
    workers: int,
) -> Iterator[_Parsed]:
    """Parse chunks on `workers` threads at once (polars releases the GIL), yielding in order.

    A few chunks are in flight at most, which bounds memory. With one worker, each chunk gets
    the state the previous one left.
    """
    if workers <= 1:
        for frame in frames:
            done = parse(frame, state)
            state = done.state
            yield done
        return
    pending: deque[Future[_Parsed]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="parse")
    try:
        for frame in frames:
            pending.append(pool.submit(parse, frame, state))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


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
    source: Source,
    tx: Transaction,
    writer: _PartWriter,
    manifest: pl.DataFrame,
    opts: IngestOptions,
    progress: Progress,
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

        def framed(chunks: Iterator[bytes]) -> Iterator[pl.DataFrame]:
            nonlocal line_no
            for chunk in chunks:
                lines = split_lines(chunk)
                n = len(lines)
                yield pl.DataFrame({"line": lines, "line_no": pl.int_range(line_no + 1, line_no + 1 + n, eager=True)})
                line_no += n

        def parse(frame: pl.DataFrame, state: list[str] | None) -> _Parsed:
            events, rejects, state = parse_chunk(frame, fmt, opts, source.name, state, envelope)
            counts = dict(events.get_column("format").value_counts().iter_rows()) if events.height else {}
            return _Parsed(frame.height, events, rejects, state, counts)

        formats_seen: dict[str, int] = {}
        # Four stages overlap: reading and cutting lines (a thread), parsing (a pool of threads,
        # one chunk each, in polars), handing the results over in order (here) and writing
        # Parquet (the writer's thread). W3C chunks are parsed in turn: each one's #Fields
        # directives hold for the next.
        frames = _prefetch(framed(iter_chunks(stream.read, first, opts.chunk_bytes, skip_partial, stream.readinto)))
        workers = 1 if isinstance(fmt, F.W3CFormat) else PARSE_WORKERS
        for done in _parse_in_order(frames, parse, w3c_state, workers):
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
            "ingested_at": datetime.now(timezone.utc),
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
    opts = options or IngestOptions()
    if opts.log_format:
        F.compile_log_format(opts.log_format)  # fail on a bad format string before touching the lake
    sources = resolve_sources(inputs, exclude=Path(lake).expanduser().resolve())
    store = Lake(lake, create=True)
    started = time.perf_counter()
    summary = IngestSummary(store.root)
    total = sum(s.size or 0 for s in sources) or None
    bar = Progress(total, "ingest", enabled=progress)
    with store.locked():
        manifest = store.read_manifest()
        tx = store.begin()
        writer = _PartWriter(tx)
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
