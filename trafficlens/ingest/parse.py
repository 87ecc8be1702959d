"""A chunk of lines -> events, rejects and skipped lines, read by its format's family; lines the
file's format misses try the other line formats before they are rejected. Every line of a chunk
ends up in exactly one of the three."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from trafficlens.ingest.detect import strip_envelope
from trafficlens.ingest.formats import REGEX_FORMATS, Format, JsonFormat, W3CFormat
from trafficlens.ingest.formats.common import finish, parse_regex
from trafficlens.ingest.formats.jsonlines import parse_json
from trafficlens.ingest.formats.ncsa import fast_combined, fast_ts_text, finish_plain
from trafficlens.ingest.formats.w3c import parse_w3c
from trafficlens.ingest.options import IngestOptions
from trafficlens.schema import EVENT_COLUMNS, EVENT_SCHEMA, REJECT_SCHEMA

# What str.strip_chars() strips (Unicode White_Space), and the comment mark.
_SKIP_FIRST = [*"\t\n\x0b\x0c\r \x85\xa0\u1680", *map(chr, range(0x2000, 0x200B)), *"\u2028\u2029\u202f\u205f\u3000#"]


def parse_chunk(
    lines: pl.DataFrame,
    fmt: Format,
    opts: IngestOptions,
    source: str,
    w3c_fields: list[str] | None,
    envelope: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str] | None, dict[str, int]]:
    """Lines (`line`, `line_no`) -> (events, rejects, W3C fields in force after the chunk, lines
    skipped by reason).

    Events whose time falls outside `window` (default: `opts.window()`) are rejected.
    """
    # Blank lines, and comment lines outside W3C logs (which use them as directives), are no
    # log lines: skipped, not rejected, and counted by reason.
    line = pl.col("line")
    skipped: dict[str, int] = {}
    # Only an empty line or one that starts with a space or '#' can be skipped; most chunks have
    # none, and the check that tells for sure (which copies every line) is then left out.
    if lines.select((line.str.len_bytes() == 0) | line.str.slice(0, 1).is_in(_SKIP_FIRST)).to_series().any():
        blank = line.str.strip_chars() == ""
        comment = pl.lit(False) if isinstance(fmt, W3CFormat) else line.str.starts_with("#")
        n_blank, n_comment = lines.select(blank.sum().alias("blank"), comment.sum().alias("comment")).row(0)
        skipped = _counts(blank=n_blank, comment=n_comment)
        if n_blank or n_comment:
            lines = lines.filter(~(blank | comment))
    original = lines
    lines = strip_envelope(lines, envelope)
    parts: list[pl.DataFrame] = []
    if isinstance(fmt, W3CFormat):
        directives = lines.select(line.str.starts_with("#").sum()).item()
        skipped.update(_counts(directive=directives))
        raw, miss, w3c_fields = parse_w3c(lines, fmt, w3c_fields)
        parts.append(finish(raw, fmt.name, "w3c", opts.tz, fmt.time_taken_unit, opts.site, source))
        misses = miss.rename({"_why": "reason"})
    elif isinstance(fmt, JsonFormat):
        raw, miss = parse_json(lines, fmt)
        parts.append(finish(raw, fmt.name, fmt.ts_kind, opts.tz, fmt.duration_unit, opts.site, source))
        misses = miss.select("line", "line_no", reason=pl.lit("not a JSON object with a time or client address"))
    else:
        miss = lines
        if fmt is REGEX_FORMATS["combined"]:
            # The usual case goes the fast way; what it cannot read falls to the regexes below.
            cut = fast_combined(lines.lazy()).collect()
            plain = cut.get_column("_plain")
            rest = None
            if not plain.all():
                cut, rest = cut.filter(plain), cut.filter(~plain)
            parts.append(finish_plain(cut, opts.site, source))
            miss = lines.clear()
            if rest is not None:
                ok = rest.get_column("_ok")
                if ok.any():
                    parts.append(
                        finish(
                            fast_ts_text(rest.filter(ok)),
                            "combined",
                            "clf",
                            opts.tz,
                            "s",
                            opts.site,
                            source,
                            unescape=False,
                        )
                    )
                miss = rest.filter(~ok).select("line", "line_no")
        # Lines the file's format misses get the other line formats before they are rejected:
        # shared logs mix vhost and plain lines, and proxies add their own.
        fallbacks = [] if fmt.name == "custom" else [f for f in REGEX_FORMATS.values() if f is not fmt]
        for f in [fmt, *fallbacks]:
            if miss.height == 0:
                break
            raw, miss = parse_regex(miss, f)
            if raw.height:
                parts.append(finish(raw, f.name, f.ts_kind, opts.tz, f.time_unit, opts.site, source))
        misses = miss.select("line", "line_no", reason=pl.lit(f"does not fit the {fmt.name} format"))
    events = (
        pl.concat(parts, how="vertical_relaxed")
        if parts
        else finish(lines.clear(), fmt.name, "auto", opts.tz, "s", opts.site, source)
    )
    # Events without a time, or with one no web server can have written, become rejects.
    dropped: list[pl.DataFrame] = []
    if events.get_column("ts").null_count():
        bad = pl.col("ts").is_null()
        reason = pl.lit("unreadable time: ") + pl.col("_raw_ts").fill_null("(none)")
        dropped.append(events.filter(bad).select("line_no", reason=reason))
        events = events.filter(~bad)
    lo, hi = window or opts.window()
    far = (pl.col("ts") < lo) | (pl.col("ts") > hi)
    if events.select(far.any()).item():
        reason = pl.lit("time out of range: ") + pl.col("ts").dt.to_string("%Y-%m-%dT%H:%M:%SZ")
        dropped.append(events.filter(far).select("line_no", reason=reason))
        events = events.filter(~far)
    events = events.select(EVENT_COLUMNS)
    if dropped:
        lookup = original.join(pl.concat(dropped), on="line_no")
        misses = pl.concat([misses, lookup.select("line", "line_no", "reason")], how="vertical_relaxed")
    if envelope is not None:
        misses = misses.drop("line").join(original, on="line_no", how="left")  # keep the raw line
    rejects = misses.select(
        source=pl.lit(source),
        line_no=pl.col("line_no"),
        reason=pl.col("reason"),
        raw=pl.col("line"),
        format=pl.lit(fmt.name),
        ingested_at=pl.lit(datetime.now(UTC)).cast(REJECT_SCHEMA["ingested_at"]),
    )
    return events.cast(EVENT_SCHEMA), rejects, w3c_fields, skipped  # type: ignore[arg-type]


def _counts(**counts: int) -> dict[str, int]:
    """Lines skipped, by reason (SKIP_REASONS), leaving out the reasons that did not occur."""
    return {reason: n for reason, n in counts.items() if n}
