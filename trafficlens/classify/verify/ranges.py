"""Range files: parsing the shapes operators publish them in, loading a folder of them, and
matching addresses to them.

Range files are cut into disjoint segments once (a sweep over the prefixes, at most a few
thousand), and addresses are matched to segments with one vectorised join: no work per address
in Python.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import polars as pl

from trafficlens.classify.verify.addresses import IPNetwork, network_bounds, parse_ips
from trafficlens.classify.verify.sources import range_sources
from trafficlens.errors import InputError

# Where the list of prefixes sits in a JSON range file, and what an entry calls its prefix.
# Google's shape ({"prefixes": [{"ipv4Prefix": ...}, {"ipv6Prefix": ...}]}) is what OpenAI,
# Google, Bing, Perplexity, Apple, Common Crawl, DuckDuckGo, Mistral and Anthropic publish; the
# other names cover lists in the shapes of cloud providers' files and hand-made mirrors.
_LIST_KEYS = ("prefixes", "ranges", "ip_ranges", "ipRanges", "ips", "addresses", "cidrs", "items")
_WRAPPER_KEYS = ("data", "result")
_ENTRY_KEYS = (
    "ipv4Prefix",
    "ipv6Prefix",
    "ip_prefix",
    "ipv6_prefix",
    "ipPrefix",
    "prefix",
    "cidr",
    "CIDR",
    "ip",
    "ip_address",
    "ipAddress",
    "address",
    "network",
    "subnet",
    "range",
)
MAX_RANGE_BYTES = 16 << 20  # the largest published file is well under 1 MB

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


def parse_prefixes(data: bytes) -> list[IPNetwork]:
    """Bytes of a range file -> its networks. Raises ValueError saying what is wrong."""
    if len(data) > MAX_RANGE_BYTES:
        raise ValueError(f"is larger than {MAX_RANGE_BYTES >> 20} MB, not a range list")
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
        return parse_prefixes(data)
    except ValueError as e:
        raise InputError(f"range file {name} {e}; download it again (trafficlens ranges update) or remove it") from None


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
            start, end = network_bounds(net)
            rows.append((src.file, src.operator, net.version, str(net), f"{start:032x}", f"{end:032x}"))
    if not found:
        names = ", ".join(s.file for s in range_sources()[:4])
        raise InputError(
            f"{folder} holds none of the published range files ({names}, ...); run "
            "`trafficlens ranges update` or download them into it"
        )
    return pl.DataFrame(rows, schema=RANGES_SCHEMA, orient="row").unique(["range_file", "prefix"], maintain_order=True)


# --- matching addresses to ranges -------------------------------------------------------------

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
            rows.append(
                (f"{pos:032x}", f"{nxt - 1:032x}", sorted({files[i] for i in active}), files[best], operators[best])
            )
    return pl.DataFrame(rows, schema=_SEGMENT_SCHEMA, orient="row")


def locate_addresses(ips: pl.Series, ranges: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Distinct addresses, and those inside a range with the segment that holds them."""
    addrs = parse_ips(ips.cast(pl.String).unique().drop_nulls())
    if ranges.height == 0:
        return addrs, pl.DataFrame(schema={"client_ip": pl.String(), **_SEGMENT_SCHEMA})
    segments = _segments(ranges).sort("seg_start")
    inside = (
        addrs.filter(pl.col("key").is_not_null())
        # Sorting by the two 64-bit halves gives the order of the fixed-width hex keys, about
        # three times faster than comparing strings that mostly share their first 24 digits.
        .sort(
            pl.col("key").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64),
            pl.col("key").str.slice(16).str.to_integer(base=16, dtype=pl.UInt64),
        )
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
    addrs, inside = locate_addresses(ips, ranges)
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
    _, inside = locate_addresses(ips, ranges)
    return inside.select("client_ip", "operator", "range_file")
