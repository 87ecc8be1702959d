"""One colour language: the dashboard and the HTML report take every chart colour from
trafficlens.report.colours, classes in Okabe–Ito, and colour follows meaning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from trafficlens.cli import main
from trafficlens.dashboards import common
from trafficlens.dashboards.app import ROUTES
from trafficlens.report import Report, colours
from trafficlens.report.render import render
from trafficlens.simulate import simulate

VIEWS = Path(__file__).resolve().parent.parent / "dashboards" / "views"
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def _defined() -> set[str]:
    """Every colour the one definition holds."""
    found: set[str] = set()
    for value in vars(colours).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else [value]
        found |= {v.upper() for v in items if isinstance(v, str) and HEX.fullmatch(v)}
    return found


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("colours")
    log, ranges = d / "sim.log", d / "ranges"
    simulate(log, days=2, scale=0.05, seed=4, progress=False, ranges_out=ranges)
    r = CliRunner().invoke(
        main, ["analyze", str(log), "--lake", str(d / "lake"), "--ranges", str(ranges), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    return d / "lake"


def test_classes_are_okabe_ito_and_meaning_is_one_colour() -> None:
    assert set(colours.CLASS_COLOURS.values()) <= set(colours.OKABE_ITO.values())
    assert len(set(colours.CLASS_COLOURS.values())) == 4
    assert len(set(colours.PAGE_TYPE_COLOURS.values())) == len(colours.PAGE_TYPE_COLOURS)  # no repeats
    # a rise in malicious traffic is bad, a fall good; the same for spoofed claims
    assert colours.segment_colour("malicious", 2.3) == colours.BAD
    assert colours.segment_colour("malicious", -0.4) == colours.GOOD
    assert colours.delta_colour(0.1, rise_is_bad=False) == colours.GOOD
    assert colours.IDENTITY_COLOURS["spoofed"] == colours.BAD and colours.IDENTITY_COLOURS["verified"] == colours.GOOD
    # a second cue beside the colour for every identity a claim can have
    assert all(colours.IDENTITY_MARKS[k] for k in ("verified", "declared", "spoofed"))


def test_dashboard_takes_the_definition() -> None:
    assert common.CLASS_COLORS is colours.CLASS_COLOURS
    assert common.IDENTITY_COLORS is colours.IDENTITY_COLOURS
    assert common.STATUS_COLORS is colours.STATUS_COLOURS
    # no page keeps a colour of its own
    for route in ROUTES:
        assert not HEX.findall((VIEWS / route.file).read_text()), route.file


def test_both_outputs_draw_with_the_same_colours(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defined = _defined()
    with Report(lake) as rep:
        page = render(rep, "html")
    fills = {c.upper() for c in re.findall(r'fill="(#[0-9a-fA-F]{6})"', page)}
    assert {c.upper() for c in colours.CLASS_COLOURS.values()} <= fills, "the report draws the classes"
    assert fills <= defined, fills - defined

    monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
    drawn: set[str] = set()
    for route in ROUTES:
        at = AppTest.from_file(str(VIEWS / route.file), default_timeout=120)
        at.run()
        for el in at.get("vega_lite_chart"):
            drawn |= {c.upper() for c in HEX.findall(json.dumps(json.loads(el.proto.spec)))}
    assert {c.upper() for c in colours.CLASS_COLOURS.values()} <= drawn, "the dashboard draws the classes"
    assert drawn <= defined, drawn - defined
