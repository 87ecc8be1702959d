"""Where verification keeps what it fetches (range files, reverse-DNS answers, key directories) and
where it looks for the databases the user supplies, and how it writes there so that readers never
see a file half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from trafficlens.classify.verify.sources import range_sources


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/trafficlens, else ~/.cache/trafficlens."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "trafficlens"


def default_ranges_dir() -> Path | None:
    """The folder `trafficlens ranges update` fills, when it holds any range file; else None."""
    folder = default_cache_dir() / "ranges"
    if any((folder / s.file).is_file() for s in range_sources()):
        return folder
    return None


def default_keys_dir() -> Path:
    """The folder `trafficlens keys update` fills with signers' key directories: `<cache>/keys`."""
    return default_cache_dir() / "keys"


def default_geo_dir() -> Path:
    """The folder read for ASN and country databases when no --geo is given: `<cache>/geo`."""
    return default_cache_dir() / "geo"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder and os.replace, so readers never see half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
