"""Hosting attribution: which cloud or hosting provider's published ranges hold an address.

The providers publish their own address space (catalogues/hosting_sources.yml): AWS, Google
Cloud, Azure, Oracle, DigitalOcean, Linode, Vultr, Cloudflare, Fastly. A browser user agent from
one of these ranges comes from a data centre rather than a home or mobile line, which people
browsing rarely do: behaviour evidence with its own reason, `ip:hosting:<provider>`.

Files are read once into disjoint segments (the most specific prefix names the service and
region); addresses are matched with one sorted as-of join, once per distinct address.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trafficlens.classify.verify.addresses import network_bounds
from trafficlens.classify.verify.intervals import distinct_addresses, lookup, most_specific_segments, split_addresses
from trafficlens.classify.verify.sources import HostingSource, hosting_sources
from trafficlens.errors import InputError
from trafficlens.schema import HOSTING, HOSTING_SERVICE, REGION

MAX_HOSTING_BYTES = 64 << 20  # Azure's service tags, the largest, are under 10 MB

HOSTING_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    HOSTING: pl.String(),  # the provider id (aws, google_cloud, azure, ...)
    HOSTING_SERVICE: pl.String(),  # the provider's service, where its file names one (EC2, ...)
    REGION: pl.String(),  # the provider's region or the geofeed's, where published
    "prefix": pl.String(),
    "start": pl.String(),  # first address, as a key (see `with_ip_key`)
    "end": pl.String(),
}
# What `hosting_for` returns: one row per distinct address.
HOSTING_COLUMNS: dict[str, pl.DataType] = {
    "client_ip": pl.String(),
    HOSTING: pl.String(),
    HOSTING_SERVICE: pl.String(),
    REGION: pl.String(),
}

# One prefix as a file states it: (prefix text, service, region, rank); a lower rank wins a tie
# between two entries for the same prefix (AWS lists EC2's prefixes again under AMAZON).
_Entry = tuple[str, str | None, str | None, int]


@dataclass(frozen=True)
class HostingRanges:
    """The hosting providers' prefixes as loaded, and the disjoint segments matched against."""

    prefixes: pl.DataFrame  # HOSTING_SCHEMA
    segments: pl.DataFrame  # seg_start, seg_end, hosting, hosting_service, region
    files: tuple[str, ...]  # the files loaded

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.prefixes[HOSTING].to_list())))


# --- parsing each provider's shape ------------------------------------------------------------


def _obj(doc: object, what: str) -> dict[str, object]:
    if not isinstance(doc, dict):
        raise ValueError(f"is not a JSON object as {what} publishes it")
    return doc


def _list(doc: dict[str, object], key: str, what: str) -> list[dict[str, object]]:
    items = doc.get(key)
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        keys = ", ".join(repr(str(k)) for k in list(doc)[:5]) or "none"
        raise ValueError(f"has no list {key!r} as {what} publishes it (its keys: {keys})")
    return items


