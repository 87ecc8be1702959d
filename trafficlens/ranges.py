"""Verification of claimed identities: operators' published IP ranges and reverse DNS.

DESIGN.md, "Classification, in layers", item 2. A client that claims a known agent (GPTBot,
Googlebot, ...) is `verified` when its address lies in one of the range files the operator
publishes for that agent, or passes forward-confirmed reverse DNS; `spoofed` when a check that
could be made fails; `declared` when nothing could be checked.

Addresses are compared as 128-bit numbers written as 32 lower-case hex digits ("keys"), with
IPv4 addresses in their IPv4-mapped IPv6 form (::ffff:a.b.c.d). Fixed-width hex sorts and
compares like the numbers, so one sorted as-of join serves both families; unlike polars'
UInt128 it also crosses into Arrow, Parquet and DuckDB, and works in every polars version.

Range files are cut into disjoint segments once (a sweep over the prefixes, at most a few
thousand), and addresses are matched to segments with one vectorised join: no work per address
in Python. Only reverse DNS, which is network-bound, runs per distinct address, in a bounded
thread pool behind a persistent cache.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import ipaddress
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeVar

import polars as pl
import yaml

from trafficlens import __version__
from trafficlens.errors import CatalogueError, InputError, TrafficlensError

__all__ = [
    "RANGES_SCHEMA",
    "RangeSource",
    "RangesDownloadError",
    "Resolver",
    "SocketResolver",
    "UpdateResult",
    "attribute_addresses",
    "default_cache_dir",
    "default_ranges_dir",
    "empty_ranges",
    "load_ranges",
    "match_ranges",
    "parse_ips",
    "parse_range_file",
    "range_sources",
    "reverse_dns",
    "update_ranges",
    "verify_claims",
    "with_ip_key",
]


class RangesDownloadError(TrafficlensError):
    """No published range file could be downloaded; nothing was changed."""


# ---------------------------------------------------------------------------------------------
# The table of published range files (trafficlens/catalogues/range_sources.yml)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeSource:
    """One range file an operator publishes."""

    file: str
    operator: str
    agents: tuple[str, ...]
    url: str | None
    docs: str
    same_as: str | None = None


@functools.cache
def range_sources() -> tuple[RangeSource, ...]:
    """Every known range file, in the order of range_sources.yml."""
    text = resources.files("trafficlens").joinpath("catalogues", "range_sources.yml").read_text("utf-8")
    out = []
    for i, entry in enumerate(yaml.safe_load(text) or []):
        try:
            out.append(RangeSource(
                file=entry["file"], operator=entry["operator"], agents=tuple(entry["agents"]),
                url=entry.get("url"), docs=entry["docs"], same_as=entry.get("same_as"),
            ))
        except (KeyError, TypeError) as e:
            raise CatalogueError(f"range_sources.yml: entry {i + 1} is malformed ({e!r})") from None
    return tuple(out)


def _sources_by_file() -> dict[str, RangeSource]:
    return {s.file: s for s in range_sources()}


# ---------------------------------------------------------------------------------------------
# Addresses -> keys, vectorised
# ---------------------------------------------------------------------------------------------

# IPv4 addresses live at ::ffff:0:0/96 in the 128-bit key space, so an IPv4-mapped IPv6 address
# as some dual-stack servers log it (::ffff:192.0.2.1) is the same client as 192.0.2.1.
_V4_KEY_PREFIX = "00000000000000000000ffff"
_V4_BASE = 0xFFFF << 32
_HEX_PAIRS = "".join(f"{i:02x}" for i in range(256))
# 0-255 without leading zeros: "010" is octal to some parsers and decimal to others, so it is junk.
_OCTET = r"25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]"
_V4_RE = rf"^(?:{_OCTET})\.(?:{_OCTET})\.(?:{_OCTET})\.(?:{_OCTET})$"
_FIELDS = ("field_0", "field_1", "field_2", "field_3")
_V6_TAIL_RE = rf"^(?P<head>[0-9a-f:]*:)(?P<a>{_OCTET})\.(?P<b>{_OCTET})\.(?P<c>{_OCTET})\.(?P<d>{_OCTET})$"
_GROUPS_RE = r"^(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?$"


def _octets_hex(parts: str, names: tuple[str, ...], sep: str = "") -> pl.Expr:
    """Four decimal octet fields of struct column `parts` -> 8 hex digits (sep in the middle)."""
    # Slicing a 512-character table by the octet's value beats a 256-entry string lookup.
    h = [pl.lit(_HEX_PAIRS).str.slice(pl.col(parts).struct.field(n).cast(pl.Int32, strict=False) * 2, 2)
         for n in names]
    return pl.concat_str([h[0], h[1], pl.lit(sep), h[2], h[3]])


def _groups_hex(groups: str) -> pl.Expr:
    """'1:ab' -> '000100ab'; '' or null -> ''. Fields, not lists: cheaper on millions of rows."""
    g = pl.col(groups)
    fields = g.str.split_exact(":", 7)
    padded = [fields.struct.field(f"field_{i}").str.zfill(4) for i in range(8)]
    return pl.when(g.is_null() | (g == "")).then(pl.lit("")).otherwise(pl.concat_str(padded, ignore_nulls=True))


def _group_count(groups: str) -> pl.Expr:
    g = pl.col(groups)
    return pl.when(g.is_null() | (g == "")).then(0).otherwise(g.str.count_matches(":", literal=True) + 1)


FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def with_ip_key(frame: FrameT, column: str = "client_ip", name: str = "key") -> FrameT:
    """Add `name`: the address in `column` as a 32-hex-digit key; null if it is not one address.

    Accepts IPv4 dotted quads, IPv6 in any RFC 4291 spelling (:: compression, upper case,
    embedded IPv4 tail), IPv4-mapped IPv6 (keyed as the IPv4 address), zone ids (fe80::1%eth0),
    brackets with or without a port ([2001:db8::1]:443) and IPv4 with a port (192.0.2.1:5678).
    Each step is its own column: one expression reusing the earlier steps would repeat them.
    """
    s = pl.col("_ipk_s")
    temps = ["_ipk_s", "_ipk_v4", "_ipk_tail", "_ipk_s6", "_ipk_halves", "_ipk_head", "_ipk_rest",
             "_ipk_nh", "_ipk_nr", "_ipk_dc"]
    return (
        frame.with_columns(_ipk_s=pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase())
        .with_columns(_ipk_s=pl.when(s.str.starts_with("[")).then(
            s.str.extract(r"^\[([^\]]*)\](?::[0-9]{1,5})?$", 1)
        ).otherwise(s))
        .with_columns(_ipk_s=(
            s.str.replace(r"^([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]{1,5}$", "$1")
            # A zone id names an interface of the logging host, not part of the address.
            .str.replace(r"^([0-9a-f:.]*:[0-9a-f:.]*)%[^%]+$", "$1")
        ))
        .with_columns(_ipk_v4=pl.when(s.str.contains(_V4_RE)).then(s.str.split_exact(".", 3)),
                      _ipk_tail=s.str.extract_groups(_V6_TAIL_RE))
        .with_columns(
            _ipk_v4=pl.lit(_V4_KEY_PREFIX) + _octets_hex("_ipk_v4", _FIELDS),
            _ipk_s6=pl.when(pl.col("_ipk_tail").struct.field("head").is_not_null()).then(
                pl.col("_ipk_tail").struct.field("head") + _octets_hex("_ipk_tail", tuple("abcd"), ":")
            # Only strings with a colon can be IPv6: the rest skip the work below as nulls.
            ).when(s.str.contains(":", literal=True)).then(s),
        )
        .with_columns(_ipk_halves=pl.col("_ipk_s6").str.split_exact("::", 1),
                      _ipk_dc=pl.col("_ipk_s6").str.count_matches("::", literal=True))
        .with_columns(_ipk_head=pl.col("_ipk_halves").struct.field("field_0"),
                      _ipk_rest=pl.col("_ipk_halves").struct.field("field_1"))
        .with_columns(_ipk_nh=_group_count("_ipk_head"), _ipk_nr=_group_count("_ipk_rest"))
        .with_columns(pl.coalesce(
            "_ipk_v4",
            pl.when(
                pl.col("_ipk_s6").str.contains(r"^[0-9a-f:]+$")
                & pl.col("_ipk_head").str.contains(_GROUPS_RE)
                & (pl.col("_ipk_rest").is_null() | pl.col("_ipk_rest").str.contains(_GROUPS_RE))
                # Without "::" all 8 groups are written; with it, "::" stands for at least one.
                & (((pl.col("_ipk_dc") == 0) & (pl.col("_ipk_nh") == 8))
                   | ((pl.col("_ipk_dc") == 1) & (pl.col("_ipk_nh") + pl.col("_ipk_nr") <= 7)))
            ).then(pl.concat_str([
                _groups_hex("_ipk_head"),
                pl.lit("0" * 32).str.slice(0, (8 - pl.col("_ipk_nh") - pl.col("_ipk_nr")) * 4),
                _groups_hex("_ipk_rest"),
            ])),
        ).alias(name))
        .drop(temps)
    )


def _family(key: pl.Expr) -> pl.Expr:
    return (
        pl.when(key.is_null()).then(None)
        .when(key.str.starts_with(_V4_KEY_PREFIX)).then(4)
        .otherwise(6)
        .cast(pl.UInt8)
    )


def parse_ips(ips: pl.Series) -> pl.DataFrame:
    """Address strings -> `client_ip, family (4|6, null for junk), key` (see `with_ip_key`)."""
    return (
        with_ip_key(pl.LazyFrame({"client_ip": ips.cast(pl.String)}))
        .select("client_ip", family=_family(pl.col("key")), key=pl.col("key"))
        .collect()
    )


def _key_to_address(key: str) -> str:
    n = int(key, 16)
    if n >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(n))


# ---------------------------------------------------------------------------------------------
# Range files
# ---------------------------------------------------------------------------------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where the list of prefixes sits in a JSON range file, and what an entry calls its prefix.
# Google's shape ({"prefixes": [{"ipv4Prefix": ...}, {"ipv6Prefix": ...}]}) is what OpenAI,
# Google, Bing, Perplexity, Apple, Common Crawl, DuckDuckGo, Mistral and Anthropic publish; the
# other names cover lists in the shapes of cloud providers' files and hand-made mirrors.
_LIST_KEYS = ("prefixes", "ranges", "ip_ranges", "ipRanges", "ips", "addresses", "cidrs", "items")
_WRAPPER_KEYS = ("data", "result")
_ENTRY_KEYS = (
    "ipv4Prefix", "ipv6Prefix", "ip_prefix", "ipv6_prefix", "ipPrefix", "prefix", "cidr", "CIDR",
    "ip", "ip_address", "ipAddress", "address", "network", "subnet", "range",
)
_MAX_RANGE_BYTES = 16 << 20  # the largest published file is well under 1 MB

RANGES_SCHEMA: dict[str, pl.DataType] = {
    "range_file": pl.String(),
    "operator": pl.String(),
    "family": pl.UInt8(),
    "prefix": pl.String(),  # the prefix as a network, e.g. 192.0.2.0/24
    "start": pl.String(),  # first address, as a key (see `with_ip_key`)
    "end": pl.String(),  # last address, as a key
}


def _json_entries(doc: object) -> list[object]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for k in _LIST_KEYS:
            if isinstance(doc.get(k), list):
                return doc[k]
        for k in _WRAPPER_KEYS:
            if isinstance(doc.get(k), (dict, list)):
                return _json_entries(doc[k])
        keys = ", ".join(repr(str(k)) for k in list(doc)[:5]) or "none"
        raise ValueError(f"has no list of prefixes (its keys: {keys})")
    raise ValueError("is JSON but neither an object nor a list")


def _json_tokens(doc: object) -> list[tuple[str, str]]:
    tokens = []
    for i, entry in enumerate(_json_entries(doc), 1):
        if isinstance(entry, str):
            tokens.append((f"entry {i}", entry))
        elif isinstance(entry, dict):
            values = [v for k in _ENTRY_KEYS if isinstance(v := entry.get(k), str) and v.strip()]
            if not values:
                keys = ", ".join(repr(str(k)) for k in list(entry)[:5]) or "none"
                raise ValueError(f"entry {i} has no prefix field (its keys: {keys})")
            tokens.extend((f"entry {i}", v) for v in values)
        else:
            raise ValueError(f"entry {i} is {type(entry).__name__} {entry!r}, not a prefix")
    return tokens


def _text_tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    for n, line in enumerate(text.splitlines(), 1):
        for tok in line.split("#", 1)[0].replace(",", " ").split():
            tokens.append((f"line {n}", tok))
    return tokens


def _parse_prefixes(data: bytes) -> list[IPNetwork]:
    """Bytes of a range file -> its networks. Raises ValueError saying what is wrong."""
    if len(data) > _MAX_RANGE_BYTES:
        raise ValueError(f"is larger than {_MAX_RANGE_BYTES >> 20} MB, not a range list")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    body = text.lstrip()
    if body.startswith("<"):
        raise ValueError("is an HTML or XML page, not a list of IP ranges")
    if body.startswith(("{", "[")):
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as e:
            raise ValueError(f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        tokens = _json_tokens(doc)
    else:
        tokens = _text_tokens(text)
    nets = []
    for where, tok in tokens:
        try:
            # strict=False: some lists write a host address with its length (192.0.2.7/24);
            # the network is what is meant. A bare address is a /32 or /128.
            nets.append(ipaddress.ip_network(tok.strip().strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{where} {tok!r} is not an IP address or prefix") from None
    return nets


def parse_range_file(data: bytes, name: str = "range file") -> list[IPNetwork]:
    """The networks of one range file, in any of the shapes operators publish.

    JSON in Google's shape or with other list/entry key names, a plain JSON list of prefixes,
    or text with one prefix (or bare address) per line and `#` comments. Raises InputError,
    naming the file, when it is none of these or holds something that is not a prefix.
    """
    try:
        return _parse_prefixes(data)
    except ValueError as e:
        raise InputError(
            f"range file {name} {e}; download it again (trafficlens ranges update) or remove it"
        ) from None


def _bounds(net: IPNetwork) -> tuple[int, int]:
    start = int(net.network_address)
    if net.version == 4:
        start |= _V4_BASE
    return start, start + net.num_addresses - 1


def empty_ranges() -> pl.DataFrame:
    """A ranges frame with no prefixes: every claim checked against it is `declared`."""
    return pl.DataFrame(schema=RANGES_SCHEMA)


def load_ranges(dir: Path | str) -> pl.DataFrame:
    """Read the published range files in `dir` (by their published names; others are ignored).

    Returns one row per distinct prefix and file: `range_file, operator, family, prefix, start,
    end`, with start and end as keys (see `with_ip_key`). A file whose name is not in
    range_sources.yml is ignored, so a folder may hold other things too.
    """
    folder = Path(dir)
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a folder of IP range files; run `trafficlens ranges update` or "
            "pass --ranges a folder holding the operators' files (gptbot.json, bingbot.json, ...)"
        )
    rows = []
    found = 0
    for src in range_sources():
        path = folder / src.file
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read range file {path}: {e.strerror}; check its permissions") from None
        found += 1
        for net in parse_range_file(data, str(path)):
            start, end = _bounds(net)
            rows.append((src.file, src.operator, net.version, str(net), f"{start:032x}", f"{end:032x}"))
    if not found:
        names = ", ".join(s.file for s in range_sources()[:4])
        raise InputError(
            f"{folder} holds none of the published range files ({names}, ...); run "
            "`trafficlens ranges update` or download them into it"
        )
    return (
        pl.DataFrame(rows, schema=RANGES_SCHEMA, orient="row")
        .unique(["range_file", "prefix"], maintain_order=True)
    )


# ---------------------------------------------------------------------------------------------
# Matching addresses to ranges
# ---------------------------------------------------------------------------------------------

_SEGMENT_SCHEMA: dict[str, pl.DataType] = {
    "seg_start": pl.String(),
    "seg_end": pl.String(),
    "range_files": pl.List(pl.String()),
    "range_file": pl.String(),  # the file of the most specific prefix covering the segment
    "operator": pl.String(),
}


def _segments(ranges: pl.DataFrame) -> pl.DataFrame:
    """Cut possibly overlapping ranges into disjoint segments, each with every file covering it.

    A sorted as-of join finds, for an address, the last interval starting at or before it; with
    overlapping intervals that one may end too early while an enclosing one still covers the
    address. Disjoint segments make the nearest start the only candidate. The sweep runs once
    per prefix boundary (a few thousand), never per address.
    """
    starts = [int(k, 16) for k in ranges["start"]]
    ends = [int(k, 16) for k in ranges["end"]]
    files = ranges["range_file"].to_list()
    operators = ranges["operator"].to_list()
    opening: dict[int, list[int]] = {}
    closing: dict[int, list[int]] = {}
    for i, (s, e) in enumerate(zip(starts, ends)):
        opening.setdefault(s, []).append(i)
        closing.setdefault(e + 1, []).append(i)
    positions = sorted(opening.keys() | closing.keys())
    active: set[int] = set()
    rows = []
    for pos, nxt in zip(positions, positions[1:]):
        active.difference_update(closing.get(pos, ()))
        active.update(opening.get(pos, ()))
        if active:
            best = min(active, key=lambda i: (ends[i] - starts[i], files[i]))
            rows.append((f"{pos:032x}", f"{nxt - 1:032x}", sorted({files[i] for i in active}),
                         files[best], operators[best]))
    return pl.DataFrame(rows, schema=_SEGMENT_SCHEMA, orient="row")


def _stab(ips: pl.Series, ranges: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Distinct addresses, and those inside a range with the segment that holds them."""
    addrs = parse_ips(ips.cast(pl.String).unique().drop_nulls())
    if ranges.height == 0:
        return addrs, pl.DataFrame(schema={"client_ip": pl.String(), **_SEGMENT_SCHEMA})
    segments = _segments(ranges).sort("seg_start")
    inside = (
        addrs.filter(pl.col("key").is_not_null())
        # Sorting by the two 64-bit halves gives the order of the fixed-width hex keys, about
        # three times faster than comparing strings that mostly share their first 24 digits.
        .sort(pl.col("key").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64),
              pl.col("key").str.slice(16).str.to_integer(base=16, dtype=pl.UInt64))
        .with_columns(pl.col("key").set_sorted())
        .join_asof(segments, left_on="key", right_on="seg_start", strategy="backward")
        .filter(pl.col("key") <= pl.col("seg_end"))
        .select("client_ip", *_SEGMENT_SCHEMA)
    )
    return addrs, inside


