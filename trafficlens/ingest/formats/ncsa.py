"""NCSA-style lines: combined and common, with a virtual host, Traefik's default line, HAProxy's
httplog and Zoraxy; and the fast path that reads most combined lines without a regex.

Each line format is a fast regex, then an escape-tolerant one for the few lines the fast one misses.
"""

from __future__ import annotations

import polars as pl

from trafficlens.ingest.formats.common import CLF_TS, NOSP, FrameT, RegexFormat, format_name, null_dash, quoted


def _combined(escaped: bool, vhost: str | None = None, tail: bool = True) -> str:
    head = ""
    if vhost == "port":
        head = r"(?P<host>[^ :]+):(?P<server_port>[0-9]+) "
    elif vhost == "plain":
        head = r"(?P<host>[^ ]+) "
    rx = (
        "^"
        + head
        + rf"(?P<client_ip>{NOSP}) (?P<ident>{NOSP}) (?P<remote_user>{NOSP}) \[(?P<ts>[^\]]+)\] "
        + quoted("request", escaped)
        + r" (?P<status>[0-9]{3}|-) (?P<bytes>[0-9]+|-)"
    )
    if vhost == "plain":
        # Gandi's hosting logs put "(%T s)" between the time and the request.
        rx = rx.replace(r"\] " + '"', r"\] (?:\((?P<request_time>[0-9]+) s\) )?" + '"', 1)
    if tail:
        rx += r"(?: " + quoted("referer", escaped) + " " + quoted("user_agent", escaped) + ")?"
        if not escaped:
            # The tail is optional, so a fast match must not stop short of a tail it could not
            # read (an escaped quote): the line must end, or go on with an unquoted field.
            rx += r'(?:$|\r|[ ][^"])'
    return rx


def _traefik_clf(escaped: bool) -> str:
    # Traefik's default access log: combined plus `<count> "<router>" "<server_url>" <duration>ms`.
    return (
        _combined(escaped, tail=False)
        + " "
        + quoted("referer", escaped)
        + " "
        + quoted("user_agent", escaped)
        + r" (?P<request_count>[0-9]+) "
        + quoted("router", escaped)
        + " "
        + quoted("server_url", escaped)
        + r" (?P<request_time>[0-9]+)ms"
    )


def _haproxy(escaped: bool) -> str:
    # HAProxy's "option httplog" line (its syslog prefix is an envelope, stripped before).
    return (
        r"^(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) \[(?P<ts>[^\]]+)\] (?P<frontend>[^ ]+) "
        r"(?P<backend>[^ ]+) (?P<timers>[-0-9/+]+) (?P<status>-?[0-9]+) \+?(?P<bytes>[0-9]+) "
        r'[^"]*?' + quoted("request", escaped)
    )


def _zoraxy() -> str:
    # Zoraxy's access log: `<date time> [<time.us>] [router:<name>] [origin:<host>] [client: <ip>]
    # [useragent: <ua>] <METHOD> <target> <status>`; the times are the server's local time (--tz).
    return (
        r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} \[(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+)\] "
        r"\[router:(?P<router>[^\]]*)\] \[origin:(?P<origin>[^\]]*)\] \[client: (?P<client_ip>[^\]]+)\] "
        r"\[useragent: (?P<user_agent>[^\]]*)\] (?P<method>[A-Z]+) (?P<target>[^ ]+) (?P<status>[0-9]{3})$"
    )


VHOST_COMBINED = RegexFormat("vhost_combined", _combined(False, "port"), _combined(True, "port"), has_host=True)
VHOST_COMBINED_NOPORT = RegexFormat(
    "vhost_combined", _combined(False, "plain"), _combined(True, "plain"), has_host=True
)
TRAEFIK_CLF = RegexFormat("traefik", _traefik_clf(False), _traefik_clf(True), time_unit="ms")
# combined's referer/user-agent tail is optional, so it reads common lines too; `common` is
# reported when no line has the tail.
COMBINED = RegexFormat("combined", _combined(False), _combined(True))
HAPROXY = RegexFormat("haproxy", _haproxy(False), _haproxy(True))
ZORAXY = RegexFormat("zoraxy", _zoraxy(), ts_kind="w3c")


