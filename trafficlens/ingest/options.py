"""How ingest reads its sources: the options every step of it shares."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from trafficlens.errors import OptionError
from trafficlens.ingest.sources import CHUNK_BYTES


@dataclass
class IngestOptions:
    """How to read the sources. Every field has a CLI option of the same name."""

    format: str | None = None
    log_format: str | None = None
    site: str | None = None
    tz: str | None = None
    json_map: str | None = None
    chunk_bytes: int = CHUNK_BYTES

    def check(self) -> None:
        """Refuse values that cannot work before any source is read (one line saying what to give)."""
        if self.tz:
            try:
                zoneinfo.ZoneInfo(self.tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise OptionError(f"unknown time zone {self.tz!r}; use an IANA name such as Europe/Paris") from None
