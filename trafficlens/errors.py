"""Errors a user can act on. The CLI prints each as one line, never a traceback."""

from __future__ import annotations


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
