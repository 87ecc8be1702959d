"""`trafficlens alerts` and the report's `alerts` section on a simulated week whose last day holds
the incidents the simulator plants (`--incidents`): each is found, with figures recomputed from
the lake's requests and the truth; the alerts table records a run once however often it runs.
The same week's sweeping assistant is what the report's `purpose_check` must find."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from trafficlens.cli import main
from trafficlens.report import Report, ai_referrers
from trafficlens.report.alerts import AlertConfig
from trafficlens.simulate import simulate
from trafficlens.simulate.scenarios.incidents import MOVED, NEW_AGENT, SPOOFED, SWEEPER

LAST = "2025-10-12"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alerts")
    log = root / "week.log"
    simulate(log, days=7, seed=23, scale=0.3, ranges_out=root / "ranges", incidents=True, progress=False)
    r = CliRunner().invoke(
        main, ["analyze", str(log), "--lake", str(root / "lake"), "--ranges", str(root / "ranges"), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    return root / "lake"


def _alerts(lake: Path, *args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["alerts", "--lake", str(lake), "--format", "json", *args])
    return r.exit_code, json.loads(r.stdout)


def test_every_planted_incident_is_found(lake: Path) -> None:
    code, doc = _alerts(lake, "--no-record")
    assert code == 1 and doc["days"] == [LAST] and doc["baseline_days"] == 6
    got = {(a["kind"], a["subject"]) for a in doc["alerts"]}
    truth = pl.read_parquet(lake.parent / "week.log.truth.parquet").with_columns(day=pl.col("ts").dt.date())
    last = truth["day"].max()
    # New agents: named, honest agents with requests on the last day and none before (the truth's).
    honest = truth.filter(pl.col("agent").is_not_null() & (pl.col("identity") != "spoofed"))
    new = set(honest.filter(pl.col("day") == last)["agent"]) - set(honest.filter(pl.col("day") < last)["agent"])
    assert NEW_AGENT[0] in new
    assert {s for k, s in got if k == "new_agent"} == new
    assert ("volume_surge", "ByteDance") in got
    assert ("threat_surge", "credential_stuffing") in got
    assert ("identity_checks", MOVED) in got
    # New spoofers of Googlebot: as many addresses as the truth's, every one of them new.
    spoof = truth.filter((pl.col("identity") == "spoofed") & (pl.col("agent") == SPOOFED))
    fresh = set(spoof.filter(pl.col("day") == last)["client_ip"]) - set(spoof.filter(pl.col("day") < last)["client_ip"])
    (g,) = [a for a in doc["alerts"] if a["kind"] == "new_spoofing" and a["subject"] == SPOOFED]
    assert g["value"] == len(fresh) >= 6


def test_surge_figures_are_the_median_and_mad_of_the_requests(lake: Path) -> None:
    _, doc = _alerts(lake, "--no-record")
    (a,) = [a for a in doc["alerts"] if a["kind"] == "volume_surge" and a["subject"] == "ByteDance"]
    req = pl.read_parquet(lake / "requests" / "**" / "*.parquet", hive_partitioning=False)
    daily = (
        req.filter(pl.col("automated") & (pl.col("operator") == "ByteDance")).group_by(day=pl.col("ts").dt.date()).len()
    )
    days = sorted(req["ts"].dt.date().unique().to_list())
    counts = {d: n for d, n in daily.iter_rows()}
    base = pl.Series([float(counts.get(d, 0)) for d in days[:-1]])
    median = base.median()
    mad = (base - median).abs().median()
    cfg = AlertConfig.load()
    assert a["value"] == counts[days[-1]]
    assert a["baseline"] == pytest.approx(median)
    assert a["threshold"] == pytest.approx(
        max(cfg.surge_min_requests, cfg.surge_factor * median, median + cfg.surge_mads * 1.4826 * mad)
    )


def test_the_report_section_says_the_same(lake: Path) -> None:
    _, doc = _alerts(lake, "--no-record")
    with Report(lake) as rep:
        section = rep.to_dict(["alerts"])["alerts"]
    assert section["alerts"] == doc["alerts"] and section["days"] == doc["days"]
    assert sum(section["counts"].values()) == len(doc["alerts"])


def test_alerts_are_recorded_once_and_quiet_runs_exit_0(lake: Path) -> None:
    table = lake / "alerts" / "alerts.parquet"
    code, doc = _alerts(lake)
    first = pl.read_parquet(table)
    assert code == 1 and first.height == len(doc["alerts"])
    _alerts(lake)  # again: the same days' alerts replace the earlier ones
    again = pl.read_parquet(table)
    assert again.drop("recorded").equals(first.drop("recorded"))
    # The first day has nothing before it: nothing to compare with, so nothing fires.
    r = CliRunner().invoke(main, ["alerts", "--lake", str(lake), "--since", "2025-10-06", "--no-record"])
    assert r.exit_code == 0 and "no days of data before it" in r.output
    # DuckDB sees the table.
    q = CliRunner().invoke(main, ["query", "--lake", str(lake), "SELECT count(*) AS n FROM alerts", "--format", "csv"])
    assert q.exit_code == 0 and q.output.splitlines()[-1] == str(first.height)


def test_a_quiet_week_raises_no_surge(tmp_path: Path) -> None:
    # The same week without the incidents: nothing surges, no agent is new on its last day.
    log = tmp_path / "week.log"
    simulate(log, days=7, seed=23, scale=0.3, ranges_out=tmp_path / "ranges", progress=False)
    r = CliRunner().invoke(
        main,
        ["analyze", str(log), "--lake", str(tmp_path / "lake"), "--ranges", str(tmp_path / "ranges"), "--no-progress"],
    )
    assert r.exit_code == 0, r.output
    code, doc = _alerts(tmp_path / "lake", "--no-record")
    kinds = {a["kind"] for a in doc["alerts"]}
    assert not kinds & {"volume_surge", "threat_surge", "identity_checks"}, doc["alerts"]
    # Nor does any assistant's fetcher act other than for a question.
    with Report(tmp_path / "lake") as rep:
        pc = rep.purpose_check()["by_agent"]
    assert pc.filter((pl.col("purpose") == "ai_assistant") & (pl.col("score") >= 0.5)).is_empty()


def test_purpose_check_finds_the_sweeping_assistant(lake: Path) -> None:
    with Report(lake) as rep:
        pc = rep.purpose_check()
        referrals = {r["operator"]: r["visits"] for r in rep.referrals()["by_operator"].iter_rows(named=True)}
    by = {r["agent"]: r for r in pc["by_agent"].iter_rows(named=True)}
    sweeper = by[SWEEPER]
    assert sweeper["score"] >= 0.5 and SWEEPER in pc["summary"]["flagged_agents"]
    assert any(r.startswith("purpose:ai_assistant:sweep:max_pages_per_visit=") for r in sweeper["reasons"])
    # Its figures, from the requests: pages per visit, and the largest visit.
    req = pl.read_parquet(lake / "requests" / "**" / "*.parquet", hive_partitioning=False)
    views = ~pl.col("page_type").is_in(["static", "robots", "sitemap", "feed", "api"])
    honest = req.filter(pl.col("automated") & pl.col("agent").is_not_null() & (pl.col("identity") != "spoofed"))
    visits = honest.group_by("agent", "session_id").agg(pages=views.sum())
    for agent in (SWEEPER, "Googlebot", "ChatGPT-User"):
        v = visits.filter(pl.col("agent") == agent)["pages"]
        assert by[agent]["max_pages_per_visit"] == v.max()
        assert by[agent]["pages_per_visit_p90"] == pytest.approx(v.quantile(0.9, "linear"))
        assert by[agent]["pages"] == v.sum()
    # Google's visits back: Gemini's referrals and clicks on its results (the human visits whose
    # landing referrer is a google.* host).
    sessions = pl.read_parquet(lake / "sessions" / "*.parquet")
    host = pl.col("landing_referer").str.extract(r"^[a-zA-Z]+://([^/:?#]+)", 1).str.to_lowercase()
    ai_hosts = {h for r in ai_referrers() for h in r.hosts}
    assistant = pl.any_horizontal([(host == h) | host.str.ends_with("." + h) for h in ai_hosts])
    google = sessions.filter(
        (pl.col("actor_class") == "human")
        & host.str.contains(r"(^|\.)google\.[a-z.]+$|(^|\.)news\.google\.com$")
        & ~assistant.fill_null(False)
    ).height
    assert by["Googlebot"]["referred_visits"] == google + referrals.get("Google", 0) > 0
    assert by["Googlebot"]["score"] == 0
