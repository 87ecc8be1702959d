"""Progress on a terminal: one line on standard error, rewritten in place and cut to the
terminal's width; silent when standard error is not a terminal (a pipe, a log file, cron).

Three shapes of long work:

    p = Progress(total_bytes, "ingest")        # bytes of files read, lines per second
    stage = Stages("classify")                 # named stages of a job, with the time so far
    stage("sessions")
    units = stage.units(64, "bucket")          # N of M units done, with the time left
    for bucket in buckets:
        ...
        units.advance()
    units.close()
    stage.close()

`Units` can also stand alone: `Units(64, "classify", unit="bucket")`.
"""

from __future__ import annotations

import shutil
import sys
import time

CLEAR_TO_END = "\x1b[K"
# Redraws at most this often: a terminal that scrolls a thousand lines a second slows the job.
REDRAW_SECONDS = 0.2


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def fmt_duration(seconds: float) -> str:
    """A duration as a person reads it: '8s', '2m 05s', '1h 02m'."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def terminal_width() -> int:
    """Columns of the terminal standard error writes to (80 when it cannot say)."""
    return shutil.get_terminal_size((80, 24)).columns


def fit(text: str, width: int | None = None) -> str:
    """`text` cut to one column less than the terminal's width, so that the cursor never wraps
    onto a new line (a wrapped line cannot be rewritten with \\r and stale copies stack up)."""
    room = max((width or terminal_width()) - 1, 10)
    return text if len(text) <= room else text[: room - 1] + "…"


class _Line:
    """The one line: drawn with \\r, cut to width, cleared to its end; nothing when disabled."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.drawn = False

    def draw(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write("\r" + fit(text) + CLEAR_TO_END)
            sys.stderr.flush()
            self.drawn = True

    def clear(self) -> None:
        if self.enabled and self.drawn:
            sys.stderr.write("\r" + CLEAR_TO_END)
            sys.stderr.flush()
            self.drawn = False


def _with_bar(label: str, frac: float, rest: str) -> str:
    """`label [####----] rest`, the bar as wide as the terminal leaves room for (at most 20
    columns; none on a terminal too narrow for one), so that the figures are never cut."""
    width = min(20, terminal_width() - 1 - len(label) - len(rest) - 4)
    if width < 5:
        return f"{label} {rest}"
    filled = int(frac * width)
    return f"{label} [{'#' * filled}{'-' * (width - filled)}] {rest}"


class Progress:
    """Bytes read out of the total, lines per second; redrawn at most a few times a second."""

    def __init__(self, total: int | None, label: str, enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self._line = _Line(enabled)
        self.enabled = self._line.enabled
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
        if self.enabled and now - self._last > REDRAW_SECONDS:
            self._last = now
            self._line.draw(self.text(now))

    def text(self, now: float | None = None) -> str:
        """The line as it would be drawn now (before it is cut to the terminal's width)."""
        now = time.perf_counter() if now is None else now
        done = self.done_before + self.current
        elapsed = max(now - self.started, 1e-9)
        rate = self.lines / elapsed
        if self.total:
            frac = min(done / self.total, 1.0)
            left = f"  {fmt_duration(elapsed / frac - elapsed)} left" if 0 < frac < 1 and elapsed > 1 else ""
            rest = f"{frac:.0%} {_size(done)}/{_size(self.total)}{left}  {self.lines:,} lines  {rate:,.0f} lines/s"
            return _with_bar(self.label, frac, f"{rest}  {self.name}")
        return f"{self.label} {_size(done)}  {self.lines:,} lines  {rate:,.0f} lines/s  {self.name}"

    def close(self) -> None:
        self._line.clear()


class Units:
    """N of M units of work done (buckets, files, days), the share, and an estimate of the time
    left from the pace so far: `classify [#####-----] 12/64 buckets 19%  1m 05s left  note`."""

    def __init__(
        self, total: int, label: str, unit: str = "unit", enabled: bool | None = None, *, started: float | None = None
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.unit = unit
        self.done = 0
        self.note = ""
        self._line = _Line(enabled)
        self.enabled = self._line.enabled
        self.started = time.perf_counter() if started is None else started
        self._last = 0.0
        self._line_started = time.perf_counter()

    def advance(self, n: int = 1, note: str = "") -> None:
        """`n` more units done; `note` says what is being worked on now."""
        self.update(self.done + n, note)

    def update(self, done: int, note: str = "") -> None:
        self.done = min(max(int(done), 0), self.total) if self.total else max(int(done), 0)
        if note:
            self.note = note
        now = time.perf_counter()
        # Always draw the first and last unit; in between at most a few times a second.
        if self.enabled and (now - self._last > REDRAW_SECONDS or self.done in (1, self.total)):
            self._last = now
            self._line.draw(self.text(now))

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace so far, or None before any unit is done (no pace yet)."""
        if not self.done or not self.total:
            return None
        now = time.perf_counter() if now is None else now
        per_unit = (now - self._line_started) / self.done
        return per_unit * (self.total - self.done)

    def text(self, now: float | None = None) -> str:
        """The line as it would be drawn now (before it is cut to the terminal's width)."""
        now = time.perf_counter() if now is None else now
        units = self.unit if self.total == 1 else self.unit + "s"
        left = self.eta(now)
        tail = f"  {fmt_duration(left)} left" if left is not None and self.done < self.total else ""
        rest = f"{self.done:,}/{self.total:,} {units} {self.done / self.total:.0%}{tail}" if self.total else ""
        rest = (rest or f"{self.done:,} {units}") + f"  ({fmt_duration(now - self.started)})"
        note = f"  {self.note}" if self.note else ""
        # The note is cut first: the bar is sized without it, the figures before it always show.
        return (_with_bar(self.label, self.done / self.total, rest) if self.total else f"{self.label} {rest}") + note

    def close(self) -> None:
        self._line.clear()


class Stages:
    """One line naming the stage of a long job and the time so far, redrawn in place on a
    terminal; silent otherwise."""

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        self.label = label
        self._line = _Line(enabled)
        self.enabled = self._line.enabled
        self.t0 = time.perf_counter()

    def __call__(self, what: str) -> None:
        self._line.draw(self.text(what))

    def text(self, what: str) -> str:
        return f"{self.label}: {what} ({fmt_duration(time.perf_counter() - self.t0)})"

    def units(self, total: int, unit: str = "unit") -> Units:
        """A count of units within this job (its label, its clock): 12/64 buckets, time left."""
        return Units(total, self.label, unit, self.enabled, started=self.t0)

    def close(self) -> None:
        self._line.clear()


__all__ = ["Progress", "Stages", "Units", "fit", "fmt_duration", "terminal_width"]
