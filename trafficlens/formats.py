"""Log formats: how each kind of access log line becomes the columns of EVENT_SCHEMA.

Every parser is a polars expression pipeline over a frame of `line, line_no`; a line that fits no
format becomes a reject with its reason. Three families:

- regex formats (combined, common, vhost_*, ALB, ELB, S3, and custom nginx/Apache format strings):
  a fast regex first, then an escape-tolerant one for the few lines the fast one misses;
- W3C extended (IIS, CloudFront): `#Fields:` directives say the columns, and may change mid-file;
- JSON lines (Caddy, Traefik, nginx `escape=json`, or any JSON with a field mapping).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import polars as pl

from trafficlens.errors import FormatError
from trafficlens.schema import EVENT_SCHEMA, UTC_TS

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

# --- building blocks --------------------------------------------------------------------------

Q_FAST = r'[^"\\]*'  # a quoted field without escapes: the common case, and fast
Q_ESC = r'(?:[^"\\]|\\.)*'  # Apache writes \" inside quoted fields
NOSP = r"[^ ]+"
NOSP0 = r"[^ ]*"
CLF_TS = "%d/%b/%Y:%H:%M:%S %z"  # [10/Oct/2025:13:55:36 -0700], without its brackets

REQUEST_RE = (
    r"^(?P<method>[A-Z][A-Z0-9_-]{0,31}) (?P<target>.+?)(?: (?P<protocol>[A-Z]{2,10}/[0-9.]{1,4}))?$"
)
ABSOLUTE_RE = r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$"


def _q(name: str, escaped: bool) -> str:
    return f'"(?P<{name}>{Q_ESC if escaped else Q_FAST})"'


@dataclass(frozen=True)
class RegexFormat:
    """A format parsed by one regex with named groups (see RAW_FIELDS for group meanings)."""

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
        + _q("request", escaped)
        + r" (?P<status>[0-9]{3}|-) (?P<bytes>[0-9]+|-)"
    )
    if vhost == "plain":
        # Gandi's hosting logs put "(%T s)" between the time and the request.
        rx = rx.replace(r"\] " + '"', r"\] (?:\((?P<request_time>[0-9]+) s\) )?" + '"', 1)
    if tail:
        rx += r"(?: " + _q("referer", escaped) + " " + _q("user_agent", escaped) + ")?"
        if not escaped:
            # The tail is optional, so a fast match must not stop short of a tail it could not
            # read (an escaped quote): the line must end, or go on with an unquoted field.
            rx += r'(?:$|\r|[ ][^"])'
    return rx


def _alb(escaped: bool) -> str:
    q = lambda n: _q(n, escaped)  # noqa: E731
    return (
        r"^(?P<type>[a-z0-9]+) (?P<ts>[0-9T:.\-]+Z) (?P<elb>[^ ]+) "
        r"(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) (?P<backend>[^ ]+) "
        r"(?P<rt1>[-0-9.]+) (?P<rt2>[-0-9.]+) (?P<rt3>[-0-9.]+) "
        r"(?P<status>[0-9]{3}|-) (?P<target_status>[0-9]+|-) (?P<received_bytes>[0-9]+|-) (?P<bytes>[0-9]+|-) "
        + q("request") + " " + q("user_agent")
        + r" (?P<tls_cipher>[^ ]+) (?P<tls_protocol>[^ ]+)"
    )


def _elb(escaped: bool) -> str:
    q = lambda n: _q(n, escaped)  # noqa: E731
    return (
        r"^(?P<ts>[0-9]{4}-[0-9T:.\-]+Z) (?P<elb>[^ ]+) "
        r"(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) (?P<backend>[^ ]+) "
        r"(?P<rt1>[-0-9.]+) (?P<rt2>[-0-9.]+) (?P<rt3>[-0-9.]+) "
        r"(?P<status>[0-9]{3}|-) (?P<backend_status>[0-9]+|-) (?P<received_bytes>[0-9]+|-) (?P<bytes>[0-9]+|-) "
        + q("request")
        + r"(?: " + q("user_agent") + r" (?P<tls_cipher>[^ ]+) (?P<tls_protocol>[^ ]+))?"
    )


def _s3(escaped: bool) -> str:
    q = lambda n: _q(n, escaped)  # noqa: E731
    return (
        r"^(?P<bucket_owner>[^ ]+) (?P<bucket>[^ ]+) \[(?P<ts>[^\]]+)\] (?P<client_ip>[^ ]+) "
        r"(?P<remote_user>[^ ]+) (?P<request_id>[^ ]+) (?P<operation>[^ ]+) (?P<key>[^ ]+) "
        + q("request")
        + r" (?P<status>[0-9]{3}|-) (?P<error_code>[^ ]+) (?P<bytes>[0-9]+|-) (?P<object_size>[0-9]+|-) "
        r"(?P<request_time>[0-9]+|-) (?P<turnaround>[0-9]+|-) "
        + q("referer") + " " + q("user_agent")
        + r"(?: (?P<version_id>[^ ]+) (?P<host_id>[^ ]+) (?P<sig_version>[^ ]+) (?P<tls_cipher>[^ ]+) "
        r"(?P<auth_type>[^ ]+) (?P<host>[^ ]+) (?P<tls_protocol>[^ ]+))?"
    )


def _traefik_clf(escaped: bool) -> str:
    # Traefik's default access log: combined plus `<count> "<router>" "<server_url>" <duration>ms`.
    return (
        _combined(escaped, tail=False)
        + " " + _q("referer", escaped) + " " + _q("user_agent", escaped)
        + r' (?P<request_count>[0-9]+) ' + _q("router", escaped) + " " + _q("server_url", escaped)
        + r" (?P<request_time>[0-9]+)ms"
    )


def _haproxy(escaped: bool) -> str:
    # HAProxy's "option httplog" line (its syslog prefix is an envelope, stripped before).
    return (
        r"^(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) \[(?P<ts>[^\]]+)\] (?P<frontend>[^ ]+) "
        r"(?P<backend>[^ ]+) (?P<timers>[-0-9/+]+) (?P<status>-?[0-9]+) \+?(?P<bytes>[0-9]+) "
        r'[^"]*?' + _q("request", escaped)
    )


def _zoraxy() -> str:
    # Zoraxy's access log: `<date time> [<time.us>] [router:<name>] [origin:<host>] [client: <ip>]
    # [useragent: <ua>] <METHOD> <target> <status>`; the times are the server's local time (--tz).
    return (
        r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} \[(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+)\] "
        r"\[router:(?P<router>[^\]]*)\] \[origin:(?P<origin>[^\]]*)\] \[client: (?P<client_ip>[^\]]+)\] "
        r"\[useragent: (?P<user_agent>[^\]]*)\] (?P<method>[A-Z]+) (?P<target>[^ ]+) (?P<status>[0-9]{3})$"
    )


REGEX_FORMATS: dict[str, RegexFormat] = {
    "vhost_combined": RegexFormat(
        "vhost_combined", _combined(False, "port"), _combined(True, "port"), has_host=True
    ),
    "vhost_combined_noport": RegexFormat(
        "vhost_combined", _combined(False, "plain"), _combined(True, "plain"), has_host=True
    ),
    # Before combined, which would read these lines too, losing the duration.
    "traefik_clf": RegexFormat("traefik", _traefik_clf(False), _traefik_clf(True), time_unit="ms"),
    # combined's referer/user-agent tail is optional, so it reads common lines too; `common` is
    # reported when no line has the tail.
    "combined": RegexFormat("combined", _combined(False), _combined(True)),
    "alb": RegexFormat("alb", _alb(False), _alb(True), ts_kind="iso"),
    "elb": RegexFormat("elb", _elb(False), _elb(True), ts_kind="iso"),
    "s3": RegexFormat("s3", _s3(False), _s3(True), time_unit="ms"),
    "haproxy": RegexFormat("haproxy", _haproxy(False), _haproxy(True)),
    "zoraxy": RegexFormat("zoraxy", _zoraxy(), ts_kind="w3c"),
}
# Names a user may give with --format, mapped to the parser that reads them.
FORMAT_ALIASES = {
    "combined": "combined", "common": "combined", "clf": "combined", "ncsa": "combined",
    "vhost_combined": "vhost_combined", "vhost_common": "vhost_combined",
    "alb": "alb", "elb": "elb", "s3": "s3", "haproxy": "haproxy",
    "w3c": "w3c", "iis": "w3c", "cloudfront": "cloudfront",
    "caddy": "caddy", "traefik": "traefik", "traefik_clf": "traefik_clf", "traefik_json": "traefik", "nginx_json": "nginx_json", "envoy": "envoy", "zoraxy": "zoraxy", "json": "json",
}

# CloudFront's standard log fields, in order; copies of its logs often lose the header lines.
CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header "
    "cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start "
    "sc-range-end"
).split()

W3C_FORMATS = {
    "w3c": W3CFormat("w3c", " ", "ms", True),
    "cloudfront": W3CFormat("cloudfront", "\t", "s", False, tuple(CLOUDFRONT_FIELDS)),
}

# Prefixes that wrap an access-log line when it travels through syslog or a container runtime.
ENVELOPES = {
    "syslog": (
        r"^(?:<[0-9]{1,3}>[0-9]? ?)?(?:[A-Z][a-z]{2} +[0-9]{1,2} [0-9:]{8}|"
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?) [^ ]+ [^ :\[]+(?:\[[0-9]+\])?: "
    ),
    "cri": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr) [FP] ",
}

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
}

JSON_FORMATS: dict[str, JsonFormat] = {
    "caddy": JsonFormat(
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
            "forwarded_for": (
                "$.request.headers['X-Forwarded-For'][0]", "$.request.headers['x-forwarded-for'][0]",
            ),
            "signature_agent": ("$.request.headers['Signature-Agent'][0]",),
            "tls_protocol": ("$.request.tls.proto",),
            "tls_cipher": ("$.request.tls.cipher_suite",),
        },
        ts_kind="auto",
        duration_unit="s",
        marker='"request":{',
    ),
    "traefik": JsonFormat(
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
    ),
    "nginx_json": JsonFormat("nginx_json", _NGINX_JSON_PATHS, ts_kind="auto", duration_unit="s"),
    # Envoy (and Istio) JSON access logs: keys are what the operator names its command operators;
    # these are the names of Envoy's default format and Istio's, with the header-style variants.
    "envoy": JsonFormat(
        "envoy",
        {
            "ts": ("$.start_time", "$.timestamp"),
            "client_ip": ("$.downstream_remote_address", "$.downstream_direct_remote_address",
                          "$['x-forwarded-for']", "$.x_forwarded_for"),
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
        },
        ts_kind="auto",
        duration_unit="ms",
        marker='"response_code"',
    ),
}

ALL_FORMAT_NAMES = sorted(set(FORMAT_ALIASES))


# --- custom format strings (nginx log_format, Apache LogFormat) --------------------------------

# nginx variable -> (raw group name); the group's meaning is given by RAW_FIELDS below.
NGINX_VARS = {
    "remote_addr": "client_ip", "realip_remote_addr": "client_ip", "binary_remote_addr": None,
    "remote_user": "remote_user", "time_local": "ts", "time_iso8601": "ts_iso", "msec": "ts_epoch",
    "request": "request", "status": "status", "body_bytes_sent": "bytes", "bytes_sent": "bytes",
    "http_referer": "referer", "http_user_agent": "user_agent", "request_time": "request_time",
    "http_x_forwarded_for": "forwarded_for", "host": "host", "http_host": "host",
    "server_name": "host", "server_port": "server_port", "request_method": "method",
    "request_uri": "target", "uri": "path", "document_uri": "path", "args": "query",
    "query_string": "query", "server_protocol": "protocol", "ssl_protocol": "tls_protocol",
    "ssl_cipher": "tls_cipher", "http_signature_agent": "signature_agent",
    "http_ssl_ja3": "tls_fingerprint", "ssl_ja3": "tls_fingerprint", "ja3": "tls_fingerprint",
}
APACHE_DIRECTIVES = {
    "h": "client_ip", "a": "client_ip", "l": None, "u": "remote_user", "t": "ts", "r": "request",
    "s": "status", "b": "bytes", "B": "bytes", "O": "bytes", "I": None, "S": None, "v": "host",
    "V": "host", "p": "server_port", "D": "request_time_us", "T": "request_time", "U": "path",
    "q": "query_q", "m": "method", "H": "protocol", "X": None, "k": None, "P": None, "L": None,
    "R": None, "f": None, "e": None, "n": None, "o": None, "A": None, "C": None, "i": None, "x": None,
}
APACHE_HEADERS = {
    "referer": "referer", "user-agent": "user_agent", "x-forwarded-for": "forwarded_for",
    "host": "host", "signature-agent": "signature_agent",
}
APACHE_VARS = {
    "ssl_protocol": "tls_protocol", "ssl_cipher": "tls_cipher", "ssl_ja3": "tls_fingerprint",
}


def _field_regex(next_char: str | None, escaped: bool) -> str:
    """A value ends where the format's next literal begins: GoAccess and agent-census do the same."""
    if next_char == '"':
        return Q_ESC if escaped else Q_FAST
    if next_char == "]":
        return r"[^\]]*"
    if next_char is None:
        return r"[^\r\n]*"
    if next_char == " ":
        return NOSP0
    return rf"[^{re.escape(next_char)}]*?"


