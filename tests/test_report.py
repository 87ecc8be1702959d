"""Report, query and export: every figure checked against the lake read independently with polars."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from trafficlens.cli import main
from trafficlens.errors import OptionError
from trafficlens.report import SECTIONS, Report, ai_referrers, build_report
from trafficlens.report.export import decide, export, parse_policies, plan
from trafficlens.report.html_page import render_html
from trafficlens.report.query import repl, run_sql
from trafficlens.report.render import render_markdown, render_table
from trafficlens.simulate import simulate

ROBOTS = """User-agent: GPTBot
Disallow: /

User-agent: *
Disallow: /checkout/
Disallow: /account
"""


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four simulated days of a shop, classified with the simulated ranges and a robots.txt."""
    root = tmp_path_factory.mktemp("report")
    log = root / "shop.log"
    simulate(log, days=4, seed=11, scale=0.4, ranges_out=root / "ranges", progress=False)
    (root / "robots.txt").write_text(ROBOTS)
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            str(log),
            "--lake",
            str(root / "lake"),
            "--ranges",
            str(root / "ranges"),
            "--robots",
            str(root / "robots.txt"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "lake"


@pytest.fixture(scope="module")
def req(sim_lake: Path) -> pl.DataFrame:
    return pl.read_parquet(sim_lake / "requests" / "**" / "*.parquet", hive_partitioning=False)


@pytest.fixture(scope="module")
def rep(sim_lake: Path) -> Report:
    return Report(sim_lake)


def test_json_has_every_section_and_round_trips(sim_lake: Path) -> None:
    data = build_report(sim_lake)
    assert list(data) == list(SECTIONS)
    again = json.loads(json.dumps(data))
    assert again == data


def test_totals_and_shares_match_the_requests(rep: Report, req: pl.DataFrame) -> None:
    t = rep.totals()
    assert t["requests"] == req.height
    assert t["clients"] == req["client_id"].n_unique()
    assert t["addresses"] == req["client_ip"].n_unique()
    assert t["bytes"] == req["bytes"].fill_null(0).sum()
    assert t["ai_requests"] == req["ai_driven"].sum()
    assert t["malicious_requests"] == req["malicious"].sum()
    assert t["sessions"] == req["session_id"].n_unique()
    shares = rep.shares()
    assert shares["actor_class"].to_list() == ["human", "crawler", "scraper", "agent"]
    assert shares["requests_share"].sum() == pytest.approx(1.0)
    assert shares["clients_share"].sum() == pytest.approx(1.0)
    assert shares["bytes_share"].sum() == pytest.approx(1.0)
    want = req.group_by("actor_class").agg(pl.len().alias("n"), pl.col("client_id").n_unique().alias("c"))
    for row in want.iter_rows(named=True):
        got = shares.filter(pl.col("actor_class") == row["actor_class"]).row(0, named=True)
        assert (got["requests"], got["clients"]) == (row["n"], row["c"])
        assert got["requests_share"] == pytest.approx(row["n"] / req.height)


def test_likely_automated_band_and_what_raised_it(sim_lake: Path, rep: Report, req: pl.DataFrame) -> None:
    """The band beside the confident shares: people (labelled human) with a score of 0.5 or more,
    and the supporting families their reasons show."""
    from trafficlens.classify.evidence import LIKELY_AUTOMATED, SUPPORT_REASONS

    c = pl.read_parquet(sim_lake / "clients" / "*.parquet")
    band = c.filter((pl.col("actor_class") == "human") & (pl.col("automation_score") >= LIKELY_AUTOMATED))
    assert band.height > 0, "the simulated week has people with some evidence of automation"
    got = rep.likely_automated()
    assert got["clients"] == band.height
    assert got["requests"] == req.join(band.select("client_id"), on="client_id").height
    human = req.filter(pl.col("actor_class") == "human").height
    assert got["human_requests_share"] == pytest.approx(got["requests"] / human)
    want = {
        name: band.filter(pl.col("reasons").list.eval(pl.element().str.contains(rx)).list.any()).height
        for name, rx in SUPPORT_REASONS.items()
    }
    assert got["raised_by"] == want
    # Every score of the band was raised by some family its reasons name.
    shown = band.filter(
        pl.any_horizontal(
            pl.col("reasons").list.eval(pl.element().str.contains(rx)).list.any() for rx in SUPPORT_REASONS.values()
        )
    )
    assert shown.height == band.height, band.filter(~pl.col("client_id").is_in(shown["client_id"]))["reasons"][:3]
    assert "raised by " in " ".join(render_table(rep.sections(["totals", "shares", "likely_automated"])).split())


def test_ai_share_and_breakdown(rep: Report, req: pl.DataFrame) -> None:
    ai = rep.ai_share()
    assert ai["share"] == pytest.approx(req["ai_driven"].mean())
    assert sum(ai["by_class"].values()) == pytest.approx(1.0)
    bd = rep.ai_breakdown()
    assert bd["requests"].sum() == req["ai_driven"].sum()
    by_purpose = dict(req.filter("ai_driven").group_by("purpose").len().iter_rows())
    got = dict(zip(bd["category"], bd["requests"]))
    assert got["training_crawlers"] == by_purpose.get("ai_training", 0)
    assert got["search_crawlers"] == by_purpose.get("ai_search", 0)
    assert got["assistant_fetchers"] == by_purpose.get("ai_assistant", 0)
    assert got["training_crawlers"] > 0 and got["agents"] > 0
    assert bd["share_of_ai"].sum() == pytest.approx(1.0)


def test_operators_agents_and_verification(rep: Report, req: pl.DataFrame) -> None:
    from trafficlens.classify.agents import load_catalogue

    ops = rep.operators()
    want = (
        req.filter(pl.col("operator").is_not_null())
        .group_by("operator")
        .agg(pl.len().alias("n"), pl.col("bytes").fill_null(0).sum().alias("b"))
    )
    # Spoofed clients count for the operator their user agent claims (the catalogue's).
    claimed = {a.name: a.operator for a in reversed(load_catalogue().agents)}
    spoofed = (
        req.filter(pl.col("identity") == "spoofed")
        .with_columns(claim=pl.col("agent").replace_strict(claimed, default=None))
        .group_by("claim")
        .agg(pl.col("client_id").n_unique())
    )
    spoofed_by = dict(spoofed.iter_rows())
    assert ops.height == want.height
    for row in want.iter_rows(named=True):
        got = ops.filter(pl.col("operator") == row["operator"]).row(0, named=True)
        assert (got["requests"], got["bytes"]) == (row["n"], row["b"])
        assert got["spoofed_clients"] == spoofed_by.get(row["operator"], 0)
        assert got["status_2xx"] + got["status_3xx"] + got["status_4xx"] + got["status_5xx"] == pytest.approx(1.0)
    openai = ops.filter(pl.col("operator") == "OpenAI").row(0, named=True)
    assert {"GPTBot", "ChatGPT-User"} <= set(openai["agents"])
    agents = rep.agents()
    assert agents.filter(pl.col("agent") == "GPTBot")["purpose"].item() == "ai_training"
    ver = rep.verification()
    spoofed = req.filter(pl.col("identity") == "spoofed").group_by("agent").agg(pl.col("client_id").n_unique())
    assert spoofed.height > 0
    for agent, n in spoofed.iter_rows():
        row = ver.filter(pl.col("agent") == agent).row(0, named=True)
        assert row["spoofed"] == n and 0 < len(row["top_spoofed_addresses"]) <= 5


def test_page_types_trends_and_growth(rep: Report, req: pl.DataFrame) -> None:
    pt = rep.page_types()
    for cls, share in pt.group_by("actor_class").agg(pl.col("share").sum()).iter_rows():
        assert share == pytest.approx(1.0), cls
    agent_auth = req.filter((pl.col("actor_class") == "agent") & (pl.col("page_type") == "auth")).height
    got = pt.filter((pl.col("actor_class") == "agent") & (pl.col("page_type") == "auth"))["requests"]
    assert got.sum() == agent_auth
    tr = rep.trends()
    days = req.select(pl.col("ts").dt.date().alias("d"))["d"].unique().sort().to_list()
    assert tr["classes"]["period"].unique().sort().to_list() == days
    assert tr["classes"].height == 4 * len(days)
    assert tr["classes"]["requests"].sum() == req.height
    g = {r["segment"]: r for r in rep.growth().iter_rows(named=True)}
    last, prev = days[-1], days[-2]
    n_last = req.filter(pl.col("ts").dt.date() == last).height
    n_prev = req.filter(pl.col("ts").dt.date() == prev).height
    assert g["all"]["period"] == last and g["all"]["previous_period"] == prev
    # The last day of the data counts for the part of it the data covers.
    end = req["ts"].max()
    covered = (end - end.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 86400
    assert g["all"]["days"] == pytest.approx(covered) and g["all"]["previous_days"] == 1
    assert g["all"]["ratio"] == pytest.approx((n_last / covered) / n_prev)
    ai_last = req.filter((pl.col("ts").dt.date() == last) & pl.col("ai_driven")).height
    assert g["ai_driven"]["requests"] == ai_last


def test_weekly_growth_compares_per_day_of_data(sim_lake: Path, req: pl.DataFrame) -> None:
    with Report(sim_lake, by="week") as weekly:
        periods = weekly.trends()["classes"]["period"].unique().to_list()
        assert all(p.weekday() == 0 for p in periods)
        g = weekly.growth()
        if len(periods) >= 2:
            row = g.filter(pl.col("segment") == "all").row(0, named=True)
            assert row["ratio"] == pytest.approx(
                (row["requests"] / row["days"]) / (row["previous_requests"] / row["previous_days"])
            )


def test_filters_since_until_site_class(sim_lake: Path, req: pl.DataFrame) -> None:
    days = sorted(req["ts"].dt.date().unique().to_list())
    with Report(sim_lake, since=days[1], until=days[2]) as r:
        want = req.filter(pl.col("ts").dt.date().is_between(days[1], days[2]))
        assert r.totals()["requests"] == want.height
        assert r.period()["days"] == 2
    with Report(sim_lake, since=str(days[-1] + timedelta(days=5))) as r:
        assert r.totals()["requests"] == 0
        assert r.shares()["requests_share"].sum() == 0
        assert r.growth().is_empty()
        json.dumps(r.to_dict())  # an empty period still renders
        assert "Traffic by class" in render_table(r.sections())
    with Report(sim_lake, classes=["crawler"]) as r:
        assert r.totals()["requests"] == req.filter(pl.col("actor_class") == "crawler").height
    with Report(sim_lake, sites=["nowhere"]) as r:
        assert r.totals()["requests"] == 0
    with pytest.raises(OptionError, match="not a date"):
        Report(sim_lake, since="yesterday")
    with pytest.raises(OptionError, match="class"):
        Report(sim_lake, classes=["robot"])


def test_threats_section(rep: Report, req: pl.DataFrame) -> None:
    th = rep.threats()
    # The requests that show a threat themselves; the client's requests for one seen only in its
    # behaviour.
    per = (
        req.select("client_id", "request_threats", threat=pl.col("threats"))
        .explode("threat")
        .drop_nulls("threat")
        .group_by("client_id", "threat")
        .agg(n=pl.len(), own=pl.col("request_threats").list.contains(pl.col("threat")).sum())
    )
    counts = dict(
        per.group_by("threat")
        .agg(pl.when(pl.col("own") > 0).then(pl.col("own")).otherwise(pl.col("n")).sum())
        .iter_rows()
    )
    got = dict(zip(th["by_threat"]["threat"], th["by_threat"]["requests"]))
    assert got == counts
    assert th["summary"]["requests"] == req["malicious"].sum()
    top = th["top_clients"]
    assert top.height > 0 and top["requests"].is_sorted(descending=True)
    assert all(len(r) > 0 for r in top["reasons"].to_list())


def test_referrals_counted_per_visit_and_operator(rep: Report, req: pl.DataFrame) -> None:
    ref = rep.referrals()
    human = req.filter(pl.col("actor_class") == "human")
    host = pl.col("referer").str.extract(r"^[a-zA-Z]+://([^/:?#]+)", 1).str.to_lowercase()
    chatgpt = human.filter((host == "chatgpt.com") | pl.col("query").str.contains(r"(^|&)utm_source=chatgpt\.com"))
    by_op = {r["operator"]: r for r in ref["by_operator"].iter_rows(named=True)}
    assert by_op["OpenAI"]["visits"] == chatgpt["session_id"].n_unique() > 0
    assert by_op["OpenAI"]["by_utm_source"] > 0  # ChatGPT's links without referrer
    pages = req.filter(
        pl.col("automated")
        & (pl.col("operator") == "OpenAI")
        & ~pl.col("page_type").is_in(["static", "robots", "sitemap", "feed", "api"])
    ).height
    assert by_op["OpenAI"]["crawled_pages"] == pages
    assert by_op["OpenAI"]["crawl_to_refer"] == pytest.approx(pages / by_op["OpenAI"]["visits"])
    assert ref["summary"]["visits"] == ref["by_source"]["visits"].sum()
    assert {r.operator for r in ai_referrers()} >= {"OpenAI", "Perplexity", "Anthropic", "Google", "Microsoft"}


def _inferred(req: pl.DataFrame, window: float, reverse: bool = False) -> pl.DataFrame:
    """The inferred AI referrals recomputed from the requests: each human visit whose first
    request is a page view with no referrer and no utm_source, joined to the last fetch of the
    same page by a user-triggered assistant (not spoofed) before it, within `window` seconds;
    `reverse`: to the first fetch after it instead (the coincidences' control)."""
    views = ~pl.col("page_type").is_in(["static", "robots", "sitemap", "feed", "api"])
    fetches = (
        req.filter(
            pl.col("automated") & (pl.col("purpose") == "ai_assistant") & (pl.col("identity") != "spoofed") & views
        )
        .select("site", "path", fetched="ts", agent="agent")
        .sort("fetched")
    )
    first = req.filter(pl.col("actor_class") == "human").sort("ts", "source", "line_no").group_by("session_id").first()
    landings = (
        first.filter(
            pl.col("referer").is_null() & ~pl.col("query").fill_null("").str.contains("(?i)utm_source=") & views
        )
        .select("session_id", "site", "path", "ts")
        .sort("ts")
    )
    joined = landings.join_asof(  # sorted by time overall, hence within each page
        fetches,
        left_on="ts",
        right_on="fetched",
        by=["site", "path"],
        strategy="forward" if reverse else "backward",
        allow_exact_matches=not reverse,
        check_sortedness=False,
    ).drop_nulls("fetched")
    gap = (pl.col("fetched") - pl.col("ts")) if reverse else (pl.col("ts") - pl.col("fetched"))
    return joined.filter(gap.dt.total_microseconds() <= window * 1e6)


@pytest.mark.parametrize("window", [60.0, 300.0])
def test_inferred_ai_referrals_match_the_requests_and_the_truth(
    sim_lake: Path, req: pl.DataFrame, window: float
) -> None:
    with Report(sim_lake, ai_window=window, top=100_000) as rep:
        inf = rep.inferred_referrals()
    want = _inferred(req, window)
    got = inf["visits"]
    assert sorted(got["session_id"]) == sorted(want["session_id"]) and got.height > 0
    by_agent = {a: n for a, n in want.group_by("agent").len().iter_rows()}
    assert {r["agent"]: r["visits"] for r in inf["by_agent"].iter_rows(named=True)} == by_agent
    s = inf["summary"]
    assert s["expected_by_chance"] == _inferred(req, window, reverse=True).height
    assert s["net_estimate"] == max(s["visits"] - s["expected_by_chance"], 0) and s["window_s"] == window
    assert all(r.startswith("inferred:ai_fetch:") for r in got["reason"])
    # Against the truth: the visits the simulator made to follow an assistant's fetch.
    truth = pl.read_parquet(sim_lake.parent / "shop.log.truth.parquet").select("line_no", "scenario", "actor_class")
    first = req.sort("ts", "source", "line_no").group_by("session_id").first().select("session_id", "line_no")
    labelled = first.join(truth, on="line_no")
    planted = labelled.filter((pl.col("scenario") == "ai_fetch_visit") & (pl.col("actor_class") == "human"))
    found = got.join(labelled, on="session_id").filter(pl.col("scenario") == "ai_fetch_visit").height
    assert planted.height > 0
    precision, recall = found / got.height, found / planted.height
    # The simulated clicks come 3-300 s after the fetch: a 300 s window finds them all, a 60 s one
    # those that came within a minute; what else it finds is coincidence, about as many as the
    # time-reversed control says.
    if window == 300.0:
        assert recall >= 0.95
    assert precision >= 0.6, (precision, recall)
    assert abs((got.height - found) - s["expected_by_chance"]) <= max(5, 0.5 * s["expected_by_chance"])


def test_robots_and_bandwidth(rep: Report, req: pl.DataFrame) -> None:
    rb = rep.robots()
    gpt = rb.filter(pl.col("agent") == "GPTBot").row(0, named=True)
    gpt_req = req.filter(pl.col("agent") == "GPTBot")
    assert gpt["robots_fetches"] == gpt_req.filter(pl.col("page_type") == "robots").height
    # GPTBot is disallowed everywhere by the robots.txt given to classify.
    assert gpt["violations"] == gpt_req.filter(pl.col("request_threats").list.contains("robots_violation")).height > 0
    bw = rep.bandwidth()
    assert bw["by_class"]["share"].sum() == pytest.approx(1.0)
    assert bw["by_operator"]["bytes"].is_sorted(descending=True)


def test_discovery_funnel_matches_the_requests_and_the_truth(sim_lake: Path, rep: Report, req: pl.DataFrame) -> None:
    d = rep.discovery()
    by = {r["agent"]: r for r in d["by_agent"].iter_rows(named=True)}
    path = pl.col("path").str.to_lowercase()
    stage = (
        pl.when(pl.col("page_type") == "robots")
        .then(pl.lit("robots"))
        .when(pl.col("page_type") == "sitemap")
        .then(pl.lit("sitemap"))
        .when(path.str.ends_with("/llms.txt"))
        .then(pl.lit("llms_txt"))
        .when(path.str.ends_with("/llms-full.txt"))
        .then(pl.lit("llms_full_txt"))
        .when(path.str.ends_with(".md"))
        .then(pl.lit("markdown"))
        .when(pl.col("page_type").is_in(["static", "robots", "sitemap", "feed", "api"]).not_())
        .then(pl.lit("pages"))
    )
    named = req.filter(pl.col("automated") & pl.col("agent").is_not_null()).with_columns(stage=stage)
    mine = named.drop_nulls("stage").group_by("agent", "stage").agg(n=pl.len(), first=pl.col("ts").min())
    assert mine.height > 0
    for r in mine.iter_rows(named=True):
        assert by[r["agent"]][r["stage"]] == r["n"], r
        assert by[r["agent"]][f"first_{r['stage']}"] == r["first"], r
    # Against the simulator's truth: every verified agent's llms.txt fetches, and who read it.
    truth = pl.read_parquet(sim_lake.parent / "shop.log.truth.parquet")
    llms = truth.filter(pl.col("path") == "/llms.txt").group_by("agent").len()
    assert llms.height > 0
    for a, n in llms.iter_rows():
        assert by[a]["llms_txt"] == n
    readers = truth.filter(pl.col("path").is_in(["/llms.txt", "/llms-full.txt"]))["agent"].unique()
    assert sorted(d["summary"]["llms_txt_readers"]) == sorted(readers)
    assert d["summary"]["reached"]["llms_txt"] == llms.height
    assert all(by[a]["llms_txt"] == 0 for a in ("Googlebot", "bingbot") if a in by)


def _replayed(req: pl.DataFrame, identities: dict, agents: dict, purposes: dict) -> pl.DataFrame:
    """The pay-per-crawl replay recomputed from the requests: (action, price) per request by
    identity, then agent, then purpose, then allow; robots.txt free; a charge only for 2xx."""

    def pick(r: dict) -> tuple[str, float]:
        for table, key in ((identities, r["identity"]), (agents, r["agent"]), (purposes, r["purpose"])):
            if key in table:
                return table[key]
        return ("allow", 0.0)

    auto = req.filter(pl.col("automated")).select(
        "operator", "agent", "purpose", "identity", "page_type", "status", "bytes"
    )
    picked = [pick(r) for r in auto.select("identity", "agent", "purpose").to_dicts()]
    df = auto.with_columns(
        action=pl.Series([a for a, _ in picked]),
        price=pl.Series([p for _, p in picked], dtype=pl.Float64),
        operator=pl.coalesce(
            "operator",
            pl.when(pl.col("identity") == "spoofed").then(pl.lit("(spoofed)")).otherwise(pl.lit("(undeclared)")),
        ),
    ).with_columns(
        action=pl.when(
            (pl.col("page_type") == "robots")
            | ((pl.col("action") == "charge") & ~pl.col("status").is_between(200, 299))
        )
        .then(pl.lit("allow"))
        .otherwise("action")
    )
    return df.group_by("operator").agg(
        requests=pl.len(),
        charged=(pl.col("action") == "charge").sum(),
        amount=pl.col("price").filter(pl.col("action") == "charge").sum(),
        refused=(pl.col("action") == "refuse").sum(),
        bytes_refused=pl.col("bytes").filter(pl.col("action") == "refuse").fill_null(0).sum(),
    )


@pytest.mark.parametrize("custom", [False, True], ids=["shipped", "custom"])
def test_pay_per_crawl_replay_matches_the_requests(
    sim_lake: Path, req: pl.DataFrame, tmp_path: Path, custom: bool
) -> None:
    identities = {"spoofed": ("refuse", 0.0), "undeclared": ("refuse", 0.0)}
    agents: dict = {}
    purposes = {"ai_training": ("charge", 0.001)} | {
        p: ("allow", 0.0) for p in ("ai_search", "ai_assistant", "ai_agent", "search_engine")
    }
    pricing = None
    if custom:
        pricing = tmp_path / "pricing.yml"
        pricing.write_text(
            "currency: EUR\nidentities: {declared: refuse, spoofed: refuse}\n"
            "agents: {GPTBot: {action: charge, price: 0.005}, ClaudeBot: allow}\n"
            "purposes: {ai_training: {action: charge, price: 0.002}, ai_assistant: refuse}\n"
        )
        identities = {"declared": ("refuse", 0.0), "spoofed": ("refuse", 0.0)}
        agents = {"GPTBot": ("charge", 0.005), "ClaudeBot": ("allow", 0.0)}
        purposes = {"ai_training": ("charge", 0.002), "ai_assistant": ("refuse", 0.0)}
    with Report(sim_lake, pricing=pricing) as rep:
        ppc = rep.pay_per_crawl()
        referred = {r["operator"]: r["visits"] for r in rep.referrals()["by_operator"].iter_rows(named=True)}
    got = {r["operator"]: r for r in ppc["by_operator"].iter_rows(named=True)}
    want = _replayed(req, identities, agents, purposes)
    assert want["charged"].sum() > 0 and want["refused"].sum() > 0
    assert set(got) == set(want["operator"])
    for w in want.iter_rows(named=True):
        g = got[w["operator"]]
        assert (g["requests"], g["charged"], g["refused"], g["bytes_refused"]) == (
            w["requests"],
            w["charged"],
            w["refused"],
            w["bytes_refused"],
        ), w
        assert g["amount"] == pytest.approx(w["amount"] or 0.0)
        assert g["referred_visits"] == referred.get(w["operator"], 0)
    s = ppc["summary"]
    assert s["currency"] == ("EUR" if custom else "USD")
    assert s["amount"] == pytest.approx(float(want["amount"].sum()))
    at_risk = sum(referred.get(o, 0) for o in want.filter(pl.col("refused") > 0)["operator"])
    assert s["referrals_at_risk_refused"] == at_risk
    if custom:  # assistants refused: the visits they referred are at risk
        assert at_risk > 0 and got["OpenAI"]["refused"] > 0


def test_data_quality(rep: Report) -> None:
    dq = rep.data_quality()
    assert dq["summary"]["sources"] == 1 and dq["summary"]["events"] == rep.totals()["requests"]


def test_table_fits_80_columns_and_markdown_html(rep: Report) -> None:
    sections = rep.sections()
    text = render_table(sections)
    assert max(len(line) for line in text.splitlines()) <= 80
    for title in ("Traffic by class", "Operators", "Threats", "AI referrals"):
        assert title in text
    md = render_markdown(sections)
    assert "| class | requests |" in md and "|---|---:|" in md
    page = render_html(sections)
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 4
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    embedded = re.search(r'<script type="application/json" id="trafficlens-report">(.*?)</script>', page, re.S)
    assert (
        embedded
        and json.loads(embedded.group(1).replace("<\\/", "</"))["totals"]["requests"] == rep.totals()["requests"]
    )


def test_html_tables_are_readable(rep: Report) -> None:
    """Reported in the design pass (issue 20): the malicious clients' address column was two
    characters wide and their reasons ten-line walls. Pinned here."""
    page = render_html(rep.sections())
    table = page.split("Top malicious clients</h2>", 1)[1].split("</table>", 1)[0]
    top = rep.threats()["top_clients"]
    assert top.height and top["reasons"].list.len().max() > 5  # the wall this guards against
    # an address is never broken across lines
    assert re.search(r'<th class="nw">address</th>', table)
    assert all(f'<td class="nw">{ip}</td>' in table for ip in top["client_ip"].head(10).to_list())
    # a long list shows its first items, the rest folded under "+N more"
    rows = table.split("<tr>")[2:]
    for row, reasons in zip(rows, top["reasons"].head(10).to_list()):
        cell = row.rsplit("<td", 1)[1]  # the reasons: the last column
        folded = re.search(r"<summary>\+(\d+) more</summary>", cell)
        if len(reasons) > 5:
            assert folded and int(folded.group(1)) == len(reasons) - 4, cell
            assert cell.split("<details>")[0].count('<span class="chip">') == 4
        else:
            assert not folded and cell.count('<span class="chip">') == len(reasons)
    # a user agent shows two lines, the whole of it in its tooltip
    assert 'class="clamp" title="' in table


def test_report_cli_formats(sim_lake: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke
    r = run(main, ["report", "--lake", str(sim_lake), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert list(json.loads(r.output)) == list(SECTIONS)
    r = run(main, ["report", "--lake", str(sim_lake), "--format", "json", "--section", "shares", "--section", "growth"])
    assert list(json.loads(r.output)) == ["shares", "growth"]
    r = run(main, ["report", "--lake", str(sim_lake), "--section", "bogus", "--format", "json"])
    assert r.exit_code != 0 and "no report section" in r.output
    out = tmp_path / "r.html"
    r = run(main, ["report", "--lake", str(sim_lake), "--format", "html", "--by", "week", "--out", str(out)])
    assert r.exit_code == 0 and out.read_text().startswith("<!doctype html>")
    r = run(main, ["report", "--lake", str(sim_lake), "--format", "markdown", "--class", "agent"])
    assert r.exit_code == 0 and "# trafficlens report" in r.output


def test_report_on_an_unclassified_lake_says_what_to_do(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('192.0.2.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"\n')
    assert CliRunner().invoke(main, ["ingest", str(log), "--lake", str(tmp_path / "l")]).exit_code == 0
    r = CliRunner().invoke(main, ["report", "--lake", str(tmp_path / "l")])
    assert r.exit_code == 1 and "trafficlens classify" in r.output and "Traceback" not in r.output


# --- query -----------------------------------------------------------------------------------


def test_query_formats(sim_lake: Path, tmp_path: Path, req: pl.DataFrame) -> None:
    sql = "SELECT actor_class, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1"
    assert run_sql(sim_lake, sql)["n"].sum() == req.height
    run = CliRunner().invoke
    r = run(main, ["query", "--lake", str(sim_lake), "--format", "csv", sql])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "actor_class,n"
    r = run(main, ["query", "--lake", str(sim_lake), "--format", "json", sql])
    assert sum(json.loads(line)["n"] for line in r.output.splitlines()) == req.height
    out = tmp_path / "q.parquet"
    r = run(main, ["query", "--lake", str(sim_lake), "--format", "parquet", "--out", str(out), sql])
    assert r.exit_code == 0 and pl.read_parquet(out)["n"].sum() == req.height
    r = run(main, ["query", "--lake", str(sim_lake), "--format", "parquet", sql])
    assert r.exit_code != 0 and "--out" in r.output
    r = run(main, ["query", "--lake", str(sim_lake), "SELEC nonsense"])
    assert r.exit_code == 1 and r.output.startswith("Error: query failed") and len(r.output.splitlines()) == 1
    r = run(
        main,
        ["query", "--lake", str(sim_lake), "--format", "csv", "SELECT threats FROM clients WHERE malicious LIMIT 1"],
    )
    assert r.exit_code == 0 and "[" not in r.output.splitlines()[1]


def test_query_prompt(sim_lake: Path) -> None:
    import io

    out = io.StringIO()
    repl(sim_lake, io.StringIO(".tables\nSELECT count(*) AS n\nFROM clients;\nSELECT nope;\n.quit\n"), out)
    text = out.getvalue()
    assert "requests  sessions" in text and "| n" in text and "error: query failed" in text


def test_readme_questions_run(sim_lake: Path) -> None:
    """Every SQL block in the README's ready-to-paste questions runs on a simulated lake."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    part = readme.split("## Questions to paste", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", part, re.S)
    assert len(blocks) >= 10
    for sql in blocks:
        run_sql(sim_lake, sql)


# --- export ----------------------------------------------------------------------------------


def robots_groups(text: str) -> dict[str, str]:
    """robots.txt -> {user-agent token: its group's directive line}."""
    out: dict[str, str] = {}
    agents: list[str] = []
    for line in text.splitlines():
        if line.startswith("User-agent:"):
            agents.append(line.split(":", 1)[1].strip())
        elif line.startswith(("Disallow:", "Allow:")):
            for a in agents:
                out[a] = line.strip()
            agents = []
    return out


POLICY_CASES = [
    ["block-ai-training"],
    ["allow-ai-search"],
    ["block-ai"],
    ["block-ai", "allow-ai-search"],
    ["allow-ai", "block-ai-training"],
    ["block-all", "allow-search-engine"],
    ["block-ai-training", "allow-ai-search", "allow-ai-assistant"],
]


@pytest.mark.parametrize("policies", POLICY_CASES, ids=lambda p: "+".join(p))
def test_each_policy_yields_the_lines_it_promises(sim_lake: Path, policies: list[str]) -> None:
    text = export(sim_lake, "robots", policies)
    groups = robots_groups(text)
    p = plan(sim_lake, policies)
    assert p.agents
    for a in p.agents:
        # Expected from the policy words alone: the most specific kind named wins, later on ties.
        kinds = {"all": 0, "ai": 1}
        best = None
        for i, spec in enumerate(policies):
            action, kind = spec.split("-", 1)
            hit = kind == "all" or (kind == "ai" and a.ai_driven) or kind.replace("-", "_") == a.purpose
            if hit and (best is None or (kinds.get(kind, 2), i) >= (kinds.get(best[1], 2), best[2])):
                best = (action, kind, i)
        for token in a.tokens:
            if best is None:
                assert token not in groups, (token, policies)
            else:
                want = "Disallow: /" if best[0] == "block" else "Allow: /"
                assert groups.get(token) == want, (token, a.purpose, policies)


def test_block_policies_never_allow(sim_lake: Path) -> None:
    groups = robots_groups(export(sim_lake, "robots", ["block-ai"]))
    assert groups and set(groups.values()) == {"Disallow: /"}
    assert groups.get("GPTBot") == "Disallow: /" and groups.get("ClaudeBot") == "Disallow: /"
    # Robots-only tokens of operators seen are named too.
    assert groups.get("Google-Extended") == "Disallow: /"
    groups = robots_groups(export(sim_lake, "robots", ["allow-ai"]))
    assert set(groups.values()) == {"Allow: /"}


def test_policy_words_are_checked() -> None:
    with pytest.raises(OptionError, match="block-KIND"):
        parse_policies(["deny-ai"])
    with pytest.raises(OptionError, match="block-KIND"):
        parse_policies(["block-robots"])
    pols = parse_policies(["block-ai,allow-ai-search"])
    assert decide(pols, "ai_search", True).action == "allow"
    assert decide(pols, "ai_training", True).action == "block"
    assert decide(pols, "search_engine", False) is None


@pytest.mark.parametrize("target", ["nginx", "apache", "caddy", "haproxy"])
def test_server_rules_refuse_violators_and_spoofers(sim_lake: Path, req: pl.DataFrame, target: str) -> None:
    text = export(sim_lake, target)
    spoofed = req.filter(pl.col("identity") == "spoofed")["client_ip"].unique().to_list()
    assert spoofed and all(ip in text for ip in spoofed)
    verified = set(req.filter(pl.col("identity") == "verified")["client_ip"].unique().to_list()) - set(spoofed)
    assert not any(re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d.])", text) for ip in verified)
    assert "GPTBot" in text  # it ignored robots.txt's Disallow: /
    enforced = export(sim_lake, target, ["block-ai-training"], enforce=True)
    assert "Bytespider" in enforced or "ClaudeBot" in enforced
    assert "Google-Extended" not in enforced  # a robots.txt token never sent as a user agent


def test_nginx_rules_parse_as_nginx_would(sim_lake: Path) -> None:
    text = export(sim_lake, "nginx", enforce=True)
    m = re.search(r'"~\*\((.*)\)" 1;', text)
    assert m
    rx = re.compile(m.group(1), re.I)
    assert rx.search(
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
    )
    assert not rx.search("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36")
    assert text.count("{") == text.count("}")


def test_export_cli(sim_lake: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke
    r = run(main, ["export", "robots", "--lake", str(sim_lake), "--policy", "block-ai-training,allow-ai-search"])
    assert r.exit_code == 0 and "Disallow: /" in r.output and "Allow: /" in r.output
    r = run(main, ["export", "robots", "--lake", str(sim_lake), "--policy", "block-everything"])
    assert r.exit_code != 0 and "block-KIND" in r.output
    out = tmp_path / "block.conf"
    r = run(main, ["export", "apache", "--lake", str(sim_lake), "--out", str(out)])
    assert r.exit_code == 0 and "Require not ip" in out.read_text()


def test_sample_week_days(sim_lake: Path) -> None:
    with Report(sim_lake) as r:
        p = r.period()
        assert p["days"] == 4 and isinstance(p["first"].date(), date)


def test_spoofed_claims_count_for_the_operator_claimed(rep: Report, req: pl.DataFrame) -> None:
    """A spoofed GPTBot is not OpenAI's traffic, but it is a spoofed claim on OpenAI."""
    ops = {r["operator"]: r for r in rep.operators().iter_rows(named=True)}
    spoofed_gpt = req.filter((pl.col("agent") == "GPTBot") & (pl.col("identity") == "spoofed"))
    assert spoofed_gpt.height > 0 and spoofed_gpt["operator"].null_count() == spoofed_gpt.height
    openai_claims = req.filter(
        pl.col("agent").is_in(["GPTBot", "ChatGPT-User", "OAI-SearchBot"]) & (pl.col("identity") == "spoofed")
    )["client_id"].n_unique()
    assert ops["OpenAI"]["spoofed_clients"] >= openai_claims
    assert ops["OpenAI"]["requests"] == req.filter(pl.col("operator") == "OpenAI").height
    for row in rep.verification().iter_rows(named=True):
        assert len(row["top_spoofed_addresses"]) == len(set(row["top_spoofed_addresses"]))


def test_referrals_and_threat_trends_are_stable(sim_lake: Path, rep: Report) -> None:
    with Report(sim_lake) as again:
        assert again.referrals()["by_source"].equals(rep.referrals()["by_source"])
        assert again.referrals()["by_operator"].equals(rep.referrals()["by_operator"])
    per_period = rep.trends()["threats"].group_by("threat").agg(pl.col("requests").sum())
    by_threat = rep.threats()["by_threat"].select("threat", "requests")
    assert dict(per_period.iter_rows()) == dict(by_threat.iter_rows())
