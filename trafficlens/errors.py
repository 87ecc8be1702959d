"""Errors a user can act on. The CLI prints each as one line, never a traceback."""

from __future__ import annotations

import errno
import re


class TrafficlensError(Exception):
    """Base class: something the user can fix; the message says how."""


class InputError(TrafficlensError):
    """An input file, format or option cannot be used."""


class FormatError(InputError):
    """A log's format could not be detected or a named format does not fit it."""


class LakeError(TrafficlensError):
    """The lake folder is missing, locked or not a trafficlens lake."""


class CatalogueError(TrafficlensError):
    """A catalogue or rules file is malformed."""


class OptionError(TrafficlensError):
    """An option's value cannot be used (a bad choice, range or combination)."""


class ModelError(TrafficlensError):
    """The behaviour model is missing, unreadable or does not fit this version's features."""


class RangesDownloadError(TrafficlensError):
    """No published range file could be downloaded; nothing was changed."""


class DiskFullError(TrafficlensError):
    """The disk, or the user's quota, filled up while writing; the lake is as it was."""


# errno values and the words libraries (DuckDB, Arrow, polars) put in their own exceptions for them.
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_WORDS = ("no space left on device", "disk quota exceeded")


def disk_full(exc: BaseException, path: object = None) -> DiskFullError | None:
    """`exc` (or what caused it) as a DiskFullError when it says the disk or the quota is full. The
    message names `path` (a lake, an output file), else the file the error names."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur)
        if (isinstance(cur, OSError) and cur.errno in _FULL_ERRNOS) or any(w in text.lower() for w in _FULL_WORDS):
            named = cur.filename if isinstance(cur, OSError) else None
            quoted = re.search(r'"(/[^"\\]+)', text)  # DuckDB's and Arrow's messages quote the file
            where = path or named or (quoted.group(1) if quoted else "the disk")
            return DiskFullError(f"no space left on device writing {where}; free space or choose another --lake")
        cur = cur.__cause__ or cur.__context__
    return None
