"""Raw access logs -> the lake's `events` and `rejects`, streaming, idempotent and atomic.

One module a step, in the order the data flows:

- `sources`: files, folders, globs, standard input and FIFOs; decompression; chunks of whole lines
  (an unterminated last line waits while its file may still be written);
- `detect`: the format (named, custom, or told from the first lines) and any syslog/container envelope;
- `parse`: a chunk -> events, rejects and skipped lines, by the parsers of `formats/` (a new log format
  goes there); times outside the sane window are rejects;
- `writer`: chunks parsed a few at a time, in order, and written into per-day Parquet parts;
- `run`: `ingest()` itself, a source at a time, with the manifest that makes it idempotent and lets a
  grown log resume.

Names are imported when first used, so reading the format names (for the command's help) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trafficlens.lazy import lazy_exports

# Public name -> the module that defines it.
_EXPORTS = {
    "ingest": "trafficlens.ingest.run",
    "IngestSummary": "trafficlens.ingest.run",
    "SourceResult": "trafficlens.ingest.run",
    "IngestOptions": "trafficlens.ingest.options",
    "detect_format": "trafficlens.ingest.detect",
    "detect_envelope": "trafficlens.ingest.detect",
    "resolve_format": "trafficlens.ingest.detect",
    "parse_chunk": "trafficlens.ingest.parse",
    "compile_log_format": "trafficlens.ingest.formats.custom",
    "Format": "trafficlens.ingest.formats",
    "FORMAT_NAMES": "trafficlens.ingest.formats",
}

if TYPE_CHECKING:
    from trafficlens.ingest.detect import detect_envelope, detect_format, resolve_format
    from trafficlens.ingest.formats import FORMAT_NAMES, Format
    from trafficlens.ingest.formats.custom import compile_log_format
    from trafficlens.ingest.options import IngestOptions
    from trafficlens.ingest.parse import parse_chunk
    from trafficlens.ingest.run import IngestSummary, SourceResult, ingest


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "FORMAT_NAMES",
    "Format",
    "IngestOptions",
    "IngestSummary",
    "SourceResult",
    "compile_log_format",
    "detect_envelope",
    "detect_format",
    "ingest",
    "parse_chunk",
    "resolve_format",
]
