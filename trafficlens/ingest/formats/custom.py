"""Formats the user describes: an nginx `log_format` or Apache `LogFormat` string compiled to a
RegexFormat (--log-format), and a column-to-JSON-path mapping for JSON lines (--json-map)."""

from __future__ import annotations

import re

import polars as pl

from trafficlens.errors import FormatError
from trafficlens.ingest.formats.common import NOSP0, Q_ESC, Q_FAST, RegexFormat
from trafficlens.schema import EVENT_SCHEMA

# nginx variable -> the raw group finish() reads it as (None: matched, not kept).
NGINX_VARS = {
    "remote_addr": "client_ip",
    "realip_remote_addr": "client_ip",
    "binary_remote_addr": None,
    "remote_user": "remote_user",
    "time_local": "ts",
    "time_iso8601": "ts_iso",
    "msec": "ts_epoch",
    "request": "request",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_referer": "referer",
    "http_user_agent": "user_agent",
    "request_time": "request_time",
    "http_x_forwarded_for": "forwarded_for",
    "host": "host",
    "http_host": "host",
    "server_name": "host",
    "server_port": "server_port",
    "request_method": "method",
    "request_uri": "target",
    "uri": "path",
    "document_uri": "path",
    "args": "query",
    "query_string": "query",
    "server_protocol": "protocol",
    "ssl_protocol": "tls_protocol",
    "ssl_cipher": "tls_cipher",
    "http_signature_agent": "signature_agent",
    "http_signature": "signature",
    "http_signature_input": "signature_input",
    "http_ssl_ja3": "tls_fingerprint",
    "ssl_ja3": "tls_fingerprint",
    "ja3": "tls_fingerprint",
}
APACHE_DIRECTIVES = {
    "h": "client_ip",
    "a": "client_ip",
    "l": None,
    "u": "remote_user",
    "t": "ts",
    "r": "request",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "O": "bytes",
    "I": None,
    "S": None,
    "v": "host",
    "V": "host",
    "p": "server_port",
    "D": "request_time_us",
    "T": "request_time",
    "U": "path",
    "q": "query_q",
    "m": "method",
    "H": "protocol",
    "X": None,
    "k": None,
    "P": None,
    "L": None,
    "R": None,
    "f": None,
    "e": None,
    "n": None,
    "o": None,
    "A": None,
    "C": None,
    "i": None,
    "x": None,
}
APACHE_HEADERS = {
    "referer": "referer",
    "user-agent": "user_agent",
    "x-forwarded-for": "forwarded_for",
    "host": "host",
    "signature-agent": "signature_agent",
    "signature": "signature",
    "signature-input": "signature_input",
}
APACHE_VARS = {"ssl_protocol": "tls_protocol", "ssl_cipher": "tls_cipher", "ssl_ja3": "tls_fingerprint"}


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
                parts[esc].append(re.escape(value or "").replace(r"\ ", " "))
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
        "custom",
        "".join(parts[False]),
        "".join(parts[True]),
        ts_kind=ts_kind,
        time_unit=time_unit,
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
    "Y": "[0-9]{4}",
    "y": "[0-9]{2}",
    "m": "[0-9]{1,2}",
    "d": "[0-9]{1,2}",
    "e": " ?[0-9]{1,2}",
    "H": "[0-9]{1,2}",
    "I": "[0-9]{1,2}",
    "M": "[0-9]{2}",
    "S": "[0-9]{2}",
    "j": "[0-9]{3}",
    "b": "[A-Za-z]{3}",
    "h": "[A-Za-z]{3}",
    "B": "[A-Za-z]+",
    "a": "[A-Za-z]{3}",
    "A": "[A-Za-z]+",
    "p": "[AP]M",
    "z": "[+-][0-9]{2}:?[0-9]{2}|Z",
    "Z": "[A-Za-z]+",
    "T": "[0-9]{2}:[0-9]{2}:[0-9]{2}",
    "F": "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "D": "[0-9]{2}/[0-9]{2}/[0-9]{2}",
    "s": "[0-9]+",
    "%": "%",
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
        try:  # polars compiles the path only when it reads a line: try it on an empty object now
            pl.Series(["{}"], dtype=pl.String).str.json_path_match(path)
        except pl.exceptions.PolarsError:
            raise FormatError(f"--json-map {col}={path}: not a JSON path; write it as $.key or $.key.sub") from None
        out[col] = out.get(col, ()) + (path,)
    return out
