"""No empty or misleading chart in any filter state: every page of the router, through every trend
period, over the whole lake and over one day, draws only charts that hold something, and says in
words when the data is too short for a period. The filters travel in the page's address.

A chart is read the way the browser gets it: the Vega-Lite spec and the Arrow datasets Streamlit
sends (AppTest keeps both), so the check does not depend on how a page builds its charts.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from conftest import simulated_lake
from streamlit.proto.VegaLiteChart_pb2 import VegaLiteChart
from streamlit.testing.v1 import AppTest

from trafficlens.dashboards import common
from trafficlens.dashboards.app import ROUTES
from trafficlens.report import explore

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ROOT / "dashboards" / "views"
TIMEOUT = 120
SCHEMA = {"period": pl.Date, "requests": pl.Int64}


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_lake(tmp_path_factory.mktemp("charts"))


def _page(file: str, lake: Path, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
    at = AppTest.from_file(str(VIEWS / file), default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    return at


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The unit specs of a chart (a layered chart's layers, each with its own or the shared data)."""
    if "layer" in spec:
        return [{"data": spec.get("data"), **layer} for layer in spec["layer"]]
    return [spec]


def chart_problems(proto: Any) -> list[str]:
    """Why a chart would show an empty or a meaningless plot: no rows, nothing but zeros on its
    measure, or a line or area over time with fewer than two points (it draws nothing)."""
    spec = json.loads(proto.spec)
    data = {d.name: pa.ipc.open_stream(d.data.data).read_all() for d in proto.datasets}
    problems = []
    for unit in _layers(spec):
        name = (unit.get("data") or {}).get("name")
        table = data.get(name) if name else None
        if table is None:
            problems.append(f"no data for {unit.get('mark')}")
            continue
        mark = unit.get("mark")
        mark = mark.get("type") if isinstance(mark, dict) else mark
        if mark == "text":
            continue  # labels beside bars: checked with their bars
        enc = unit.get("encoding", {})
        if not table.num_rows:
            problems.append(f"{mark}: no rows")
            continue
        measures = [e["field"] for e in (enc.get("x"), enc.get("y")) if e and e.get("type") == "quantitative"]
        for field in measures:
            values = (
                [v for v in table.column(field).to_pylist() if v is not None] if field in table.column_names else []
            )
            if not any(values):
                problems.append(f"{mark}: {field} is all zero or empty")
        x = enc.get("x") or {}
        if mark in ("line", "area") and x.get("type") == "temporal" and x.get("field") in table.column_names:
            if len(set(table.column(x["field"]).to_pylist())) < 2:
                problems.append(f"{mark} over time with a single point")
    return problems


def _shortest_hint(at: AppTest) -> list[str]:
    """Text that suggests a period shorter than the shortest, hours (there is none)."""
    texts = [c.value for c in at.caption] + [m.value for m in at.markdown]
    return [t for t in texts if re.search(r"(?i)choose (a shorter|hour)", t)]


def _states(lake: Path) -> list[tuple[str, dict[str, Any]]]:
    bounds = explore.lake_bounds(lake)
    assert bounds.first and bounds.last and bounds.last - bounds.first >= timedelta(days=2)
    one_day = {"since": bounds.first.isoformat(), "until": bounds.first.isoformat()}
    states = []
    for by in common.DASHBOARD_PERIODS:
        states.append((f"all-{by}", {"by": by}))
        states.append((f"one-day-{by}", {"by": by, **one_day}))
    return states


def test_routes_are_the_view_files() -> None:
    # contract: the sweep below covers every page, because every page is in the router
    files = sorted(p.name for p in VIEWS.glob("*.py") if p.stem != "__init__")
    assert sorted(r.file for r in ROUTES) == files


@pytest.mark.parametrize("route", ROUTES, ids=[r.file.removesuffix(".py") for r in ROUTES])
def test_no_empty_chart_in_any_period_or_range(route: Any, sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: dict[str, list[str]] = {}
    charts = 0
    for state, params in _states(sim_lake):
        at = _page(route.file, sim_lake, params, monkeypatch)
        found = [f"exception: {e.value}" for e in at.exception] + [f"error: {e.value}" for e in at.error]
        for i, el in enumerate(at.get("vega_lite_chart")):
            charts += 1
            found += [f"chart {i}: {p}" for p in chart_problems(el.proto)]
        found += [f"suggests a shorter period than hours: {t}" for t in _shortest_hint(at) if params["by"] == "hour"]
        if found:
            failures[state] = found
    assert not failures, failures
    # Pages without charts: data quality on a lake with few rejects; alerts, a list of what fired.
    if route.file not in ("data_quality.py", "alerts.py"):
        assert charts, "the sweep saw no chart at all: it would pass on a page that draws nothing"


def _proto(frame: pl.DataFrame, mark: str) -> VegaLiteChart:
    """A chart message as Streamlit sends it: the spec names a dataset held beside it in Arrow."""
    sink = pa.BufferOutputStream()
    table = frame.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    p = VegaLiteChart()
    ds = p.datasets.add()
    ds.name, ds.has_name = "d", True
    ds.data.data = sink.getvalue().to_pybytes()
    spec = {
        "data": {"name": "d"},
        "mark": {"type": mark},
        "encoding": {"x": {"field": "period", "type": "temporal"}, "y": {"field": "requests", "type": "quantitative"}},
    }
    p.spec = json.dumps(spec)
    return p


def test_chart_check_fails_on_an_empty_chart() -> None:
    # contract: the check above can fail (no rows, only zeros, a one-point area are each caught)
    days = [date(2025, 10, 6), date(2025, 10, 7)]
    assert chart_problems(_proto(pl.DataFrame({"period": days[:0], "requests": []}, schema=SCHEMA), "bar"))
    assert chart_problems(_proto(pl.DataFrame({"period": days, "requests": [0, 0]}, schema=SCHEMA), "bar"))
    assert chart_problems(_proto(pl.DataFrame({"period": days[:1], "requests": [3]}, schema=SCHEMA), "area"))
    assert not chart_problems(_proto(pl.DataFrame({"period": days, "requests": [3, 0]}, schema=SCHEMA), "area"))


def _param(at: AppTest, key: str) -> list[str]:
    value = at.query_params.get(key)
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def test_filters_round_trip_through_the_address(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bounds = explore.lake_bounds(sim_lake)
    assert bounds.first
    second = bounds.first + timedelta(days=1)  # the lake's first day is no filter: the address leaves it out
    day = second.isoformat()
    at = _page(
        "overview.py", sim_lake, {"since": day, "until": day, "class": ["crawler", "agent"], "by": "hour"}, monkeypatch
    )
    assert not at.exception
    # the address sets the widgets …
    assert at.date_input(key="tl_days").value == (second, second)
    assert at.multiselect(key="tl_classes").value == ["crawler", "agent"]
    assert "1 day" in at.caption[1].value and "Crawler, Agent" in at.caption[1].value
    # … and a change of a widget goes back into the address
    at.multiselect(key="tl_classes").set_value(["agent"]).run()
    assert _param(at, "class") == ["agent"]
    assert _param(at, "since") == [day] and _param(at, "until") == [day] and _param(at, "by") == ["hour"]
    # a value the lake does not hold is left out, never an error
    at = _page("overview.py", sim_lake, {"since": "1999-01-01", "class": "robot", "by": "decade"}, monkeypatch)
    assert not at.exception and not at.error
    assert at.multiselect(key="tl_classes").value == []
