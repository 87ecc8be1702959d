"""The progress line: one line, cut to the terminal's width, rewritten in place; silent when
standard error is not a terminal; N of M units with the time left."""

from __future__ import annotations

import os

import pytest

from trafficlens import progress
from trafficlens.progress import Progress, Stages, Units, fit, fmt_duration


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda fallback=(80, 24): os.terminal_size((40, 24)))
    return 40


def _drawn(err: str) -> list[str]:
    """The lines drawn, as a terminal would keep them: each starts at \\r and is cleared to its end."""
    assert "\n" not in err, "a progress line never scrolls the terminal"
    return [part.removesuffix(progress.CLEAR_TO_END) for part in err.split("\r") if part]


def test_every_line_fits_the_terminal(narrow: int, capsys: pytest.CaptureFixture[str]) -> None:
    stage = Stages("classify", enabled=True)
    stage("behaviour model on 1,234,567 clients, with a long description of the work")
    units = stage.units(64, "bucket")
    units.advance(note="bucket 1: sessions, features, model and per-client threats")
    units.update(64)
    units.close()
    bar = Progress(10**9, "ingest", enabled=True)
    bar.start_source("/var/log/nginx/access.log-20251012.gz")
    bar.update(5 * 10**8, 100_000)
    bar.close()
    stage.close()
    lines = _drawn(capsys.readouterr().err)
    assert len(lines) >= 4
    assert all(len(line) <= narrow - 1 for line in lines), [len(x) for x in lines]
    assert any("1/64 buckets" in line for line in lines) and any("64/64 buckets" in line for line in lines)


def test_silent_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's captured stderr is not a terminal: the default is quiet
    stage = Stages("classify")
    stage("sessions")
    units = stage.units(3, "bucket")
    units.advance()
    units.close()
    stage.close()
    assert capsys.readouterr().err == ""


def test_units_estimate_the_time_left() -> None:
    units = Units(12, "classify", unit="bucket", enabled=False)
    assert units.eta() is None, "no pace before the first unit"
    units.update(3)
    start = units._line_started
    assert units.eta(now=start + 30) == pytest.approx(90)  # 10s a bucket, 9 buckets to go
    text = units.text(now=start + 30)
    assert "3/12 buckets" in text and "25%" in text and "1m 30s left" in text
    units.update(12)
    assert "left" not in units.text(now=start + 120)


def test_formats() -> None:
    assert fmt_duration(8.4) == "8s" and fmt_duration(125) == "2m 05s" and fmt_duration(3720) == "1h 02m"
    assert fit("x" * 100, 40) == "x" * 38 + "…"
    assert fit("short", 40) == "short"
