"""Open log sources (files, folders, globs, standard input; plain, gzip, bzip2, zstd) and cut them
into chunks of whole lines, turned into polars string columns without a Python loop per line."""

from __future__ import annotations

import glob
import io
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from trafficlens.errors import InputError
from trafficlens.store import URI

CHUNK_BYTES = 8 * 1024 * 1024  # larger chunks cost more in fresh-memory page faults than they save
# A plain file unchanged for this long is no longer being written: its unterminated last line is
# then a line. Servers write a line in one write(); one left unfinished this long was cut for good
# (the writer stopped, crashed, or moved to a new file after a rotation).
SETTLE_SECONDS = 60.0

# Compression is told by magic bytes, not the file name: rotated logs are often renamed.
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
STDIN = "-"


@dataclass(frozen=True)
class Source:
    """One input: a file path, standard input, or a file on Spark's filesystem (`remote`: named by
    its URI, `path` None, `length` its size as listed)."""

    name: str  # what the manifest and the events' `source` column record
    path: Path | None  # None for standard input and remote files
    stream: bool = False  # read once, to its end: standard input, a FIFO, /dev/stdin
    remote: bool = False
    length: int | None = None

    @property
    def size(self) -> int | None:
        if self.remote:
            return self.length
        return self.path.stat().st_size if self.path is not None and not self.stream else None


