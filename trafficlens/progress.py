"""A progress line on a terminal; silent when standard error is not one."""

from __future__ import annotations

import sys
import time


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """Bytes read out of the total, lines per second; redrawn at most a few times a second."""

    def __init__(self, total: int | None, label: str, enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done_before = 0  # bytes of finished sources
        self.current = 0
        self.lines = 0
        self.name = ""
        self.started = time.perf_counter()
        self._last = 0.0

    def start_source(self, name: str) -> None:
        self.done_before += self.current
        self.current = 0
        self.name = name.rsplit("/", 1)[-1]

    def update(self, current_bytes: int, lines: int) -> None:
        self.current = current_bytes
        self.lines += lines
        now = time.perf_counter()
        if self.enabled and now - self._last > 0.2:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done = self.done_before + self.current
        rate = self.lines / max(now - self.started, 1e-9)
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 24)
            head = f"{self.label} [{bar:<24}] {frac:4.0%} {_size(done)}/{_size(self.total)}"
        else:
            head = f"{self.label} {_size(done)}"
        line = f"\r{head}  {self.lines:,} lines  {rate:,.0f} lines/s  {self.name}"
        sys.stderr.write(line[:200] + "\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class Stages:
    """One line naming the stage of a long job and the time so far, redrawn in place on a
    terminal; silent otherwise."""

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.label}: {what} ({time.perf_counter() - self.t0:.1f}s)\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
