"""Generated requests as numpy rows: the columns every scenario fills, the time units, the labels a
profile carries, the day being generated, and the vectorised building blocks scenarios share.

Each scenario builds its requests for a day as numpy arrays: per-session attributes expanded to
requests with `np.repeat` and cumulative sums (`expand`, `within`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from trafficlens.schema import THREATS

US = 1_000_000
DAY_US = 86_400 * US
METHODS = ("GET", "POST", "HEAD")
GET, POST, HEAD = 0, 1, 2
BIT = {t: 1 << i for i, t in enumerate(THREATS)}

# One block of generated requests: column name -> one value per request (see COLS).
Rows = dict[str, np.ndarray]


def mask(*names: str) -> int:
    """The bit mask of these threats."""
    out = 0
    for n in names:
        out |= BIT[n]
    return out


COLS = (
    "ts",
    "ip_hi",
    "ip_lo",
    "ip6",
    "ua",
    "method",
    "path",
    "status",
    "bytes",
    "rt",
    "ref_ext",
    "ref_path",
    "profile",
    "threats",
    "sess",
)
DTYPES = {
    "ts": pl.Int64,
    "ip_hi": pl.UInt64,
    "ip_lo": pl.UInt64,
    "ip6": pl.Boolean,
    "ua": pl.Int32,
    "method": pl.Int8,
    "path": pl.Int32,
    "status": pl.Int16,
    "bytes": pl.Int32,
    "rt": pl.Int32,
    "ref_ext": pl.Int16,
    "ref_path": pl.Int32,
    "profile": pl.Int16,
    "threats": pl.Int32,
    "sess": pl.Int64,
}


def rows(
    n: int,
    *,
    ts: np.ndarray,
    ip: tuple[np.ndarray, ...],
    ua: np.ndarray | int,
    path: np.ndarray,
    resp: tuple[np.ndarray, ...],
    profile: np.ndarray | int,
    sess: np.ndarray,
    ref_ext: np.ndarray | int = -1,
    ref_path: np.ndarray | int = -1,
) -> Rows:
    """`n` requests as columns; a single `ua`, `profile` or referrer stands for all of them."""
    full = lambda v, dtype: np.broadcast_to(np.asarray(v, dtype=dtype), (n,))  # noqa: E731
    return {
        "ts": ts.astype(np.int64),
        "ip_hi": ip[0],
        "ip_lo": ip[1],
        "ip6": ip[2],
        "ua": full(ua, np.int32),
        "method": resp[0],
        "path": path.astype(np.int32),
        "status": resp[1],
        "bytes": resp[2],
        "rt": resp[3],
        "ref_ext": full(ref_ext, np.int16),
        "ref_path": full(ref_path, np.int32),
        "profile": full(profile, np.int16),
        "sess": sess,
    }


@dataclass(frozen=True)
class Profile:
    """The labels of a kind of client (DESIGN.md, "Label vocabulary"); rows name theirs by index."""

    scenario: str
    actor_class: str
    automated: bool
    ai_driven: bool
    purpose: str
    operator: str | None
    agent: str | None
    identity: str
    threats: int = 0
    path_threats: bool = False  # add the threats of the paths it requests (scanners)
    http2: bool = False
    family: str = ""  # the kind of client (families.FAMILIES)


@dataclass
class Day:
    """The day being generated: its index, first microsecond, AI growth and session counters."""

    index: int
    start_us: int
    growth: float  # AI volume multiplier of this day
    weekday: int
    counters: dict[int, int] = field(default_factory=dict)

    @property
    def least(self) -> int:
        """Occasional scenarios are certain on the first day, so every run has each of them."""
        return 1 if self.index == 0 else 0

    def sessions(self, sid: int, n: int) -> np.ndarray:
        """Fresh true-session ids for scenario `sid`: scenario, day and a running number."""
        base = self.counters.get(sid, 0)
        self.counters[sid] = base + n
        return (np.int64(sid) << 48) | (np.int64(self.index) << 36) | (base + np.arange(n, dtype=np.int64))


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner index and position within the owner for `counts[i]` rows per owner."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def per_row(value: np.ndarray | float, owner: np.ndarray) -> np.ndarray:
    """A per-owner array (or one number for all) as one value per row."""
    return value[owner] if isinstance(value, np.ndarray) else np.full(len(owner), float(value))


def within(gaps: np.ndarray, owner: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Offsets from each owner's first row, given the gap before every row (the first's is ignored)."""
    c = np.cumsum(np.where(pos == 0, 0.0, gaps))
    first = np.flatnonzero(pos == 0)
    return c - c[first][np.searchsorted(first, np.arange(len(pos)), side="right") - 1]


def choice(
    rng: np.random.Generator, n: int, values: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray
) -> np.ndarray:
    """`n` draws of `values` with weights `p` (one uniform draw each)."""
    cp = np.cumsum(np.asarray(p, dtype=float))
    cp /= cp[-1]
    idx = np.minimum(np.searchsorted(cp, rng.random(n), side="right"), len(cp) - 1)
    return np.asarray(values)[idx]


def lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


_DIURNAL_MIN = np.arange(1440) / 60.0
# Traffic of a European/US audience in UTC: lowest around 04:00, highest mid to late afternoon.
_DIURNAL = 0.12 + (0.5 - 0.5 * np.cos(2 * np.pi * (_DIURNAL_MIN - 4) / 24)) ** 1.3
_DIURNAL_CDF = np.cumsum(_DIURNAL) / _DIURNAL.sum()


def diurnal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into a day, following the human day/night cycle."""
    minute = np.minimum(np.searchsorted(_DIURNAL_CDF, rng.random(n), side="right"), 1439)
    return (minute + rng.random(n)) * 60.0


# Working hours, 07:00-17:00 UTC (08:00-18:00 in much of Europe), busiest in the afternoon.
_WORK = np.where((_DIURNAL_MIN >= 7) & (_DIURNAL_MIN < 17), _DIURNAL, 0.0)
_WORK_CDF = np.cumsum(_WORK) / _WORK.sum()


def working_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into a day, within working hours."""
    minute = np.minimum(np.searchsorted(_WORK_CDF, rng.random(n), side="right"), 1439)
    return (minute + rng.random(n)) * 60.0


def poisson(rng: np.random.Generator, mean: float, minimum: int = 0) -> int:
    return max(minimum, int(rng.poisson(max(mean, 0.0))))