def match_ranges(ips: pl.Series, ranges: pl.DataFrame) -> pl.DataFrame:
    """Every range file containing each distinct address: `client_ip, range_files`.

    One row per distinct non-null address as given (two spellings of one address are two
    rows); `range_files` is sorted and empty for an address outside every range or not an
    address at all.
    """
    addrs, inside = _stab(ips, ranges)
    return (
        addrs.select("client_ip")
        .join(inside.select("client_ip", "range_files"), on="client_ip", how="left")
        .with_columns(pl.col("range_files").fill_null(pl.lit([], pl.List(pl.String))))
    )


def attribute_addresses(ips: pl.Series, ranges: pl.DataFrame) -> pl.DataFrame:
    """Addresses inside an operator's published ranges: `client_ip, operator, range_file`.

    For the rule that a plain browser user agent from inside an operator's ranges is an agentic
    browser run by that operator. One row per address; where files overlap, the one with the
    most specific prefix names the operator.
    """
    _, inside = _stab(ips, ranges)
    return inside.select("client_ip", "operator", "range_file")


# ---------------------------------------------------------------------------------------------
# Reverse DNS
# ---------------------------------------------------------------------------------------------


class Resolver(Protocol):
    """The two lookups of forward-confirmed reverse DNS; injectable so tests need no network."""

    def reverse(self, address: str) -> str | None:
        """The PTR name of `address`, None when it has none; raises OSError when the lookup fails."""
        ...

    def forward(self, hostname: str) -> list[str]:
        """The addresses `hostname` resolves to ([] when it does not exist); OSError on failure."""
        ...


