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
