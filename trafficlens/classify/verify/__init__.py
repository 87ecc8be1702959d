"""Verification of claimed identities, and network evidence about addresses.

DESIGN.md, "Classification, in layers", item 2, and "Evidence and confidence". A client that
claims a known agent (GPTBot, Googlebot, ...) is `verified` when its address lies in one of the
range files the operator publishes for that agent, or passes forward-confirmed reverse DNS, or
its requests carry a Web Bot Auth signature that checks; `spoofed` when a check that could be
made fails; `declared` when nothing could be checked.

- `sources`: the tables of published range files (catalogues/range_sources.yml,
  catalogues/hosting_sources.yml);
- `addresses`: addresses as sortable 128-bit keys, vectorised; `intervals`: matching them to
  address ranges;
- `ranges`: range files (parse, load) and matching addresses to them;
- `rdns`: forward-confirmed reverse DNS, behind a persistent cache;
- `claims`: `verify_claims`, the verdict from both;
- `recorded`: range files looked up at ingest for pseudonymised addresses (`--ip-privacy`);
- `hosting`: cloud and hosting providers' published ranges (`ip:hosting:<provider>`);
- `geo`: ASN, network owner and country from .mmdb files and iptoasn tables (`--geo`);
- `signatures`: Web Bot Auth (RFC 9421) signatures checked against cached key directories;
- `cache`, `download`: the cache folder, and `trafficlens ranges update` filling it.
"""

from __future__ import annotations

from trafficlens.classify.verify.addresses import parse_ips, with_ip_key
from trafficlens.classify.verify.cache import default_cache_dir, default_geo_dir, default_keys_dir, default_ranges_dir
from trafficlens.classify.verify.claims import verify_claims
from trafficlens.classify.verify.download import UpdateResult, update_hosting, update_ranges
from trafficlens.classify.verify.geo import GeoDatabases, geo_for, load_geo
from trafficlens.classify.verify.hosting import HostingRanges, empty_hosting, hosting_for, load_hosting
from trafficlens.classify.verify.ranges import (
    RANGES_SCHEMA,
    attribute_addresses,
    empty_ranges,
    load_ranges,
    match_ranges,
    parse_range_file,
)
from trafficlens.classify.verify.rdns import Resolver, SocketResolver, reverse_dns
from trafficlens.classify.verify.recorded import attribute_recorded, hosting_recorded, ingest_lookup, range_files_of
from trafficlens.classify.verify.signatures import KeyDirectory, load_keys, update_keys, verify_signatures
from trafficlens.classify.verify.sources import HostingSource, RangeSource, hosting_sources, range_sources

__all__ = [
    "RANGES_SCHEMA",
    "GeoDatabases",
    "HostingRanges",
    "HostingSource",
    "KeyDirectory",
    "RangeSource",
    "Resolver",
    "SocketResolver",
    "UpdateResult",
    "attribute_addresses",
    "attribute_recorded",
    "default_cache_dir",
    "default_geo_dir",
    "default_keys_dir",
    "default_ranges_dir",
    "empty_hosting",
    "empty_ranges",
    "geo_for",
    "hosting_for",
    "hosting_recorded",
    "hosting_sources",
    "ingest_lookup",
    "load_geo",
    "load_hosting",
    "load_keys",
    "load_ranges",
    "match_ranges",
    "parse_ips",
    "parse_range_file",
    "range_files_of",
    "range_sources",
    "reverse_dns",
    "update_hosting",
    "update_keys",
    "update_ranges",
    "verify_claims",
    "verify_signatures",
    "with_ip_key",
]
