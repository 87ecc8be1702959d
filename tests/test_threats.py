"""Threats: attack rules (each rule's examples and kind), what a site serves, behavioural threats
in time windows, robots.txt."""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from trafficlens.classify.pipeline import classify
from trafficlens.classify.threats import ThreatConfig, field_sql, load_attack_rules, parse_robots, rules_path
from trafficlens.classify.threats.behavioural import (
    BEHAVIOURAL_THREATS,
    Inputs,
    ThreatSQL,
    behavioural_sql,
    card_testing,
    client_rows_sql,
    dos,
    fake_signup,
    ua_rotation,
)
from trafficlens.errors import CatalogueError
from trafficlens.ingest import ingest
from trafficlens.schema import THREATS

RULES = yaml.safe_load(rules_path().read_text())
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


@functools.cache
def _value(field: str, raw: str) -> str:
    """The rule field computed from a raw example, exactly as the pipeline computes it."""
    if field in ("target", "path", "request_line"):
        path, _, query = raw.partition("?")
        method = None if field == "request_line" else "GET"
        row = {
            "path": raw if field == "request_line" else path,
            "query": (query or None) if field != "request_line" else None,
            "method": method,
            "user_agent": None,
        }
    else:
        row = {
            "path": "/",
            "query": None,
            "method": raw if field == "method" else "GET",
            "user_agent": raw if field == "user_agent" else None,
        }
    row |= {"host": None, "format": "combined", "protocol": raw if field == "protocol" else "HTTP/1.1"}
    con = duckdb.connect()
    con.register(
        "t",
        pl.DataFrame(
            [row],
            schema={
                "path": pl.String,
                "query": pl.String,
                "method": pl.String,
                "user_agent": pl.String,
                "host": pl.String,
                "format": pl.String,
                "protocol": pl.String,
            },
        ),
    )
    return con.execute(f"SELECT {field_sql(field)} FROM t").fetchone()[0]


def test_rules_file_follows_the_schema() -> None:
    rules = load_attack_rules()
    assert len(rules) >= 100
    assert {r.threat for r in rules} <= set(THREATS)
    for raw in RULES:
        assert raw.get("matches") and raw.get("non_matches"), raw["id"]


CASES = [(r["id"], r["field"], r["pattern"], ex, True) for r in RULES for ex in r["matches"]] + [
    (r["id"], r["field"], r["pattern"], ex, False) for r in RULES for ex in r["non_matches"]
]


@pytest.mark.parametrize("rid, field, pattern, example, hit", CASES, ids=[f"{c[0]}:{i}" for i, c in enumerate(CASES)])
def test_each_rule_example(rid: str, field: str, pattern: str, example: str, hit: bool) -> None:
    value = _value(field, example)
    got = duckdb.execute("SELECT regexp_matches(?, ?)", [value, pattern]).fetchone()[0]
    assert got == hit, f"{rid}: {example!r} (as {value!r}) should {'' if hit else 'not '}match"


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/products/red-shoes-123?color=red&size=42",
        "/search?q=union+square+hotels",
        "/blog/2025/10/how-to-order",
        "/api/products?page=2&sort=price",
        "/static/app.3f2a.js",
        "/checkout/payment",
        "/account/orders",
        "/login",
        "/robots.txt",
        "/.well-known/security.txt",
        "/hotels/paris?checkin=2025-10-10&checkout=2025-10-12",
    ],
)
def test_benign_requests_match_no_rule(target: str) -> None:
    rules = [r for r in RULES if r["field"] in ("target", "path")]
    hits = duckdb.execute(
        "SELECT id FROM (SELECT unnest(?) AS id, unnest(?) AS v, unnest(?) AS p) WHERE regexp_matches(v, p)",
        [[r["id"] for r in rules], [_value(r["field"], target) for r in rules], [r["pattern"] for r in rules]],
    ).fetchall()
    assert rules and hits == []


# --- behavioural threats ---------------------------------------------------------------------------


def _line(ip: str, t: int, method: str, path: str, status: int, ua: str = CHROME) -> str:
    h, m, s = t // 3600, t // 60 % 60, t % 60
    return f'{ip} - - [10/Oct/2025:{h:02d}:{m:02d}:{s:02d} +0000] "{method} {path} HTTP/1.1" {status} 512 "-" "{ua}"'


def _human(ip: str, start: int) -> list[str]:
    out = []
    for k, page in enumerate(["/", "/c/shoes", "/p/red-shoe-12", "/cart"]):
        t = start + k * 45
        out += [
            _line(ip, t, "GET", page, 200),
            _line(ip, t + 1, "GET", "/static/site.css", 200),
            _line(ip, t + 1, "GET", "/favicon.ico", 200),
        ]
    return out


