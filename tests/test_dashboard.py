"""The dashboard on a simulated lake: every page runs (alone and through the router), its KPIs
are the report's figures, an empty or missing lake says how to fill it; and the explorer's
queries (trafficlens.report.explore) on the same lake."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import simulated_lake
from streamlit.testing.v1 import AppTest

from trafficlens.cli import main
from trafficlens.dashboards import common  # the pages' number formats
from trafficlens.errors import OptionError
from trafficlens.report import Report, explore
from trafficlens.store import Lake

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
PAGES = sorted(p for p in (DASHBOARDS / "views").glob("*.py") if p.stem != "__init__")
TIMEOUT = 120


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated days (about 7,700 lines) plus two unreadable lines, analysed into a lake."""
    return simulated_lake(tmp_path_factory.mktemp("dash"))


def _run(script: Path, lake: Path | str | None, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    if lake is None:
        monkeypatch.delenv("TRAFFICLENS_LAKE", raising=False)
    else:
        monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
    at = AppTest.from_file(str(script), default_timeout=TIMEOUT)
    at.run()
    return at


def _problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_every_view_is_routed() -> None:
    from trafficlens.dashboards.app import ROUTES

    assert sorted(r.file for r in ROUTES) == [p.name for p in PAGES]
    assert {p.stem for p in PAGES} >= {"overview", "operators", "security", "client_explorer", "paths"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_runs_alone(page: Path, sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(page, sim_lake, monkeypatch)
    assert not _problems(at)
    assert at.title and at.metric, "a page shows its title and its key figures"
    assert not at.info and not at.warning, [i.value for i in [*at.info, *at.warning]]


def test_router_runs_every_page(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "app.py", sim_lake, monkeypatch)
    assert not _problems(at)
    assert at.title[0].value == "Overview"
    for page in PAGES:
        at.switch_page(f"views/{page.name}").run()
        assert not _problems(at), page.name


def test_every_page_runs_on_a_lake_at_a_uri(sim_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake on object storage, here at a `file://` URI (read through its list of files, as one
    on S3 is): every page as on the lake in a folder, with the same key figures."""
    folder = sim_lake.parent
    uri = (tmp_path / "remote").as_uri()
    monkeypatch.setenv("TRAFFICLENS_STAGING", str(tmp_path / "staging"))
    args = ["--ranges", str(folder / "ranges"), "--robots", str(folder / "robots"), "--no-progress"]
    r = CliRunner().invoke(main, ["analyze", str(folder / "sim.log"), "--lake", uri, *args])
    assert r.exit_code == 0, r.output
    at, here = _run(DASHBOARDS / "app.py", uri, monkeypatch), _run(DASHBOARDS / "app.py", sim_lake, monkeypatch)
    assert not _problems(at) and _metrics(at) == _metrics(here)
    for page in PAGES:
        at.switch_page(f"views/{page.name}").run()
        assert not _problems(at), page.name
        assert not at.info and not at.warning, (page.name, [i.value for i in [*at.info, *at.warning]])


def test_filters_hold_across_pages(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "app.py", sim_lake, monkeypatch)
    at.multiselect(key="tl_classes").set_value(["agent"]).run()
    with Report(sim_lake, classes=["agent"]) as rep:
        agents = rep.totals()["requests"]
    at.switch_page("views/data_quality.py").run()  # a page without filters in between
    at.switch_page("views/security.py").run()
    assert not _problems(at)
    assert at.multiselect(key="tl_classes").value == ["agent"]
    assert f"{agents:,} requests · Agent" in at.caption[1].value


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def test_overview_kpis_are_the_reports_figures(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "views" / "overview.py", sim_lake, monkeypatch)
    kpis = _metrics(at)
    with Report(sim_lake) as rep:
        totals, ai, threats = rep.totals(), rep.ai_share(), rep.threats()["summary"]
        shares = {r["actor_class"]: r for r in rep.shares().to_dicts()}
        spoofed = dict(rep.identities().iter_rows()).get("spoofed", 0)
    assert totals["requests"] > 5000
    assert f"{totals['requests']:,} requests" in at.caption[1].value
    for cls in ("human", "crawler", "scraper", "agent"):
        assert kpis[common.label(cls)][0] == common.fmt_pct(shares[cls]["requests_share"])
    assert any(f"{common.fmt_pct(shares['human']['clients_share'])} of clients" in m.value for m in at.markdown)
    assert kpis["AI-driven"][0] == common.fmt_pct(ai["share"])
    assert kpis["Malicious"][0] == common.fmt_pct(threats["share"])
    assert kpis["Spoofed claims"][0] == f"{spoofed:,}"
    # the whole lake has no days before it: no delta, and the page says why in words
    assert not any(delta for _, delta in kpis.values())
    assert any("No change shown" in c.value for c in at.caption)


def test_overview_deltas_compare_with_the_days_just_before(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bounds = explore.lake_bounds(sim_lake)
    assert bounds.last is not None
    last = bounds.last
    monkeypatch.setenv("TRAFFICLENS_LAKE", str(sim_lake))
    at = AppTest.from_file(str(DASHBOARDS / "views" / "overview.py"), default_timeout=TIMEOUT)
    at.query_params["since"] = at.query_params["until"] = last.isoformat()
    at.run()
    assert not _problems(at)
    kpis = _metrics(at)
    before_day = last - timedelta(days=1)
    with Report(sim_lake, since=last, until=last) as now, Report(sim_lake, since=before_day, until=before_day) as then:
        ai_now, ai_then = now.ai_share()["share"], then.ai_share()["share"]
        mal_now, mal_then = now.threats()["summary"]["share"], then.threats()["summary"]["share"]
        human = [r.shares().row(0, named=True)["requests_share"] for r in (now, then)]
    assert kpis["AI-driven"] == (common.fmt_pct(ai_now), f"{(ai_now - ai_then) * 100:+.1f} pts")
    assert kpis["Malicious"] == (common.fmt_pct(mal_now), f"{(mal_now - mal_then) * 100:+.1f} pts")
    assert kpis["Human"][1] == f"{(human[0] - human[1]) * 100:+.1f} pts"
    # colour follows meaning: a malicious rise is bad (inverse), a class's move is neither (off)
    from streamlit.proto.Metric_pb2 import Metric

    colour = {m.label: m.proto.color for m in at.metric}
    if mal_now != mal_then:
        assert colour["Malicious"] == (Metric.RED if mal_now > mal_then else Metric.GREEN)
    assert colour["Human"] == Metric.GRAY


def test_filters_narrow_every_figure(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "views" / "overview.py", sim_lake, monkeypatch)
    first, last = at.date_input(key="tl_days").value
    at.multiselect(key="tl_classes").set_value(["crawler", "agent"]).run()
    at.date_input(key="tl_days").set_value((first, first)).run()
    assert not _problems(at)
    with Report(sim_lake, classes=["crawler", "agent"], since=first, until=first) as rep:
        expected = rep.totals()["requests"]
        share = rep.ai_share()["share"]
    kpis = _metrics(at)
    assert f"{expected:,} requests" in at.caption[1].value
    assert kpis["AI-driven"][0] == common.fmt_pct(share)
    assert "1 day" in at.caption[1].value


def test_client_explorer_finds_and_explains_a_client(sim_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(DASHBOARDS / "views" / "client_explorer.py", sim_lake, monkeypatch)
    at.text_input(key="tl_q_ua").input("GPTBot")
    at.button[0].click().run()
    assert not _problems(at)
    first = explore.search_clients(sim_lake, user_agent="GPTBot", limit=1).row(0, named=True)
    assert any(first["client_ip"] in m.value for m in at.markdown)
    assert any("ua:catalogue:GPTBot" in m.value for m in at.markdown), "the reasons are shown"


def test_missing_lake_says_how_to_fill_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for page in [DASHBOARDS / "app.py", *PAGES]:
        at = _run(page, tmp_path / "nowhere", monkeypatch)
        assert not _problems(at), page.name
        assert "trafficlens analyze" in at.info[0].value and "nowhere" in at.info[0].value


def test_empty_or_foreign_folder_says_how_to_fill_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    Lake(empty, create=True)
    at = _run(DASHBOARDS / "views" / "overview.py", empty, monkeypatch)
    assert not _problems(at)
    assert "no classified requests" in at.info[0].value and "trafficlens analyze" in at.info[0].value
    foreign = tmp_path / "photos"
    foreign.mkdir()
    at = _run(DASHBOARDS / "views" / "security.py", foreign, monkeypatch)
    assert not _problems(at)
    assert "not a trafficlens lake" in at.info[0].value


def test_default_lake_is_the_clis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    at = _run(DASHBOARDS / "views" / "overview.py", None, monkeypatch)
    assert not _problems(at)
    assert str(tmp_path / "trafficlens-lake") in at.info[0].value


# --- trafficlens.report.explore -----------------------------------------------------------


def test_search_clients(sim_lake: Path) -> None:
    clients = pl.read_parquet(Lake(sim_lake).root / "clients" / "*.parquet")
    busiest = explore.search_clients(sim_lake, limit=5)
    assert busiest["requests"].to_list() == sorted(clients["requests"].to_list(), reverse=True)[:5]
    ip = busiest["client_ip"][0]
    prefix = ".".join(ip.split(".")[:2]) + "."
    by_addr = explore.search_clients(sim_lake, address=prefix, limit=10_000)
    assert by_addr.height == clients.filter(pl.col("client_ip").str.contains(prefix, literal=True)).height
    bots = explore.search_clients(sim_lake, user_agent="gptbot", limit=10_000)
    assert bots.height and all("gptbot" in ua.lower() for ua in bots["user_agent"])
    agents = explore.search_clients(sim_lake, classes=["agent"], threats=["credential_stuffing"], limit=10_000)
    expected = clients.filter(
        (pl.col("actor_class") == "agent") & pl.col("threats").list.contains("credential_stuffing")
    )
    assert agents.height == expected.height
    assert explore.search_clients(sim_lake, malicious=True, limit=10_000)["malicious"].all()
    assert explore.search_clients(sim_lake, limit=3).height == 3
    # values are bound, never spliced into the SQL
    assert explore.search_clients(sim_lake, user_agent="x' OR '1'='1").height == 0
    first_day = clients["first_seen"].min().date()  # type: ignore[union-attr]
    seen = explore.search_clients(sim_lake, since=first_day, until=first_day, limit=10_000)
    assert seen.height == clients.filter(pl.col("first_seen").dt.date() == first_day).height
    with pytest.raises(OptionError, match="class 'robot'"):
        explore.search_clients(sim_lake, classes=["robot"])
    with pytest.raises(OptionError, match="threat"):
        explore.search_clients(sim_lake, threats=["evil"])


def test_one_client(sim_lake: Path) -> None:
    hit = explore.search_clients(sim_lake, user_agent="gptbot", limit=1).row(0, named=True)
    profile = explore.client_profile(sim_lake, hit["client_id"])
    assert profile is not None
    assert profile.labels["agent"] == "GPTBot" and profile.labels["operator"] == "OpenAI"
    assert profile.reasons and profile.reasons[0].startswith("ua:catalogue:GPTBot")
    assert "rate_per_min" in profile.features and "client_ip" not in profile.features
    assert explore.client_profile(sim_lake, "no-such-client") is None

    sessions = explore.client_sessions(sim_lake, hit["client_id"])
    assert sessions.height == hit["sessions"]
    assert sessions["start"].is_sorted()
    requests = explore.client_requests(sim_lake, hit["client_id"], limit=100_000)
    assert requests.height == hit["requests"] == sessions["requests"].sum()
    assert requests["ts"].is_sorted()
    assert explore.client_requests(sim_lake, hit["client_id"], limit=3).height == min(3, hit["requests"])
    activity = explore.client_activity(sim_lake, hit["client_id"])
    assert activity["requests"].sum() == hit["requests"]
    with pytest.raises(OptionError, match="limit"):
        explore.client_requests(sim_lake, hit["client_id"], limit=0)


def test_top_paths(sim_lake: Path) -> None:
    with Report(sim_lake) as rep:
        openai = rep.operators().filter(pl.col("operator") == "OpenAI").row(0, named=True)
    paths = explore.top_paths(sim_lake, operator="OpenAI", limit=1_000_000)
    assert paths["requests"].sum() == openai["requests"]
    assert abs(paths["share"].sum() - 1) < 1e-9
    top = explore.top_paths(sim_lake, operator="OpenAI", limit=5)
    assert top.height == 5 and top["requests"].is_sorted(descending=True)


def test_lake_bounds_and_stamp(sim_lake: Path, tmp_path: Path) -> None:
    bounds = explore.lake_bounds(sim_lake)
    assert bounds.requests and bounds.sites == ("default",)
    assert bounds.first is not None and bounds.last is not None and (bounds.last - bounds.first).days == 2
    empty = Lake(tmp_path / "empty", create=True)
    assert explore.lake_bounds(empty) == explore.LakeBounds(None, None, (), False)

    stamp = explore.lake_stamp(sim_lake)
    assert explore.lake_stamp(sim_lake) == stamp
    clients = next((sim_lake / "clients").glob("*.parquet"))
    st = clients.stat()
    try:
        os.utime(clients, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert explore.lake_stamp(sim_lake) != stamp, "a rewritten table changes the stamp"
    finally:
        os.utime(clients, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_grown_lake_refreshes_the_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed on the lake's modification stamp: a new analyze shows at the next run."""
    log, lake = tmp_path / "day.log", tmp_path / "lake"
    runner = CliRunner()
    r = runner.invoke(
        main, ["simulate", "--out", str(log), "--days", "1", "--scale", "0.1", "--seed", "3", "--no-progress"]
    )
    assert r.exit_code == 0, (r.output, r.exception)
    lines = log.read_text().splitlines(keepends=True)
    half = tmp_path / "half.log"
    half.write_text("".join(lines[: len(lines) // 2]))
    r = runner.invoke(main, ["analyze", str(half), "--lake", str(lake), "--no-progress"])
    assert r.exit_code == 0, (r.output, r.exception)
    at = _run(DASHBOARDS / "views" / "overview.py", lake, monkeypatch)
    before = at.caption[1].value
    with open(half, "a") as f:  # the log grows; analyze reads the new lines
        f.write("".join(lines[len(lines) // 2 :]))
    r = runner.invoke(main, ["analyze", str(half), "--lake", str(lake), "--no-progress"])
    assert r.exit_code == 0, (r.output, r.exception)
    at.run()
    with Report(lake) as rep:
        now = rep.totals()["requests"]
    assert f"{now:,} requests" in at.caption[1].value and at.caption[1].value != before


def test_features_read_with_their_meaning() -> None:
    """Reported in the design pass (issue 20): features showed raw model values (`log_span_s 13.312`)."""
    import math

    from trafficlens.classify.behaviour import FEATURES

    assert set(FEATURES) <= set(common.FEATURE_MEANINGS), set(FEATURES) - set(common.FEATURE_MEANINGS)
    t = common.feature_table(
        {
            "log_span_s": math.log1p(13.0),
            "html_share": 0.25,
            "favicon": 1.0,
            "gap_mean_log": -1.0,  # one request: no gap to measure
            "log_requests": math.log1p(147),
            "bytes_log": math.log1p(2_500_000),
        }
    )
    assert dict(zip(t["feature"], t["value"])) == {
        "log_span_s": "13 s",
        "html_share": "25.0%",
        "favicon": "yes",
        "gap_mean_log": "–",
        "log_requests": "147",
        "bytes_log": "2.5 MB",
    }
    assert t["meaning"][0] == "Time from first to last request"
