"""Which format a log is in, told from a sample of its first lines (or named by the user), and any
envelope (a syslog or container-runtime prefix) wrapping its lines."""

from __future__ import annotations

import re

import polars as pl

from trafficlens.errors import FormatError
from trafficlens.ingest.formats import (
    FORMAT_ALIASES,
    FORMAT_NAMES,
    JSON_FORMATS,
    REGEX_FORMATS,
    W3C_FORMATS,
    Format,
    JsonFormat,
)
from trafficlens.ingest.formats.custom import compile_log_format, parse_json_map
from trafficlens.ingest.formats.w3c import w3c_fields
from trafficlens.ingest.options import IngestOptions

# Prefixes that wrap an access-log line when it travels through syslog or a container runtime.
ENVELOPES = {
    "syslog": (
        r"^(?:<[0-9]{1,3}>[0-9]? ?)?(?:[A-Z][a-z]{2} +[0-9]{1,2} [0-9:]{8}|"
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?) [^ ]+ [^ :\[]+(?:\[[0-9]+\])?: "
    ),
    "cri": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr) [FP] ",
}


def resolve_format(sample: list[str], opts: IngestOptions) -> tuple[Format, str | None]:
    """The format (named, custom, or the one that fits most sample lines) and any envelope."""
    envelope = detect_envelope(sample)
    if envelope is not None:
        sample = strip_envelope(pl.DataFrame({"line": sample}, schema={"line": pl.String}), envelope)["line"].to_list()
    return _resolve_format(sample, opts), envelope


def _resolve_format(sample: list[str], opts: IngestOptions) -> Format:
    if opts.log_format:
        return compile_log_format(opts.log_format)
    if opts.format:
        name = FORMAT_ALIASES.get(opts.format.lower().replace("-", "_"))
        if name is None:
            raise FormatError(f"unknown --format {opts.format!r}; choose one of {', '.join(FORMAT_NAMES)}")
        if name == "traefik" and sum(x.lstrip().startswith("{") for x in sample) <= len(sample) / 2:
            name = "traefik_clf"  # Traefik writes JSON or, by default, a CLF-like line
        if name in W3C_FORMATS:
            return W3C_FORMATS[name]
        if name in JSON_FORMATS or name == "json":
            return _json_format(name, opts)
        return REGEX_FORMATS[name]
    return detect_format(sample, opts)


def _json_format(name: str, opts: IngestOptions) -> JsonFormat:
    base = JSON_FORMATS.get(name, JSON_FORMATS["nginx_json"])
    if not opts.json_map:
        return base
    paths = dict(base.paths)
    paths.update(parse_json_map(opts.json_map))
    return JsonFormat("json", paths, ts_kind="auto", duration_unit=base.duration_unit)


def detect_envelope(sample: list[str]) -> str | None:
    """A syslog or container-runtime prefix on a good share of the lines, if any."""
    frame = pl.DataFrame({"line": [s for s in sample if s.strip()]}, schema={"line": pl.String})
    for rx in ENVELOPES.values():
        if frame.height and frame.select(pl.col("line").str.contains(rx).mean()).item() >= 0.3:
            return rx
    return None


def strip_envelope(lines: pl.DataFrame, envelope: str | None) -> pl.DataFrame:
    return lines if envelope is None else lines.with_columns(pl.col("line").str.replace(envelope, ""))


def detect_format(sample: list[str], opts: IngestOptions | None = None) -> Format:
    """Tell a log's format from a sample of its lines; junk lines among them do not matter."""
    opts = opts or IngestOptions()
    lines = [s for s in sample if s.strip()]
    if not lines:
        raise FormatError("the log is empty")
    directives = [s for s in lines if s.startswith("#Fields:")]
    data = [s for s in lines if not s.startswith("#")]
    tabbed = sum(s.count("\t") >= 20 for s in data[:50]) > len(data[:50]) / 2
    if directives:
        fields = [f.lower() for f in w3c_fields(directives[0])]
        return W3C_FORMATS["cloudfront" if tabbed or "x-edge-location" in fields else "w3c"]
    if tabbed and all(re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\t", s) for s in data[:5]):
        return W3C_FORMATS["cloudfront"]  # CloudFront without its header lines
    if sum(s.lstrip().startswith("{") for s in data) > len(data) / 2:
        return _json_format(detect_json(data).name, opts)
    frame = pl.DataFrame({"line": data}, schema={"line": pl.String})
    best, best_hits = None, 0
    for fmt in REGEX_FORMATS.values():
        hits = frame.select(pl.col("line").str.contains(fmt.tolerant or fmt.fast).sum()).item()
        if hits > best_hits:
            best, best_hits = fmt, hits
    if best is None:
        raise FormatError(
            "no known format fits the first lines; name it with --format "
            f"({', '.join(FORMAT_NAMES)}) or describe it with --log-format"
        )
    return best


def detect_json(sample: list[str]) -> JsonFormat:
    """The JSON lines format whose marker key the sample holds; nginx's (the most general) if none."""
    text = "\n".join(sample[:50])
    for name in ("traefik", "caddy", "envoy"):
        m = JSON_FORMATS[name].marker
        if m and m in text.replace(" ", ""):
            return JSON_FORMATS[name]
    return JSON_FORMATS["nginx_json"]