def _is_stream(p: Path) -> bool:
    """A FIFO or a character device (`/dev/stdin` on a pipe or a terminal): read as a stream."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def resolve_sources(
    inputs: list[str], exclude: Path | None = None, remote: Callable[[str], list[Source]] | None = None
) -> list[Source]:
    """Expand files, folders (recursively, sorted) and globs; `-` is standard input; a URI is
    listed by `remote` (Spark's filesystem), and refused without it.

    Hidden files and folders, anything under `exclude` (the lake itself), and FIFOs (which would
    block) are left out of folders. A FIFO or `/dev/stdin` named on its own is read as a stream.
    """
    sources: list[Source] = []
    for item in inputs:
        if URI.match(item):
            if remote is None:
                raise InputError(
                    f"{item}: a URI is read through Spark's filesystem: add --engine spark (a file on this "
                    "machine is given by its path)"
                )
            sources.extend(remote(item))
            continue
        if item == STDIN:
            sources.append(Source(STDIN, None))
            continue
        p = Path(item).expanduser()
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and not (exclude is not None and f.resolve().is_relative_to(exclude))
            )
            if not files:
                raise InputError(f"folder {item} holds no files; point at the log files or their folder")
            sources.extend(Source(str(f.resolve()), f.resolve()) for f in files)
        elif p.is_file():
            sources.append(Source(str(p.resolve()), p.resolve()))
        elif _is_stream(p):
            # Not resolved: /dev/stdin on a pipe resolves to a name that cannot be opened.
            sources.append(Source(str(p.absolute()), p.absolute(), stream=True))
        elif any(ch in item for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(os.path.expanduser(item), recursive=True))
            matched = [m for m in matched if m.is_file()]
            if not matched:
                raise InputError(f"no file matches {item}")
            sources.extend(Source(str(m.resolve()), m.resolve()) for m in matched)
        else:
            raise InputError(f"no such file or folder: {item}")
    # The same file named twice (a glob and a folder, say) is read once.
    seen: set[str] = set()
    unique = []
    for s in sources:
        if s.name not in seen or s.stream:
            seen.add(s.name)
            unique.append(s)
    return unique


class _Counting(io.RawIOBase):
    """Counts the compressed bytes read, for the progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self.raw.readinto(b) or 0  # type: ignore[attr-defined]
        self.count += n
        return n


class OpenSource:
    """A decompressed byte stream over a source, with its compression and read progress."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.compression = "none"
        self._failure: InputError | None = None
        if source.path is None:
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(source.path, "rb")  # noqa: SIM115 - closed in close()
            except OSError as e:
                raise InputError(f"cannot read {source.name}: {e.strerror or e}") from e
        self._raw = raw
        self._counting = _Counting(raw)
        buffered = io.BufferedReader(self._counting, buffer_size=1 << 20)  # type: ignore[type-var]
        try:
            magic = buffered.peek(4)[:4]
        except OSError as e:
            self.close()
            raise self._error(e) from e
        for prefix, kind in MAGIC.items():
            if magic.startswith(prefix):
                self.compression = kind
        if self.compression == "none":
            self.stream: BinaryIO = buffered
        else:
            # pyarrow's codecs are native and handle concatenated gzip members and zstd frames.
            self.stream = pa.CompressedInputStream(pa.PythonFile(buffered, mode="r"), self.compression)

    @property
    def compressed_read(self) -> int:
        return self._counting.count

    def _error(self, e: Exception) -> InputError:
        if self.compression == "none":
            return InputError(f"cannot read {self.source.name}: {getattr(e, 'strerror', None) or e}")
        return InputError(f"{self.source.name}: cannot decompress ({self.compression}): {e}")

    def finished(self) -> bool:
        """Whether the source can no longer grow, so that an unterminated last line is a line.

        Streams have ended; compressed files are written whole (logrotate compresses a file once
        it has rotated it away); a plain file is finished once unchanged for SETTLE_SECONDS.
        """
        if self.source.path is None or self.source.stream or self.compression != "none":
            return True
        try:
            mtime = os.fstat(self._raw.fileno()).st_mtime
        except OSError:
            return True
        return time.time() - mtime >= SETTLE_SECONDS

    def read(self, n: int) -> bytes:
        try:
            return self.stream.read(n)
        except (OSError, pa.ArrowException) as e:
            raise self._error(e) from e

    def readinto(self, b: memoryview) -> int:
        """Fill `b` as far as the stream goes; fewer bytes than it holds only at the end.

        A read error (a truncated archive) is raised after the bytes before it are returned, so
        that the whole lines among them can still be read.
        """
        if self._failure is not None:
            raise self._failure
        got = 0
        # A codec fails a read it cannot fill whole, losing what it decoded: smaller reads keep it.
        step = len(b) if self.compression == "none" else 1 << 20
        try:
            while got < len(b):
                n = self.stream.readinto(b[got : got + step])  # type: ignore[attr-defined]
                if not n:
                    break
                got += n
        except (OSError, pa.ArrowException) as e:
            self._failure = self._error(e)
            if not got:
                raise self._failure from e
        return got

    def close(self) -> None:
        if self.source.path is not None:
            self._raw.close()


def iter_chunks(
    read: Callable[[int], bytes],
    first: bytes = b"",
    chunk_bytes: int = CHUNK_BYTES,
    finished: Callable[[], bool] = lambda: True,
    readinto: Callable[[memoryview], int] | None = None,
) -> Iterator[bytes | memoryview]:
    """Yield pieces of a stream that end on a newline, starting with `first`.

    At the end of the stream, an unterminated last line is yielded only if `finished()` says the
    source can no longer grow; otherwise it is held back, for a later run to read once it is whole.
    With `readinto` (which fills a buffer as far as the stream goes), each piece is read straight
    into fresh memory of its own, not copied there: the lines made from it keep it alive.
    """
    pending = first
    while True:
        if readinto is not None:
            # Uninitialised memory: the allocator hands back what an earlier chunk freed.
            arr = np.empty(len(pending) + chunk_bytes, dtype=np.uint8)
            arr[: len(pending)] = np.frombuffer(pending, dtype=np.uint8)
            whole = memoryview(arr)  # type: ignore[arg-type]
            got = readinto(whole[len(pending) :])
            buf: bytes | memoryview = whole[: len(pending) + got]
            more = got > 0
        else:
            data = read(chunk_bytes)
            buf = pending + data if pending else data
            more = bool(data)
        cut = _rfind_newline(buf)
        if not more:
            if cut + 1 < len(buf) and finished():
                cut = len(buf) - 1
            if cut >= 0:
                yield memoryview(buf)[: cut + 1]
            return
        if cut < 0:
            pending = bytes(buf)
            continue
        # A view, not a copy: the lines made from it keep it alive.
        yield memoryview(buf)[: cut + 1]
        pending = bytes(buf[cut + 1 :])


def _rfind_newline(buf: bytes | memoryview) -> int:
    if isinstance(buf, bytes):
        return buf.rfind(b"\n")
    arr = np.frombuffer(buf, dtype=np.uint8)
    window = 1 << 16
    while True:  # lines are short: the last newline is near the end
        lo = max(0, len(arr) - window)
        hits = np.flatnonzero(arr[lo:] == 10)
        if len(hits):
            return lo + int(hits[-1])
        if lo == 0:
            return -1
        window *= 16


def split_lines(chunk: bytes | memoryview) -> pl.Series:
    """Cut a chunk into one string per line (without the line end), zero-copy where possible.

    Each byte of invalid UTF-8 becomes U+FFFD (as Python's errors="replace"): the line is kept,
    and a literal `\\xHH` that a server wrote stays distinguishable from a byte that was there.
    """
    try:
        return _lines(chunk)
    except pa.ArrowInvalid:
        # Rare: invalid UTF-8 somewhere in this chunk. U+FFFD never introduces a newline.
        return _lines(bytes(chunk).decode("utf-8", "replace").encode("utf-8"))


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each line of a chunk starts and stops (before its '\\n' and any '\\r' ending it)."""
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    stops = ends
    while len(stops):  # one pass per '\\r' in a row: once, or not at all
        cr = (stops > starts) & (buf[np.maximum(stops - 1, 0)] == 13)
        if not cr.any():
            break
        stops = stops - cr
    return starts, stops


def string_views(
    buf: np.ndarray, data: bytes | memoryview, starts: np.ndarray, stops: np.ndarray, valid: np.ndarray | None = None
) -> pl.Series:
    """A string column of the byte ranges [starts, stops) of `data`, without copying the bytes.

    Arrow's string views (polars' own string layout) point into `data`; only strings of up to
    12 bytes are copied, inline. Ranges must hold valid UTF-8 (whole lines of a validated chunk,
    or pieces of them cut at ASCII bytes); `valid` false makes a null.
    """
    n = len(starts)
    lens = (stops - starts).astype(np.int32)
    views = np.zeros((n, 16), dtype=np.uint8)
    v32 = views.view(np.int32)
    v32[:, 0] = lens
    long = lens > 12
    # A long string: its first 4 bytes, buffer 0, offset. A short one: its bytes, zero-padded.
    ls = starts[long]
    views[long, 4:8] = buf[ls[:, None] + np.arange(4)]
    v32[long, 3] = ls
    if not long.all():
        short = ~long
        ss, sl = starts[short], lens[short]
        k = np.arange(12)
        inside = k < sl[:, None]
        views[short, 4:16] = np.where(inside, buf[np.where(inside, ss[:, None] + k, 0)], 0) if len(buf) else 0
    bitmap = None
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        views[~valid] = 0
    arr = pa.Array.from_buffers(pa.string_view(), n, [bitmap, pa.py_buffer(views), pa.py_buffer(data)])
    return pl.Series(arr)


def _lines(data: bytes | memoryview) -> pl.Series:
    if len(data) >= 1 << 31:  # string views address their bytes with 32-bit offsets
        return _lines_large(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    # The whole chunk is checked at once (raises on invalid UTF-8): every byte but line ends
    # belongs to a line.
    pa.Array.from_buffers(
        pa.binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int32)), pa.py_buffer(data)]
    ).cast(pa.string())
    starts, stops = line_bounds(buf)
    return string_views(buf, data, starts, stops).alias("line")


def _lines_large(data: bytes | memoryview) -> pl.Series:
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(data) and bytes(data[-1:]) != b"\n":
        ends = np.append(ends, len(data))
    # Arrow's string offsets must be contiguous, so each value keeps its '\n' here and it is cut
    # below by length.
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = np.minimum(ends + 1, len(data))
    arr = pa.Array.from_buffers(pa.large_string(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    arr.validate(full=True)  # raises on invalid UTF-8, without copying
    s = pl.Series("line", arr)
    return s.str.strip_chars_end("\r\n")
