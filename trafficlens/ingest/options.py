"""How ingest reads its sources: the options every step of it shares."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from trafficlens.errors import OptionError
from trafficlens.ingest.sources import CHUNK_BYTES

# The sane window for a logged time, when --time-window does not say otherwise. No access log is
# older than the web itself (opened to the public on 1991-08-06); earlier times are clocks that
# were never set (the epoch) or corrupt lines. Later than two days from now is a wrong clock or a
# "never" sentinel such as 9999; two days leave room for a zone read as UTC (up to 14 hours ahead)
# and for drift.
EARLIEST = datetime(1991, 8, 6, tzinfo=UTC)
AHEAD = timedelta(days=2)
_WINDOW_HELP = "give FROM..TO as ISO dates or times (UTC unless they carry an offset), e.g. 2000-01-01..2030-01-01"


@dataclass
class IngestOptions:
    """How to read the sources. Every field has a CLI option of the same name."""

    format: str | None = None
    log_format: str | None = None
    site: str | None = None
    tz: str | None = None
    json_map: str | None = None
    # FROM..TO: lines timed outside it are rejected; either side may be left out (its default).
    time_window: str | None = None
    chunk_bytes: int = CHUNK_BYTES
    # Privacy (trafficlens.ingest.privacy): None leaves the lake's remembered choice as it is.
    ip_privacy: str | None = None  # truncate | hash | off
    redact_query: bool | None = None
    keep_query_values: str | None = None  # comma-separated keys or globs, e.g. utm_*,ref
    # Not an option: what the caller derives from the operators' range files (a layer above) to
    # record `ip_ranges` for pseudonymised addresses; None records none.
    address_ranges: Callable[[pl.Series], pl.DataFrame] | None = None

    def check(self) -> None:
        """Refuse values that cannot work before any source is read (one line saying what to give)."""
        if self.tz:
            try:
                zoneinfo.ZoneInfo(self.tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise OptionError(f"unknown time zone {self.tz!r}; use an IANA name such as Europe/Paris") from None
        if self.json_map:  # checked before any source, JSON or not, is read
            from trafficlens.ingest.formats.custom import parse_json_map

            parse_json_map(self.json_map)
        self.window()
        from trafficlens.ingest.privacy import check_options

        check_options(self)

    def window(self) -> tuple[datetime, datetime]:
        """The earliest and latest time a line may carry (UTC, both included)."""
        lo, hi = EARLIEST, datetime.now(UTC) + AHEAD
        if self.time_window is not None:
            start, sep, end = self.time_window.partition("..")
            if not sep:
                raise OptionError(f"--time-window {self.time_window!r} has no '..'; {_WINDOW_HELP}")
            lo = _instant(start, self.time_window) if start.strip() else lo
            hi = _instant(end, self.time_window) if end.strip() else hi
            if lo >= hi:
                raise OptionError(f"--time-window {self.time_window!r} ends before it starts; {_WINDOW_HELP}")
        return lo, hi


def _instant(text: str, whole: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OptionError(f"--time-window {whole!r}: {text.strip()!r} is not a date; {_WINDOW_HELP}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
