"""W3C extended logs (IIS and the like; CloudFront's is one too): `#Fields:` directives say the
columns, and may change mid-file."""

from __future__ import annotations

import polars as pl

from trafficlens.ingest.formats.common import W3CFormat, null_dash, percent_decode_ascii

W3C = W3CFormat("w3c", " ", "ms", True)

# W3C field name (lower-cased) -> raw group name understood by finish().
W3C_FIELDS = {
    "date": "date",
    "time": "time",
    "date-local": "date",
    "time-local": "time",
    "timetakenms": "request_time",
    "c-ip": "client_ip",
    "cs-username": "remote_user",
    "cs-method": "method",
    "cs-uri-stem": "path",
    "cs-uri-query": "query",
    "sc-status": "status",
    "sc-bytes": "bytes",
    "cs(user-agent)": "user_agent",
    "cs(referer)": "referer",
    "cs(referrer)": "referer",
    "cs-host": "host_cs",
    "cs(host)": "host_cs",
    "x-host-header": "host",
    "s-port": "server_port",
    "cs-version": "protocol",
    "cs-protocol-version": "protocol",
    "time-taken": "request_time",
    "x-forwarded-for": "forwarded_for",
    "cs(x-forwarded-for)": "forwarded_for",
    "ssl-protocol": "tls_protocol",
    "ssl-cipher": "tls_cipher",
    "cs-uri": "target",
}


def w3c_fields(directive: str) -> list[str]:
    """`#Fields: date time c-ip` -> ["date", "time", "c-ip"]."""
    return directive.split(":", 1)[1].split()


def parse_w3c(
    lines: pl.DataFrame, fmt: W3CFormat, fields: list[str] | None
) -> tuple[pl.DataFrame, pl.DataFrame, list[str] | None]:
    """Parse data lines by the `#Fields:` in force; returns (raw columns, misses, fields after)."""
    is_dir = pl.col("line").str.starts_with("#")
    is_fields = pl.col("line").str.starts_with("#Fields:")
    df = lines.with_columns(_block=is_fields.cum_sum())
    directives = df.filter(is_fields)["line"].to_list()
    first_spec = fields or (list(fmt.default_fields) if fmt.default_fields else None)
    specs: list[list[str] | None] = [first_spec] + [w3c_fields(d) for d in directives]
    data = df.filter(~is_dir)
    parsed: list[pl.DataFrame] = []
    misses: list[pl.DataFrame] = []
    # A handful of blocks per chunk at most (one per #Fields line): this loop is per directive.
    for block, spec in enumerate(specs):
        part = data.filter(pl.col("_block") == block).drop("_block")
        if part.height == 0:
            continue
        if spec is None:
            misses.append(part.with_columns(_why=pl.lit("no #Fields directive before this line")))
            continue
        # Values are separated by spaces or tabs; IIS quotes values that hold spaces (cookies,
        # custom fields), Incapsula quotes all of them.
        split = (
            pl.col("line")
            .str.extract_all(r'"[^"]*"|[^ \t]+')
            .list.eval(pl.element().str.strip_prefix('"').str.strip_suffix('"'))
        )
        n = len(spec)
        # Declared fields must all be there; the default CloudFront list may gain fields over time.
        good = split.list.len() == n if spec is not first_spec or fields else split.list.len() >= n
        misses.append(
            part.filter(~good).with_columns(_why=pl.lit(f"W3C line does not have the {n} fields #Fields names"))
        )
        part = part.filter(good)
        cols = {}
        for i, name in enumerate(spec):
            group = W3C_FIELDS.get(name.lower())
            if group and group not in cols:
                cols[group] = split.list.get(i)
        if "date" in cols and "time" in cols:
            cols["ts"] = cols.pop("date") + " " + cols.pop("time")
        out = part.select("line", "line_no", **cols)
        if "user_agent" in out.columns:
            ua = pl.col("user_agent")
            if fmt.plus_is_space:
                ua = ua.str.replace_all("+", " ", literal=True)
            # CloudFront and streaming servers URL-encode user agents, some twice (%2520).
            ua = percent_decode_ascii(percent_decode_ascii(ua))
            out = out.with_columns(user_agent=ua)
        if "referer" in out.columns and not fmt.plus_is_space:
            out = out.with_columns(referer=percent_decode_ascii(pl.col("referer")))
        if "host" in out.columns or "host_cs" in out.columns:
            hosts = [pl.col(c) for c in ("host", "host_cs") if c in out.columns]
            out = out.with_columns(host=pl.coalesce([null_dash(h) for h in hosts])).drop(
                [c for c in ("host_cs",) if c in out.columns]
            )
        parsed.append(out)
    last = specs[-1]
    raw = pl.concat(parsed, how="diagonal_relaxed") if parsed else lines.select("line", "line_no").clear()
    miss = (
        pl.concat(misses, how="diagonal_relaxed").select("line", "line_no", "_why")
        if misses
        else pl.DataFrame(schema={"line": pl.String, "line_no": pl.Int64, "_why": pl.String})
    )
    return raw, miss, last