def compile_log_format(spec: str) -> RegexFormat:
    """Turn an nginx `log_format` or Apache `LogFormat` string into a RegexFormat.

    Example: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent`.
    """
    spec = spec.strip().strip("'")
    if "$" in spec and not re.search(r"%[<>]?[a-zA-Z{]", spec):
        tokens = _tokenize_nginx(spec)
    elif re.search(r"%[<>!,0-9]*(?:\{[^}]*\})?[a-zA-Z]", spec):
        tokens = _tokenize_apache(spec)
    else:
        raise FormatError(
            "--log-format needs nginx $variables or Apache %directives, e.g. "
            "'$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent'"
        )
    ts_kind = "clf"
    time_unit = "s"
    used: dict[str, int] = {}
    parts: dict[bool, list[str]] = {False: ["^"], True: ["^"]}
    for i, (kind, value) in enumerate(tokens):
        if kind == "lit":
            for esc in (False, True):
                parts[esc].append(re.escape(value).replace(r"\ ", " "))
            continue
        nxt = next((v[0] for k, v in tokens[i + 1 :] if k == "lit" and v), None)
        group = value
        if group == "ts_iso":
            group, ts_kind = "ts", "iso"
        elif group == "ts_epoch":
            group, ts_kind = "ts", "epoch"
        elif group in ("ts_epoch_ms", "ts_epoch_us"):
            group, ts_kind = "ts", group.removeprefix("ts_")
        elif group == "request_time_us":
            group, time_unit = "request_time", "us"
        elif group and group.startswith("ts_strftime:"):
            strf = group.removeprefix("ts_strftime:")
            group, ts_kind = "ts", "strftime:" + strf
            if "ts" not in used:
                used["ts"] = 1
                for esc in (False, True):
                    parts[esc].append(f"(?P<ts>{strftime_regex(strf)})")
                continue
        elif group == "ts_frac":
            group = None
        if group is None or group in used:
            # Unknown, ignored or repeated fields still have to be consumed.
            name = None
        else:
            name = group
            used[group] = 1
        for esc in (False, True):
            body = _field_regex(nxt, esc)
            parts[esc].append(f"(?P<{name}>{body})" if name else f"(?:{body})")
    if "client_ip" not in used and "ts" not in used:
        raise FormatError("--log-format names neither the client address nor the time; nothing to analyse")
    return RegexFormat(
        "custom", "".join(parts[False]), "".join(parts[True]), ts_kind=ts_kind, time_unit=time_unit,
        has_host="host" in used,
    )


