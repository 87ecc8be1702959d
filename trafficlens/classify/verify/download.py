"""Downloading the published range files into the cache (`trafficlens ranges update`)."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trafficlens import __version__
from trafficlens.classify.verify.cache import default_cache_dir, write_atomic
from trafficlens.classify.verify.ranges import MAX_RANGE_BYTES, parse_prefixes
from trafficlens.classify.verify.sources import range_sources
from trafficlens.errors import RangesDownloadError, TrafficlensError

Fetch = Callable[[str, float], bytes]


def _http_get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": f"trafficlens/{__version__} (range files update)",
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(MAX_RANGE_BYTES + 1)
    return data


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


@dataclass
class UpdateResult:
    """What one `update_ranges` run did, file by file."""

    dest: Path
    updated: list[str] = field(default_factory=list)  # written: new, or changed since last time
    unchanged: list[str] = field(default_factory=list)  # downloaded, same as the copy kept
    failed: dict[str, str] = field(default_factory=dict)  # file -> why; its previous copy is kept

    def describe(self) -> str:
        """One line for the CLI."""
        got = len(self.updated) + len(self.unchanged)
        line = f"{got} of {got + len(self.failed)} range files current in {self.dest} ({len(self.updated)} updated)"
        if self.failed:
            line += "; kept the previous copy of " + ", ".join(f"{f} ({w})" for f, w in sorted(self.failed.items()))
        return line


def update_ranges(
    dest: Path | None = None, timeout: float = 20, *, fetch: Fetch | None = None, workers: int = 8
) -> UpdateResult:
    """Download every published range file into `dest` (default: the cache's ranges folder).

    Each download is checked with the same parser `load_ranges` uses and must hold at least one
    prefix (a retired address can answer 200 with a notice instead of ranges) before it replaces
    the file, atomically. A failed download keeps the previous copy. When no file at all could be
    downloaded, raises RangesDownloadError and changes nothing.
    """
    folder = Path(dest) if dest is not None else default_cache_dir() / "ranges"
    get = fetch or _http_get
    sources = [s for s in range_sources() if s.url]
    result = UpdateResult(folder)
    payloads: dict[str, bytes] = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(get, s.url, timeout): s for s in sources}  # type: ignore[arg-type]
        for fut in cf.as_completed(futures):
            src = futures[fut]
            try:
                data = fut.result()
                if not parse_prefixes(data):
                    raise ValueError("holds no prefixes")
                payloads[src.file] = data
            except Exception as e:  # noqa: BLE001 - any failure of one download only skips that file
                result.failed[src.file] = _why(e)
    if not payloads:
        first = next(iter(sorted(result.failed.items())), ("", "no sources"))
        raise RangesDownloadError(
            f"could not download any IP range file ({first[0]}: {first[1]}); check the network "
            "connection, or pass --ranges a folder of files downloaded elsewhere; nothing was changed"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for src in sources:
            payload = payloads.get(src.file)
            if payload is None:
                continue
            path = folder / src.file
            if path.is_file() and path.read_bytes() == payload:
                result.unchanged.append(src.file)
                continue
            write_atomic(path, functools.partial(_write_bytes, data=payload))
            result.updated.append(src.file)
    except OSError as e:
        raise TrafficlensError(
            f"cannot write range files to {folder}: {e.strerror}; choose a writable folder"
        ) from None
    return result


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
