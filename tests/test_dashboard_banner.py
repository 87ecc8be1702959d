"""When the lake's classify run loaded no published IP ranges, every page says so, with the
command that fixes it; a lake classified with ranges shows no such banner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from trafficlens.cli import main
from trafficlens.dashboards.app import ROUTES
from trafficlens.report import explore
from trafficlens.simulate import simulate

VIEWS = Path(__file__).resolve().parent.parent / "dashboards" / "views"


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One small simulated day, analysed without ranges and with the simulation's own ranges."""
    d = tmp_path_factory.mktemp("banner")
    log, ranges = d / "sim.log", d / "ranges"
    simulate(log, days=1, scale=0.05, seed=3, progress=False, ranges_out=ranges)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(d / "cache"))  # no `ranges update` cache either
        for lake, extra in ((d / "bare", []), (d / "checked", ["--ranges", str(ranges)])):
            r = CliRunner().invoke(main, ["analyze", str(log), "--lake", str(lake), "--no-progress", *extra])
            assert r.exit_code == 0, r.output
    return d / "bare", d / "checked"


def test_identity_checks_read_from_the_lake(lakes: tuple[Path, Path]) -> None:
    bare, checked = lakes
    assert explore.identity_checks(bare).ranges_missing
    assert explore.identity_checks(bare).checked_clients == 0
    assert not explore.identity_checks(checked).ranges_missing
    assert explore.identity_checks(checked).checked_clients > 0


@pytest.mark.parametrize("route", ROUTES, ids=[r.file.removesuffix(".py") for r in ROUTES])
def test_every_page_shows_the_banner(route: object, lakes: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    bare, checked = lakes
    for lake, expected in ((bare, True), (checked, False)):
        monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
        at = AppTest.from_file(str(VIEWS / route.file), default_timeout=120)  # type: ignore[attr-defined]
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        banners = [w.value for w in at.warning if "no published IP ranges" in w.value]
        assert bool(banners) is expected, (lake.name, [w.value for w in at.warning])
        if expected:
            assert "trafficlens ranges update" in banners[0] and f"trafficlens classify --lake {lake}" in banners[0]