def _tokenize_nginx(spec: str) -> list[tuple[str, str | None]]:
    tokens: list[tuple[str, str | None]] = []
    pos = 0
    for m in re.finditer(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?", spec):
        if m.start() > pos:
            tokens.append(("lit", spec[pos : m.start()]))
        tokens.append(("var", NGINX_VARS.get(m.group(1).lower())))
        pos = m.end()
    if pos < len(spec):
        tokens.append(("lit", spec[pos:]))
    return tokens


# strftime directives -> the regex of what they print (C locale), for Apache's %{format}t.
_STRFTIME_RX = {
    "Y": "[0-9]{4}", "y": "[0-9]{2}", "m": "[0-9]{1,2}", "d": "[0-9]{1,2}", "e": " ?[0-9]{1,2}",
    "H": "[0-9]{1,2}", "I": "[0-9]{1,2}", "M": "[0-9]{2}", "S": "[0-9]{2}", "j": "[0-9]{3}",
    "b": "[A-Za-z]{3}", "h": "[A-Za-z]{3}", "B": "[A-Za-z]+", "a": "[A-Za-z]{3}", "A": "[A-Za-z]+",
    "p": "[AP]M", "z": "[+-][0-9]{2}:?[0-9]{2}|Z", "Z": "[A-Za-z]+", "T": "[0-9]{2}:[0-9]{2}:[0-9]{2}",
    "F": "[0-9]{4}-[0-9]{2}-[0-9]{2}", "D": "[0-9]{2}/[0-9]{2}/[0-9]{2}", "s": "[0-9]+", "%": "%",
}


def _apache_time(arg: str) -> str:
    """`%{...}t`'s argument -> a raw group: ts_epoch*, or ts_strftime:<format>."""
    for prefix in ("begin:", "end:"):
        arg = arg.removeprefix(prefix)
    if arg in ("sec", "msec", "usec"):
        return {"sec": "ts_epoch", "msec": "ts_epoch_ms", "usec": "ts_epoch_us"}[arg]
    if arg in ("msec_frac", "usec_frac"):
        return "ts_frac"
    bad = [c for c in re.findall(r"%(.)", arg) if c not in _STRFTIME_RX]
    if bad:
        raise FormatError(f"--log-format: %{bad[0]} in the time format %{{{arg}}}t is not supported")
    return "ts_strftime:" + arg


def strftime_regex(fmt: str) -> str:
    """The regex matching what strftime prints for `fmt`."""
    out = []
    for part in re.split(r"(%.)", fmt):
        if part.startswith("%") and len(part) == 2:
            out.append(f"(?:{_STRFTIME_RX[part[1]]})")
        elif part:
            out.append(re.escape(part).replace(r"\ ", " "))
    return "".join(out)


def _tokenize_apache(spec: str) -> list[tuple[str, str | None]]:
    spec = spec.replace('\\"', '"')
    tokens: list[tuple[str, str | None]] = []
    pos = 0
    for m in re.finditer(r"%(?:[<>!,0-9]*)(?:\{([^}]*)\})?([a-zA-Z%])", spec):
        if m.start() > pos:
            tokens.append(("lit", spec[pos : m.start()]))
        arg, d = m.group(1), m.group(2)
        if d == "%":
            tokens.append(("lit", "%"))
        elif d == "i":
            tokens.append(("var", APACHE_HEADERS.get((arg or "").lower())))
        elif d == "x":
            tokens.append(("var", APACHE_VARS.get((arg or "").lower())))
        elif d == "t" and arg:
            tokens.append(("var", _apache_time(arg)))
        elif d == "T" and arg in ("ms", "us", "s"):
            tokens.append(("var", {"ms": "request_time_ms", "us": "request_time_us", "s": "request_time"}[arg]))
        elif d in APACHE_DIRECTIVES:
            tokens.append(("var", APACHE_DIRECTIVES[d]))
        else:
            raise FormatError(f"--log-format: unknown Apache directive %{d}")
        pos = m.end()
    if pos < len(spec):
        tokens.append(("lit", spec[pos:]))
    # %t prints its own brackets: the value regex sits inside them.
    out: list[tuple[str, str | None]] = []
    for kind, value in tokens:
        if kind == "var" and value == "ts":
            out += [("lit", "["), ("var", "ts"), ("lit", "]")]
        elif kind == "var" and value == "request_time_ms":
            out.append(("var", "request_time_ms"))
        else:
            out.append((kind, value))
    merged: list[tuple[str, str | None]] = []
    for kind, value in out:
        if kind == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", (merged[-1][1] or "") + (value or ""))
        else:
            merged.append((kind, value))
    return merged


def parse_json_map(spec: str) -> dict[str, tuple[str, ...]]:
    """`user_agent=$.ua,ts=$.time` -> {"user_agent": ("$.ua",), "ts": ("$.time",)}."""
    out: dict[str, tuple[str, ...]] = {}
    allowed = set(EVENT_SCHEMA) | {"request", "target"}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if "=" not in item:
            raise FormatError(f"--json-map item {item!r} must be column=$.json.path")
        col, path = (s.strip() for s in item.split("=", 1))
        if col not in allowed:
            raise FormatError(f"--json-map: unknown column {col!r}; use one of {', '.join(sorted(allowed))}")
        if not path.startswith("$"):
            path = "$." + path
        out[col] = out.get(col, ()) + (path,)
    return out


# --- shared expressions -----------------------------------------------------------------------


def _null_dash(e: pl.Expr) -> pl.Expr:
    return pl.when(e.is_in(["-", ""])).then(None).otherwise(e)


def _unescape(e: pl.Expr) -> pl.Expr:
    # Apache writes \" and \\, nginx writes \x22 and \x5C.
    return (
        e.str.replace_all(r'\"', '"', literal=True)
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
        return e.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False).dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC")
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
        _ahost=_null_dash(authority.str.extract(r"^(?:[^@]*@)?(\[[^\]]*\]|[^:]*)", 1).str.strip_chars("[]")),
        _aport=authority.str.extract(r":([0-9]+)$", 1).cast(pl.Int32, strict=False),
        _rel=pl.when(authority.is_null()).then(pl.col("target")).when(rest == "").then(pl.lit("/")).otherwise(rest),
    )
    parts = pl.col("_rel").str.splitn("?", 2)
    # A malformed request line stays whole in `path`, '?' and all.
    return df.with_columns(
        path=pl.when(pl.col("_malformed")).then(pl.col("_rel")).otherwise(parts.struct.field("field_0")),
        query=pl.when(pl.col("_malformed")).then(None).otherwise(parts.struct.field("field_1")),
    ).drop("_a", "_rel", "_malformed")


