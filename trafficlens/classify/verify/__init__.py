"""Verification of claimed identities: operators' published IP ranges and reverse DNS.

DESIGN.md, "Classification, in layers", item 2. A client that claims a known agent (GPTBot,
Googlebot, ...) is `verified` when its address lies in one of the range files the operator
publishes for that agent, or passes forward-confirmed reverse DNS; `spoofed` when a check that
could be made fails; `declared` when nothing could be checked.

- `sources`: the table of published range files (catalogues/range_sources.yml);
- `addresses`: addresses as sortable 128-bit keys, vectorised;
- `ranges`: range files (parse, load) and matching addresses to them;
- `rdns`: forward-confirmed reverse DNS, behind a persistent cache;
- `claims`: `verify_claims`, the verdict from both;
- `recorded`: range files looked up at ingest for pseudonymised addresses (`--ip-privacy`);
- `cache`, `download`: the cache folder, and `trafficlens ranges update` filling it.
"""

from __future__ import annotations

from trafficlens.classify.verify.addresses import parse_ips, with_ip_key
from trafficlens.classify.verify.cache import default_cache_dir, default_ranges_dir
from trafficlens.classify.verify.claims import verify_claims
from trafficlens.classify.verify.download import UpdateResult, update_ranges
from trafficlens.classify.verify.ranges import (
    RANGES_SCHEMA,
    attribute_addresses,
    empty_ranges,
    load_ranges,
    match_ranges,
    parse_range_file,
)
from trafficlens.classify.verify.rdns import Resolver, SocketResolver, reverse_dns
from trafficlens.classify.verify.recorded import attribute_recorded, ingest_lookup, range_files_of
from trafficlens.classify.verify.sources import RangeSource, range_sources

__all__ = [
    "RANGES_SCHEMA",
    "RangeSource",
    "Resolver",
    "SocketResolver",
    "UpdateResult",
    "attribute_addresses",
    "attribute_recorded",
    "default_cache_dir",
    "default_ranges_dir",
    "empty_ranges",
    "ingest_lookup",
    "load_ranges",
    "match_ranges",
    "parse_ips",
    "parse_range_file",
    "range_files_of",
    "range_sources",
    "reverse_dns",
    "update_ranges",
    "verify_claims",
    "with_ip_key",
]
