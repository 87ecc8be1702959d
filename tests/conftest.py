from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real data written by others, kept beside the project (never inside it); absent on a user's checkout.
EXTERNAL = Path(os.environ.get("TRAFFICLENS_EXTERNAL", ROOT.parent / "shared" / "external"))


def external(*parts: str) -> Path:
    """A path under ../shared/external, or skip the test when that data is not there."""
    p = EXTERNAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"external evaluation data not available ({'/'.join(parts)})")
    return p


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def simulated_lake(folder: Path, days: int = 3, scale: float = 0.3, seed: int = 5) -> Path:
    """Simulated days plus two unreadable lines (for the data quality views), analysed with the
    simulated ranges into `folder`/lake."""
    from click.testing import CliRunner

    from trafficlens.cli import main

    log, ranges, lake = folder / "sim.log", folder / "ranges", folder / "lake"
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "simulate",
            "--out",
            str(log),
            "--days",
            str(days),
            "--scale",
            str(scale),
            "--seed",
            str(seed),
            "--ranges-out",
            str(ranges),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, (r.output, r.exception)
    with open(log, "a") as f:
        f.write("this is not a log line\n\x00\x01 neither is this\n")
    r = runner.invoke(main, ["analyze", str(log), "--lake", str(lake), "--ranges", str(ranges), "--no-progress"])
    assert r.exit_code == 0, (r.output, r.exception)
    return lake
