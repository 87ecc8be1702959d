"""Addresses -> keys, vectorised.

Addresses are compared as 128-bit numbers written as 32 lower-case hex digits ("keys"), with
IPv4 addresses in their IPv4-mapped IPv6 form (::ffff:a.b.c.d). Fixed-width hex sorts and
compares like the numbers, so one sorted as-of join serves both families; unlike polars'
UInt128 it also crosses into Arrow, Parquet and DuckDB, and works in every polars version.
"""

from __future__ import annotations

import ipaddress
from typing import TypeVar

import polars as pl

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    h = [pl.lit(_HEX_PAIRS).str.slice(pl.col(parts).struct.field(n).cast(pl.Int32, strict=False) * 2, 2) for n in names]
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
    temps = [
        "_ipk_s",
        "_ipk_v4",
        "_ipk_tail",
        "_ipk_s6",
        "_ipk_halves",
        "_ipk_head",
        "_ipk_rest",
        "_ipk_nh",
        "_ipk_nr",
        "_ipk_dc",
    ]
    return (
        frame.with_columns(_ipk_s=pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase())
        .with_columns(
            _ipk_s=pl.when(s.str.starts_with("["))
            .then(s.str.extract(r"^\[([^\]]*)\](?::[0-9]{1,5})?$", 1))
            .otherwise(s)
        )
        .with_columns(
            _ipk_s=(
                s.str.replace(r"^([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]{1,5}$", "$1")
                # A zone id names an interface of the logging host, not part of the address.
                .str.replace(r"^([0-9a-f:.]*:[0-9a-f:.]*)%[^%]+$", "$1")
            )
        )
        .with_columns(
            _ipk_v4=pl.when(s.str.contains(_V4_RE)).then(s.str.split_exact(".", 3)),
            _ipk_tail=s.str.extract_groups(_V6_TAIL_RE),
        )
        .with_columns(
            _ipk_v4=pl.lit(_V4_KEY_PREFIX) + _octets_hex("_ipk_v4", _FIELDS),
            _ipk_s6=pl.when(pl.col("_ipk_tail").struct.field("head").is_not_null())
            .then(
                pl.col("_ipk_tail").struct.field("head") + _octets_hex("_ipk_tail", tuple("abcd"), ":")
                # Only strings with a colon can be IPv6: the rest skip the work below as nulls.
            )
            .when(s.str.contains(":", literal=True))
            .then(s),
        )
        .with_columns(
            _ipk_halves=pl.col("_ipk_s6").str.split_exact("::", 1),
            _ipk_dc=pl.col("_ipk_s6").str.count_matches("::", literal=True),
        )
        .with_columns(
            _ipk_head=pl.col("_ipk_halves").struct.field("field_0"),
            _ipk_rest=pl.col("_ipk_halves").struct.field("field_1"),
        )
        .with_columns(_ipk_nh=_group_count("_ipk_head"), _ipk_nr=_group_count("_ipk_rest"))
        .with_columns(
            pl.coalesce(
                "_ipk_v4",
                pl.when(
                    pl.col("_ipk_s6").str.contains(r"^[0-9a-f:]+$")
                    & pl.col("_ipk_head").str.contains(_GROUPS_RE)
                    & (pl.col("_ipk_rest").is_null() | pl.col("_ipk_rest").str.contains(_GROUPS_RE))
                    # Without "::" all 8 groups are written; with it, "::" stands for at least one.
                    & (
                        ((pl.col("_ipk_dc") == 0) & (pl.col("_ipk_nh") == 8))
                        | ((pl.col("_ipk_dc") == 1) & (pl.col("_ipk_nh") + pl.col("_ipk_nr") <= 7))
                    )
                ).then(
                    pl.concat_str(
                        [
                            _groups_hex("_ipk_head"),
                            pl.lit("0" * 32).str.slice(0, (8 - pl.col("_ipk_nh") - pl.col("_ipk_nr")) * 4),
                            _groups_hex("_ipk_rest"),
                        ]
                    )
                ),
            ).alias(name)
        )
        .drop(temps)
    )


def _family(key: pl.Expr) -> pl.Expr:
    return (
        pl.when(key.is_null()).then(None).when(key.str.starts_with(_V4_KEY_PREFIX)).then(4).otherwise(6).cast(pl.UInt8)
    )


def parse_ips(ips: pl.Series) -> pl.DataFrame:
    """Address strings -> `client_ip, family (4|6, null for junk), key` (see `with_ip_key`)."""
    return (
        with_ip_key(pl.LazyFrame({"client_ip": ips.cast(pl.String)}))
        .select("client_ip", family=_family(pl.col("key")), key=pl.col("key"))
        .collect()
    )


def key_to_address(key: str) -> str:
    """A key -> the address in its canonical spelling (192.0.2.1, 2001:db8::1)."""
    n = int(key, 16)
    if n >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(n))


def network_bounds(net: IPNetwork) -> tuple[int, int]:
    """The first and last address of a network, as the numbers its keys write."""
    start = int(net.network_address)
    if net.version == 4:
        start |= _V4_BASE
    return start, start + net.num_addresses - 1
