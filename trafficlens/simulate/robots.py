"""The simulated site's robots.txt as it changes (`trafficlens simulate --robots-out DIR`): a first
version in force from the first day, and a second from the middle of the run that disallows two
training crawlers everything and signals AI training unwelcome to all. The crawlers that honour
robots.txt go on as before until they read it afresh (a day after their last read) after the
change, and stop then: the log holds what a site sees when it changes its mind, with the truth of
when each agent obeyed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from trafficlens.simulate.rows import Profile

FIRST = """User-agent: *
Disallow: /checkout
Disallow: /account
Content-Signal: search=yes, ai-input=yes, ai-train=yes
"""
# How long a crawler keeps the robots.txt it read before reading it again.
CACHE_US = 24 * 3600 * 1_000_000
# The crawlers the change disallows, which honour it once they read it.
OBEYING = ("GPTBot", "CCBot")
CHANGED = """User-agent: GPTBot
User-agent: CCBot
Disallow: /

User-agent: *
Disallow: /checkout
Disallow: /account
Content-Signal: search=yes, ai-input=yes, ai-train=no
"""


def change_day(days: int) -> int:
    """The day (from 0) the second version comes into force: the middle of the run."""
    return max(1, days // 2)


def write_robots_versions(folder: str | Path, start: dt.date, days: int) -> Path:
    """`robots-YYYY-MM-DD.txt` for both versions, as `trafficlens classify --robots FOLDER` reads them."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"robots-{start.isoformat()}.txt").write_text(FIRST)
    (out / f"robots-{(start + dt.timedelta(days=change_day(days))).isoformat()}.txt").write_text(CHANGED)
    return out


class Obedience:
    """What the obeying crawlers do once the change is in force, day by day: each reads robots.txt
    at most once a day (its copy is kept that long, as Google documents for its crawlers; reads
    within a day of the last are dropped) and, from its first read after the change, makes no
    request but robots.txt (all of an agent's clients follow the policy its operator read)."""

    def __init__(self, profiles: list[Profile], robots_path: int, change_us: int) -> None:
        self.profiles = profiles  # the run's profiles, added to as scenarios first use them
        self.robots_path = robots_path
        self.change_us = change_us
        self.since: dict[str, int] = {}  # agent -> the time it read the new version
        self.last_read: dict[str, int] = {}  # agent -> its last read of robots.txt kept

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` (one day's rows, sorted by time) as the obeying crawlers make it."""
        for agent in OBEYING:
            # The agent's own profiles, not those of clients claiming it falsely.
            own = [i for i, p in enumerate(self.profiles) if p.agent == agent and p.identity != "spoofed"]
            is_mine = frame["profile"].is_in(own).to_numpy()
            is_read = is_mine & (frame["path"].to_numpy() == self.robots_path)
            ts = frame["ts"].to_numpy()
            drop = np.zeros(frame.height, dtype=bool)
            for i in np.flatnonzero(is_read):  # a few reads a day: a loop over them is fine
                if ts[i] < self.last_read.get(agent, -CACHE_US) + CACHE_US:
                    drop[i] = True  # its copy is still fresh: no request
                    continue
                self.last_read[agent] = int(ts[i])
                if agent not in self.since and ts[i] >= self.change_us:
                    self.since[agent] = int(ts[i])
            if agent in self.since:
                drop |= is_mine & ~is_read & (ts > self.since[agent])
            frame = frame.filter(pl.Series(~drop))
        return frame
