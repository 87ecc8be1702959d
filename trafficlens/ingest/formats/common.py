"""What every log format shares: the Format types, the regex building blocks, and the polars
expressions that turn any parser's raw string columns into the columns of EVENT_SCHEMA.

Every parser is a polars expression pipeline over a frame of `line, line_no`; its raw columns (a
regex's named groups, W3C fields, JSON paths) all go through finish().
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import polars as pl

from trafficlens.schema import UTC_TS

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

# --- building blocks --------------------------------------------------------------------------

Q_FAST = r'[^"\\]*'  # a quoted field without escapes: the common case, and fast
Q_ESC = r'(?:[^"\\]|\\.)*'  # Apache writes \" inside quoted fields
NOSP = r"[^ ]+"
NOSP0 = r"[^ ]*"
CLF_TS = "%d/%b/%Y:%H:%M:%S %z"  # [10/Oct/2025:13:55:36 -0700], without its brackets

REQUEST_RE = r"^(?P<method>[A-Z][A-Z0-9_-]{0,31}) (?P<target>.+?)(?: (?P<protocol>[A-Z]{2,10}/[0-9.]{1,4}))?$"
ABSOLUTE_RE = r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$"


def quoted(name: str, escaped: bool) -> str:
    """A quoted field as a named group; `escaped` also reads the backslash escapes inside it."""
    return f'"(?P<{name}>{Q_ESC if escaped else Q_FAST})"'


@dataclass(frozen=True)
class RegexFormat:
    """A format parsed by one regex with named groups: the raw columns that finish() reads."""

    name: str
    fast: str
    tolerant: str | None = None  # tried on the lines `fast` misses
    ts_kind: str = "clf"
    time_unit: str = "s"  # unit of a `request_time` group: s, ms or us
    has_host: bool = False
    url_decode: tuple[str, ...] = ()


@dataclass(frozen=True)
class W3CFormat:
    """W3C extended log format: columns named by `#Fields:` directives."""

    name: str
    separator: str  # " " for IIS, "\t" for CloudFront
    time_taken_unit: str  # IIS: ms; CloudFront: s
    plus_is_space: bool  # IIS writes spaces in user agents as '+'
    default_fields: tuple[str, ...] = ()  # used until a #Fields directive says otherwise


@dataclass(frozen=True)
class JsonFormat:
    """JSON lines: each event column is the first non-null of a list of JSON paths."""

    name: str
    paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ts_kind: str = "auto"
    duration_unit: str = "s"  # unit of the `request_time` paths
    marker: str | None = None  # a key whose presence identifies the format in detection


Format = RegexFormat | W3CFormat | JsonFormat


# --- shared expressions -----------------------------------------------------------------------


def null_dash(e: pl.Expr) -> pl.Expr:
    return pl.when(e.is_in(["-", ""])).then(None).otherwise(e)


def _unescape(e: pl.Expr) -> pl.Expr:
    # Apache writes \" and \\, nginx writes \x22 and \x5C.
    return (
        e.str.replace_all(r"\"", '"', literal=True)
        .str.replace_all(r"\x22", '"', literal=True)
        .str.replace_all(r"\x5C", "\\", literal=True)
        .str.replace_all("\\\\", "\\", literal=True)
    )


_PCT = {f"%{b:02X}": chr(b) for b in range(0x20, 0x7F)}
_PCT.update({f"%{b:02x}": chr(b) for b in range(0x20, 0x7F)})


def percent_decode_ascii(e: pl.Expr) -> pl.Expr:
    """Decode %XX escapes of printable ASCII (vectorised with one Aho-Corasick pass)."""
    return e.str.replace_many(list(_PCT), list(_PCT.values()))


def parse_ts(e: pl.Expr, kind: str, tz: str | None) -> pl.Expr:
    """Parse a timestamp expression to UTC; `tz` applies to stamps that carry no offset."""
    zone = tz or "UTC"
    if kind == "clf":
        with_zone = e.str.strptime(pl.Datetime("us"), CLF_TS, strict=False)
        naive = e.str.strptime(pl.Datetime("us"), "%d/%b/%Y:%H:%M:%S%.f", strict=False)
        return pl.coalesce(
            with_zone.dt.convert_time_zone("UTC"),
            naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"),
        )
    if kind == "epoch":
        return _epoch(e.cast(pl.Float64, strict=False))
    if kind in ("epoch_ms", "epoch_us"):
        return _epoch(e.cast(pl.Float64, strict=False) / (1e3 if kind == "epoch_ms" else 1e6))
    if kind.startswith("strftime:"):
        fmt = kind.removeprefix("strftime:")
        if "%s" in fmt:
            return _epoch(e.cast(pl.Float64, strict=False))
        stamp = e.str.strptime(pl.Datetime("us"), fmt, strict=False)
        if "%z" in fmt:
            return stamp.dt.convert_time_zone("UTC")
        return stamp.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    if kind == "w3c":
        return (
            e.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
            .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
        )
    # ISO 8601, with or without an offset; auto also accepts epoch seconds and CLF.
    z = e.str.replace(r"Z$", "+00:00").str.replace(r" ", "T")
    iso_zone = z.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False)
    iso_naive = z.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
    out = [
        iso_zone.dt.convert_time_zone("UTC"),
        iso_naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"),
    ]
    if kind == "auto":
        num = e.cast(pl.Float64, strict=False)
        out.append(_epoch(pl.when(num > 1e11).then(num / 1000).otherwise(num)))
        out.append(parse_ts(e, "clf", tz))
    return pl.coalesce(out)


def _epoch(seconds: pl.Expr) -> pl.Expr:
    return (seconds * 1_000_000).round(0).cast(pl.Int64, strict=False).cast(UTC_TS)


def split_target(df: FrameT) -> FrameT:
    """target (origin or absolute form, as proxies and load balancers log it) -> host, server_port,
    path, query."""
    absolute = pl.col("target").str.extract_groups(ABSOLUTE_RE)
    df = df.with_columns(_a=absolute)
    authority = pl.col("_a").struct.field("authority")
    rest = pl.col("_a").struct.field("rest")
    df = df.with_columns(
        _ahost=null_dash(authority.str.extract(r"^(?:[^@]*@)?(\[[^\]]*\]|[^:]*)", 1).str.strip_chars("[]")),
        _aport=authority.str.extract(r":([0-9]+)$", 1).cast(pl.Int32, strict=False),
        _rel=pl.when(authority.is_null()).then(pl.col("target")).when(rest == "").then(pl.lit("/")).otherwise(rest),
    )
    parts = pl.col("_rel").str.splitn("?", 2)
    # A malformed request line stays whole in `path`, '?' and all.
    return df.with_columns(
        path=pl.when(pl.col("_malformed")).then(pl.col("_rel")).otherwise(parts.struct.field("field_0")),
        query=pl.when(pl.col("_malformed")).then(None).otherwise(parts.struct.field("field_1")),
    ).drop("_a", "_rel", "_malformed")


def finish(
    df: FrameT,
    fmt_name: str,
    ts_kind: str,
    tz: str | None,
    time_unit: str,
    site: str | None,
    source: str,
    unescape: bool = True,
) -> FrameT:
    """Raw string columns from any parser -> EVENT_SCHEMA columns (plus `_raw_ts`); others are dropped.

    Works on a DataFrame or a LazyFrame. `unescape=False` when the parser let no line with a
    backslash through (the fast path), which saves a pass per column.
    """
    cols = set(df.collect_schema().names())

    def has(c: str) -> bool:
        return c in cols

    # Signature headers are structured fields full of double quotes: logged inside quotes, they
    # arrive escaped (nginx \x22, Apache \").
    escaped = [
        c
        for c in (
            "referer",
            "user_agent",
            "request",
            "remote_user",
            "forwarded_for",
            "path",
            "query",
            "signature_agent",
            "signature",
            "signature_input",
        )
        if has(c)
    ]
    if unescape and escaped and has("line"):
        # Only the few lines holding a backslash can hold an escape: unescape just those.
        bs = pl.col("line").str.contains("\\", literal=True)
        esc = df.filter(bs).with_columns(_unescape(pl.col(c)).alias(c) for c in escaped)
        df = pl.concat([df.filter(~bs), esc])
    # The request comes whole ("GET /a?b HTTP/1.1") or in parts (method, target or path+query);
    # JSON logs may have either per line, so both are read and the whole one wins.
    req = None
    if has("request"):
        r = pl.col("request").str.extract_groups(REQUEST_RE)
        # A request line of "-" stays "-" in path (it was sent, just not as a request); only an
        # empty one is null.
        whole = pl.when(pl.col("request") != "").then(pl.col("request"))
        req = (r.struct.field("method"), pl.coalesce(r.struct.field("target"), whole), r.struct.field("protocol"))
    parts = None
    if has("method") or has("target") or has("path"):
        target = None
        if has("path"):
            q = (
                pl.col("query_q").str.strip_prefix("?")
                if has("query_q")
                else (pl.col("query") if has("query") else pl.lit(None, pl.String))
            )
            target = (
                pl.when(q.is_not_null() & ~q.is_in(["", "-"])).then(pl.col("path") + "?" + q).otherwise(pl.col("path"))
            )
        if has("target"):
            target = (
                pl.coalesce(null_dash(pl.col("target")), target) if target is not None else null_dash(pl.col("target"))
            )
        parts = (
            pl.col("method") if has("method") else pl.lit(None, pl.String),
            target if target is not None else pl.lit(None, pl.String),
            pl.col("protocol") if has("protocol") else pl.lit(None, pl.String),
        )
    if req and parts:
        picked = [pl.when(pl.col("request").is_not_null()).then(a).otherwise(b) for a, b in zip(req, parts)]
    else:
        picked = list(req or parts or (pl.lit(None, pl.String),) * 3)
    # A request line that is there but not "METHOD target [PROTOCOL]" is kept whole in `path`.
    malformed = (pl.col("request").is_not_null() & picked[0].is_null()) if req else pl.lit(False)
    df = df.with_columns(method=picked[0], target=picked[1], protocol=picked[2], _malformed=malformed)
    df = df.drop([c for c in ("path", "query") if c in df.collect_schema().names()])
    df = split_target(df)
    cols = set(df.collect_schema().names())

    # request_time: seconds. ALB/ELB split it in three parts, -1 meaning "no response".
    rt: pl.Expr
    if has("rt1"):
        times = [pl.col(c).cast(pl.Float64, strict=False) for c in ("rt1", "rt2", "rt3")]
        rt = pl.when(pl.all_horizontal([p >= 0 for p in times])).then(pl.sum_horizontal(times))
    elif has("timers"):
        rt = pl.col("timers").str.extract(r"([0-9]+)$", 1).cast(pl.Float64, strict=False) / 1000
    elif has("request_time_ms"):
        rt = pl.col("request_time_ms").cast(pl.Float64, strict=False) / 1000
    elif has("request_time"):
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[time_unit]
        rt = pl.col("request_time").cast(pl.Float64, strict=False) * scale
    else:
        rt = pl.lit(None, pl.Float64)

    host = pl.col("host") if has("host") else pl.lit(None, pl.String)
    host = pl.coalesce(null_dash(host), pl.col("_ahost"))
    port = pl.col("server_port").cast(pl.Int32, strict=False) if has("server_port") else pl.lit(None, pl.Int32)
    port = pl.coalesce(port, pl.col("_aport"))
    ip = pl.lit(None, pl.String)
    if has("client_ip"):
        # Proxies log the peer as address:port (Envoy's downstream_remote_address): 192.0.2.1:443,
        # [2001:db8::1]:443. A bare IPv6 address has colons too, so only those two forms lose a port.
        raw_ip = pl.col("client_ip")
        ip = (
            pl.when(raw_ip.str.contains(r"^[0-9.]+:[0-9]+$"))
            .then(raw_ip.str.replace(r":[0-9]+$", ""))
            .when(raw_ip.str.starts_with("["))
            .then(raw_ip.str.extract(r"^\[([^\]]*)\]", 1))
            .otherwise(raw_ip)
        )

    def opt(c: str) -> pl.Expr:
        return null_dash(pl.col(c)) if has(c) else pl.lit(None, pl.String)

    out = df.select(
        ts=parse_ts(pl.col("ts"), ts_kind, tz) if has("ts") else pl.lit(None, UTC_TS),
        site=pl.lit(site) if site else pl.coalesce(host, pl.lit("default")),
        host=host,
        client_ip=null_dash(ip),
        remote_user=opt("remote_user"),
        method=pl.col("method"),
        path=pl.col("path"),
        query=pl.col("query"),
        protocol=pl.col("protocol"),
        status=pl.col("status").cast(pl.Int32, strict=False) if has("status") else pl.lit(None, pl.Int32),
        bytes=pl.col("bytes").cast(pl.Int64, strict=False) if has("bytes") else pl.lit(None, pl.Int64),
        referer=opt("referer"),
        user_agent=opt("user_agent"),
        request_time=rt,
        forwarded_for=opt("forwarded_for"),
        source=pl.lit(source),
        line_no=pl.col("line_no"),
        server_port=port,
        tls_protocol=opt("tls_protocol"),
        tls_cipher=opt("tls_cipher"),
        tls_fingerprint=opt("tls_fingerprint"),
        signature_agent=opt("signature_agent"),
        signature=opt("signature"),
        signature_input=opt("signature_input"),
        format=format_name(fmt_name, has),
        _raw_ts=pl.col("ts") if has("ts") else pl.lit(None, pl.String),
    )
    return out


def format_name(fmt_name: str, has: Callable[[str], bool]) -> pl.Expr:
    """combined vs common: one parser, told apart per line by the optional referer/agent tail."""
    if fmt_name in ("combined", "vhost_combined") and has("user_agent") and has("referer"):
        short = fmt_name.replace("combined", "common")
        return (
            pl.when(pl.col("user_agent").is_null() & pl.col("referer").is_null())
            .then(pl.lit(short))
            .otherwise(pl.lit(fmt_name))
        )
    return pl.lit(fmt_name)


def parse_regex(lines: pl.DataFrame, fmt: RegexFormat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the fast regex, then the tolerant one to the misses; returns (matched raw, misses)."""
    names = re.findall(r"\(\?P<([a-zA-Z_0-9]+)>", fmt.fast)
    # The streaming engine spreads the regex over every core.
    got = lines.lazy().with_columns(pl.col("line").str.extract_groups(fmt.fast).alias("_g")).collect(engine="streaming")
    # Every format's first group is required, so it is null exactly when the line did not match.
    first = names[0]
    ok = pl.col("_g").struct.field(first).is_not_null()
    matched = got.filter(ok).unnest("_g")
    missed = got.filter(~ok).drop("_g")
    if fmt.tolerant and missed.height:
        again = missed.with_columns(pl.col("line").str.extract_groups(fmt.tolerant).alias("_g"))
        ok2 = pl.col("_g").struct.field(first).is_not_null()
        matched = pl.concat([matched, again.filter(ok2).unnest("_g")], how="diagonal_relaxed")
        missed = again.filter(~ok2).drop("_g")
    return matched, missed
