"""Downloading the published range files into the cache (`trafficlens ranges update`): the
operators' files for their agents, and the hosting providers' files for their address space."""

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
from trafficlens.classify.verify.hosting import MAX_HOSTING_BYTES, parse_hosting_file
from trafficlens.classify.verify.ranges import parse_prefixes
from trafficlens.classify.verify.sources import hosting_sources, range_sources
from trafficlens.errors import InputError, RangesDownloadError, TrafficlensError

Fetch = Callable[[str, float], bytes]


def http_get(
    url: str,
    timeout: float,
    purpose: str = "range files update",
    accept: str = "application/json, text/plain;q=0.9, */*;q=0.1",
    limit: int = MAX_HOSTING_BYTES,
) -> bytes:
    """`url`'s body, at most `limit` + 1 bytes (the caller refuses what is larger)."""
    request = urllib.request.Request(
        url, headers={"User-Agent": f"trafficlens/{__version__} ({purpose})", "Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(limit + 1)
    return data


# The largest file read (Azure's service tags) bounds every range download; each parser then
# refuses what is larger than its own kind of file holds. (A name of its own: tests replace it.)
_http_get = http_get


def why(exc: BaseException) -> str:
    """A failed download's cause, in a few words."""
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
    what: str = "range files"  # what the files are, for the summary line

    def describe(self) -> str:
        """One line for the CLI."""
        got = len(self.updated) + len(self.unchanged)
        line = f"{got} of {got + len(self.failed)} {self.what} current in {self.dest} ({len(self.updated)} updated)"
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

    def check(file: str, data: bytes) -> None:
        if not parse_prefixes(data):
            raise ValueError("holds no prefixes")

    sources = [(s.file, s.url) for s in range_sources() if s.url]
    return _download(sources, check, dest, timeout, fetch, workers, "IP range file", "range files")


def update_hosting(
    dest: Path | None = None, timeout: float = 20, *, fetch: Fetch | None = None, workers: int = 8
) -> UpdateResult:
    """Download the hosting providers' range files (catalogues/hosting_sources.yml) into `dest`,
    the folder of the operators' files (default: the cache's ranges folder).

    Each download must read as its provider's format before it replaces the file, atomically; a
    failed download keeps the previous copy. When none could be downloaded, raises
    RangesDownloadError and changes nothing.
    """
    by_file = {s.file: s for s in hosting_sources()}

    def check(file: str, data: bytes) -> None:
        try:
            parse_hosting_file(data, by_file[file])
        except InputError as e:
            # The message names the file already; the result names it again, so keep what is wrong.
            raise ValueError(str(e).removeprefix(f"hosting range file {file} ").split(";")[0]) from None

    sources = [(s.file, s.url) for s in hosting_sources() if s.url]
    return _download(sources, check, dest, timeout, fetch, workers, "hosting range file", "hosting range files")


def _download(
    sources: list[tuple[str, str]],
    check: Callable[[str, bytes], None],
    dest: Path | None,
    timeout: float,
    fetch: Fetch | None,
    workers: int,
    what: str,
    plural: str,
) -> UpdateResult:
    folder = Path(dest) if dest is not None else default_cache_dir() / "ranges"
    get = fetch or _http_get
    result = UpdateResult(folder, what=plural)
    payloads: dict[str, bytes] = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(get, url, timeout): file for file, url in sources}
        for fut in cf.as_completed(futures):
            file = futures[fut]
            try:
                data = fut.result()
                check(file, data)
                payloads[file] = data
            except Exception as e:  # noqa: BLE001 - any failure of one download only skips that file
                result.failed[file] = why(e)
    if not payloads:
        first = next(iter(sorted(result.failed.items())), ("", "no sources"))
        raise RangesDownloadError(
            f"could not download any {what} ({first[0]}: {first[1]}); check the network "
            "connection, or pass --ranges a folder of files downloaded elsewhere; nothing was changed"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file, _ in sources:
            payload = payloads.get(file)
            if payload is None:
                continue
            path = folder / file
            if path.is_file() and path.read_bytes() == payload:
                result.unchanged.append(file)
                continue
            write_atomic(path, functools.partial(write_bytes, data=payload))
            result.updated.append(file)
    except OSError as e:
        raise TrafficlensError(
            f"cannot write range files to {folder}: {e.strerror}; choose a writable folder"
        ) from None
    return result


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` (what `write_atomic` runs on its temporary file)."""
    path.write_bytes(data)