# Raw group name -> how it becomes an event column. Other groups are dropped.
def finish(df: FrameT, fmt_name: str, ts_kind: str, tz: str | None, time_unit: str,
           site: str | None, source: str, unescape: bool = True) -> FrameT:
    """Raw string columns from any parser -> EVENT_SCHEMA columns (plus `_raw_ts`).

    Works on a DataFrame or a LazyFrame. `unescape=False` when the parser let no line with a
    backslash through (the fast path), which saves a pass per column.
    """
    cols = set(df.collect_schema().names())

    def has(c: str) -> bool:
        return c in cols

    escaped = [c for c in ("referer", "user_agent", "request", "remote_user", "forwarded_for", "path", "query") if has(c)]
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
            q = pl.col("query_q").str.strip_prefix("?") if has("query_q") else (
                pl.col("query") if has("query") else pl.lit(None, pl.String)
            )
            target = pl.when(q.is_not_null() & ~q.is_in(["", "-"])).then(pl.col("path") + "?" + q).otherwise(
                pl.col("path")
            )
        if has("target"):
            target = pl.coalesce(_null_dash(pl.col("target")), target) if target is not None else _null_dash(
                pl.col("target")
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
    if has("rt1"):
        parts = [pl.col(c).cast(pl.Float64, strict=False) for c in ("rt1", "rt2", "rt3")]
        rt = pl.when(pl.all_horizontal([p >= 0 for p in parts])).then(pl.sum_horizontal(parts))
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
    host = pl.coalesce(_null_dash(host), pl.col("_ahost"))
    port = pl.col("server_port").cast(pl.Int32, strict=False) if has("server_port") else pl.lit(None, pl.Int32)
    port = pl.coalesce(port, pl.col("_aport"))
    ip = pl.lit(None, pl.String)
    if has("client_ip"):
        # Proxies log the peer as address:port (Envoy's downstream_remote_address): 192.0.2.1:443,
        # [2001:db8::1]:443. A bare IPv6 address has colons too, so only those two forms lose a port.
        raw_ip = pl.col("client_ip")
        ip = (
            pl.when(raw_ip.str.contains(r"^[0-9.]+:[0-9]+$")).then(raw_ip.str.replace(r":[0-9]+$", ""))
            .when(raw_ip.str.starts_with("[")).then(raw_ip.str.extract(r"^\[([^\]]*)\]", 1))
            .otherwise(raw_ip)
        )

    def opt(c: str) -> pl.Expr:
        return _null_dash(pl.col(c)) if has(c) else pl.lit(None, pl.String)

    out = df.select(
        ts=parse_ts(pl.col("ts"), ts_kind, tz) if has("ts") else pl.lit(None, UTC_TS),
        site=pl.lit(site) if site else pl.coalesce(host, pl.lit("default")),
        host=host,
        client_ip=_null_dash(ip),
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
        format=_format_name(fmt_name, has),
        _raw_ts=pl.col("ts") if has("ts") else pl.lit(None, pl.String),
    )
    return out


def _format_name(fmt_name: str, has: Callable[[str], bool]) -> pl.Expr:
    """combined vs common: one parser, told apart per line by the optional referer/agent tail."""
    if fmt_name in ("combined", "vhost_combined") and has("user_agent") and has("referer"):
        short = fmt_name.replace("combined", "common")
        return pl.when(pl.col("user_agent").is_null() & pl.col("referer").is_null()).then(
            pl.lit(short)
        ).otherwise(pl.lit(fmt_name))
    return pl.lit(fmt_name)


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
        & (h(0) != "") & h(3).str.starts_with("[") & h(4).str.ends_with("]") & (h(5) == "")
        & (m(0) == "") & ((m(3) == "") | ((pl.col("_n") == 3) & m(3).is_null()))
        & (((status.str.len_bytes() == 3) & status_n.is_not_null()) | (status == "-"))
        & (size_n.is_not_null() | (size == "-"))
        & method.str.contains(r"^[A-Z][A-Z0-9_-]{0,31}$") & (target != "")
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
        "line", "line_no",
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
    return cut.with_columns(
        _plain=pl.col("_ok") & pl.col("target").str.starts_with("/") & pl.col("_ts").is_not_null()
    )


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
        client_ip=_null_dash(pl.col("client_ip").str.strip_chars("[]")),
        remote_user=_null_dash(pl.col("remote_user")),
        method=pl.col("method"),
        path=target.struct.field("field_0"),
        query=target.struct.field("field_1"),
        protocol=pl.col("protocol"),
        status=pl.col("_status"),
        bytes=pl.col("_bytes"),
        referer=_null_dash(pl.col("referer")),
        user_agent=_null_dash(pl.col("user_agent")),
        request_time=pl.lit(None, pl.Float64),
        forwarded_for=none,
        source=pl.lit(source, pl.String),
        line_no=pl.col("line_no"),
        server_port=pl.lit(None, pl.Int32),
        tls_protocol=none,
        tls_cipher=none,
        tls_fingerprint=none,
        signature_agent=none,
        format=_format_name("combined", lambda c: c in ("user_agent", "referer")),
        _raw_ts=none,  # the time was read
    )