class SocketResolver:
    """The system resolver (socket.gethostbyaddr / getaddrinfo)."""

    # h_errno values that are answers, not failures: HOST_NOT_FOUND and NO_DATA.
    _NO_NAME = {1, 4}

    def reverse(self, address: str) -> str | None:
        try:
            return socket.gethostbyaddr(address)[0]
        except socket.herror as e:
            if e.errno in self._NO_NAME:
                return None
            raise

    def forward(self, hostname: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as e:
            if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return []
            raise
        return [str(info[4][0]) for info in infos]


_RDNS_SCHEMA: dict[str, pl.DataType] = {
    "address": pl.String(),  # canonical: 192.0.2.1, 2001:db8::1
    "hostname": pl.String(),
    "confirmed": pl.Boolean(),  # the hostname resolves back to the address
    "status": pl.String(),  # ok | no_ptr | failed (failed lookups are never cached)
    "checked_at": pl.Datetime("us", "UTC"),
}


def _canonical(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _fcrdns(address: str, resolver: Resolver) -> tuple[str | None, bool, str]:
    """(hostname, forward-confirmed, status) for one address."""
    try:
        host = resolver.reverse(address)
        if not host:
            return None, False, "no_ptr"
        host = host.rstrip(".").lower()
        forward = resolver.forward(host)
    except OSError:
        return None, False, "failed"
    return host, address in {_canonical(a) for a in forward}, "ok"


def _read_rdns_cache(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path).select(list(_RDNS_SCHEMA)).cast(_RDNS_SCHEMA)
    except FileNotFoundError:
        return pl.DataFrame(schema=_RDNS_SCHEMA)
    except (OSError, pl.exceptions.PolarsError):
        # A damaged cache only costs lookups; it is rewritten whole below.
        return pl.DataFrame(schema=_RDNS_SCHEMA)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder and os.replace, so readers never see half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lookup_all(addresses: list[str], resolver: Resolver, workers: int,
                timeout: float) -> dict[str, tuple[str | None, bool, str]]:
    """FCrDNS for each address, at most `workers` at once, each given `timeout` seconds.

    The system resolver cannot be interrupted, so a lookup past its time is recorded as failed
    and its thread is left to finish on its own instead of holding up the rest.
    """
    started: dict[str, float] = {}
    lock = threading.Lock()

    def task(address: str) -> tuple[str | None, bool, str]:
        with lock:
            started[address] = time.monotonic()
        return _fcrdns(address, resolver)

    results: dict[str, tuple[str | None, bool, str]] = {}
    pool = cf.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="trafficlens-rdns")
    try:
        pending = {pool.submit(task, a): a for a in addresses}
        while pending:
            done, _ = cf.wait(pending, timeout=min(0.05, timeout), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                results[pending.pop(fut)] = fut.result()
            now = time.monotonic()
            with lock:
                late = [f for f, a in pending.items() if a in started and now - started[a] > timeout]
            for fut in late:
                results[pending.pop(fut)] = (None, False, "failed")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def reverse_dns(addresses: pl.Series | Iterable[str], *, resolver: Resolver | None = None,
                cache: Path | None = None, workers: int = 16, timeout: float = 5.0,
                max_age: timedelta = timedelta(days=7)) -> pl.DataFrame:
    """Forward-confirmed reverse DNS of each distinct address, through a persistent cache.

    Returns `client_ip, hostname, confirmed, status` for every distinct address given (status
    `ok`, `no_ptr`, `failed`, or `invalid` for a string that is not an address). Answers younger
    than `max_age` come from the cache (default: rdns.parquet in the trafficlens cache folder)
    without touching the network; failed lookups are not cached, so they are tried again.
    """
    series = addresses if isinstance(addresses, pl.Series) else pl.Series(list(addresses), dtype=pl.String)
    given = parse_ips(series.cast(pl.String).unique().drop_nulls())
    # The resolver wants one canonical spelling (no brackets, zone or IPv4-mapped form). This
    # loop is per distinct address, like the lookups it prepares, which dwarf it.
    given = given.with_columns(address=pl.Series(
        [None if k is None else _key_to_address(k) for k in given["key"]], dtype=pl.String
    ))
    path = cache if cache is not None else default_cache_dir() / "rdns.parquet"
    cached = _read_rdns_cache(path)
    now = datetime.now(timezone.utc)
    fresh = cached.filter(pl.col("checked_at") >= now - max_age).unique("address", keep="last")
    wanted = given["address"].drop_nulls().unique()
    missing = sorted(set(wanted.to_list()) - set(fresh["address"].to_list()))
    if missing:
        found = _lookup_all(missing, resolver or SocketResolver(), workers, timeout)
        new = pl.DataFrame(
            [(a, h, c, s, now) for a, (h, c, s) in found.items()], schema=_RDNS_SCHEMA, orient="row"
        )
        fresh = pl.concat([fresh, new])
        if new.filter(pl.col("status") != "failed").height:
            # Stale answers are dropped rather than kept: they would be looked up again anyway.
            merged = fresh.filter(pl.col("status") != "failed").sort("address")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(path, merged.write_parquet)
            except OSError as e:
                raise TrafficlensError(
                    f"cannot write the reverse-DNS cache {path}: {e.strerror}; "
                    "set XDG_CACHE_HOME to a writable folder"
                ) from None
    return (
        given.join(fresh.select("address", "hostname", "confirmed", "status"), on="address", how="left")
        .select(
            "client_ip", "hostname", pl.col("confirmed").fill_null(False),
            pl.when(pl.col("address").is_null()).then(pl.lit("invalid")).otherwise(pl.col("status")).alias("status"),
        )
    )


# ---------------------------------------------------------------------------------------------
# Verifying claims
# ---------------------------------------------------------------------------------------------

_STR_LIST = pl.List(pl.String())


def _prefixed(col: str, prefix: str) -> pl.Expr:
    return pl.col(col).list.eval(pl.lit(prefix) + pl.element())


def _suffix(expr: pl.Expr) -> pl.Expr:
    """'googlebot.com', '.googlebot.com.' and '.GoogleBot.com' all mean '.googlebot.com'."""
    s = expr.str.strip_chars().str.strip_chars(".").str.to_lowercase()
    return pl.lit(".") + s


def verify_claims(claims: pl.DataFrame, ranges: pl.DataFrame, rdns: bool = False, *,
                  resolver: Resolver | None = None, rdns_cache: Path | None = None,
                  workers: int = 16, timeout: float = 5.0,
                  max_age: timedelta = timedelta(days=7)) -> pl.DataFrame:
    """Check each claim (an address claiming an agent) against ranges and, with `rdns`, DNS.

    `claims` has `client_ip, agent, operator, verify_ranges` (range file names the agent's
    addresses are published in) and `verify_rdns` (hostname suffixes its reverse names end
    in). Adds `identity` and `reasons`:
    - verified: the address is in one of the agent's range files (`ip:in_ranges:FILE`) or its
      reverse name ends in one of the suffixes and resolves back to it (`rdns:confirmed:SUFFIX`);
    - spoofed: a check could be made and failed: a range file of the agent is loaded and the
      address is in none of them (`ip:not_in_ranges:FILE` for each), or reverse DNS answered
      with a name outside the suffixes (`rdns:mismatch`), a name that does not resolve back
      (`rdns:unconfirmed`) or no name at all (`rdns:no_ptr`);
    - declared: nothing could be checked (`ip:no_ranges_loaded`, `rdns:lookup_failed`,
      `ip:invalid` for a client field that is not an address, `verify:no_method` when the
      operator publishes neither ranges nor names).
    Without `rdns`, `rdns:not_checked` marks claims that reverse DNS could still have decided.
    One output row per claim, in the order given.
    """
    base = [c for c in claims.columns if c not in ("identity", "reasons")]
    if claims.height == 0:
        return claims.select(base).with_columns(
            identity=pl.lit(None, pl.String), reasons=pl.lit(None, _STR_LIST)
        )
    alias = {f: s.same_as for f, s in _sources_by_file().items() if s.same_as}
    loaded = sorted(set(ranges["range_file"].to_list()))
    df = claims.select(base).with_row_index("_row").with_columns(
        _want=pl.col("verify_ranges").cast(_STR_LIST).fill_null(pl.lit([], _STR_LIST)),
        _sfx=pl.col("verify_rdns").cast(_STR_LIST).fill_null(pl.lit([], _STR_LIST)),
    )
    # A claim naming a renamed file (googlebot.json) is checked against its successor too.
    df = df.with_columns(_want=pl.concat_list(
        "_want", pl.col("_want").list.eval(pl.element().replace_strict(alias, default=None)).list.drop_nulls()
    ).list.unique().list.sort())
    addrs, inside = _stab(df["client_ip"], ranges)
    matches = addrs.join(inside.select("client_ip", "range_files"), on="client_ip", how="left")
    df = df.join(matches.select("client_ip", "key", "range_files"), on="client_ip", how="left").with_columns(
        _loaded=pl.col("_want").list.eval(pl.element().filter(pl.element().is_in(loaded))),
        _hits=pl.col("_want").list.set_intersection(
            pl.col("range_files").fill_null(pl.lit([], _STR_LIST))
        ).list.sort(),
    )
    has_ranges = pl.col("_want").list.len() > 0
    has_sfx = pl.col("_sfx").list.len() > 0
    df = df.with_columns(_ip=(
        pl.when(~has_ranges & ~has_sfx).then(pl.lit("none"))
        .when(pl.col("key").is_null()).then(pl.lit("invalid"))
        .when(~has_ranges).then(pl.lit("none"))
        .when(pl.col("_loaded").list.len() == 0).then(pl.lit("unloaded"))
        .when(pl.col("_hits").list.len() > 0).then(pl.lit("in"))
        .otherwise(pl.lit("out"))
    ))

    # DNS is asked only about claims it can still decide: with suffixes, a real address, and
    # not already verified by ranges.
    needs_dns = has_sfx & pl.col("key").is_not_null() & (pl.col("_ip") != "in")
    if not rdns:
        df = df.with_columns(_rd=pl.when(needs_dns).then(pl.lit("not_checked")).otherwise(pl.lit("none")),
                             _matched=pl.lit(None, pl.String))
    else:
        need = df.filter(needs_dns)
        answers = reverse_dns(need["client_ip"], resolver=resolver, cache=rdns_cache,
                              workers=workers, timeout=timeout, max_age=max_age)
        matched = (
            need.select("_row", "client_ip", sfx=pl.col("_sfx")).explode("sfx")
            .join(answers.select("client_ip", "hostname"), on="client_ip")
            .filter((pl.lit(".") + pl.col("hostname")).str.ends_with(_suffix(pl.col("sfx"))))
            .group_by("_row", maintain_order=True).agg(_matched=_suffix(pl.col("sfx")).first())
        )
        df = (
            df.join(answers.select("client_ip", _status="status", _conf="confirmed"), on="client_ip", how="left")
            .join(matched, on="_row", how="left")
            .with_columns(_rd=(
                pl.when(~needs_dns).then(pl.lit("none"))
                .when(pl.col("_status") == "failed").then(pl.lit("lookup_failed"))
                .when(pl.col("_status") == "no_ptr").then(pl.lit("no_ptr"))
                .when(pl.col("_status") != "ok").then(pl.lit("none"))
                .when(pl.col("_matched").is_null()).then(pl.lit("mismatch"))
                .when(pl.col("_conf")).then(pl.lit("confirmed"))
                .otherwise(pl.lit("unconfirmed"))
            ))
        )

    verified = (pl.col("_ip") == "in") | (pl.col("_rd") == "confirmed")
    failed = (pl.col("_ip") == "out") | pl.col("_rd").is_in(["mismatch", "unconfirmed", "no_ptr"])
    identity = (
        pl.when(verified).then(pl.lit("verified"))
        .when(failed).then(pl.lit("spoofed"))
        .otherwise(pl.lit("declared"))
    )
    empty = pl.lit([], _STR_LIST)
    ip_reasons = (
        pl.when(pl.col("_ip") == "in").then(_prefixed("_hits", "ip:in_ranges:"))
        .when(pl.col("_ip") == "out").then(_prefixed("_loaded", "ip:not_in_ranges:"))
        .when(pl.col("_ip") == "unloaded").then(pl.lit(["ip:no_ranges_loaded"], _STR_LIST))
        .when(pl.col("_ip") == "invalid").then(pl.lit(["ip:invalid"], _STR_LIST))
        .otherwise(empty)
    )
    rd_reasons = (
        pl.when(pl.col("_rd") == "confirmed").then(pl.concat_list(pl.lit("rdns:confirmed:") + pl.col("_matched")))
        .when(pl.col("_rd") != "none").then(pl.concat_list(pl.lit("rdns:") + pl.col("_rd")))
        .otherwise(empty)
    )
    no_method = pl.when(~has_ranges & ~has_sfx).then(pl.lit(["verify:no_method"], _STR_LIST)).otherwise(empty)
    return (
        df.with_columns(identity=identity, reasons=pl.concat_list(ip_reasons, rd_reasons, no_method))
        .sort("_row")
        .select(*base, "identity", "reasons")
    )


# ---------------------------------------------------------------------------------------------
# Downloading the published files
# ---------------------------------------------------------------------------------------------

Fetch = Callable[[str, float], bytes]


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/trafficlens, else ~/.cache/trafficlens."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "trafficlens"


def default_ranges_dir() -> Path | None:
    """The folder `trafficlens ranges update` fills, when it holds any range file; else None."""
    folder = default_cache_dir() / "ranges"
    if any((folder / s.file).is_file() for s in range_sources()):
        return folder
    return None


def _http_get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={
        "User-Agent": f"trafficlens/{__version__} (range files update)",
        "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
    })
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(_MAX_RANGE_BYTES + 1)
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
        line = (f"{got} of {got + len(self.failed)} range files current in {self.dest} "
                f"({len(self.updated)} updated)")
        if self.failed:
            line += "; kept the previous copy of " + ", ".join(f"{f} ({w})" for f, w in sorted(self.failed.items()))
        return line


def update_ranges(dest: Path | None = None, timeout: float = 20, *, fetch: Fetch | None = None,
                  workers: int = 8) -> UpdateResult:
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
                if not _parse_prefixes(data):
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
            data = payloads.get(src.file)
            if data is None:
                continue
            path = folder / src.file
            if path.is_file() and path.read_bytes() == data:
                result.unchanged.append(src.file)
                continue
            _write_atomic(path, lambda p, d=data: p.write_bytes(d))
            result.updated.append(src.file)
    except OSError as e:
        raise TrafficlensError(
            f"cannot write range files to {folder}: {e.strerror}; choose a writable folder"
        ) from None
    return result
