"""Address intervals: cutting nested prefixes into disjoint segments once, and finding the segment
that holds each address with one sorted as-of join (no work per address in Python).

Shared by the hosting providers' ranges (nested prefixes: the most specific one names the service)
and the ASN/country tables (disjoint ranges as published).
"""

from __future__ import annotations

import heapq

import polars as pl

from trafficlens.classify.verify.addresses import _V4_BASE, _V4_KEY_PREFIX, _V4_RE, parse_ips

# The columns every segments frame starts with: first and last address, as keys (see `with_ip_key`).
SEGMENT_BOUNDS = ("seg_start", "seg_end")


def most_specific_segments(starts: list[int], ends: list[int]) -> list[tuple[int, int, int]]:
    """Disjoint `(start, end, index)` segments where `index` is the narrowest interval covering them.

    Published prefixes nest (a /16 of a cloud and a /24 of one of its services): an address
    belongs to the most specific one. Ties go to the lower index, so callers order rows by
    preference. A sweep over the interval boundaries with a heap of the open intervals, once per
    load (a few hundred thousand prefixes at most), never per address.
    """
    order = sorted(range(len(starts)), key=lambda i: (starts[i], -ends[i], i))
    bounds = sorted({s for s in starts} | {e + 1 for e in ends})
    out: list[tuple[int, int, int]] = []
    heap: list[tuple[int, int, int]] = []  # (size, index, end) of the intervals open at a position
    k = 0
    for pos, nxt in zip(bounds, bounds[1:]):
        while k < len(order) and starts[order[k]] <= pos:
            i = order[k]
            heapq.heappush(heap, (ends[i] - starts[i], i, ends[i]))
            k += 1
        while heap and heap[0][2] < pos:  # closed before this segment: drop lazily
            heapq.heappop(heap)
        if heap:
            idx = heap[0][1]
            if out and out[-1][2] == idx and out[-1][1] == pos - 1:
                out[-1] = (out[-1][0], nxt - 1, idx)  # the same owner continues: one segment
            else:
                out.append((pos, nxt - 1, idx))
    return out


def key_frame(ips: pl.Series) -> pl.DataFrame:
    """Distinct non-null addresses as given, with their keys (null for what is not an address)."""
    return parse_ips(ips.cast(pl.String).unique().drop_nulls()).select("client_ip", "key")


Split = tuple[pl.DataFrame, pl.DataFrame]  # what split_addresses returns


def _v4_number(ip: pl.Expr) -> pl.Expr:
    """A dotted quad -> its key's low 64 bits (::ffff:a.b.c.d), computed with integer arithmetic."""
    parts = ip.str.split_exact(".", 3)
    octet = [parts.struct.field(f"field_{i}").cast(pl.UInt64) for i in range(4)]
    return pl.lit(_V4_BASE, pl.UInt64) + octet[0] * (1 << 24) + octet[1] * (1 << 16) + octet[2] * (1 << 8) + octet[3]


def split_addresses(ips: pl.Series) -> Split:
    """Distinct non-null addresses -> (plain IPv4: `client_ip, n`; the others: `client_ip, key`).

    Most logged addresses are plain dotted quads: their number comes from four integer fields,
    several times cheaper than the general parser (`with_ip_key`), which reads the rest (IPv6,
    ports, brackets, zones, IPv4-mapped spellings; a null key for junk).
    """
    distinct = pl.DataFrame({"client_ip": ips.cast(pl.String).unique().drop_nulls()})
    plain = pl.col("client_ip").str.contains(_V4_RE)
    four = distinct.filter(plain).select("client_ip", n=_v4_number(pl.col("client_ip")))
    rest = key_frame(distinct.filter(~plain)["client_ip"])
    return four, rest


def distinct_addresses(split: Split) -> pl.DataFrame:
    """`client_ip` of every distinct address of a split."""
    return pl.concat([split[0].select("client_ip"), split[1].select("client_ip")])


def lookup(split: Split, segments: pl.DataFrame) -> pl.DataFrame:
    """The payload of the segment holding each address of `split` (see `split_addresses`), for
    those inside one.

    `segments` has `seg_start, seg_end` (keys, disjoint) and payload columns; it need not be
    sorted. IPv4 addresses are joined as 64-bit numbers, the others as keys: both are one sorted
    as-of join.
    """
    payload = [c for c in segments.columns if c not in SEGMENT_BOUNDS]
    out_schema = {"client_ip": pl.String(), **{c: segments.schema[c] for c in payload}}
    four, rest = split
    if segments.height == 0:
        return pl.DataFrame(schema=out_schema)
    # Those spelt otherwise but IPv4 (::ffff:192.0.2.1, 192.0.2.1:80) join the IPv4 side.
    mapped = pl.col("key").str.starts_with(_V4_KEY_PREFIX)
    four = pl.concat(
        [
            four,
            rest.filter(mapped).select(
                "client_ip", n=pl.col("key").str.slice(16).str.to_integer(base=16, dtype=pl.UInt64)
            ),
        ]
    )
    rest = rest.filter(pl.col("key").is_not_null() & ~mapped)
    lo = pl.lit(_V4_KEY_PREFIX + "0" * 8)
    hi = pl.lit(_V4_KEY_PREFIX + "f" * 8)
    # The IPv4 space's segments (cut at its edges) as numbers: their keys' low 64 bits.
    v4_segments = (
        segments.filter((pl.col("seg_end") >= lo) & (pl.col("seg_start") <= hi))
        .with_columns(
            seg_start=pl.max_horizontal("seg_start", lo).str.slice(16).str.to_integer(base=16, dtype=pl.UInt64),
            seg_end=pl.min_horizontal("seg_end", hi).str.slice(16).str.to_integer(base=16, dtype=pl.UInt64),
        )
        .sort("seg_start")
    )
    inside4 = (
        four.sort("n")
        .join_asof(v4_segments, left_on="n", right_on="seg_start", strategy="backward")
        .filter(pl.col("n") <= pl.col("seg_end"))
        .select("client_ip", *payload)
    )
    inside6 = (
        rest
        # Sorting by the two 64-bit halves gives the order of the fixed-width hex keys, faster than
        # comparing strings that mostly share their first digits.
        .sort(
            pl.col("key").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64),
            pl.col("key").str.slice(16).str.to_integer(base=16, dtype=pl.UInt64),
        )
        .with_columns(pl.col("key").set_sorted())
        .join_asof(segments.sort("seg_start"), left_on="key", right_on="seg_start", strategy="backward")
        .filter(pl.col("key") <= pl.col("seg_end"))
        .select("client_ip", *payload)
    )
    return pl.concat([inside4, inside6]).cast(out_schema)  # type: ignore[arg-type]