def parse_regex(lines: pl.DataFrame, fmt: RegexFormat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the fast regex, then the tolerant one to the misses; returns (matched raw, misses)."""
    names = re.findall(r"\(\?P<([a-zA-Z_0-9]+)>", fmt.fast)
    # The streaming engine spreads the regex over every core.
    got = lines.lazy().with_columns(pl.col("line").str.extract_groups(fmt.fast).alias("_g")).collect(
        engine="streaming"
    )
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


def parse_json(lines: pl.DataFrame, fmt: JsonFormat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pick each column from its JSON paths; a line with no timestamp and no address is a miss."""
    is_obj = pl.col("line").str.strip_chars_start().str.starts_with("{")
    exprs = {
        col: pl.coalesce([pl.col("line").str.json_path_match(p) for p in paths])
        for col, paths in fmt.paths.items()
    }
    got = lines.with_columns(**exprs)
    cols = set(exprs)
    key = [pl.col(c).is_not_null() for c in ("ts", "client_ip", "request", "target") if c in cols]
    ok = is_obj & pl.any_horizontal(key) if key else is_obj
    return got.filter(ok), got.filter(~ok).select("line", "line_no")


def detect_json(sample: list[str]) -> JsonFormat:
    text = "\n".join(sample[:50])
    for name in ("traefik", "caddy", "envoy"):
        m = JSON_FORMATS[name].marker
        if m and m in text.replace(" ", ""):
            return JSON_FORMATS[name]
    return JSON_FORMATS["nginx_json"]


# --- W3C extended ----------------------------------------------------------------------------

# W3C field name (lower-cased) -> raw group name understood by finish().
W3C_FIELDS = {
    "date": "date", "time": "time", "date-local": "date", "time-local": "time",
    "timetakenms": "request_time", "c-ip": "client_ip", "cs-username": "remote_user",
    "cs-method": "method", "cs-uri-stem": "path", "cs-uri-query": "query", "sc-status": "status",
    "sc-bytes": "bytes", "cs(user-agent)": "user_agent", "cs(referer)": "referer",
    "cs(referrer)": "referer", "cs-host": "host_cs", "cs(host)": "host_cs", "x-host-header": "host",
    "s-port": "server_port", "cs-version": "protocol", "cs-protocol-version": "protocol",
    "time-taken": "request_time", "x-forwarded-for": "forwarded_for",
    "cs(x-forwarded-for)": "forwarded_for", "ssl-protocol": "tls_protocol",
    "ssl-cipher": "tls_cipher", "cs-uri": "target",
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
        split = pl.col("line").str.extract_all(r'"[^"]*"|[^ \t]+').list.eval(
            pl.element().str.strip_prefix('"').str.strip_suffix('"')
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
            raw = W3C_FIELDS.get(name.lower())
            if raw and raw not in cols:
                cols[raw] = split.list.get(i)
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
            out = out.with_columns(host=pl.coalesce([_null_dash(h) for h in hosts])).drop(
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