def _str(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _aws(doc: object) -> Iterator[_Entry]:
    d = _obj(doc, "AWS")
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        if key == "ipv6_prefixes" and key not in d:
            continue
        for e in _list(d, key, "AWS"):
            service = _str(e.get("service"))
            # AMAZON is the whole of Amazon's space, listed again beside each service's own entry.
            yield str(e.get(field) or ""), service, _str(e.get("region")), int(service == "AMAZON")


def _google(doc: object) -> Iterator[_Entry]:
    for e in _list(_obj(doc, "Google Cloud"), "prefixes", "Google Cloud"):
        prefix = e.get("ipv4Prefix") or e.get("ipv6Prefix") or ""
        yield str(prefix), _str(e.get("service")), _str(e.get("scope")), 0


def _azure(doc: object) -> Iterator[_Entry]:
    for tag in _list(_obj(doc, "Azure"), "values", "Azure"):
        props = tag.get("properties")
        if not isinstance(props, dict):
            raise ValueError(f"service tag {tag.get('name')!r} has no properties")
        name = str(tag.get("name") or "")
        system = _str(props.get("systemService"))
        # A service's own tag (Storage.WestEurope) is more telling than its region's (AzureCloud.westeurope),
        # which is more telling than the whole cloud's (AzureCloud).
        rank = 0 if system else (1 if "." in name else 2)
        service = system or name.split(".")[0] or None
        prefixes = props.get("addressPrefixes")
        if not isinstance(prefixes, list):
            raise ValueError(f"service tag {name!r} has no addressPrefixes list")
        for p in prefixes:
            yield str(p), service, _str(props.get("region")), rank


def _oracle(doc: object) -> Iterator[_Entry]:
    for region in _list(_obj(doc, "Oracle"), "regions", "Oracle"):
        cidrs = region.get("cidrs")
        if not isinstance(cidrs, list):
            raise ValueError(f"region {region.get('region')!r} has no cidrs list")
        for c in cidrs:
            if not isinstance(c, dict):
                raise ValueError(f"region {region.get('region')!r} has a cidr that is not an object")
            tags = c.get("tags")
            service = ",".join(str(t) for t in tags) if isinstance(tags, list) and tags else None
            yield str(c.get("cidr") or ""), service, _str(region.get("region")), 0


def _fastly(doc: object) -> Iterator[_Entry]:
    d = _obj(doc, "Fastly")
    for key in ("addresses", "ipv6_addresses"):
        items = d.get(key, [] if key == "ipv6_addresses" else None)
        if not isinstance(items, list):
            raise ValueError(f"has no list {key!r} as Fastly publishes it")
        for p in items:
            yield str(p), None, None, 0


def _geofeed(text: str) -> Iterator[_Entry]:
    """RFC 8805: prefix,country,region,city,postal; '#' starts a comment."""
    lines = (ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    for row in csv.reader(lines):
        prefix = row[0].strip() if row else ""
        region = next((v.strip() for v in (row[2:3] + row[1:2]) if v.strip()), None)
        yield prefix, None, region, 0


def _text(text: str) -> Iterator[_Entry]:
    for line in text.splitlines():
        for tok in line.split("#", 1)[0].split():
            yield tok, None, None, 0


_JSON_READERS = {"aws": _aws, "google": _google, "azure": _azure, "oracle": _oracle, "fastly": _fastly}


def parse_hosting_file(data: bytes, src: HostingSource, name: str | None = None) -> pl.DataFrame:
    """One provider's file -> its prefixes (HOSTING_SCHEMA, in the file's preference order).

    Raises InputError naming the file when it is not in the provider's shape or holds something
    that is not a prefix.
    """
    where = name or src.file
    try:
        rows = _rows(data, src)
    except ValueError as e:
        raise InputError(
            f"hosting range file {where} {e}; download it again (trafficlens ranges update) or remove it"
        ) from None
    return pl.DataFrame(rows, schema=HOSTING_SCHEMA, orient="row")


def _rows(data: bytes, src: HostingSource) -> list[tuple[object, ...]]:
    if len(data) > MAX_HOSTING_BYTES:
        raise ValueError(f"is larger than {MAX_HOSTING_BYTES >> 20} MB, not a range list")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    if text.lstrip().startswith("<"):
        raise ValueError("is an HTML or XML page, not a list of IP ranges")
    reader = _JSON_READERS.get(src.format)
    if reader is not None:
        try:
            entries = list(reader(json.loads(text)))
        except json.JSONDecodeError as e:
            raise ValueError(f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    else:
        entries = list(_geofeed(text) if src.format == "geofeed" else _text(text))
    if not entries:
        raise ValueError("holds no prefixes")
    rows: list[tuple[object, ...]] = []
    for prefix, service, region, _rank in sorted(entries, key=lambda e: e[3]):
        try:
            net = ipaddress.ip_network(prefix.strip(), strict=False)
        except ValueError:
            raise ValueError(f"entry {prefix!r} is not an IP prefix") from None
        start, end = network_bounds(net)
        rows.append((src.file, src.provider, service, region, str(net), f"{start:032x}", f"{end:032x}"))
    return rows


# --- loading and matching ---------------------------------------------------------------------


def _build(prefixes: pl.DataFrame, files: tuple[str, ...]) -> HostingRanges:
    prefixes = prefixes.unique(["file", "prefix"], keep="first", maintain_order=True)
    starts = [int(k, 16) for k in prefixes["start"]]
    ends = [int(k, 16) for k in prefixes["end"]]
    cut = most_specific_segments(starts, ends)
    idx = pl.Series("idx", [i for _, _, i in cut], dtype=pl.UInt32)
    segments = pl.DataFrame(
        {"seg_start": [f"{s:032x}" for s, _, _ in cut], "seg_end": [f"{e:032x}" for _, e, _ in cut]},
        schema={"seg_start": pl.String(), "seg_end": pl.String()},
    ).with_columns(prefixes.select(HOSTING, HOSTING_SERVICE, REGION)[idx])
    return HostingRanges(prefixes, segments, files)


def empty_hosting() -> HostingRanges:
    """No hosting ranges: every address is outside them."""
    return _build(pl.DataFrame(schema=HOSTING_SCHEMA), ())


def hosting_from_files(files: dict[str, bytes]) -> HostingRanges:
    """Hosting ranges from file contents by their catalogue names (names not in it are ignored)."""
    by_file = {s.file: s for s in hosting_sources()}
    return _from_frames({n: parse_hosting_file(d, by_file[n]) for n, d in files.items() if n in by_file})


def _from_frames(frames: dict[str, pl.DataFrame]) -> HostingRanges:
    # Catalogue order, so a prefix two providers both list goes to the first one.
    order = tuple(s.file for s in hosting_sources() if s.file in frames)
    prefixes = pl.concat([frames[f] for f in order]) if order else pl.DataFrame(schema=HOSTING_SCHEMA)
    return _build(prefixes, order)


def load_hosting(dir: Path | str) -> HostingRanges:
    """Read the hosting providers' range files in `dir` (by their catalogue names).

    The folder is the one `trafficlens ranges update` fills beside the operators' files; other
    files in it are ignored, and a folder without any hosting file gives empty ranges.
    """
    folder = Path(dir)
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a folder of IP range files; run `trafficlens ranges update` or pass "
            "--ranges a folder holding the providers' files (aws-ip-ranges.json, google-cloud.json, ...)"
        )
    frames: dict[str, pl.DataFrame] = {}
    for src in hosting_sources():
        path = folder / src.file
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read hosting range file {path}: {e.strerror}; check its permissions") from None
        frames[src.file] = parse_hosting_file(data, src, str(path))
    return _from_frames(frames)


def hosting_for(addresses: pl.Series, table: HostingRanges) -> pl.DataFrame:
    """The hosting provider of each distinct address: `client_ip, hosting, hosting_service, region`.

    One row per distinct non-null address as given; the three columns are null for an address
    outside every provider's ranges (or not an address at all).
    """
    split = split_addresses(addresses)
    inside = lookup(split, table.segments)
    return distinct_addresses(split).join(inside, on="client_ip", how="left").cast(HOSTING_COLUMNS)  # type: ignore[arg-type]


def hosting_reason(provider: pl.Expr) -> pl.Expr:
    """The reason a hosting address gives: `ip:hosting:<provider>` (null outside every range)."""
    return pl.lit("ip:hosting:") + provider