def fast_combined(lines: pl.LazyFrame) -> pl.LazyFrame:
    """combined/common lines cut by quotes and spaces, several times faster than any regex.

    `_ok` is false for every line this cannot read with certainty (escapes, extra quotes, odd
    request lines, a malformed time field); those go through the regex parser instead. `_plain`
    marks the usual ok line, one that finish_plain() reads: its target is a path ("/...") and
    its time has an offset (`_ts`, parsed); the other ok lines go through finish().
    """
    line = pl.col("line")
    q = line.str.split('"')
    get = lambda i: pl.col("_q").list.get(i, null_on_oob=True)  # noqa: E731
    raw = lines.with_columns(_q=q).with_columns(
        _n=pl.col("_q").list.len(),
        _h=get(0).str.split_exact(" ", 5),  # splitn is several times slower here
        _m=get(2).str.splitn(" ", 4),
        _r=get(1).str.splitn(" ", 3),
        referer=get(3),
        _sep=get(4),
        user_agent=get(5),
    )
    h = lambda i: pl.col("_h").struct.field(f"field_{i}")  # noqa: E731
    m = lambda i: pl.col("_m").struct.field(f"field_{i}")  # noqa: E731
    r = lambda i: pl.col("_r").struct.field(f"field_{i}")  # noqa: E731
    status, size, method, target, proto = m(1), m(2), r(0), r(1), r(2)
    status_n, size_n = status.cast(pl.Int32, strict=False), size.cast(pl.Int64, strict=False)
    ok = (
        ~line.str.contains("\\", literal=True)
        & ((pl.col("_n") == 3) | ((pl.col("_n") == 7) & (pl.col("_sep") == " ")))
        & (h(0) != "")
        & h(3).str.starts_with("[")
        & h(4).str.ends_with("]")
        & (h(5) == "")
        & (m(0) == "")
        & ((m(3) == "") | ((pl.col("_n") == 3) & m(3).is_null()))
        & (((status.str.len_bytes() == 3) & status_n.is_not_null()) | (status == "-"))
        & (size_n.is_not_null() | (size == "-"))
        & method.str.contains(r"^[A-Z][A-Z0-9_-]{0,31}$")
        & (target != "")
        & (proto.is_null() | (proto.str.contains(r"^[A-Z]{2,10}/[0-9.]{1,4}$")))
    ).fill_null(False)
    # The time as parse_ts(kind="clf") reads it when it carries an offset, its first choice,
    # here straight from "[10/Oct/2025:13:55:36" and "-0700]".
    ts = (
        pl.concat_str([h(3), h(4)], separator=" ")
        .str.strptime(pl.Datetime("us"), f"[{CLF_TS}]", strict=False)
        .dt.convert_time_zone("UTC")
    )
    cut = raw.select(
        "line",
        "line_no",
        client_ip=h(0),
        remote_user=h(2),
        _h3=h(3),
        _h4=h(4),
        method=method,
        target=target,
        protocol=proto,
        status=status,
        bytes=size,
        referer=pl.when(pl.col("_n") == 7).then(pl.col("referer")),
        user_agent=pl.when(pl.col("_n") == 7).then(pl.col("user_agent")),
        _status=status_n,
        _bytes=size_n,
        _ok=ok,
        _ts=ts,
    )
    return cut.with_columns(_plain=pl.col("_ok") & pl.col("target").str.starts_with("/") & pl.col("_ts").is_not_null())


def fast_ts_text(df: FrameT) -> FrameT:
    """fast_combined's raw `ts` column ("10/Oct/2025:13:55:36 -0700"), for finish()."""
    return df.with_columns(ts=pl.col("_h3").str.slice(1) + " " + pl.col("_h4").str.strip_suffix("]"))


def finish_plain(df: FrameT, site: str | None, source: str) -> FrameT:
    """finish() of fast_combined's `_plain` lines, short: what finish() would do to them is known.

    No escapes, no host or port in the target, no request time; time, status and bytes already
    parsed.
    """
    target = pl.col("target").str.splitn("?", 2)
    none = pl.lit(None, pl.String)
    return df.select(
        ts=pl.col("_ts"),
        site=pl.lit(site or "default", pl.String),
        host=none,
        client_ip=null_dash(pl.col("client_ip").str.strip_chars("[]")),
        remote_user=null_dash(pl.col("remote_user")),
        method=pl.col("method"),
        path=target.struct.field("field_0"),
        query=target.struct.field("field_1"),
        protocol=pl.col("protocol"),
        status=pl.col("_status"),
        bytes=pl.col("_bytes"),
        referer=null_dash(pl.col("referer")),
        user_agent=null_dash(pl.col("user_agent")),
        request_time=pl.lit(None, pl.Float64),
        forwarded_for=none,
        source=pl.lit(source, pl.String),
        line_no=pl.col("line_no"),
        server_port=pl.lit(None, pl.Int32),
        tls_protocol=none,
        tls_cipher=none,
        tls_fingerprint=none,
        signature_agent=none,
        signature=none,
        signature_input=none,
        format=format_name("combined", lambda c: c in ("user_agent", "referer")),
        _raw_ts=none,  # the time was read
    )
