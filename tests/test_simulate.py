"""The labelled traffic simulator: its logs read back through the project's own ingester, line for
line, and its truth labels stay inside DESIGN.md's vocabulary and describe the traffic written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from trafficlens.classify.verify import load_ranges, match_ranges, range_sources
from trafficlens.errors import OptionError
from trafficlens.ingest import ingest
from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PURPOSES, THREATS
from trafficlens.simulate import (
    FAMILIES,
    FAMILY_OF,
    FORMATS,
    HUMAN_FAMILIES,
    OPT_IN,
    SCENARIOS,
    TRUTH_SCHEMA,
    SimulateSummary,
    select_families,
    simulate,
)
from trafficlens.store import Lake

DAYS, SCALE, SEED = 2, 0.1, 5
DIRECTIVES_PER_DAY = 4  # #Software, #Version, #Date, #Fields


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small combined run with its range files, ingested once."""
    root = tmp_path_factory.mktemp("sim")
    summary = simulate(root / "access.log", days=DAYS, scale=SCALE, seed=SEED, ranges_out=root / "ranges")
    ingest([str(summary.path)], root / "lake")
    events = Lake(root / "lake").scan("events").collect()
    truth = pl.read_parquet(summary.truth_path)
    return {
        "root": root,
        "summary": summary,
        "truth": truth,
        "events": events,
        "joined": events.join(truth, on="line_no", how="inner", suffix="_t"),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_line_for_line(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / (f"{fmt}.log.gz" if fmt in ("nginx_json", "alb") else f"{fmt}.log")
    s = simulate(out, fmt=fmt, days=DAYS, scale=SCALE, seed=SEED)
    if out.suffix == ".gz":
        assert out.read_bytes()[:2] == b"\x1f\x8b"
    physical = len((gzip.open(out, "rt") if out.suffix == ".gz" else out.open()).read().splitlines())
    assert s.lines == physical
    data_lines = physical - (DAYS * DIRECTIVES_PER_DAY if fmt == "w3c" else 0)

    result = ingest([str(out)], tmp_path / "lake")
    lake = Lake(tmp_path / "lake")
    events = lake.scan("events").collect()
    assert result.rejects == 0 and lake.scan("rejects").collect().height == 0
    assert events.height == data_lines == s.events
    assert set(events["format"].unique()) == {fmt}

    truth = pl.read_parquet(s.truth_path)
    assert truth.height == data_lines
    assert dict(truth.schema) == TRUTH_SCHEMA
    j = events.join(truth, on="line_no", how="inner", suffix="_t")
    assert j.height == events.height
    assert (j["client_ip"] == j["client_ip_t"]).all()
    assert (j["ts"] == j["ts_t"]).all()
    target = pl.col("path") + pl.when(pl.col("query").is_not_null()).then("?" + pl.col("query")).otherwise(pl.lit(""))
    assert j.select((target == pl.col("path_t")).all()).item()
    if fmt == "common":
        assert j["user_agent"].null_count() == j.height  # common carries no user agent
    else:
        # IIS writes spaces as '+', so a literal '+' reads back as a space.
        sent = (
            pl.col("user_agent_t").str.replace_all("+", " ", literal=True) if fmt == "w3c" else pl.col("user_agent_t")
        )
        assert j.select((pl.col("user_agent") == sent).all()).item()


def test_truth_labels_are_in_the_closed_sets(run: dict) -> None:
    t = run["truth"]
    assert set(t["actor_class"].unique()) <= set(ACTOR_CLASSES)
    assert set(t["purpose"].unique()) <= set(PURPOSES)
    assert set(t["identity"].unique()) <= set(IDENTITIES)
    assert set(t["threats"].explode().drop_nulls().unique()) <= set(THREATS)
    assert set(t["scenario"].unique()) == set(SCENARIOS) - set(OPT_IN)
    assert t["line_no"].to_list() == list(range(1, t.height + 1))
    assert t["ts"].is_sorted()
    # malicious exactly when a threat other than robots_violation holds
    bad = t["threats"].list.set_difference(pl.lit(["robots_violation"])).list.len() > 0
    assert (t["malicious"] == bad).all()
    humans = t.filter(pl.col("actor_class") == "human")
    assert humans.select((pl.col("identity") == "none") & ~pl.col("automated") & ~pl.col("malicious")).to_series().all()
    assert (t.filter(pl.col("identity") == "spoofed")["threats"].list.contains("spoofed_identity")).all()
    assert (
        t.filter(pl.col("identity") == "verified")
        .select(pl.col("agent").is_not_null() & pl.col("operator").is_not_null())
        .to_series()
        .all()
    )


def test_each_scenario_has_its_labels(run: dict) -> None:
    by = {k[0]: v for k, v in run["truth"].group_by("scenario")}
    assert set(by["ai_crawler"]["purpose"]) <= {"ai_training", "ai_search"} and by["ai_crawler"]["ai_driven"].all()
    assert set(by["ai_assistant"]["agent"]) <= {"ChatGPT-User", "Claude-User", "Perplexity-User", "MistralAI-User"}
    assert set(by["human_ai_referral"]["actor_class"]) == {"human"} and not by["human_ai_referral"]["ai_driven"].any()
    assert set(by["agentic_browser"]["identity"]) == {"undeclared"} and set(by["agentic_browser"]["purpose"]) == {
        "ai_agent"
    }
    assert set(by["stealth_scraper"]["actor_class"]) == {"scraper"} and by["stealth_scraper"]["malicious"].all()
    assert by["stealth_scraper"]["threats"].list.contains("abusive_scraping").all()
    assert set(by["spoofed_crawler"]["identity"]) == {"spoofed"}
    assert set(by["spoofed_crawler"]["agent"]) <= {"Googlebot", "GPTBot", "bingbot"}
    assert by["vuln_scanner"]["threats"].list.contains("vuln_scan").all()
    assert set(by["vuln_scanner"]["purpose"]) == {"security_scanner"}
    for scenario, threat in (
        ("credential_stuffing", "credential_stuffing"),
        ("card_testing", "card_testing"),
        ("fake_signup", "fake_signup"),
    ):
        assert set(by[scenario]["actor_class"]) == {"agent"}
        assert by[scenario]["threats"].list.contains(threat).all()
    assert set(by["search_engine"]["purpose"]) == {"search_engine"}
    assert set(by["monitor"]["purpose"]) == {"monitoring"}


def test_behaviour_matches_the_scenarios(run: dict) -> None:
    j = run["joined"]
    assets = pl.col("path").str.contains(r"^/(static|img)/|^/favicon\.ico$")

    def of(scenario: str) -> pl.DataFrame:
        return j.filter(pl.col("scenario") == scenario)

    # People's browsers load page assets; crawlers and assistant fetchers do not; headless skips the favicon.
    assert of("human_browsing").select(assets.mean()).item() > 0.3  # beside pages and analytics beacons
    assert of("human_browsing").filter(pl.col("path") == "/favicon.ico").height > 0
    assert of("ai_crawler").select(assets.sum()).item() == 0
    assert of("ai_assistant").select(assets.sum()).item() == 0
    assert of("ai_crawler").filter(pl.col("path") == "/robots.txt").height > 0
    assert of("headless_automation").filter(pl.col("path") == "/favicon.ico").height == 0
    assert of("agentic_browser").filter(pl.col("path").is_in(["/cart", "/checkout"])).height > 0

    # AI referrals land from an assistant's page or with ChatGPT's utm tag.
    first = of("human_ai_referral").sort("line_no").group_by("session", maintain_order=True).first()
    ai_refs = (
        "https://chatgpt.com/",
        "https://www.perplexity.ai/",
        "https://claude.ai/",
        "https://gemini.google.com/",
        "https://copilot.microsoft.com/",
    )
    landed = pl.col("referer").is_in(ai_refs) | pl.col("query").fill_null("").str.contains("utm_source=chatgpt.com")
    assert first.select(landed.all()).item()
    assert not of("human_browsing").select(pl.col("referer").is_in(ai_refs).any()).item()

    # Attacks hit their endpoints and mostly fail.
    cs = of("credential_stuffing")
    assert set(cs["method"]) == {"POST"} and set(cs["path"]) == {"/login"}
    assert cs.select(pl.col("status").is_in([401, 403]).mean()).item() > 0.8
    pay = of("card_testing").filter(pl.col("path") == "/checkout/payment")
    assert pay.height > 0 and pay.select((pl.col("status") == 402).mean()).item() > 0.7
    assert set(of("fake_signup")["path"]) == {"/signup"}
    # Every scanner request past the home page carries the attack it makes; file and admin probes fail.
    scans = of("vuln_scanner")
    specific = pl.col("threats").list.set_difference(pl.lit(["vuln_scan", "bad_user_agent"])).list.len() > 0
    assert scans.filter(pl.col("path") != "/").select(specific.all()).item()
    sqli = scans.filter(pl.col("threats").list.contains("sqli"))
    assert sqli.select(
        (pl.col("path") + pl.col("query").fill_null(""))
        .str.contains(r"(?i)%27|select|sleep|union|waitfor| or |%20or%20|and%20")
        .all()
    ).item()
    probes = j.filter(
        pl.col("threats").list.set_intersection(pl.lit(["sensitive_file", "admin_probe", "backdoor"])).list.len() > 0
    )
    assert probes.select(pl.col("status").is_in([403, 404]).all()).item()

    # Paced bots: a real browser's requests, and now and then a click on the link to the page
    # already open, which people next to never make.
    def page_views(scenario: str) -> pl.DataFrame:
        return (
            of(scenario)
            .filter(~assets & (pl.col("method") == "GET"))
            .sort("line_no")
            .with_columns(
                target=pl.col("path") + pl.concat_str(pl.lit("?"), pl.col("query")).fill_null(""),
                gap=pl.col("ts").diff().over("session").dt.total_seconds(fractional=True),
            )
            .with_columns(
                again=pl.col("referer").str.replace(r"^https://www\.example-shop\.com", "") == pl.col("target")
            )
        )

    paced, people = page_views("paced_bot"), page_views("human_browsing")
    gets = of("paced_bot").filter(pl.col("method") == "GET")
    assert gets.select(assets.mean()).item() > 0.4 and set(of("paced_bot")["identity"]) == {"undeclared"}
    # The site's analytics beacons, as a browser running its scripts sends them.
    assert of("paced_bot").filter((pl.col("method") == "POST") & (pl.col("path") == "/api/collect")).height > 0
    assert set(of("paced_bot")["actor_class"]) == {"scraper"} and not of("paced_bot")["malicious"].any()
    assert paced["again"].mean() > 0.03 and people["again"].mean() < 0.02

    # Monitors check exactly on schedule.
    for _, mon in of("monitor").group_by("session"):
        gaps = mon.sort("ts")["ts"].diff().drop_nulls().unique()
        assert gaps.len() == 1


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a.log.gz", days=DAYS, scale=SCALE, seed=11)
    b = simulate(tmp_path / "b.log.gz", days=DAYS, scale=SCALE, seed=11)
    c = simulate(tmp_path / "c.log.gz", days=DAYS, scale=SCALE, seed=12)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert pl.read_parquet(a.truth_path).equals(pl.read_parquet(b.truth_path))
    assert a.path.read_bytes() != c.path.read_bytes()


def test_ai_traffic_grows_while_humans_stay_flat(run: dict) -> None:
    per_day = (
        run["truth"]
        .group_by(pl.col("ts").dt.date().alias("day"))
        .agg(
            # Requests without the site's beacons, whose number follows time on page; visits, for
            # people: one long read with beacons every 2 s is hundreds of lines.
            ai=(pl.col("ai_driven") & (pl.col("path") != "/api/collect")).sum(),
            human=pl.col("session").filter(pl.col("actor_class") == "human").n_unique(),
        )
        .sort("day")
    )
    assert per_day.height == DAYS
    first, last = per_day.row(0, named=True), per_day.row(-1, named=True)
    assert last["ai"] > 1.6 * first["ai"]
    assert 0.5 < last["human"] / first["human"] < 2.0


def test_humans_follow_the_day_and_night(tmp_path: Path) -> None:
    s = simulate(tmp_path / "day.log", days=1, scale=1.0, seed=SEED)
    t = pl.read_parquet(s.truth_path).filter(pl.col("scenario") == "human_browsing")
    hours = t.group_by("session").agg(pl.col("ts").min())["ts"].dt.hour()  # when each visit began
    night = hours.is_in([2, 3, 4, 5]).sum()
    afternoon = hours.is_in([14, 15, 16, 17]).sum()
    assert afternoon > 3 * night > 0


def test_range_files_hold_the_declared_bots_addresses(run: dict) -> None:
    folder = run["root"] / "ranges"
    for name in (
        "gptbot.json",
        "searchbot.json",
        "chatgpt-user.json",
        "bots.json",
        "common-crawlers.json",
        "bingbot.json",
        "perplexitybot.json",
        "perplexity-user.json",
        "applebot.json",
        "ccbot.json",
        "duckduckbot.json",
        "mistralai-user-ips.json",
    ):
        doc = json.loads((folder / name).read_text())
        assert doc["creationTime"] and doc["prefixes"]
        assert all(set(p) <= {"ipv4Prefix", "ipv6Prefix"} for p in doc["prefixes"])
    ranges = load_ranges(folder)
    files_of_agent: dict[str, set[str]] = {}
    for src in range_sources():
        for agent in src.agents:
            files_of_agent.setdefault(agent, set()).add(src.file)

    t = run["truth"]
    clients = t.select("client_ip", "agent", "identity", "scenario").unique()
    matched = clients.join(match_ranges(clients["client_ip"], ranges), on="client_ip", how="left")
    verified = matched.filter(pl.col("identity") == "verified")
    assert verified.height > 0 and set(verified["agent"]) >= {"GPTBot", "ClaudeBot", "Googlebot", "ChatGPT-User"}
    for agent, files in verified.select("agent", "range_files").iter_rows():
        assert set(files) & files_of_agent[agent], (agent, files)
    # Everything not claiming a verifiable agent comes from outside every range, except the
    # agentic browsers OpenAI runs from its own addresses.
    outside = matched.filter((pl.col("identity") != "verified") & (pl.col("agent").fill_null("") != "ChatGPT agent"))
    assert outside["range_files"].list.len().max() == 0
    openai_agent = matched.filter(pl.col("agent") == "ChatGPT agent")
    assert openai_agent.height > 0 and openai_agent["range_files"].list.contains("chatgpt-user.json").all()


@pytest.mark.parametrize("kind, marker", [("media", "/search?q="), ("travel", "/flights/search?from=")])
def test_other_site_kinds(kind: str, marker: str, tmp_path: Path) -> None:
    s = simulate(tmp_path / "k.log", site_kind=kind, days=1, scale=0.1, seed=2, site=f"www.example-{kind}.com")
    r = ingest([str(s.path)], tmp_path / "lake")
    assert r.rejects == 0 and r.events == s.lines
    assert marker in s.path.read_text()
    assert set(pl.read_parquet(s.truth_path)["scenario"]) == set(SCENARIOS) - set(OPT_IN)


def test_summary_describes_the_run(run: dict) -> None:
    s = run["summary"]
    assert s.lines == run["truth"].height == sum(s.scenarios.values())
    assert all(s.scenarios[name] > 0 for name in SCENARIOS if name not in OPT_IN)
    assert s.truth_path.name == "access.log.truth.parquet" and s.bytes == s.path.stat().st_size
    text = s.describe()
    assert "\n" not in text and f"{s.lines:,} lines" in text


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="format"):
        simulate(tmp_path / "x.log", fmt="syslog")
    with pytest.raises(OptionError, match="site kind"):
        simulate(tmp_path / "x.log", site_kind="bank")
    assert not (tmp_path / "x.log").exists()


def test_visit_lengths_have_a_long_tail_and_bots_pace_irregularly_too(tmp_path: Path) -> None:
    """People's visits run from one page to dozens (the law of surfing's long tail), and evasive
    bots do not all sleep uniformly: some wait Poisson-like, irregular yet seldom a long read."""
    s = simulate(tmp_path / "a.log", days=7, scale=1.0, seed=5, progress=False)
    truth = pl.read_parquet(s.truth_path)
    pages = truth.filter(
        pl.col("method") == "GET", ~pl.col("path").str.contains(r"^/(static|img|api)/|^/favicon\.ico$")
    )
    per = (
        pages.sort("ts")
        .group_by("scenario", "session")
        .agg(n=pl.len(), gap=pl.col("ts").diff().dt.total_milliseconds().drop_nulls() / 1000)
        .with_columns(cv=pl.col("gap").list.std() / pl.col("gap").list.mean(), longest=pl.col("gap").list.max())
    )
    people = per.filter(pl.col("scenario") == "human_browsing")
    assert people.filter(pl.col("n") == 1).height > people.height / 4, "many visits are one page"
    assert people["n"].max() > 30, "and a few go on for dozens"
    bots = per.filter(pl.col("scenario") == "paced_bot", pl.col("n") >= 8)
    # Most never read a page for long: those copying people's reading times do, as do a few
    # Poisson-paced ones.
    assert bots.filter(pl.col("longest") > 47).height < bots.height / 2
    quick = bots.filter(pl.col("longest") < 60)
    assert quick.filter(pl.col("cv") > 0.7).height >= 3 and quick.filter(pl.col("cv") < 0.6).height >= 20


# -- families of clients and site layouts ------------------------------------------------------

ASSET = pl.col("path").str.contains(r"^/(static|img)/[a-z]|^/favicon\.ico$")  # not a traversal probe
API = pl.col("path").str.starts_with("/api/") & (pl.col("path") != "/api/collect")  # beacons apart
PAGE = ~ASSET & ~pl.col("path").str.starts_with("/api/") & (pl.col("method") == "GET")
SEARCH_ENGINES = r"^https://(www\.google\.|www\.bing\.com|duckduckgo\.com|search\.yahoo\.com|www\.ecosia\.org)"


def lines_of(s: SimulateSummary) -> pl.DataFrame:
    """The truth of a combined log with each line's referrer (the site's own as a path)."""
    log = pl.read_csv(s.path, has_header=False, separator="\x01", quote_char=None, new_columns=["line"])
    referer = log["line"].str.split('"').list.get(3)
    return (
        pl.read_parquet(s.truth_path)
        .with_columns(referer=referer.str.replace(r"^https://www\.example-[a-z]+\.com", ""))
        .with_columns(client=pl.concat_str("client_ip", pl.lit(" "), "user_agent"))
    )


def page_views(t: pl.DataFrame) -> pl.DataFrame:
    """Page views in visit order, with the two pages before each and the gap since the last."""
    return (
        t.filter(PAGE)
        .sort("ts", "line_no")
        .with_columns(
            p1=pl.col("path").shift(1).over("session"),
            p2=pl.col("path").shift(2).over("session"),
            gap=pl.col("ts").diff().over("session").dt.total_milliseconds() / 1000,
        )
    )


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three days of the default mix (every family), and logs of a few families alone."""
    root = tmp_path_factory.mktemp("families")
    out = {"all": simulate(root / "all.log", days=3, scale=0.5, seed=21, progress=False)}
    for name, fams in {
        "tabs": ["human:tab_opener"],
        "back": ["human:back_button", "bot:humanised_automation"],
        "pace": ["human:slow_reader", "human:fast_skimmer", "human:linear_reader", "human:search_driven"],
        "shared": ["human:office_proxy", "human:carrier_nat", "human:mobile_cached"],
        "shop": ["human:returning_shopper", "human:spa_user"],
    }.items():
        out[name] = simulate(root / f"{name}.log", days=5, scale=0.4, seed=22, families=fams, progress=False)
    return {k: (s, lines_of(s)) for k, s in out.items()}


def test_every_family_is_in_the_truth_and_each_scenario_keeps_its_family(mix: dict) -> None:
    s, t = mix["all"]
    assert set(t["family"]) == set(FAMILIES) == set(s.families) and all(s.families.values())
    assert sum(s.families.values()) == s.lines and set(t["site_layout"]) == {"origin"}
    kinds = t.select("scenario", "family", "actor_class").unique()
    for scenario, fams in FAMILY_OF.items():
        made = set(kinds.filter(pl.col("scenario") == scenario)["family"])
        assert made == (set() if scenario in OPT_IN else set(fams)), scenario
    people = kinds.filter(pl.col("family").str.starts_with("human:"))
    assert set(people["actor_class"]) == {"human"}
    assert set(kinds.filter(pl.col("family").str.starts_with("bot:"))["actor_class"]) <= {"crawler", "scraper", "agent"}


def test_each_family_alone_makes_a_log_of_its_own(tmp_path: Path) -> None:
    for family in FAMILIES:
        s = simulate(tmp_path / "one.log", days=1, scale=0.1, seed=4, families=[family], progress=False)
        assert s.lines > 0 and set(pl.read_parquet(s.truth_path)["family"]) == {family}, family


def test_families_can_be_chosen_and_left_out(mix: dict, tmp_path: Path) -> None:
    s, t = mix["tabs"]
    assert set(t["family"]) == {"human:tab_opener"} and set(s.families) == {"human:tab_opener"}
    # The family chosen alone makes as many visits as all people do in the mix.
    visits = t["session"].n_unique() / 5 / 0.4
    assert 250 < visits < 450
    both = simulate(tmp_path / "x.log", days=1, scale=0.2, seed=3, families="human:spa_user,bot:paced_crawler")
    assert set(pl.read_parquet(both.truth_path)["family"]) == {"human:spa_user", "bot:paced_crawler"}
    but = simulate(tmp_path / "y.log", days=1, scale=0.2, seed=3, families="-human:tab_opener,-bot")
    assert set(pl.read_parquet(but.truth_path)["family"]) == set(HUMAN_FAMILIES) - {"human:tab_opener"} | {
        "human:ai_referral"
    }
    assert select_families(["bot", "-bot:monitor"]) == tuple(
        f for f in FAMILIES if f.startswith("bot:") and f != "bot:monitor"
    )
    for bad in ("human:robot", "", "-human,-bot"):
        with pytest.raises(OptionError, match="famil"):
            simulate(tmp_path / "z.log", days=1, scale=0.1, families=bad)
    with pytest.raises(OptionError, match="site layout"):
        simulate(tmp_path / "z.log", days=1, scale=0.1, site_layout="edge")


def test_tab_openers_open_items_from_one_list_within_seconds_and_never_go_back(mix: dict) -> None:
    _, t = mix["tabs"]
    pv = page_views(t)
    # Two or more items named the same list as referrer, seconds apart: opened in tabs.
    bursts = (
        pv.filter(pl.col("referer") != "-")
        .group_by("session", "referer")
        .agg(n=pl.len(), span=(pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds(fractional=True))
        .filter(pl.col("n") >= 2, pl.col("span") <= 5 * (pl.col("n") - 1))
    )
    longer = pv.group_by("session").len().filter(pl.col("len") >= 3)["session"]
    assert bursts["session"].n_unique() > 0.4 * longer.len()
    # The list stays open in its tab: the page after its items is never the list again.
    assert pv.select(((pl.col("path") == pl.col("p2")) & (pl.col("path") != pl.col("p1"))).mean()).item() < 0.01
    came_from = pl.col("referer").shift(1).over("session")
    assert pv.select((pl.col("path") == came_from).sum()).item() == 0


def test_people_go_back_to_the_list_and_bots_walk_on(mix: dict) -> None:
    """Back-button users read round a list, going back to it for the next item (re-requested, or
    from the cache: then only the next page's referrer shows it); a bot following random links
    seldom comes back. Counted over the pages that have two pages before them in the visit."""
    _, t = mix["back"]
    steps = (
        page_views(t)
        .filter(pl.col("p2").is_not_null())
        .with_columns(
            again=(pl.col("path") == pl.col("p2")) & (pl.col("path") != pl.col("p1")),
            cached=(pl.col("referer") != pl.col("p1")) & (pl.col("referer") == pl.col("p2")),
        )
        .group_by("family")
        .agg(back=(pl.col("again") | pl.col("cached")).mean(), cached=pl.col("cached").mean())
    )
    share = {r["family"]: r for r in steps.iter_rows(named=True)}
    people, bots = share["human:back_button"], share["bot:humanised_automation"]
    assert 0.1 < people["back"] < 0.35 and bots["back"] < 0.08, share
    assert people["cached"] > 0.5 * people["back"], "most returns leave only a referrer"
    assert bots["cached"] == 0, "a bot's link back is a request"


def test_linear_readers_follow_links_forward_only(mix: dict) -> None:
    _, readers = mix["pace"]
    linear = readers.filter(pl.col("family") == "human:linear_reader")
    forms = linear.filter(pl.col("method") == "POST")["path"].unique()  # a form's answer names the form
    steps = page_views(linear).filter(pl.col("p1").is_not_null(), ~pl.col("referer").is_in(forms.implode()))
    assert steps.height > 100 and (steps["referer"] == steps["p1"]).all()


def test_search_driven_visitors_land_deep_from_a_search_engine_and_read_a_few_pages(mix: dict) -> None:
    _, t = mix["pace"]
    pv = page_views(t.filter(pl.col("family") == "human:search_driven"))
    visits = pv.group_by("session").agg(
        n=pl.len(),
        entry=pl.col("referer").first(),
        landing=pl.col("path").first(),
        search=pl.col("path").str.starts_with("/search").any(),
    )
    assert visits.select(pl.col("entry").str.contains(SEARCH_ENGINES).all()).item()
    assert visits.select((pl.col("landing") != "/").mean()).item() > 0.9
    assert visits["n"].max() == 3 and visits.select((pl.col("n") == 1).mean()).item() > 0.35
    assert visits["search"].sum() > 0  # some use the site's search


def test_slow_readers_read_for_longer_than_fast_skimmers(mix: dict) -> None:
    _, t = mix["pace"]
    # Time on an item's page: from it to the page its link leads to.
    read = page_views(t).filter(pl.col("p1").str.starts_with("/p/"), pl.col("referer") == pl.col("p1"))
    gaps = read.group_by("family").agg(median=pl.col("gap").median(), p90=pl.col("gap").quantile(0.9))
    g = {r["family"]: r for r in gaps.iter_rows(named=True)}
    slow, fast = g["human:slow_reader"], g["human:fast_skimmer"]
    assert slow["median"] > 2 * fast["median"] and fast["median"] < 10
    # Weibull dwell with a shape below 1: a long tail beside the short reads.
    assert slow["p90"] > 4 * slow["median"] and fast["p90"] > 4 * fast["median"]


def test_returning_shoppers_come_back_on_other_days_sign_in_and_buy(mix: dict) -> None:
    _, t = mix["shop"]
    shop = t.filter(pl.col("family") == "human:returning_shopper")
    clients = shop.group_by("client").agg(
        days=pl.col("ts").dt.date().n_unique(),
        visits=pl.col("session").n_unique(),
        login=((pl.col("path") == "/login") & (pl.col("method") == "POST")).any(),
        bought=(pl.col("path") == "/checkout/confirmation").any(),
    )
    loyal = clients.filter(pl.col("days") >= 2, pl.col("login"), pl.col("bought"))
    assert loyal.height >= 3
    purchase = (
        page_views(shop).group_by("session").agg(n=pl.len(), bought=(pl.col("path") == "/checkout/confirmation").any())
    )
    n = purchase.filter(pl.col("bought"))["n"]
    assert 8 <= n.min() and n.max() <= 30 and 14 <= n.mean() <= 26, n.describe()


def test_many_people_share_one_address_behind_an_office_proxy_or_a_carrier_nat(mix: dict) -> None:
    _, t = mix["shared"]
    per_ip = (
        t.filter(PAGE)
        .group_by("family", "client_ip", pl.col("ts").dt.date().alias("day"))
        .agg(
            visits=pl.col("session").n_unique(),
            uas=pl.col("user_agent").n_unique(),
            first=pl.col("ts").min(),
            last=pl.col("ts").max(),
        )
    )
    nat = per_ip.filter(pl.col("family") == "human:carrier_nat")
    assert nat["visits"].max() >= 4 and nat.filter(pl.col("uas") >= 3).height > 0
    office = per_ip.filter(pl.col("family") == "human:office_proxy")
    assert office["visits"].max() >= 5
    # Colleagues' visits overlap in time, in working hours.
    assert office.select(((pl.col("last") - pl.col("first")).dt.total_hours() >= 2).any()).item()
    began = t.filter(pl.col("family") == "human:office_proxy").group_by("session").agg(pl.col("ts").min())
    assert began["ts"].dt.hour().is_between(7, 16).all()
    # Apart from them, an address is one person's.
    own = per_ip.filter(pl.col("family") == "human:mobile_cached")
    assert own["visits"].max() <= 2


def test_phones_with_a_warm_cache_fetch_assets_on_the_first_view_only(mix: dict) -> None:
    _, t = mix["shared"]
    phones = t.filter(pl.col("family") == "human:mobile_cached")
    visits = phones["session"].n_unique()
    css_js = (
        phones.filter(pl.col("path").str.contains(r"^/static/"))
        .group_by("session")
        .agg(fetched=(pl.col("status") == 200).any())
    )
    # Most have them cached: revalidated (304) or not asked for at all.
    assert css_js["fetched"].sum() < 0.5 * visits and css_js.height < 0.85 * visits
    pv = page_views(phones).with_columns(first=pl.col("p1").is_null())
    shown = phones.filter(ASSET & pl.col("path").str.starts_with("/img/")).join(
        pv.select("session", pl.col("path").alias("referer"), "first"), on=["session", "referer"]
    )
    assert shown.filter(~pl.col("first")).height < 0.15 * shown.height


def test_a_cdn_site_logs_no_assets_for_anyone_and_an_app_logs_api_calls(tmp_path: Path) -> None:
    cdn = simulate(tmp_path / "cdn.log", days=1, scale=0.3, seed=8, site_layout="cdn", progress=False)
    t = pl.read_parquet(cdn.truth_path)
    assert t.filter(ASSET).height == 0 and t.filter(PAGE & (pl.col("actor_class") == "human")).height > 100
    assert set(t["site_layout"]) == {"cdn"} and cdn.site_layout == "cdn" and "cdn layout" in cdn.describe()
    spa = simulate(tmp_path / "spa.log", days=1, scale=0.3, seed=8, site_layout="spa", progress=False)
    t = pl.read_parquet(spa.truth_path).filter(pl.col("actor_class") == "human")
    assert t.filter(API).height > 2 * t.filter(PAGE).height
    # Each screen's calls name it as referrer; the document and its css/js load once a visit.
    s = lines_of(spa).filter(pl.col("family") != "human:ai_referral", pl.col("actor_class") == "human")
    assert s.filter(API).select(pl.col("referer").str.starts_with("/").all()).item()
    per_visit = s.filter(pl.col("path").str.ends_with(".css")).group_by("session").len()
    assert per_visit["len"].max() <= 4  # two stylesheets, on the first page (and a tab's)


def test_app_users_on_an_ordinary_site_make_api_calls_per_screen(mix: dict) -> None:
    _, t = mix["shop"]
    app = t.filter(pl.col("family") == "human:spa_user")
    assert app.filter(API).height > 2 * app.filter(PAGE).height
    calls = app.filter(API).group_by("session", "referer").len()["len"]
    assert calls.min() >= 2 and calls.max() <= 20


def test_bot_families_paced_crawlers_and_scrapers_behind_residential_proxies(mix: dict) -> None:
    _, t = mix["all"]
    crawl = page_views(t.filter(pl.col("family") == "bot:paced_crawler"))
    assert t.filter((pl.col("family") == "bot:paced_crawler") & ASSET).height == 0
    assert set(crawl["actor_class"]) == {"crawler"} and set(crawl["identity"]) == {"undeclared"}
    # A delay randomised 0.5-1.5x: regular, unlike a person.
    cv = crawl.group_by("session").agg(cv=pl.col("gap").std() / pl.col("gap").mean())["cv"]
    assert cv.max() < 0.45
    proxy = t.filter(pl.col("scenario") == "proxy_scraper")
    assert proxy.filter(ASSET).height == 0 and proxy["threats"].list.contains("abusive_scraping").all()
    per_ip = proxy.group_by("session", "client_ip").len()
    assert per_ip["len"].max() <= 10 and per_ip["client_ip"].n_unique() > 20


def test_the_command_line_chooses_families_and_layout(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from trafficlens.cli import main

    out = tmp_path / "c.log"
    args = ["simulate", "--out", str(out), "--days", "1", "--scale", "0.2", "--no-progress"]
    ok = CliRunner().invoke(main, [*args, "--families", "human:tab_opener,bot:monitor", "--site-layout", "cdn"])
    assert ok.exit_code == 0 and "cdn layout" in ok.output
    t = pl.read_parquet(str(out) + ".truth.parquet")
    assert set(t["family"]) == {"human:tab_opener", "bot:monitor"} and set(t["site_layout"]) == {"cdn"}
    bad = CliRunner().invoke(main, [*args, "--families", "human:robot"])
    assert bad.exit_code != 0 and "unknown family 'human:robot'" in bad.output and "Traceback" not in bad.output
