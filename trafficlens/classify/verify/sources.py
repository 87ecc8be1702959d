"""The table of published range files (trafficlens/catalogues/range_sources.yml): which operator
publishes which file, for which agents, and where it is downloaded from."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from trafficlens.errors import CatalogueError


@dataclass(frozen=True)
class RangeSource:
    """One range file an operator publishes."""

    file: str
    operator: str
    agents: tuple[str, ...]
    url: str | None
    docs: str
    same_as: str | None = None


@functools.cache
def range_sources() -> tuple[RangeSource, ...]:
    """Every known range file, in the order of range_sources.yml."""
    text = resources.files("trafficlens").joinpath("catalogues", "range_sources.yml").read_text("utf-8")
    out = []
    for i, entry in enumerate(yaml.safe_load(text) or []):
        try:
            out.append(
                RangeSource(
                    file=entry["file"],
                    operator=entry["operator"],
                    agents=tuple(entry["agents"]),
                    url=entry.get("url"),
                    docs=entry["docs"],
                    same_as=entry.get("same_as"),
                )
            )
        except (KeyError, TypeError) as e:
            raise CatalogueError(f"range_sources.yml: entry {i + 1} is malformed ({e!r})") from None
    return tuple(out)


def sources_by_file() -> dict[str, RangeSource]:
    """Every known range file by its file name."""
    return {s.file: s for s in range_sources()}


@dataclass(frozen=True)
class HostingSource:
    """One range file a cloud or hosting provider publishes for its own address space."""

    file: str
    provider: str
    name: str
    format: str
    url: str | None
    docs: str


# How hosting.py reads each kind of file (catalogues/hosting_sources.yml, `format`).
HOSTING_FORMATS = ("aws", "google", "azure", "oracle", "geofeed", "fastly", "text")


@functools.cache
def hosting_sources() -> tuple[HostingSource, ...]:
    """Every known hosting provider's range file, in the order of hosting_sources.yml."""
    text = resources.files("trafficlens").joinpath("catalogues", "hosting_sources.yml").read_text("utf-8")
    out = []
    for i, entry in enumerate(yaml.safe_load(text) or []):
        try:
            src = HostingSource(
                file=entry["file"],
                provider=entry["provider"],
                name=entry["name"],
                format=entry["format"],
                url=entry.get("url"),
                docs=entry["docs"],
            )
        except (KeyError, TypeError) as e:
            raise CatalogueError(f"hosting_sources.yml: entry {i + 1} is malformed ({e!r})") from None
        if src.format not in HOSTING_FORMATS:
            raise CatalogueError(
                f"hosting_sources.yml: {src.file} has format {src.format!r}; use one of {', '.join(HOSTING_FORMATS)}"
            )
        out.append(src)
    return tuple(out)
