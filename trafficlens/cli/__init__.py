"""The `trafficlens` command. Commands parse options, call one library function, print a summary.

`base` holds the group and what every command shares; the commands live by what they do: `run`
(ingest, classify, analyze), `lab` (simulate, evaluate, train), `read` (report, query, export,
dashboard, redact, ranges). Importing them registers them on `main`.
"""

from __future__ import annotations

from trafficlens.cli import lab, read, run  # noqa: F401  (registers the commands)
from trafficlens.cli.base import default_lake, friendly, main

__all__ = ["default_lake", "friendly", "main"]
