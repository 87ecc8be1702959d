"""The CLI tells a user when nothing matched (a mistyped --site, a --since beyond the logs, a
query before classify) with a non-zero exit, writes sizes in human units and names operators
once; `trafficlens dashboard` leaves no server behind when it is stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port

from trafficlens.cli import main
from trafficlens.ingest import ingest
from trafficlens.report import explore, lake_summary
from trafficlens.simulate import simulate


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small simulated day: ingested only (`raw`), and analysed (`lake`)."""
    d = tmp_path_factory.mktemp("cli-filters")
    log, ranges = d / "sim.log", d / "ranges"
    simulate(log, days=2, scale=0.03, seed=11, progress=False, ranges_out=ranges)
    ingest([str(log)], d / "raw", progress=False)
    r = CliRunner().invoke(
        main, ["analyze", str(log), "--lake", str(d / "lake"), "--ranges", str(ranges), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    return d / "raw", d / "lake"


def _one_error_line(result: object) -> str:
    out = result.output.strip()  # type: ignore[attr-defined]
    assert result.exit_code == 1, out  # type: ignore[attr-defined]
    assert len(out.splitlines()) == 1 and out.startswith("Error: "), out
    return out


def test_a_mistyped_site_is_an_error_naming_the_sites(lakes: tuple[Path, Path]) -> None:
    lake = lakes[1]
    sites = explore.lake_bounds(lake).sites
    out = _one_error_line(CliRunner().invoke(main, ["report", "--lake", str(lake), "--site", "shop.exmaple.com"]))
    assert "--site shop.exmaple.com" in out and all(s in out for s in sites)


def test_days_outside_the_lake_are_an_error_naming_its_days(lakes: tuple[Path, Path]) -> None:
    lake = lakes[1]
    b = explore.lake_bounds(lake)
    out = _one_error_line(
        CliRunner().invoke(main, ["report", "--lake", str(lake), "--since", "2001-01-01", "--until", "2001-01-31"])
    )
    assert "--since 2001-01-01 --until 2001-01-31" in out and f"{b.first} to {b.last}" in out
    # the same filters on the days the lake holds: a report, exit 0
    ok = CliRunner().invoke(main, ["report", "--lake", str(lake), "--since", str(b.first), "--until", str(b.first)])
    assert ok.exit_code == 0 and "Error" not in ok.output


def test_query_before_classify_warns_and_fails(lakes: tuple[Path, Path]) -> None:
    raw, lake = lakes
    r = CliRunner().invoke(main, ["query", "--lake", str(raw), "SELECT count(*) AS n FROM clients"])
    assert r.exit_code == 1
    assert "no clients yet" in r.output and f"trafficlens classify --lake {raw}" in r.output
    # events are there before classify: no warning on them, nor on a classified lake's empty answer
    assert CliRunner().invoke(main, ["query", "--lake", str(raw), "SELECT * FROM events LIMIT 0"]).exit_code == 0
    empty = CliRunner().invoke(main, ["query", "--lake", str(lake), "SELECT * FROM clients WHERE false"])
    assert empty.exit_code == 0 and "warning" not in empty.output


def test_summary_in_human_units_and_operator_names_once(lakes: tuple[Path, Path]) -> None:
    text = lake_summary(lakes[1], top=30)
    assert re.search(r"^Bytes sent\s+\d+(\.\d)? (B|kB|MB|GB|TB)$", text, re.M), text[:400]
    agents = text.split("automated agents", 1)[1].split("\n\n", 1)[0]
    # 'Pingdom (Pingdom (SolarWinds), monitoring)' said the operator's name twice, in nested brackets
    assert not re.search(r"\(.*\(", agents), agents
    assert re.search(r" by [A-Z]\w+ · ", agents), agents


def test_stopping_the_dashboard_stops_its_server(lakes: tuple[Path, Path], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/_stcore/health"
    with open(tmp_path / "dashboard.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trafficlens", "dashboard", "--lake", str(lakes[1]), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(300):  # until the server answers (or the command ended)
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.read().strip() == b"ok":
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail((tmp_path / "dashboard.log").read_text())
                try:
                    proc.wait(timeout=0.3)  # a pause that also notices the command ending
                except subprocess.TimeoutExpired:
                    pass
        else:
            pytest.fail("the dashboard never answered")
        os.kill(proc.pid, signal.SIGTERM)  # the command itself, as a service manager or `kill PID` does
        proc.wait(timeout=60)
        with pytest.raises(OSError):  # nothing listens on the port any more
            urllib.request.urlopen(url, timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