def _clients(tmp: Path, lines: list[str], threats: Path | None = None) -> dict[str, dict]:
    """`lines` (in any order) as a log, ingested and classified: each client's row by address."""
    log = tmp / "access.log"
    log.write_text("\n".join(sorted(lines, key=lambda x: x.split("[", 1)[1])) + "\n")
    lake = tmp / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, threats=threats, progress=False)
    return {r["client_ip"]: r for r in pl.read_parquet(lake / "clients" / "*.parquet").iter_rows(named=True)}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("threats")
    lines: list[str] = []
    lines += [_line("100.64.1.1", 3600 + i * 5, "POST", "/login", 401) for i in range(30)]  # brute force
    # A stuffing campaign: 25 addresses, 3 failed logins each, in one 10-minute window.
    lines += [_line(f"100.65.0.{a}", 7200 + a * 10 + k, "POST", "/login", 401) for a in range(25) for k in range(3)]
    lines += [_line("100.64.2.2", 9000 + i * 20, "POST", "/checkout/payment", 402) for i in range(8)]  # cards
    lines += [_line("100.64.3.3", 10000 + i * 30, "POST", "/signup", 200) for i in range(4)]  # sign-ups
    probes = [
        "/.env",
        "/.git/config",
        "/wp-config.php.bak",
        "/phpinfo.php",
        "/admin/",
        "/phpmyadmin/",
        "/?id=1%27%20or%20%271%27=%271",
        "/etc/passwd",
        "/cgi-bin/.%2e/.%2e/bin/sh",
        "/shell.php",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    ]
    lines += [_line("100.64.4.4", 12000 + i, "GET", p, 404) for i, p in enumerate(probes)]  # scanner
    lines += [_line("100.64.5.5", 14000 + i // 10, "GET", f"/p/item-{i}", 200) for i in range(400)]  # flood+scrape
    uas = [CHROME.replace("131", str(v)) for v in range(100, 107)]
    lines += [_line("100.64.6.6", 20000 + i * 30, "GET", f"/p/x-{i}", 200, uas[i % 7]) for i in range(21)]  # rotation
    lines += [
        _line("100.64.7.7", 21000 + i, "GET", f"/private/{i}", 200, "Mozilla/5.0 (compatible; AcmeIndexBot/1.0)")
        for i in range(3)
    ]  # robots
    # A login form that answers failures with 200, posted 6 times in 20 s.
    lines += [_line("100.64.8.1", 40000 + i * 3, "POST", "/apps/login", 200) for i in range(6)]
    # HTTP Basic authentication refused 6 times.
    lines += [_line("100.64.8.2", 41000 + i * 20, "GET", "/", 401, "curl/8.5.0") for i in range(6)]
    # Cache busting: a new bare token as query on every request.
    lines += [_line("100.64.8.3", 42000 + i // 20, "GET", f"/?{98765432100 + i * 7919}", 200) for i in range(30)]
    # A rotating-proxy sweep: 12 addresses of one /16, product pages only, a pool of 6 browser UAs.
    pool = [CHROME.replace("131", str(v)) for v in range(120, 126)]
    lines += [
        _line(f"100.70.{a}.{a + 1}", 50000 + a * 10 + k, "GET", f"/p/sweep-{a}-{k}", 200, pool[(a + k) % 6])
        for a in range(12)
        for k in range(10)
    ]
    # A feed reader whose user agent carries its subscriber count: many user agents, one reader.
    lines += [
        _line(
            "100.64.8.4",
            43000 + i * 60,
            "GET",
            "/feed.xml",
            200,
            f"Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; {10 + i} subscribers; feed-id=123)",
        )
        for i in range(7)
    ]
    lines += _human("100.64.9.9", 30000) + _human("100.64.9.10", 30500)
    # A person asked for a password once, who types it right the second time.
    lines += [
        _line("100.64.9.11", 31000, "GET", "/members/", 401),
        _line("100.64.9.11", 31010, "GET", "/members/", 200),
    ]
    log = tmp / "attack.log"
    log.write_text("\n".join(sorted(lines, key=lambda x: x.split("[", 1)[1])) + "\n")
    robots = tmp / "robots.txt"
    robots.write_text("User-agent: *\nDisallow: /private/\n")
    lake = tmp / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, robots=robots, progress=False)
    df = pl.read_parquet(lake / "clients" / "*.parquet")
    return {r["client_ip"]: r for r in df.iter_rows(named=True)} | {"_lake": {"path": lake}}


@pytest.mark.parametrize(
    "ip, threat, reason",
    [
        ("100.64.1.1", "credential_stuffing", "threat:brute_force:failed_logins="),
        ("100.65.0.7", "credential_stuffing", "threat:credential_stuffing:campaign>="),
        ("100.64.2.2", "card_testing", "threat:card_testing:payment_attempts=8"),
        ("100.64.3.3", "fake_signup", "threat:fake_signup:signups=4"),
        ("100.64.4.4", "vuln_scan", "threat:vuln_scan:attack_paths="),
        ("100.64.4.4", "sensitive_file", "attack:"),
        ("100.64.5.5", "dos", "threat:dos:requests="),
        ("100.64.5.5", "abusive_scraping", "threat:abusive_scraping:pages=400"),
        ("100.64.6.6", "ua_rotation", "threat:ua_rotation:user_agents=7"),
        ("100.64.7.7", "robots_violation", "robots:disallowed:*:requests=3"),
        ("100.64.8.1", "credential_stuffing", "threat:brute_force:login_posts=6/1min"),
        ("100.64.8.2", "credential_stuffing", "threat:brute_force:http_auth_failures=6/"),
        ("100.64.8.3", "dos", "threat:dos:cache_bypass="),
        ("100.70.3.4", "abusive_scraping", "threat:abusive_scraping:network=100.70.0.0/16"),
        ("100.70.3.4", "ua_rotation", "threat:ua_rotation:network=100.70.0.0/16,user_agents=6"),
    ],
)
def test_behavioural_threats_are_found_with_reasons(attacked: dict, ip: str, threat: str, reason: str) -> None:
    c = attacked[ip]
    assert threat in c["threats"], (c["threats"], c["reasons"])
    assert any(r.startswith(reason) for r in c["reasons"]), c["reasons"]


def test_a_sweeping_network_counts_only_where_the_log_holds_the_sites_assets(tmp_path: Path) -> None:
    """Where a CDN serves the assets, every person's visit is bare but for its referrer, and an
    ISP's /16 holds people landing from bookmarks beside the proxies sweeping it: the network
    rules say nothing there. Where the site serves its own, the same sweep is found."""
    pool = [CHROME.replace("131", str(v)) for v in range(120, 126)]
    sweep = [
        _line(f"100.70.{a}.{a + 1}", 50000 + a * 10 + k, "GET", f"/p/sweep-{a}-{k}", 200, pool[(a + k) % 6])
        for a in range(12)
        for k in range(10)
    ]
    people = [line for i in range(6) for line in _human(f"100.64.9.{i + 1}", 30000 + 600 * i)]
    cdn = [line for line in people if '"GET /static/' not in line and '"GET /favicon' not in line]
    for name, lines, found in (("served", people, True), ("cdn", cdn, False)):
        (tmp_path / name).mkdir()
        clients = _clients(tmp_path / name, sweep + lines)
        for a in (0, 5, 11):
            reasons = clients[f"100.70.{a}.{a + 1}"]["reasons"]
            assert any(r.startswith("threat:abusive_scraping:network=100.70.0.0/16") for r in reasons) is found, name
            assert any(r.startswith("threat:ua_rotation:network=100.70.0.0/16") for r in reasons) is found, name


def _swarm_lake(tmp: Path, threats: Path | None = None) -> dict[str, dict]:
    """A day of a shop: 40 people loading pages and assets; a swarm of 30 residential addresses
    (each of another /16) arriving within ten minutes, one to three product pages each, all
    different, no asset, no referrer; 30 people brought at once by a newsletter to its two
    articles, bare too (they read one page); 12 bare one-page visits scattered over the day."""
    lines: list[str] = []
    for i in range(40):
        lines += _human(f"100.64.20.{i}", 3600 + i * 600)
    swarm = [f"{11 + a * 7}.{(a * 37) % 250}.{a % 9}.{a + 2}" for a in range(30)]
    for a, ip in enumerate(swarm):
        lines += [_line(ip, 7200 + a * 15 + k * 4, "GET", f"/p/item-{a}-{k}", 200) for k in range(1 + a % 3)]
    news = [f"100.66.{i}.7" for i in range(30)]
    lines += [_line(ip, 18000 + i * 17, "GET", f"/p/news-{i % 2}", 200) for i, ip in enumerate(news)]
    lines += [_line(f"100.67.{i}.8", 1800 + i * 7000, "GET", f"/p/old-{i}", 200) for i in range(12)]
    return {"swarm": swarm, "news": news} | _clients(tmp, lines, threats)


def test_a_swarm_of_residential_addresses_is_scraping_and_a_newsletter_crowd_is_not(tmp_path: Path) -> None:
    c = _swarm_lake(tmp_path)
    for ip in c["swarm"]:
        assert "abusive_scraping" in c[ip]["threats"] and c[ip]["actor_class"] == "scraper", c[ip]["reasons"]
        assert any(r.startswith("threat:abusive_scraping:swarm=30_addresses/10min") for r in c[ip]["reasons"])
    people = c["news"] + [f"100.64.20.{i}" for i in range(40)] + [f"100.67.{i}.8" for i in range(12)]
    for ip in people:
        assert c[ip]["threats"] == [] and c[ip]["actor_class"] == "human", (ip, c[ip]["reasons"])


def test_a_newsletter_crowd_is_a_swarm_only_to_a_site_that_asks_for_no_spread(tmp_path: Path) -> None:
    # The spread of pages is what tells the crowd from the swarm: without it, the crowd is one.
    conf = tmp_path / "threats.yml"
    conf.write_text("swarm_spread: 0\n")
    c = _swarm_lake(tmp_path, conf)
    assert all("abusive_scraping" in c[ip]["threats"] for ip in c["news"])


def test_a_sign_up_farm_across_a_clock_hour_is_found_and_people_signing_up_are_not(tmp_path: Path) -> None:
    """Five addresses each read one page and post the sign-up form 4 s after loading it, no
    asset, between 10:40 and 11:35 (no clock hour holds five); five people sign up at the same
    times, reading a page first and typing for 40 s, or letting autofill post in 4 s but loading
    the page's assets."""
    lines: list[str] = []
    farm = [f"100.80.{a}.9" for a in range(5)]
    slow = [f"100.81.{a}.9" for a in range(5)]
    quick = [f"100.82.{a}.9" for a in range(5)]
    for a, start in enumerate(38400 + m * 60 for m in (0, 15, 25, 40, 55)):
        lines += [
            _line(farm[a], start, "GET", "/blog/welcome", 200),
            _line(farm[a], start + 2, "GET", "/join", 200),
            _line(farm[a], start + 6, "POST", "/join", 302),
        ]
        for ip, fill in ((slow[a], 40), (quick[a], 4)):
            lines += [_line(ip, start - 30, "GET", "/blog/welcome", 200)] if ip in slow else []
            lines += [_line(ip, start + 1, "GET", "/join", 200)]
            lines += [_line(ip, start + 2, "GET", "/static/site.css", 200)] if ip in quick else []
            lines += [_line(ip, start + 1 + fill, "POST", "/join", 302)]
    for i in range(10):
        lines += _human(f"100.64.21.{i}", 30000 + i * 900)
    c = _clients(tmp_path, lines)
    for ip in farm:
        assert "fake_signup" in c[ip]["threats"], (ip, c[ip]["reasons"])
        assert "threat:fake_signup:burst>=5_from_3+_addresses/60min" in c[ip]["reasons"]
    for ip in slow + quick:
        assert c[ip]["threats"] == [] and c[ip]["actor_class"] == "human", (ip, c[ip]["reasons"])


def test_threats_set_class_and_malice(attacked: dict) -> None:
    assert attacked["100.64.1.1"]["actor_class"] == "agent" and attacked["100.64.1.1"]["malicious"]
    assert attacked["100.64.1.1"]["identity"] == "undeclared" and not attacked["100.64.1.1"]["ai_driven"]
    assert (
        attacked["100.64.4.4"]["actor_class"] == "crawler" and attacked["100.64.4.4"]["purpose"] == "security_scanner"
    )
    # A robots.txt violation alone is recorded, not malicious.
    assert attacked["100.64.7.7"]["threats"] == ["robots_violation"] and not attacked["100.64.7.7"]["malicious"]


def test_people_shopping_are_not_threats(attacked: dict) -> None:
    for ip in ("100.64.9.9", "100.64.9.10"):
        c = attacked[ip]
        assert c["threats"] == [] and not c["malicious"] and c["actor_class"] == "human", c["reasons"]
    assert attacked["100.64.9.11"]["threats"] == []  # one refused password is not brute force
    assert attacked["100.64.8.4"]["threats"] == []  # a feed reader's changing subscriber count


def test_request_rows_carry_their_own_attack(attacked: dict) -> None:
    lake = attacked["_lake"]["path"]
    req = pl.read_parquet(lake / "requests" / "*" / "*.parquet")
    r = req.filter(pl.col("path") == "/.env").row(0, named=True)
    assert r["request_threats"] == ["sensitive_file"] and r["request_reasons"] == ["attack:sf-dotenv"]
    assert "vuln_scan" in r["threats"] and r["malicious"]  # the client's verdict, beside
    # A path robots.txt disallows is the request's own finding too.
    private = req.filter(pl.col("path") == "/private/1").row(0, named=True)
    assert private["request_threats"] == ["robots_violation"]
    assert private["request_reasons"] == ["robots:disallowed:*"]


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    f = tmp_path / "t.yml"
    f.write_text("card_attempts: 20\n")
    assert ThreatConfig.load(f).card_attempts == 20
    f.write_text("card_attempt: 20\n")
    with pytest.raises(CatalogueError, match="unknown setting"):
        ThreatConfig.load(f)


def test_robots_groups_follow_rfc_9309() -> None:
    g = parse_robots("User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n# c\n")
    assert [x.agents for x in g] == [["gptbot", "ccbot"], ["*"]]
    assert g[0].rules == [(False, "/")] and g[1].rules == [(True, "/")]


def test_attack_automation_is_not_taken_for_an_ai_agent() -> None:
    """A browser user agent the behaviour model called an agentic browser, whose request probes
    wp-login.php, is attack automation: the AI-agent guess is withdrawn, and says so."""
    from trafficlens.classify.labels import combine_threats

    labelled = pl.DataFrame(
        {
            "client_id": ["probe", "errand"],
            "agent": [None, None],
            "identity": ["undeclared"] * 2,
            "actor_class": ["agent"] * 2,
            "automated": [True] * 2,
            "purpose": ["ai_agent"] * 2,
            "ai_driven": [True] * 2,
            "threats": [[], []],
            "reasons": [["ua:browser", "behaviour:agentic_browser"]] * 2,
        },
        schema_overrides={"agent": pl.String, "threats": pl.List(pl.String)},
    )
    found = pl.DataFrame({"client_id": ["probe"], "threat": ["admin_probe"], "reason": ["attack:admin-wp-login"]})
    out = {r["client_id"]: r for r in combine_threats(labelled, found).iter_rows(named=True)}
    probe, errand = out["probe"], out["errand"]
    assert (probe["actor_class"], probe["ai_driven"], probe["purpose"], probe["malicious"]) == (
        "agent",
        False,
        "unknown",
        True,
    )
    assert "threat:attack_automation_not_ai_agent" in probe["reasons"] and "attack:admin-wp-login" in probe["reasons"]
    assert (errand["ai_driven"], errand["purpose"], errand["malicious"]) == (True, "ai_agent", False)


# --- one behavioural threat at a time, on a few requests ---------------------------------------------


def _requests(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """A connection holding `reqs` (the rows, each with the columns threats read) and empty tables of
    browsers, tools and request attacks."""
    base = {
        "site": "shop",
        "client_ip": "192.0.2.1",
        "user_agent": CHROME,
        "session_id": None,
        "method": "GET",
        "path": "/",
        "query": None,
        "status": 200,
        "referer": None,
        "page_type": "home",
        "endpoint": None,
        "source": "t.log",
        "us": 0,  # microseconds past `sec`
    }
    text = {c: pl.String for c in ("session_id", "query", "referer", "endpoint")}
    frame = pl.DataFrame([{**base, "line_no": i, **r} for i, r in enumerate(rows)], schema_overrides=text).with_columns(
        ts=pl.datetime(2025, 3, 1, 12, time_zone="UTC") + pl.duration(seconds=pl.col("sec"), microseconds=pl.col("us")),
        session_id=pl.coalesce("session_id", pl.col("client_id") + "-1"),
    )
    con = duckdb.connect()
    con.register("reqs", frame)
    con.execute("CREATE TABLE browsers (client_id VARCHAR)")
    con.execute("CREATE TABLE tools (client_id VARCHAR)")
    con.execute(
        "CREATE TABLE request_attacks (source VARCHAR, line_no BIGINT, client_id VARCHAR, path VARCHAR, "
        "attack_rules VARCHAR[])"
    )
    return con


INPUTS = Inputs(table="reqs", browsers="browsers", tools="tools")


def test_a_sign_up_burst_is_any_hour_holding_five_sessions_and_its_end_is_not_in_it() -> None:
    """Sessions that only post the sign-up form, each from its own address: five within an hour
    (the last a microsecond short of it) are a burst, every one of them, whichever session's hour
    holds them; five whose last comes on the hour are not, and neither is a sixth that only
    windows too thin to count share."""

    def farm(times: list[tuple[int, int]]) -> set[str]:
        rows = [
            {"client_id": f"s{i}", "client_ip": f"192.0.2.{i}", "sec": sec, "us": us}
            | {"method": "POST", "path": "/join", "page_type": "account", "endpoint": "signup", "status": 302}
            for i, (sec, us) in enumerate(times)
        ]
        found = _requests(rows).sql(behavioural_sql(ThreatConfig(), [fake_signup], INPUTS)).pl()
        return set(found.filter(pl.col("reason").str.contains("burst"))["client_id"])

    quarters = [(0, 0), (900, 0), (1800, 0), (2700, 0)]
    assert farm([*quarters, (3600, 0)]) == set()
    assert farm([*quarters, (3599, 999_999), (5400, 0)]) == {"s0", "s1", "s2", "s3", "s4"}


def test_card_testing_alone() -> None:
    rows = [
        {"client_id": "tester", "sec": 30 * i, "method": "POST", "endpoint": "payment", "status": 402 if i else 200}
        for i in range(6)
    ]
    rows.append({"client_id": "buyer", "sec": 10, "method": "POST", "endpoint": "payment", "status": 200})
    con = _requests(rows)
    found = con.sql(behavioural_sql(ThreatConfig(), [card_testing], INPUTS)).pl()
    assert found.rows() == [("tester", "card_testing", "threat:card_testing:payment_attempts=6/10min,declined=0.83")]


def test_dos_alone_finds_floods_and_cache_busting() -> None:
    rows = [{"client_id": "flood", "sec": i % 50} for i in range(8)]
    rows += [{"client_id": "buster", "sec": i, "query": str(10**9 + i)} for i in range(4)]
    rows += [{"client_id": "reader", "sec": 5 * i, "query": f"page={i}"} for i in range(4)]
    con = _requests(rows)
    found = con.sql(behavioural_sql(ThreatConfig(dos_per_minute=8, cache_bypass_per_minute=4), [dos], INPUTS)).pl()
    # Cache busting is listed before floods, as among all threats.
    assert found.rows() == [
        ("buster", "dos", "threat:dos:cache_bypass=4_queries/1min"),
        ("flood", "dos", "threat:dos:requests=8/min"),
    ]


def test_ua_rotation_alone_reads_only_browsers() -> None:
    rows = [{"client_id": f"c{i}", "sec": 60 * i, "user_agent": f"{CHROME} v{i}"} for i in range(5)]
    rows += [
        {"client_id": f"bot{i}", "sec": 60 * i, "user_agent": f"FeedReader/{i}", "client_ip": "192.0.2.9"}
        for i in range(5)
    ]
    con = _requests(rows)
    con.execute("INSERT INTO browsers VALUES ('c0'), ('c1'), ('c2'), ('c3'), ('c4')")
    found = con.sql(behavioural_sql(ThreatConfig(), [ua_rotation], INPUTS)).pl().sort("client_id")
    assert found["client_id"].to_list() == ["c0", "c1", "c2", "c3", "c4"]
    assert set(found["reason"]) == {"threat:ua_rotation:user_agents=5/hour"}


def test_each_threat_alone_finds_what_it_finds_among_all() -> None:
    rows = [
        {"client_id": "tester", "sec": 30 * i, "method": "POST", "endpoint": "payment", "status": 402} for i in range(5)
    ]
    rows += [
        {
            "client_id": "guesser",
            "sec": 5 * i,
            "method": "POST",
            "endpoint": "login",
            "status": 401,
            "client_ip": "192.0.2.7",
        }
        for i in range(12)
    ]
    rows += [{"client_id": "flood", "sec": i % 50, "client_ip": "192.0.2.8"} for i in range(300)]
    con = _requests(rows)
    cfg = ThreatConfig()
    every = con.sql(behavioural_sql(cfg, BEHAVIOURAL_THREATS, INPUTS)).pl()
    assert set(every["threat"]) == {"card_testing", "credential_stuffing", "dos"}
    for build in BEHAVIOURAL_THREATS:
        alone = con.sql(behavioural_sql(cfg, [build], INPUTS)).pl()
        assert sorted(alone.rows()) == sorted(every.filter(pl.col("threat") == build.__name__).rows())


def _groups_of_clients() -> list[dict]:
    """Requests showing every threat of a group of clients, and people among them."""
    rows: list[dict] = []
    # A credential-stuffing campaign: five addresses in an hour, each only posting failed logins.
    for i in range(6):
        for k in range(2):
            rows.append(
                {"client_id": f"stuff{i}", "client_ip": f"198.51.100.{i}", "sec": 60 * i + k}
                | {"method": "POST", "path": "/login", "endpoint": "login", "status": 401}
            )
    # A sign-up farm: five sessions from five addresses touching nothing but the form.
    for i in range(5):
        rows.append(
            {"client_id": f"farm{i}", "client_ip": f"203.0.113.{i}", "sec": 600 * i}
            | {"method": "POST", "path": "/join", "page_type": "account", "endpoint": "signup", "status": 302}
        )
    # A swarm: 25 bare browsers from as many networks in ten minutes, each on a page of its own.
    for i in range(25):
        rows.append(
            {"client_id": f"swarm{i}", "client_ip": f"10.{i}.0.1", "sec": 7200 + 10 * i}
            | {"path": f"/p/{i}", "page_type": "product"}
        )
    # A network sweeping pages: twelve addresses of one /16, ten bare pages each, hours apart.
    for i in range(12):
        for k in range(10):
            rows.append(
                {"client_id": f"net{i}", "client_ip": f"172.16.{i}.9", "sec": 20000 + 900 * i + 20 * k}
                | {"path": f"/q/{i}/{k}", "page_type": "product", "user_agent": f"{CHROME} n{i % 6}"}
            )
    # One address cycling through five browser user agents in an hour, bare.
    for i in range(5):
        rows.append(
            {"client_id": f"rot{i}", "client_ip": "192.0.2.50", "sec": 40000 + 60 * i}
            | {"path": f"/r/{i}", "page_type": "product", "user_agent": f"{CHROME} r{i}"}
        )
    # A scanner answered 404 on 30 paths, and one whose requests matched attack rules.
    rows += [
        {"client_id": "miss", "client_ip": "192.0.2.60", "sec": 50000 + i, "path": f"/x{i}", "status": 404}
        for i in range(30)
    ]
    rows += [
        {"client_id": "probe", "client_ip": "192.0.2.61", "sec": 51000 + i, "path": f"/wp{i}.php"} for i in range(8)
    ]
    # People: pages with their assets, following links.
    for i in range(10):
        for k in range(6):
            page = {"path": f"/a/{k}", "page_type": "content", "referer": "https://shop/"}
            asset = {"path": "/site.css", "page_type": "static", "referer": f"https://shop/a/{k}"}
            for j, extra in enumerate((page, asset)):
                rows.append(
                    {"client_id": f"person{i}", "client_ip": f"192.0.2.{100 + i}", "sec": 60000 + 3000 * i + 40 * k + j}
                    | extra
                )
    return rows


def test_the_threats_of_groups_read_from_per_client_rows_by_bucket_are_those_of_one_pass(tmp_path: Path) -> None:
    """Each bucket's per-client rows, read together, give the findings of one pass over every
    request, for every threat of a group of clients (campaigns, farms, swarms, networks,
    rotation, scans)."""
    con = _requests(_groups_of_clients())
    con.execute("INSERT INTO browsers SELECT DISTINCT client_id FROM reqs WHERE client_id NOT IN ('miss', 'probe')")
    con.execute(
        "INSERT INTO request_attacks SELECT source, line_no, client_id, path, ['admin-wp'] FROM reqs "
        "WHERE client_id = 'probe'"
    )
    cfg = ThreatConfig()
    one = con.sql(behavioural_sql(cfg, BEHAVIOURAL_THREATS, INPUTS)).pl()
    kinds = set(one["reason"].str.extract(r"^(threat:[a-z_]+:[a-z_0-9]+)"))
    assert kinds >= {
        "threat:credential_stuffing:campaign",
        "threat:fake_signup:burst",
        "threat:abusive_scraping:swarm",
        "threat:abusive_scraping:network",
        "threat:ua_rotation:network",
        "threat:ua_rotation:user_agents",
        "threat:vuln_scan:4xx_paths",
        "threat:vuln_scan:attack_paths",
    }, kinds
    assert not one.filter(pl.col("client_id").str.starts_with("person")).height
    queries = client_rows_sql(cfg, table="bucket")
    # Three buckets: every client's requests in one of them, a group's clients across them.
    for b in range(3):
        con.execute(f"CREATE OR REPLACE TABLE bucket AS SELECT * FROM reqs WHERE hash(client_id) % 3 = {b}")
        for name, sql in queries.items():
            (tmp_path / name).mkdir(exist_ok=True)
            con.execute(f"COPY ({sql}) TO '{tmp_path / name / f'{b}.parquet'}' (FORMAT parquet)")
    rows = {name: f"read_parquet('{tmp_path / name}/*.parquet')" for name in queries}
    assert con.sql(behavioural_sql(cfg, BEHAVIOURAL_THREATS, INPUTS, rows=rows)).pl().equals(one)


def test_a_per_client_step_may_not_read_other_clients() -> None:
    def peeking(cfg: ThreatConfig, inputs: Inputs) -> ThreatSQL:
        return ThreatSQL(
            {
                "seen": "SELECT client_id, 'dos' AS threat, 'x' AS reason FROM r WHERE client_id IN (SELECT client_id FROM browsers)"
            },
            ("seen",),
        )

    with pytest.raises(ValueError, match="reads every client"):
        behavioural_sql(ThreatConfig(), [peeking], INPUTS)


# --- what the site serves: probes fire only on paths it does not -----------------------------------

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _vhost(host: str, ip: str, t: int, path: str, status: int, size: int, ua: str = CHROME) -> str:
    h, m, s = t // 3600, t // 60 % 60, t % 60
    return (
        f'{host}:80 {ip} - - [10/Oct/2025:{h:02d}:{m:02d}:{s:02d} +0000] "GET {path} HTTP/1.1" {status} {size} '
        f'"-" "{ua}"'
    )


def _two_sites() -> str:
    """A blog about Kibana that serves /kibana/ and /admin/ to its readers, and a shop that serves
    neither; scanners on both."""
    lines = []
    for k in range(4):  # readers of the blog: its home, its Kibana demo, its admin guide
        ip, t = f"198.51.100.{k + 1}", 3600 + 600 * k
        lines += [
            _vhost("blog.example", ip, t, "/", 200, 5200),
            _vhost("blog.example", ip, t + 30, "/kibana/", 200, 4483),
            _vhost("blog.example", ip, t + 90, "/admin/", 200, 3100),
        ]
    # Googlebot (from its published range) crawling the blog, the demo's stylesheet too.
    lines += [
        _vhost("blog.example", "192.0.2.10", 9000, "/", 200, 5200, GOOGLEBOT),
        _vhost("blog.example", "192.0.2.10", 9060, "/kibana/css/style.css", 200, 2715, GOOGLEBOT),
    ]
    # A scanner on the blog: its home page, a served path and a login the blog does not have.
    lines += [
        _vhost("blog.example", "203.0.113.5", 10000, "/", 200, 5200),
        _vhost("blog.example", "203.0.113.5", 10001, "/kibana/", 200, 4483),
        _vhost("blog.example", "203.0.113.5", 10002, "/wp-login.php", 404, 290),
    ]
    # A scanner on the shop, which serves neither path.
    lines += [
        _vhost("shop.example", "203.0.113.6", 11000, "/kibana/", 404, 290),
        _vhost("shop.example", "203.0.113.6", 11001, "/admin/", 404, 290),
    ]
    # An exploit on a served path, and a leak: a payload and an exposure fire whatever the answer.
    lines += [
        _vhost("blog.example", "203.0.113.7", 12000, "/kibana/?q=1%27%20or%20%271%27=%271", 200, 4483),
        _vhost("blog.example", "203.0.113.8", 12100, "/.env", 200, 512),
    ]
    return "\n".join(sorted(lines, key=lambda x: x.split("[", 1)[1])) + "\n"


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("served")
    log = tmp / "sites.log"
    log.write_text(_two_sites())
    ranges = tmp / "ranges"
    ranges.mkdir()
    (ranges / "googlebot.json").write_text('{"prefixes": [{"ipv4Prefix": "192.0.2.0/24"}]}')
    lake = tmp / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, ranges_dir=ranges, progress=False)
    clients = pl.read_parquet(lake / "clients" / "*.parquet")
    requests = pl.read_parquet(lake / "requests" / "*" / "*.parquet")
    return {
        "lake": lake,
        "log": log,
        "ranges": ranges,
        "clients": {(r["site"], r["client_ip"]): r for r in clients.iter_rows(named=True)},
        "requests": requests,
    }


def _own(requests: pl.DataFrame, site: str, ip: str, path: str) -> dict:
    return requests.filter((pl.col("site") == site) & (pl.col("client_ip") == ip) & (pl.col("path") == path)).row(
        0, named=True
    )


def test_a_served_path_read_by_many_is_not_a_probe(two_sites: dict) -> None:
    clients = two_sites["clients"]
    for k in range(4):
        c = clients[("blog.example", f"198.51.100.{k + 1}")]
        assert not c["malicious"] and c["threats"] == [], c["reasons"]
    reader = _own(two_sites["requests"], "blog.example", "198.51.100.1", "/kibana/")
    assert reader["request_threats"] == [] and reader["request_reasons"] == []


def test_the_same_path_unserved_is_a_probe(two_sites: dict) -> None:
    shop = two_sites["clients"][("shop.example", "203.0.113.6")]
    assert shop["malicious"] and "admin_probe" in shop["threats"]
    for path, rule in (("/kibana/", "attack:admin-monitoring-panels"), ("/admin/", "attack:admin-generic-admin")):
        r = _own(two_sites["requests"], "shop.example", "203.0.113.6", path)
        assert r["request_threats"] == ["admin_probe"] and r["request_reasons"] == [rule]


def test_a_verified_crawler_reading_what_the_site_serves_is_not_malicious(two_sites: dict) -> None:
    bot = two_sites["clients"][("blog.example", "192.0.2.10")]
    assert bot["identity"] == "verified" and bot["agent"] == "Googlebot"
    assert not bot["malicious"] and bot["threats"] == [], bot["reasons"]


def test_payloads_and_exposures_fire_on_served_paths(two_sites: dict) -> None:
    clients, requests = two_sites["clients"], two_sites["requests"]
    sqli = _own(requests, "blog.example", "203.0.113.7", "/kibana/")
    assert sqli["request_threats"] == ["sqli"] and clients[("blog.example", "203.0.113.7")]["malicious"]
    leak = _own(requests, "blog.example", "203.0.113.8", "/.env")
    assert leak["request_threats"] == ["sensitive_file"] and clients[("blog.example", "203.0.113.8")]["malicious"]


def test_request_columns_keep_their_own_matches_apart_from_the_client(two_sites: dict) -> None:
    requests = two_sites["requests"]
    home = _own(requests, "blog.example", "203.0.113.5", "/")
    probe = _own(requests, "blog.example", "203.0.113.5", "/wp-login.php")
    served = _own(requests, "blog.example", "203.0.113.5", "/kibana/")
    # The client's verdict on every request; what each request did only on the one that did it.
    for r in (home, probe, served):
        assert r["malicious"] and r["threats"] == ["admin_probe"] and "attack:admin-wp-login" in r["reasons"]
    assert home["request_threats"] == [] and home["request_reasons"] == []
    assert served["request_threats"] == []  # the blog serves /kibana/, to the scanner as to anyone
    assert probe["request_threats"] == ["admin_probe"] and probe["request_reasons"] == ["attack:admin-wp-login"]


def test_requests_by_threat_count_the_requests_that_show_it(two_sites: dict) -> None:
    from trafficlens.report import Report

    with Report(two_sites["lake"]) as rep:
        by = {r["threat"]: r for r in rep.threats()["by_threat"].iter_rows(named=True)}
    # The blog scanner's /wp-login.php and the shop scanner's two probes; not the scanner's home page.
    assert (by["admin_probe"]["requests"], by["admin_probe"]["clients"]) == (3, 2)
    assert by["sqli"]["requests"] == 1 and by["sensitive_file"]["requests"] == 1


def test_readers_in_different_buckets_make_a_path_served_together(two_sites: dict, tmp_path: Path) -> None:
    """A client to a bucket: no bucket alone holds the three readers that make /kibana/ served, and
    the labels and each request's own findings are those of one bucket."""
    import shutil

    lake = tmp_path / "lake"
    shutil.copytree(two_sites["lake"], lake)
    classify(lake, ranges_dir=two_sites["ranges"], progress=False, bucket_rows=1)
    clients = pl.read_parquet(lake / "clients" / "*.parquet")
    files = [pl.read_parquet(f).height for f in (lake / "clients").glob("*.parquet")]
    assert sorted(n for n in files if n) == [1] * clients.height, "a bucket per client"
    keep = ["client_id", "actor_class", "malicious", "threats", "reasons"]
    one = pl.DataFrame(list(two_sites["clients"].values())).select(keep).sort("client_id")
    assert clients.select(keep).sort("client_id").equals(one)
    own = ["source", "line_no", "request_threats", "request_reasons"]
    requests = pl.read_parquet(lake / "requests" / "*" / "*.parquet").select(own).sort("source", "line_no")
    assert requests.equals(two_sites["requests"].select(own).sort("source", "line_no"))


def test_how_many_readers_make_a_path_served_is_configurable(two_sites: dict, tmp_path: Path) -> None:
    cfg = tmp_path / "threats.yml"
    # Four readers, and the blog scanner (it read /kibana/ and the home page, and asked for two
    # probe targets only), are no longer enough.
    cfg.write_text("served_min_readers: 6\n")
    lake = tmp_path / "lake"
    ingest([str(two_sites["log"])], lake, progress=False)
    classify(lake, ranges_dir=two_sites["ranges"], threats=cfg, behaviour=False, progress=False)
    c = pl.read_parquet(lake / "clients" / "*.parquet").filter(pl.col("client_ip") == "198.51.100.1").row(0, named=True)
    assert c["threats"] == ["admin_probe"] and "attack:admin-monitoring-panels" in c["reasons"]


def test_rules_say_their_kind() -> None:
    assert {r.get("kind") for r in RULES} == {"payload", "probe", "exposure"}
    kinds = {r.id: r.kind for r in load_attack_rules()}
    assert kinds["admin-monitoring-panels"] == "probe" and kinds["sf-dotenv"] == "exposure"
    assert kinds["sqli-union-select"] == "payload"
    assert all(r["field"] == "path" for r in RULES if r["kind"] == "probe")


@pytest.mark.parametrize(
    "extra, message",
    [
        ("kind: probe\n  field: target", "a probe reads the path"),
        ("kind: sometimes\n  field: path", "kind 'sometimes'"),
    ],
)
def test_rule_kinds_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    f = tmp_path / "rules.yml"
    f.write_text(f"- id: x\n  threat: admin_probe\n  {extra}\n  pattern: '^/x'\n")
    with pytest.raises(CatalogueError, match=message):
        load_attack_rules(f)


def _at(ip: str, when: str, path: str, ua: str, status: int = 200) -> str:
    """A combined line at `when` (YYYY-MM-DD HH:MM:SS, UTC)."""
    import datetime as dt

    t = dt.datetime.fromisoformat(when)
    return f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} 2048 "-" "{ua}"'


GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
CLAUDEBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"


@pytest.fixture(scope="module")
def robots_history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two versions of a robots.txt: from 9 October the site keeps /private/ to itself and lets
    AI training in; from 10 October it disallows GPTBot everything and signals ai-train=no to all.
    GPTBot crawls on for three hours after the change, reading robots.txt again after two;
    ClaudeBot keeps fetching pages under the new signal; a request before 9 October has no version
    to be judged by."""
    tmp = tmp_path_factory.mktemp("robots-history")
    versions = tmp / "robots"
    versions.mkdir()
    (versions / "robots-2025-10-09.txt").write_text(
        "User-agent: *\nDisallow: /private/\nContent-Signal: search=yes, ai-train=yes\n"
    )
    (versions / "robots-2025-10-10.txt").write_text(
        "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n"
        "Content-Signal: search=yes, ai-input=yes, ai-train=no\n"
    )
    (versions / "notes.txt").write_text("not a version\n")
    g, c = "20.171.207.2", "216.73.216.9"
    lines = [_at(g, "2025-10-08 12:00:00", "/private/early", GPTBOT)]  # before any version
    lines += [_at(g, "2025-10-09 10:00:00", "/robots.txt", GPTBOT), _at(g, "2025-10-09 10:00:05", "/private/x", GPTBOT)]
    lines += [_at(g, f"2025-10-09 1{h}:00:00", f"/p/item-{h}", GPTBOT) for h in range(1, 5)]
    # After the change: 00:30 to 03:00, one page every half hour; robots.txt read at 02:00.
    after = [f"2025-10-10 0{m // 60}:{m % 60:02d}:00" for m in range(30, 181, 30)]
    lines += [_at(g, t, f"/p/late-{i}", GPTBOT) for i, t in enumerate(after)]
    lines += [_at(g, "2025-10-10 02:00:00", "/robots.txt", GPTBOT)]
    lines += [_at(c, f"2025-10-09 0{h}:00:00", f"/p/c-{h}", CLAUDEBOT) for h in range(1, 4)]
    lines += [_at(c, f"2025-10-10 1{h}:00:00", f"/p/d-{h}", CLAUDEBOT) for h in range(1, 5)]
    log = tmp / "access.log"
    log.write_text("\n".join(sorted(lines, key=lambda x: x.split("[", 1)[1])) + "\n")
    lake = tmp / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, robots=versions, progress=False)
    req = pl.read_parquet(lake / "requests" / "*" / "*.parquet", hive_partitioning=False)
    return {"lake": lake, "req": req, "versions": versions}


def test_each_request_is_judged_by_the_robots_txt_in_force(robots_history: dict) -> None:
    req = robots_history["req"]
    hit = req.filter(pl.col("request_threats").list.contains("robots_violation"))["path"].sort().to_list()
    assert hit == ["/p/late-0", "/p/late-1", "/p/late-2", "/p/late-3", "/p/late-4", "/p/late-5", "/private/x"]


def test_time_to_obey_and_usage_signals(robots_history: dict) -> None:
    from trafficlens.report import Report

    with Report(robots_history["lake"]) as rep:
        h = rep.robots_history()
    assert h["summary"]["versions"] == 2 and h["summary"]["changes"] == 1
    assert h["versions"]["name"].to_list() == ["robots-2025-10-09.txt", "robots-2025-10-10.txt"]
    (o,) = h["obey"].filter(pl.col("agent") == "GPTBot").iter_rows(named=True)
    assert o["new_disallows"] == ["/"] and o["disallowed_after"] == 6
    assert o["time_to_obey_s"] == 3 * 3600 and o["refetched_before_obeying"] and o["robots_fetches_after"] == 1
    assert o["obeyed"] and h["summary"]["agents_not_obeying"] == []
    assert h["obey"].filter(pl.col("agent") == "ClaudeBot").is_empty()  # nothing new disallowed it
    sig = {(r["agent"], r["version"], r["signal"]): r for r in h["signals"].iter_rows(named=True)}
    late = sig[("ClaudeBot", "robots-2025-10-10.txt", "ai-train")]
    assert not late["allowed"] and late["pages"] == 4
    assert sig[("ClaudeBot", "robots-2025-10-09.txt", "ai-train")]["allowed"]
    assert h["summary"]["agents_against_signals"] == ["ClaudeBot"]
    assert h["summary"]["agents_slow_to_obey"] == ["GPTBot"]


def test_a_robots_folder_without_versions_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from trafficlens.cli import main

    (tmp_path / "robots").mkdir()
    (tmp_path / "robots" / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    log = tmp_path / "a.log"
    log.write_text(_at("1.2.3.4", "2025-10-09 10:00:00", "/", GPTBOT) + "\n")
    r = CliRunner().invoke(
        main, ["analyze", str(log), "--lake", str(tmp_path / "lake"), "--robots", str(tmp_path / "robots")]
    )
    assert r.exit_code == 1 and "no robots-YYYY-MM-DD.txt in this folder" in r.output


def test_time_to_obey_matches_the_simulated_truth(tmp_path: Path) -> None:
    # The simulator's site changes its robots.txt mid-run; GPTBot and CCBot obey once they read
    # it afresh (a day after their last read). The report must say when, from the log alone.
    from click.testing import CliRunner

    from trafficlens.cli import main
    from trafficlens.report import Report
    from trafficlens.simulate import simulate
    from trafficlens.simulate.robots import OBEYING

    log = tmp_path / "week.log"
    simulate(
        log, days=6, seed=8, scale=0.5, ranges_out=tmp_path / "ranges", robots_out=tmp_path / "robots", progress=False
    )
    r = CliRunner().invoke(
        main,
        [
            "analyze",
            str(log),
            "--lake",
            str(tmp_path / "lake"),
            "--ranges",
            str(tmp_path / "ranges"),
            "--robots",
            str(tmp_path / "robots"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    with Report(tmp_path / "lake") as rep:
        h = rep.robots_history()
    (change,) = h["versions"]["start"].drop_nulls().to_list()[1:]
    truth = pl.read_parquet(str(log) + ".truth.parquet").filter(pl.col("identity") != "spoofed")
    obey = {o["agent"]: o for o in h["obey"].iter_rows(named=True)}
    assert set(obey) == set(OBEYING)
    for agent in OBEYING:
        mine = truth.filter((pl.col("agent") == agent) & (pl.col("ts") >= change))
        read = mine.filter(pl.col("path") == "/robots.txt")["ts"].min()
        before = mine.filter((pl.col("path") != "/robots.txt") & (pl.col("ts") <= read))
        o = obey[agent]
        assert o["disallowed_after"] == before.height and o["obeyed"]
        if before.height:
            assert o["time_to_obey_s"] == (before["ts"].max() - change).total_seconds()
        else:
            assert o["time_to_obey_s"] == 0
        assert o["first_robots_after"] == read
    assert sum(o["disallowed_after"] for o in obey.values()) > 0  # one went on a while


def test_robots_versions_one_by_one_judge_as_the_folder_does(robots_history: dict, tmp_path: Path) -> None:
    # The same two versions given as files (one by its name, one as PATH@DAY) give the same findings.
    from click.testing import CliRunner

    from trafficlens.cli import main

    folder = robots_history["versions"]
    other = tmp_path / "later.txt"
    other.write_text((folder / "robots-2025-10-10.txt").read_text())
    log = robots_history["lake"].parent / "access.log"
    lake = tmp_path / "lake"
    args = ["analyze", str(log), "--lake", str(lake), "--no-progress"]
    r = CliRunner().invoke(
        main, [*args, "--robots", str(folder / "robots-2025-10-09.txt"), "--robots", f"{other}@2025-10-10"]
    )
    assert r.exit_code == 0, r.output
    req = pl.read_parquet(lake / "requests" / "*" / "*.parquet", hive_partitioning=False)
    mine = req.filter(pl.col("request_threats").list.contains("robots_violation"))["path"].sort().to_list()
    theirs = robots_history["req"].filter(pl.col("request_threats").list.contains("robots_violation"))["path"].sort()
    assert mine == theirs.to_list()
    # A version with no date, two for one day, a bad date: one line each, before any work.
    for bad, says in (
        ([str(other), str(folder / "robots-2025-10-09.txt")], "name each version robots-YYYY-MM-DD.txt"),
        ([f"{other}@2025-10-10", str(folder / "robots-2025-10-10.txt")], "two versions for one day"),
        ([f"{other}@2025-13-01", str(folder / "robots-2025-10-09.txt")], "is not a date"),
        ([str(tmp_path / "nowhere.txt")], "no such file or folder"),
    ):
        flags = [x for b in bad for x in ("--robots", b)]
        r = CliRunner().invoke(main, ["analyze", str(log), "--lake", str(tmp_path / "other"), *flags])
        assert r.exit_code == 1 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("served", [True, False])
def test_scraping_pace_reads_whether_the_site_serves_assets(tmp_path: Path, served: bool) -> None:
    """A browser reading 250 pages at 12 a minute, no asset: scraping where the site's people
    load assets, a person flicking through "next" links where they come from a CDN (nobody loads
    any here); 250 pages at 40 a minute is scraping on both."""
    lines: list[str] = []
    for i in range(20):
        visit = _human(f"{101 + i}.30.0.1", 3600 + i * 400)  # people of many networks
        lines += visit if served else [v for v in visit if "/static/" not in v and "favicon" not in v]
    lines += [_line("100.64.31.1", 20000 + i * 5, "GET", f"/p/gallery-{i}", 200) for i in range(250)]
    lines += [_line("100.64.31.2", 40000 + i * 3 // 2, "GET", f"/p/sweep-{i}", 200) for i in range(250)]
    c = _clients(tmp_path, lines)
    assert ("abusive_scraping" in c["100.64.31.1"]["threats"]) is served, c["100.64.31.1"]["reasons"]
    assert "abusive_scraping" in c["100.64.31.2"]["threats"], c["100.64.31.2"]["reasons"]


def test_a_bad_pattern_is_named_by_its_rule(tmp_path: Path) -> None:
    from trafficlens.classify.threats.rules import load_attack_rules, rules_path

    rules = tmp_path / "rules.yml"
    rules.write_text(rules_path().read_text() + "\n- {id: my-bad-rule, threat: sqli, field: path, pattern: 'a('}\n")
    with pytest.raises(CatalogueError, match=r"^rules.yml: rule my-bad-rule: bad pattern: .*missing \)"):
        load_attack_rules(rules)
    assert len(load_attack_rules()) == len(load_attack_rules(rules_path()))
