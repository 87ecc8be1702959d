"""JSON lines (Caddy, Traefik, nginx `escape=json`, Envoy, or any JSON with a field mapping):
each event column is the first non-null of a list of JSON paths."""

from __future__ import annotations

import polars as pl

from trafficlens.ingest.formats.common import JsonFormat

# JSON paths per event column. Most are tried in order; the first non-null wins.
_NGINX_JSON_PATHS: dict[str, tuple[str, ...]] = {
    "ts": ("$.time_iso8601", "$.time_local", "$.msec", "$.timestamp", "$.time", "$.date", "$['@timestamp']"),
    "client_ip": ("$.remote_addr", "$.client_ip", "$.realip_remote_addr", "$.ip"),
    "remote_user": ("$.remote_user",),
    "request": ("$.request",),
    "method": ("$.request_method", "$.method"),
    "target": ("$.request_uri", "$.uri_full"),
    "path": ("$.uri", "$.path"),
    "query": ("$.args", "$.query_string"),
    "protocol": ("$.server_protocol", "$.protocol"),
    "status": ("$.status",),
    "bytes": ("$.body_bytes_sent", "$.bytes_sent", "$.size"),
    "referer": ("$.http_referer", "$.referer", "$.referrer"),
    "user_agent": ("$.http_user_agent", "$.user_agent", "$.agent"),
    "request_time": ("$.request_time",),
    "forwarded_for": ("$.http_x_forwarded_for", "$.x_forwarded_for"),
    "host": ("$.host", "$.http_host", "$.server_name", "$.vhost"),
    "server_port": ("$.server_port",),
    "tls_protocol": ("$.ssl_protocol",),
    "tls_cipher": ("$.ssl_cipher",),
    "tls_fingerprint": ("$.ssl_ja3", "$.ja3", "$.ja4", "$.http_ssl_ja3"),
    "signature_agent": ("$.http_signature_agent",),
    "signature": ("$.http_signature",),
    "signature_input": ("$.http_signature_input",),
}

CADDY = JsonFormat(
    "caddy",
    {
        "ts": ("$.ts",),
        "client_ip": ("$.request.client_ip", "$.request.remote_ip", "$.request.remote_addr"),
        "remote_user": ("$.user_id",),
        "method": ("$.request.method",),
        "target": ("$.request.uri",),
        "protocol": ("$.request.proto",),
        "host": ("$.request.host",),
        "status": ("$.status",),
        "bytes": ("$.size",),
        "request_time": ("$.duration",),
        "referer": ("$.request.headers.Referer[0]", "$.request.headers.referer[0]"),
        "user_agent": ("$.request.headers['User-Agent'][0]", "$.request.headers['user-agent'][0]"),
        "forwarded_for": ("$.request.headers['X-Forwarded-For'][0]", "$.request.headers['x-forwarded-for'][0]"),
        "signature_agent": ("$.request.headers['Signature-Agent'][0]",),
        "signature": ("$.request.headers.Signature[0]",),
        "signature_input": ("$.request.headers['Signature-Input'][0]",),
        "tls_protocol": ("$.request.tls.proto",),
        "tls_cipher": ("$.request.tls.cipher_suite",),
    },
    ts_kind="auto",
    duration_unit="s",
    marker='"request":{',
)

TRAEFIK = JsonFormat(
    "traefik",
    {
        "ts": ("$.StartUTC", "$.time", "$.StartLocal"),
        "client_ip": ("$.ClientHost", "$.ClientAddr"),
        "remote_user": ("$.ClientUsername",),
        "method": ("$.RequestMethod",),
        "target": ("$.RequestPath",),
        "protocol": ("$.RequestProtocol",),
        "host": ("$.RequestHost",),
        "server_port": ("$.RequestPort",),
        "status": ("$.DownstreamStatus", "$.OriginStatus"),
        "bytes": ("$.DownstreamContentSize", "$.OriginContentSize"),
        "request_time": ("$.Duration",),
        "referer": ("$['request_Referer']",),
        "user_agent": ("$['request_User-Agent']",),
        "forwarded_for": ("$['request_X-Forwarded-For']",),
        "tls_protocol": ("$.TLSVersion",),
        "tls_cipher": ("$.TLSCipher",),
    },
    ts_kind="auto",
    duration_unit="ns",
    marker='"RequestMethod"',
)

NGINX_JSON = JsonFormat("nginx_json", _NGINX_JSON_PATHS, ts_kind="auto", duration_unit="s")

# Envoy (and Istio) JSON access logs: keys are what the operator names its command operators;
# these are the names of Envoy's default format and Istio's, with the header-style variants.
ENVOY = JsonFormat(
    "envoy",
    {
        "ts": ("$.start_time", "$.timestamp"),
        "client_ip": (
            "$.downstream_remote_address",
            "$.downstream_direct_remote_address",
            "$['x-forwarded-for']",
            "$.x_forwarded_for",
        ),
        "method": ("$.method",),
        "target": ("$['x-envoy-original-path']", "$['x-envoy-origin-path']", "$.path"),
        "protocol": ("$.protocol",),
        "status": ("$.response_code",),
        "bytes": ("$.bytes_sent",),
        "request_time": ("$.duration",),
        "referer": ("$.referer", "$.referrer"),
        "user_agent": ("$['user-agent']", "$.user_agent"),
        "forwarded_for": ("$['x-forwarded-for']", "$.x_forwarded_for"),
        "host": ("$[':authority']", "$.authority"),
        # Envoy logs a header under the key the operator gives %REQ(...)%; these are the header names.
        "signature_agent": ("$['signature-agent']", "$.signature_agent"),
        "signature": ("$.signature",),
        "signature_input": ("$['signature-input']", "$.signature_input"),
    },
    ts_kind="auto",
    duration_unit="ms",
    marker='"response_code"',
)


def parse_json(lines: pl.DataFrame, fmt: JsonFormat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pick each column from its JSON paths; a line with no timestamp and no address is a miss."""
    is_obj = pl.col("line").str.strip_chars_start().str.starts_with("{")
    exprs = {
        col: pl.coalesce([pl.col("line").str.json_path_match(p) for p in paths]) for col, paths in fmt.paths.items()
    }
    got = lines.with_columns(**exprs)
    cols = set(exprs)
    key = [pl.col(c).is_not_null() for c in ("ts", "client_ip", "request", "target") if c in cols]
    ok = is_obj & pl.any_horizontal(key) if key else is_obj
    return got.filter(ok), got.filter(~ok).select("line", "line_no")
