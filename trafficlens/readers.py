"""Open log sources (files, folders, globs, standard input; plain, gzip, bzip2, zstd) and cut them
into chunks of whole lines, turned into polars string columns without a Python loop per line."""

from __future__ import annotations

import glob
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from trafficlens.errors import InputError

CHUNK_BYTES = 8 * 1024 * 1024  # larger chunks cost more in fresh-memory page faults than they save

# Compression is told by magic bytes, not the file name: rotated logs are often renamed.
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
STDIN = "-"


@dataclass(frozen=True)
class Source:
    """One input: a file path, or standard input."""

    name: str  # what the manifest and the events' `source` column record
    path: Path | None  # None for standard input

    @property
    def size(self) -> int | None:
        return self.path.stat().st_size if self.path is not None else None


def resolve_sources(inputs: list[str], exclude: Path | None = None) -> list[Source]:
    """Expand files, folders (recursively, sorted) and globs; `-` is standard input.

    Hidden files and folders, and anything under `exclude` (the lake itself), are left out of
    folders.
    """
    sources: list[Source] = []
    for item in inputs:
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
        if s.name not in seen or s.name == STDIN:
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
        n = self.raw.readinto(b) or 0
        self.count += n
        return n


class OpenSource:
    """A decompressed byte stream over a source, with its compression and read progress."""

    def __init__(self, source: Source) -> None:
        self.source = source
        if source.path is None:
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(source.path, "rb")  # noqa: SIM115 - closed in close()
            except OSError as e:
                raise InputError(f"cannot read {source.name}: {e.strerror}") from e
        self._counting = _Counting(raw)
        buffered = io.BufferedReader(self._counting, buffer_size=1 << 20)
        magic = buffered.peek(4)[:4]
        self.compression = "none"
        for prefix, kind in MAGIC.items():
            if magic.startswith(prefix):
                self.compression = kind
        if self.compression == "none":
            self.stream: BinaryIO = buffered
        else:
            # pyarrow's codecs are native and handle concatenated gzip members and zstd frames.
            self.stream = pa.CompressedInputStream(pa.PythonFile(buffered, mode="r"), self.compression)
        self._raw = raw

    @property
    def compressed_read(self) -> int:
        return self._counting.count

    def read(self, n: int) -> bytes:
        try:
            return self.stream.read(n)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"{self.source.name}: cannot decompress ({self.compression}): {e}") from e

    def close(self) -> None:
        if self.source.path is not None:
            self._raw.close()


def iter_chunks(
    read: Callable[[int], bytes], first: bytes = b"", chunk_bytes: int = CHUNK_BYTES, skip_partial: bool = False
) -> Iterator[bytes]:
    """Yield pieces of a stream that end on a newline (the last may not), starting with `first`.

    `skip_partial` drops everything up to the first newline: the rest of a line that an earlier
    run already read.
    """
    pending, skipping = first, skip_partial
    while True:
        data = read(chunk_bytes)
        buf = pending + data if pending else data
        if skipping:
            cut = buf.find(b"\n")
            if cut < 0 and data:
                pending = b""
                continue
            buf, skipping = (buf[cut + 1 :] if cut >= 0 else b""), False
        if not data:
            if buf:
                yield buf
            return
        cut = buf.rfind(b"\n")
        if cut < 0:
            pending = buf
            continue
        # A view, not a copy: the lines made from it keep it alive.
        yield memoryview(buf)[: cut + 1]
        pending = buf[cut + 1 :]


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


def _lines(data: bytes | memoryview) -> pl.Series:
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(data) and bytes(data[-1:]) != b"\n":
        ends = np.append(ends, len(data))
    # Arrow's string offsets must be contiguous, so each value keeps its '\n' here and it is cut
    # below by length: cheaper than any copy-based split.
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = np.minimum(ends + 1, len(data))
    arr = pa.Array.from_buffers(
        pa.large_string(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    arr.validate(full=True)  # raises on invalid UTF-8, without copying
    s = pl.Series("line", arr)
    return s.str.strip_chars_end("\r\n")
