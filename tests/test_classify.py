"""Identity: the agent catalogue, generic fallbacks, verification and the classify stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from trafficlens.classify.agents import load_catalogue, match_user_agents
from trafficlens.classify.pipeline import classify
from trafficlens.classify.verify import range_sources
from trafficlens.cli import main
from trafficlens.errors import CatalogueError, LakeError
from trafficlens.ingest import ingest
from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PURPOSES

RANGES = FIXTURES / "ranges" / "published"
CAT = load_catalogue()
EXAMPLES = [(a.name, ex) for a in CAT.agents for ex in a.examples]

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BYTESPIDER = (
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)"
)
CLAUDE_USER = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)"
)


# --- the catalogue -------------------------------------------------------------------------------


def test_catalogue_follows_the_schema() -> None:
    assert len(CAT.agents) > 250
    known_files = {s.file for s in range_sources()}
    for a in CAT.agents:
        assert a.actor_class in ACTOR_CLASSES and a.actor_class != "human", a.name
        assert a.purpose in PURPOSES and a.purpose != "human", a.name
        assert a.url.startswith("http"), a.name
        assert set(a.verify_ranges) <= known_files, f"{a.name}: unknown range file {a.verify_ranges}"
        if a.purpose.startswith("ai_"):
            assert a.ai_driven, f"{a.name}: an AI purpose must be ai_driven"


@pytest.mark.parametrize("name, example", EXAMPLES, ids=[f"{n}:{i}" for i, (n, _) in enumerate(EXAMPLES)])
def test_each_example_matches_its_own_entry(name: str, example: str) -> None:
    got = match_user_agents(pl.Series([example]), CAT).row(0, named=True)
    assert got["agent"] == name, f"{example!r} is {got['agent']}, not {name}"
    assert got["reasons"] == [f"ua:catalogue:{name}"]


def test_robots_only_tokens_are_known_and_flagged_when_sent() -> None:
    robots_only = [a for a in CAT.agents if not a.in_user_agent]
    names = {a.name for a in robots_only}
    assert {"Google-Extended", "Applebot-Extended"} <= names
    assert all(not a.examples for a in robots_only)
    # No operator sends these; a client that does is named, with a reason saying so.
    got = match_user_agents(pl.Series(["Google-Extended"]), CAT).row(0, named=True)
    assert got["agent"] == "Google-Extended" and got["operator"] == "Google"
    assert got["reasons"] == ["ua:catalogue:Google-Extended", "ua:robots_token_in_user_agent"]
    # ... and never beat a real agent in the same user agent.
    got = match_user_agents(pl.Series([GOOGLEBOT + " Google-Extended"]), CAT).row(0, named=True)
    assert got["agent"] == "Googlebot"


def test_range_files_name_agents_the_catalogue_knows() -> None:
    known = {a.name.lower() for a in CAT.agents} | {r.lower() for a in CAT.agents for r in a.robots}
    for s in range_sources():
        for agent in s.agents:
            assert agent.lower() in known, f"{s.file} covers {agent}, which the catalogue does not know"


@pytest.mark.parametrize(
    "ua",
    [
        CHROME,
        IPHONE,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Mobile Safari/537.36 YaBrowser/24.1.0.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.0]",
        "Mozilla/5.0 (Linux; Android 12; CUBOT P50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Mobile Safari/537.36",
        "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)",
        "Spotify/8.9.10 iOS/17.4 (iPhone15,2)",
    ],
)
def test_browsers_and_apps_are_human(ua: str) -> None:
    got = match_user_agents(pl.Series([ua]), CAT).row(0, named=True)
    assert got["actor_class"] == "human" and not got["automated"], got["reasons"]
    assert got["reasons"] == ["ua:browser"]


@pytest.mark.parametrize(
    "ua, reason",
    [
        (None, "ua:empty"),
        ("-", "ua:empty"),
        ("", "ua:empty"),
        ("12345", "ua:absurd:no_letters"),
        ("a" * 3000, "ua:absurd:too_long"),
        ("Mozilla/5.0 (compatible; AcmeSiteIndexBot/2.0)", "ua:generic:bot_word"),
        ("Mozilla/5.0 (compatible; Zorblax/1.0; +https://zorblax.example/about)", "ua:generic:contact_url"),
        ("frobnicator/0.9", "ua:generic:bare_product"),
    ],
)
def test_generic_fallbacks_say_why(ua: str | None, reason: str) -> None:
    got = match_user_agents(pl.Series([ua], dtype=pl.String), CAT).row(0, named=True)
    assert got["automated"] and got["agent"] is None
    assert got["reasons"][0] == reason


def test_generic_clients_name_their_operator_and_ai_use() -> None:
    got = match_user_agents(
        pl.Series(
            [
                "Mozilla/5.0 (compatible; Zorblax-AI/1.0; +https://docs.zorblax.ai/bot)",
                "Mozilla/5.0 (compatible; Quuxbot/2.0; +https://openai.com/quux)",
                "Nokia6230/2.0 (03.14) Profile/MIDP-2.0 Configuration/CLDC-1.1",
            ]
        ),
        CAT,
    )
    a, b, phone = got.iter_rows(named=True)
    assert a["ai_driven"] and a["operator"] == "zorblax.ai"
    assert a["reasons"] == ["ua:generic:bot_word", "ua:generic:ai_hint", "ua:operator_from_contact:zorblax.ai"]
    assert b["operator"] == "OpenAI"  # a domain the catalogue documents for one operator
    assert not phone["automated"], phone["reasons"]  # a device, though its user agent is bare


def test_a_named_bot_beats_the_library_it_is_built_on() -> None:
    got = match_user_agents(pl.Series([GPTBOT + " python-requests/2.32.3"]), CAT).row(0, named=True)
    assert got["agent"] == "GPTBot"


def test_long_user_agents_stay_cheap() -> None:
    ua = "Mozilla/5.0 (" + "x; " * 4000 + ") GPTBot/1.1"  # 12 kB; the token is past the 4 kB cut
    got = match_user_agents(pl.Series([ua, "A" * 10_000 + " ClaudeBot/1.0"]), CAT)
    assert got["automated"].all()


def test_a_broken_catalogue_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text(
        "- name: X\n  pattern: X\n  operator: X\n  actor_class: robot\n"
        "  purpose: tool\n  ai_driven: false\n  url: https://x\n  robots: []\n"
        "  examples: [X/1]\n"
    )
    with pytest.raises(CatalogueError, match=r"x.yml entry 1 \(X\): actor_class 'robot'"):
        load_catalogue(tmp_path)


# --- verification and the classify stage ---------------------------------------------------------


def _line(ip: str, ua: str, i: int = 0, path: str = "/") -> str:
    return f'{ip} - - [10/Oct/2025:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET {path} HTTP/1.1" 200 512 "-" "{ua}"'


def _visit(ip: str, ua: str, pages: int = 2) -> list[str]:
    """What a person's browser sends: pages a minute or so apart, each with its assets."""
    out = []
    for k in range(pages):
        t = 10 * 60 + k * 73
        ref = "https://www.google.com/" if k == 0 else "https://shop.example/"
        for path in (
            ["/", "/c/shoes", "/p/shoe-1", "/cart"][k % 4],
            "/static/site.css",
            "/static/app.js",
            "/favicon.ico",
        ):
            out.append(
                f'{ip} - - [10/Oct/2025:10:{t // 60 % 60:02d}:{t % 60:02d} +0000] "GET {path} HTTP/1.1" 200 512 '
                f'"{ref}" "{ua}"'
            )
            t += 1
    return out


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    lines = (
        [_line("192.0.2.5", GPTBOT, i) for i in range(5)]  # inside the fixture gptbot.json
        + [_line("100.64.0.9", GPTBOT, i) for i in range(3)]  # outside it: spoofed
        + [_line("198.51.100.7", GOOGLEBOT, i) for i in range(2)]  # inside common-crawlers.json
        + [_line("192.0.2.130", CHROME, i) for i in range(4)]  # a browser inside chatgpt-user.json
        + _visit("100.64.0.50", CHROME, 3)  # a person
        + [_line("203.0.113.170", CLAUDE_USER, i) for i in range(2)]  # inside the fixture bots.json
        + [_line("100.64.0.51", BYTESPIDER, i) for i in range(2)]  # ByteDance publishes no ranges
        + [_line("100.64.0.52", "curl/8.5.0", i) for i in range(2)]
    )
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    lake = tmp_path / "lake"
    ingest([str(log)], lake)
    classify(lake, ranges_dir=RANGES, progress=False)
    return lake


def _clients(lake: Path) -> dict[str, dict]:
    df = pl.read_parquet(lake / "clients" / "*.parquet")
    return {r["client_ip"]: r for r in df.iter_rows(named=True)}


def test_claims_are_verified_or_spoofed_by_published_ranges(labelled: Path) -> None:
    c = _clients(labelled)
    assert c["192.0.2.5"]["identity"] == "verified" and "ip:in_ranges:gptbot.json" in c["192.0.2.5"]["reasons"]
    bad = c["100.64.0.9"]
    assert bad["identity"] == "spoofed" and bad["malicious"] and bad["threats"] == ["spoofed_identity"]
    assert "ip:not_in_ranges:gptbot.json" in bad["reasons"]
    assert c["198.51.100.7"]["identity"] == "verified" and c["198.51.100.7"]["operator"] == "Google"
    claude = c["203.0.113.170"]
    assert claude["identity"] == "verified" and claude["purpose"] == "ai_assistant" and claude["ai_driven"]
    assert claude["operator"] == "Anthropic" and claude["agent"] == "Claude-User"
    byte = c["100.64.0.51"]
    assert byte["identity"] == "declared" and byte["operator"] == "ByteDance" and byte["purpose"] == "ai_training"
    assert "verify:no_method" in byte["reasons"]


def test_a_browser_inside_an_ai_operators_ranges_is_its_agent(labelled: Path) -> None:
    c = _clients(labelled)["192.0.2.130"]
    assert c["actor_class"] == "agent" and c["operator"] == "OpenAI" and c["ai_driven"]
    assert c["identity"] == "undeclared" and "ip:operator_range:chatgpt-user.json" in c["reasons"]
    human = _clients(labelled)["100.64.0.50"]
    assert human["actor_class"] == "human" and human["identity"] == "none" and human["browser"] == "Chrome"


def test_every_request_is_labelled_with_reasons(labelled: Path) -> None:
    con = duckdb.connect(str(labelled / "lake.duckdb"), read_only=True)
    n_events = con.execute("select count(*) from events").fetchone()[0]
    rows = con.execute(
        "select count(*), count(client_id), count(session_id), min(len(reasons)) from requests"
    ).fetchone()
    assert rows[:3] == (n_events, n_events, n_events) and rows[3] >= 1
    classes = {r[0] for r in con.execute("select distinct actor_class from requests").fetchall()}
    assert classes <= set(ACTOR_CLASSES)
    ids = {r[0] for r in con.execute("select distinct identity from clients").fetchall()}
    assert ids <= set(IDENTITIES)
    assert con.execute("select count(*) from sessions").fetchone()[0] == 8  # one per client here
    spoofed = con.execute("select count(*) from requests where 'spoofed_identity' = any(threats)").fetchone()[0]
    assert spoofed == 3


def test_classify_again_replaces_rather_than_adds(labelled: Path) -> None:
    before = pl.read_parquet(labelled / "requests" / "*" / "*.parquet").sort("line_no")
    classify(labelled, ranges_dir=RANGES, progress=False)
    after = pl.read_parquet(labelled / "requests" / "*" / "*.parquet").sort("line_no")
    assert after.height == before.height
    assert after["client_id"].to_list() == before["client_id"].to_list()  # ids are stable


def test_signature_agent_header_names_a_signed_agent(tmp_path: Path) -> None:
    log = tmp_path / "signed.log"
    log.write_text(
        f'192.0.2.77 [10/Oct/2025:10:00:00 +0000] "GET /cart HTTP/1.1" 200 10 "{CHROME}" "https://chatgpt.com"\n'
        + "".join(
            f'192.0.2.78 [10/Oct/2025:10:00:{s:02d} +0000] "GET {p} HTTP/1.1" 200 10 "{CHROME}" "-"\n'
            for s, p in ((1, "/"), (2, "/static/a.css"), (3, "/favicon.ico"), (40, "/cart"), (41, "/static/b.js"))
        )
    )
    lake = tmp_path / "lake"
    ingest(
        [str(log)],
        lake,
        _opts(
            '$remote_addr [$time_local] "$request" $status $body_bytes_sent "$http_user_agent" "$http_signature_agent"'
        ),
    )
    classify(lake, progress=False)
    c = _clients(lake)
    assert c["192.0.2.77"]["agent"] == "ChatGPT agent" and c["192.0.2.77"]["actor_class"] == "agent"
    assert c["192.0.2.77"]["reasons"][0] == "header:signature_agent:chatgpt.com"
    assert c["192.0.2.78"]["actor_class"] == "human"


def _opts(log_format: str):
    from trafficlens.ingest import IngestOptions

    return IngestOptions(log_format=log_format)


def test_classify_needs_events(tmp_path: Path) -> None:
    from trafficlens.store import Lake

    Lake(tmp_path / "lake", create=True)
    with pytest.raises(LakeError, match="no events yet"):
        classify(tmp_path / "lake")


def test_cli_classify_and_analyze(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        "\n".join([_line("192.0.2.5", GPTBOT, i) for i in range(3)] + [_line("203.0.113.5", CHROME, 9)]) + "\n"
    )
    lake = str(tmp_path / "lake")
    r = CliRunner().invoke(main, ["analyze", str(log), "--lake", lake, "--ranges", str(RANGES)])
    assert r.exit_code == 0, r.output
    assert "Traffic by class" in r.output and "GPTBot by OpenAI · AI training" in r.output
    r = CliRunner().invoke(main, ["classify", "--lake", lake, "--ranges", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "no such folder" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["classify", "--lake", lake])
    assert r.exit_code == 0 and "4 requests" in r.output


def test_bucket_workers_are_asked_for_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--bucket-workers` reaches the buckets (of `classify` and `analyze`); 0 is refused in one line."""
    from trafficlens.classify import pipeline

    asked: list[int] = []
    workers = pipeline._workers

    def recorded(con: duckdb.DuckDBPyConnection, n: int, *args: Any, **kwargs: Any) -> Any:
        asked.append(n)
        return workers(con, n, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_workers", recorded)
    log = tmp_path / "a.log"
    log.write_text("\n".join(_line("203.0.113.5", CHROME, i) for i in range(3)) + "\n")
    lake = str(tmp_path / "lake")
    r = CliRunner().invoke(main, ["analyze", str(log), "--lake", lake, "--bucket-workers", "3"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["classify", "--lake", lake, "--bucket-workers", "2"])
    assert r.exit_code == 0, r.output
    assert asked == [3, 2]
    r = CliRunner().invoke(main, ["classify", "--lake", lake, "--bucket-workers", "0"])
    assert r.exit_code == 2 and "--bucket-workers" in r.output


# --- page types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, query, want",
    [
        ("/", None, "home"),
        ("/index.html", None, "home"),
        ("/de/", None, "home"),
        ("/robots.txt", None, "robots"),
        ("/sitemap.xml", None, "sitemap"),
        ("/sitemap-products-1.xml.gz", None, "sitemap"),
        ("/feed.xml", None, "feed"),
        ("/blog/rss", None, "feed"),
        ("/static/app.3f2a.js", None, "static"),
        ("/img/shoe.webp", None, "static"),
        ("/favicon.ico", None, "static"),
        ("/checkout", None, "checkout"),
        ("/checkout/payment", None, "checkout"),
        ("/booking/confirm", None, "checkout"),
        ("/cart", None, "cart"),
        ("/api/cart/add", None, "api"),
        ("/api/session", None, "api"),
        ("/site.webmanifest", None, "static"),
        ("/login", None, "auth"),
        ("/account/login", None, "auth"),
        ("/signup", None, "auth"),
        ("/wp-login.php", None, "auth"),
        ("/account", None, "account"),
        ("/my-account/orders", None, "account"),
        ("/api/products", "page=2", "api"),
        ("/graphql", None, "api"),
        ("/search", "q=red+shoes", "search"),
        ("/", "s=shoes", "search"),
        ("/p/red-shoe-1234", None, "product"),
        ("/hotels/paris-ritz", None, "product"),
        ("/c/shoes", None, "listing"),
        ("/category/men/", None, "listing"),
        ("/hotels", None, "listing"),
        ("/blog/2025/spring", None, "content"),
        ("/2025/10/10/story", None, "content"),
        ("/about", None, "content"),
        ("/zz-unknown", None, "other"),
        (None, None, "other"),
    ],
)
def test_default_page_types(path: str | None, query: str | None, want: str) -> None:
    from trafficlens.classify.pages import load_page_rules, page_type_sql

    sql = page_type_sql(load_page_rules())
    got = duckdb.execute(
        f"SELECT {sql} FROM (SELECT ?::VARCHAR AS path, ?::VARCHAR AS query)", [path, query]
    ).fetchone()
    assert got[0] == want


@pytest.mark.parametrize(
    "path, want",
    [
        ("/api/session", ("api", "login")),
        ("/api/auth/login", ("api", "login")),
        ("/api/v2/users/register", ("api", "signup")),
        ("/api/checkout/payment", ("api", "payment")),
        ("/api/cart/summary", ("api", None)),
        ("/api/account", ("api", None)),
        ("/login", ("auth", "login")),
        ("/checkout/payment", ("checkout", "payment")),
        ("/cart.json", ("cart", None)),
    ],
)
def test_api_calls_are_not_page_views_but_keep_their_endpoints(path: str, want: tuple[str, str | None]) -> None:
    """A page's own calls to the site's API (the cart count, the signed-in user) are typed `api`
    whatever words their path holds, so timing and mixes do not read them as pages viewed; a
    login, sign-up or payment through the API is still one for the threat rules."""
    from trafficlens.classify.pages import load_page_rules, page_type_sql
    from trafficlens.schema import PAGE_VIEW_TYPES

    rules = load_page_rules()
    got = duckdb.execute(
        f"SELECT {page_type_sql(rules)}, {page_type_sql(rules, what='endpoint')} FROM (SELECT ?::VARCHAR AS path, "
        "NULL::VARCHAR AS query)",
        [path],
    ).fetchone()
    assert got == want
    assert (got[0] in PAGE_VIEW_TYPES) == (not path.startswith("/api/"))


@pytest.mark.parametrize(
    ("path", "query", "want"),
    [
        ("/wp-login.php", "action=register", "signup"),
        ("/wp-login.php", "redirect_to=%2Fwp-admin%2F", "login"),
        ("/acl_users/credentials_cookie_auth/require_login", "came_from=http%3A//example.org/join_form", "signup"),
        ("/accounts/login/", "next=/accounts/signup/", "signup"),
        ("/accounts/login/", "next=/orders/", "login"),
        ("/login", "next=%3Cscript%3Efetch(1)%3C/script%3E", "login"),
        ("/search", "next=/signup", None),
        ("/author/jane", "next=/signup", None),
    ],
)
def test_a_sign_up_reached_through_a_login_page_is_a_sign_up(path: str, query: str, want: str | None) -> None:
    """WordPress registers at its login page with `action=register`, and a site whose sign-up form
    needs a login first sends it to the login page naming the form to return to: both are the
    sign-up the fake sign-up rules look for; a login page returning anywhere else is a login."""
    from trafficlens.classify.pages import load_page_rules, page_type_sql

    rules = load_page_rules()
    got = duckdb.execute(
        f"SELECT {page_type_sql(rules, what='endpoint')} FROM (SELECT ?::VARCHAR AS path, ?::VARCHAR AS query)",
        [path, query],
    ).fetchone()
    assert got == (want,)


def test_a_site_maps_its_own_pages(tmp_path: Path, labelled: Path) -> None:
    rules = tmp_path / "pages.yml"
    rules.write_text("- {page_type: checkout, path: '^/$'}\n")
    classify(labelled, ranges_dir=RANGES, progress=False, pages=rules)
    con = duckdb.connect(str(labelled / "lake.duckdb"), read_only=True)
    got = dict(con.execute("select page_type, count(*) from requests where path = '/' group by 1").fetchall())
    assert list(got) == ["checkout"]
    # The site's rules replace the shipped ones: nothing else is a known page type now.
    assert {r[0] for r in con.execute("select distinct page_type from requests where path <> '/'").fetchall()} == {
        "other"
    }
    rules.write_text("- {page_type: basket, path: '^/$'}\n")
    with pytest.raises(CatalogueError, match="page_type 'basket' is not one of"):
        classify(labelled, pages=rules)
    rules.write_text("- {page_type: cart, path: '(?<=x)y'}\n")
    with pytest.raises(CatalogueError, match="bad regex"):
        classify(labelled, pages=rules)


@pytest.mark.parametrize(("shards", "workers"), [(48, 2), (3, 3)])
def test_buckets_give_the_answers_of_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards: int, workers: int
) -> None:
    """Classify in many small client buckets, `workers` of them at once, and in one: the same
    clients, labels, features, sessions and requests (only the order of the request files differs);
    also where there are more buckets than one write opens at once, and events are staged by shard
    first. robots.txt (two versions) is judged bucket by bucket too."""
    import shutil

    from trafficlens.classify import pipeline
    from trafficlens.simulate import simulate

    monkeypatch.setattr(pipeline, "SHARDS", shards)
    configure, spills = pipeline._configure, set()

    def configured(con: duckdb.DuckDBPyConnection, memory_limit: str, spill: Path) -> None:
        spills.add(spill.name)
        configure(con, memory_limit, spill)

    monkeypatch.setattr(pipeline, "_configure", configured)

    log = tmp_path / "week.log"
    sim = simulate(log, days=2, seed=17, scale=0.3, ranges_out=tmp_path / "ranges", progress=False)
    one, many = tmp_path / "one", tmp_path / "many"
    ingest([str(log)], one, progress=False)
    shutil.copytree(one, many)
    # The simulated days start on 6 October 2025: from the second day GPTBot may fetch nothing.
    robots = tmp_path / "robots"
    robots.mkdir()
    (robots / "robots-2025-10-06.txt").write_text("User-agent: *\nDisallow: /checkout\n")
    (robots / "robots-2025-10-07.txt").write_text("User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nDisallow: /cart\n")
    classify(one, ranges_dir=tmp_path / "ranges", progress=False, bucket_rows=10**9, robots=robots)
    rows = max(sim.lines // 7, 1)
    classify(
        many, ranges_dir=tmp_path / "ranges", progress=False, bucket_rows=rows, bucket_workers=workers, robots=robots
    )
    files = sorted((many / "requests").glob("*/*.parquet"))
    assert len({f.name.split("-")[1] for f in files}) >= 7, "the buckets wrote their own request files"
    assert {f"worker-{i}" for i in range(workers)} <= spills, "the buckets ran on connections of their own"

    def table(lake: Path, name: str, key: list[str]) -> pl.DataFrame:
        pattern = "*/*.parquet" if name == "requests" else "*.parquet"
        df = pl.read_parquet(lake / name / pattern)
        floats = [c for c, t in df.schema.items() if t == pl.Float64]
        return df.sort(key).with_columns(pl.col(floats).round(6))

    for name, key in (("clients", ["client_id"]), ("sessions", ["session_id"]), ("requests", ["source", "line_no"])):
        a, b = table(one, name, key), table(many, name, key)
        assert a.height == b.height > 0
        assert a.equals(b), f"{name} differ between one pass and buckets"
    # Each bucket joins its own clients' findings: the requests compared above hold some, robots.txt's
    # from more than one bucket.
    requests = table(many, "requests", ["source", "line_no"])
    assert (requests["request_threats"].list.len() > 0).sum() > 0
    judged = requests.filter(pl.col("request_threats").list.contains("robots_violation"))
    assert set(judged["request_reasons"].explode()) >= {"robots:disallowed:gptbot", "robots:disallowed:*"}
    files = pl.read_parquet(many / "requests" / "*" / "*.parquet", include_file_paths="file")
    buckets = files.filter(pl.col("request_threats").list.contains("robots_violation"))["file"]
    assert buckets.str.extract(r"part-(\d+)-").n_unique() > 1


def test_a_bucket_failing_beside_another_stops_the_run_and_leaves_the_lake_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets run side by side: one that fails ends the run with its error, the bucket running
    beside it stops, no thread is left working, the lake keeps its tables, and the next run works."""
    import threading

    from trafficlens.classify import pipeline
    from trafficlens.simulate import simulate

    log = tmp_path / "day.log"
    sim = simulate(log, days=1, seed=29, scale=0.1, progress=False)
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    rows = max(sim.lines // 6, 1)
    classify(lake, progress=False, bucket_rows=rows)

    def clients() -> pl.DataFrame:  # floats to 9 places: DuckDB's threads add in any order
        df = pl.read_parquet(lake / "clients" / "*.parquet").sort("client_id")
        return df.with_columns(pl.col(c).round(9) for c, t in df.schema.items() if t == pl.Float64)

    before = clients()
    classify_here = pipeline._classify_here

    def failing(con: duckdb.DuckDBPyConnection, work: Path, b: int, *args: Any, **kwargs: Any) -> pl.DataFrame:
        if b == 2:
            raise RuntimeError("bucket 2 failed")
        return classify_here(con, work, b, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_classify_here", failing)
    with pytest.raises(RuntimeError, match="bucket 2 failed"):
        classify(lake, progress=False, bucket_rows=rows, bucket_workers=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("trafficlens-bucket")]
    assert clients().equals(before)
    monkeypatch.setattr(pipeline, "_classify_here", classify_here)
    classify(lake, progress=False, bucket_rows=rows)
    assert clients().equals(before)


def test_one_bucket_from_arrow_gives_the_lake_s_features_and_sessions(tmp_path: Path) -> None:
    """The unit an engine passing Arrow runs (`classify_bucket_arrow`): a lake's events in, with the
    shared aggregates over them, give the sessions and features classify wrote."""
    from trafficlens.classify.behaviour import FEATURES, SHARED_CTES
    from trafficlens.classify.buckets import classify_bucket_arrow, shared_aggregates
    from trafficlens.simulate import simulate

    log = tmp_path / "day.log"
    simulate(log, days=1, seed=23, scale=0.1, progress=False)
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, behaviour=False, detect_threats=False)
    req = pl.read_parquet(lake / "requests" / "*" / "*.parquet")
    events = pl.read_parquet(lake / "events" / "*" / "*.parquet").drop("date", strict=False)
    events = events.join(req.select("source", "line_no", "client_id", "page_type"), on=["source", "line_no"])
    events = events.with_columns(endpoint=pl.lit(None, pl.String))
    con = duckdb.connect()
    con.register("bucket", events)
    shared_aggregates(con, "bucket")
    tables = {name: con.sql(f"SELECT * FROM shared_{name}").to_arrow_table() for name in SHARED_CTES}
    out = classify_bucket_arrow(events.to_arrow(), tables, None)
    assert out["sessionised"].num_rows == events.height
    sessions = pl.read_parquet(lake / "sessions" / "*.parquet")
    assert sorted(pl.from_arrow(out["sessions"])["session_id"].to_list()) == sorted(sessions["session_id"].to_list())
    clients = pl.read_parquet(lake / "clients" / "*.parquet").select("client_id", *FEATURES).sort("client_id")
    mine = pl.from_arrow(out["features"]).select("client_id", *FEATURES).sort("client_id")
    assert mine.with_columns(pl.col(FEATURES).round(6)).equals(clients.with_columns(pl.col(FEATURES).round(6)))


def test_a_client_s_address_counts_are_the_shared_aggregates_over_its_requests() -> None:
    """The counts a client's bucket gets with its row (`address_counts_sql`, over the clients) are
    what the shared aggregates per address and network hold over every request: an address with
    several user agents, a network with several addresses, IPv6, and a missing address or user
    agent (not counted)."""
    from trafficlens.classify.behaviour import ADDRESS_CTES, SHARED_CTES, address_counts_sql
    from trafficlens.classify.buckets import address_tables, shared_aggregates

    rows = [
        ("a", "10.0.0.1", "UA1"),
        ("a", "10.0.0.1", "UA2"),
        ("a", "10.0.0.1", None),
        ("a", "10.0.0.2", "UA1"),
        ("a", "10.0.1.9", "UA1"),
        ("a", None, "UA1"),
        ("a", "2001:db8:1:2::1", "UA3"),
        ("a", "2001:db8:1:3::1", "UA3"),
        ("b", "10.0.0.1", "UA1"),
    ]
    # Each client makes one to three requests.
    req = pl.DataFrame(
        [(s, ip, ua, f"{s}|{ip}|{ua}") for k, (s, ip, ua) in enumerate(rows) for _ in range(1 + k % 3)],
        schema=["site", "client_ip", "user_agent", "client_id"],
        orient="row",
    ).with_columns(
        path=pl.lit("/"),
        method=pl.lit("GET"),
        status=pl.lit(200),
        endpoint=pl.lit(None, pl.String),
        referer=pl.lit(None, pl.String),
        session_id=pl.col("client_id"),
        ts=pl.lit(None, pl.Datetime("us")),
        source=pl.lit("x"),
        line_no=pl.int_range(pl.len()),
    )
    con = duckdb.connect()
    con.register("req", req)
    shared_aggregates(con, "req", ADDRESS_CTES)
    clients = req.select("site", "client_ip", "user_agent").unique()
    con.register("clients", clients)
    counted = con.sql(address_counts_sql("clients")).pl()
    assert counted.height == len(rows)
    for name, table in address_tables(counted).items():
        assert name in SHARED_CTES
        mine = pl.from_arrow(table)
        whole = con.sql(f"SELECT * FROM shared_{name}").pl().select(mine.columns)
        assert mine.sort(mine.columns).equals(whole.sort(mine.columns)), name
    one = counted.filter(
        (pl.col("site") == "a") & (pl.col("client_ip") == "10.0.0.1") & (pl.col("user_agent") == "UA1")
    )
    assert one.select("ip_user_agents", "same_ua", "net_clients").row(0) == (2, 2, 4)


def test_the_clients_table_buckets_clients_as_bucket_of_does(tmp_path: Path) -> None:
    """The bucket DuckDB gives each client in the clients table is `bucket_of`'s: the Spark and
    Arrow engines compute it from the id alone."""
    from trafficlens.classify.buckets import bucket_of
    from trafficlens.classify.pipeline import _clients_table
    from trafficlens.store import Lake, connect

    rows = [
        f'10.0.{i // 250}.{i % 250} - - [10/Oct/2026:13:55:{i % 60:02d} +0000] "GET /p{i} HTTP/1.1" 200 5 "-" "UA {i % 7}"'
        for i in range(700)
    ]
    log = tmp_path / "a.log"
    log.write_text("\n".join(rows) + "\n")
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    con = connect(Lake(lake))
    for n in (1, 7, 64):
        assert _clients_table(con, 700, 700 // n + (700 % n > 0)) == (False, n)
        got = con.sql("SELECT client_id, bucket FROM clients").pl()
        assert got.height == 700
        assert got["bucket"].to_list() == got.select(b=bucket_of(pl.col("client_id"), n))["b"].to_list()
    con.close()


def test_a_client_of_more_than_half_a_bucket_gets_a_bucket_of_its_own(tmp_path: Path) -> None:
    """Two busy clients each alone in a bucket numbered after the others, in the order of their
    ids; the rest where `bucket_of` puts them; the answers those of one pass."""
    import shutil

    from trafficlens.classify.buckets import bucket_of, fits_in_memory
    from trafficlens.classify.pipeline import _clients_table
    from trafficlens.store import Lake, connect

    rows = [
        f'10.0.0.{i % 40} - - [10/Oct/2026:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /p{i % 9} HTTP/1.1" 200 5 "-" "UA {i % 3}"'
        for i in range(240)
    ]
    busy = [
        f'192.0.2.{k} - - [10/Oct/2026:14:{i // 60:02d}:{i % 60:02d} +0000] "GET /q{i % 5} HTTP/1.1" 200 5 "-" "curl/8.{k}"'
        for k in (1, 2)
        for i in range(60)
    ]
    log = tmp_path / "a.log"
    log.write_text("\n".join(rows + busy) + "\n")
    one, many = tmp_path / "one", tmp_path / "many"
    ingest([str(log)], one, progress=False)
    shutil.copytree(one, many)
    con = connect(Lake(one))
    assert _clients_table(con, 360, 100) == (False, 4 + 2)  # four by hash, two of their own
    got = con.sql("SELECT client_id, requests, bucket FROM clients ORDER BY client_id").pl()
    con.close()
    heavy = got.filter(pl.col("requests") > 50)
    assert heavy["requests"].to_list() == [60, 60] and heavy["bucket"].to_list() == [4, 5]
    rest = got.filter(pl.col("requests") <= 50)
    assert rest["bucket"].to_list() == rest.select(b=bucket_of(pl.col("client_id"), 4))["b"].to_list()
    classify(one, progress=False)
    classify(many, progress=False, bucket_rows=100)
    # Buckets of 20 requests: each busy client is more than two buckets' worth, sessionised in
    # DuckDB rather than in a frame.
    assert not fits_in_memory(60, 20) and fits_in_memory(60, 100)
    sql = tmp_path / "sql"
    shutil.copytree(many, sql)
    classify(sql, progress=False, bucket_rows=20)
    for name in ("clients", "sessions"):
        a = pl.read_parquet(one / name / "*.parquet").sort(f"{name[:-1]}_id")
        for other in (many, sql):
            assert a.equals(pl.read_parquet(other / name / "*.parquet").sort(f"{name[:-1]}_id"))
    requests = [pl.read_parquet(x / "requests" / "*" / "*.parquet").sort("source", "line_no") for x in (one, sql)]
    assert requests[0].equals(requests[1].select(requests[0].columns))
    assert {f.name.split("-")[1] for f in (many / "requests").glob("*/*.parquet")} >= {"4", "5"}


def test_site_norms_and_cohorts_add_up_over_any_split_of_the_clients() -> None:
    """The sites' norms and the user-agent cohorts, gathered bucket by bucket as sums, are those of
    all the clients at once."""
    from trafficlens.classify.evidence import site_norm_parts, site_norms
    from trafficlens.classify.labels import cohort_counts

    n = 400
    clients = pl.DataFrame(
        {
            "client_id": [f"{i:016x}" for i in range(n)],
            "site": [f"s{i % 3}" for i in range(n)],
            "user_agent": [f"ua{i % 5}" for i in range(n)],
            "identity": ["none" if i % 11 else "declared" for i in range(n)],
            "pages": [i % 9 for i in range(n)],
            "assets": [i % 4 for i in range(n)],
            "favicon": [i % 6 == 0 for i in range(n)],
            "http10": [i % 13 == 0 for i in range(n)],
            "proto_requests": [1 + i % 3 for i in range(n)],
        }
    ).with_columns(pl.col("favicon", "http10").cast(pl.Int64))
    pred = pl.DataFrame(
        {
            "client_id": clients["client_id"],
            "b_class": ["human"] * n,
            "b_human_proba": [(i * 37 % 100) / 100 for i in range(n)],
            "b_nav_proba": [None if i % 7 == 0 else (i * 53 % 100) / 100 for i in range(n)],
        }
    )
    whole_norms = site_norms(clients).sort("site")
    whole_cohorts = cohort_counts(clients, pred).sort("site", "user_agent")
    shares = [clients.filter(pl.col("client_id").str.slice(-1).is_in(list(d))) for d in ("0123", "4567", "89abcdef")]
    parts = pl.concat([site_norm_parts(s) for s in shares])
    assert site_norms(parts=parts).sort("site").equals(whole_norms)
    summed = (
        pl.concat([cohort_counts(s, pred) for s in shares])
        .group_by("site", "user_agent")
        .agg(pl.col("n", "found").sum())
        .sort("site", "user_agent")
    )
    assert summed.equals(whole_cohorts)
    assert whole_cohorts["n"].sum() > 0 and whole_cohorts["found"].sum() > 0


def test_buckets_no_client_falls_into_are_skipped(tmp_path: Path) -> None:
    """More buckets than clients: the empty ones write nothing, and the answers are one pass's."""
    import shutil

    rows = [
        f'10.0.0.{i % 2} - - [10/Oct/2026:13:55:{i:02d} +0000] "GET /p{i} HTTP/1.1" 200 5 "-" "Mozilla/5.0 b{i % 2}"'
        for i in range(12)
    ]
    log = tmp_path / "a.log"
    log.write_text("\n".join(rows) + "\n")
    one, many = tmp_path / "one", tmp_path / "many"
    ingest([str(log)], one, progress=False)
    shutil.copytree(one, many)
    classify(one, progress=False)
    classify(many, progress=False, bucket_rows=1)
    for name in ("clients", "sessions"):
        a = pl.read_parquet(one / name / "*.parquet").sort("client_id")
        b = pl.read_parquet(many / name / "*.parquet").sort("client_id")
        assert a.height == b.height == 2
        assert a.equals(b)
    assert pl.read_parquet(many / "requests" / "*" / "*.parquet").height == 12


def test_a_bucket_too_large_for_memory_is_sessionised_in_sql_as_in_a_frame() -> None:
    """`sessionise_sql` (DuckDB, within its memory limit) gives every column `sessionise` gives, to
    the bit: sessions cut after 30 minutes, range fetches counted once and not beside the whole
    file, gaps within the session and the client, referrer hosts."""
    from datetime import datetime, timedelta

    from trafficlens.classify.buckets import SESSION_ORDER, sessionise, sessionise_sql

    t0 = datetime(2026, 10, 1, 8, 0, 0, 123456)
    n = 2000
    events = pl.DataFrame(
        {
            "client_id": [f"c{i % 9}" for i in range(n)],
            # Ties, sub-second steps and gaps of more than half an hour.
            "ts": [
                t0 + timedelta(seconds=(i * 977) % (40_000 if i % 2 else 600_000), microseconds=(i * 7919) % 1_000_000)
                for i in range(n)
            ],
            "source": [f"s{i % 2}" if i % 53 else None for i in range(n)],
            "line_no": [(i * 31) % 997 for i in range(n)],
            "status": [206 if i % 5 == 0 else (None if i % 89 == 0 else 200) for i in range(n)],
            "path": [f"/p{i % 4}" if i % 3 else None for i in range(n)],
            "referer": [None if i % 3 else ("-x" if i % 7 == 0 else f"https://h{i % 4}.example/x") for i in range(n)],
        }
    ).sample(fraction=1.0, shuffle=True, seed=5)
    con = duckdb.connect()
    con.register("ev", events)
    in_sql = con.sql(f"SELECT * FROM ({sessionise_sql('ev')}) ORDER BY {SESSION_ORDER}").pl()
    framed = sessionise(events)
    assert in_sql.columns == framed.columns
    assert in_sql.equals(framed)
    assert framed["session_id"].n_unique() > 9 and not framed["counted"].all() and framed["gap"].max() > 1


def test_events_sorted_by_duckdb_sessionise_as_polars_sorts_them() -> None:
    """`SESSION_ORDER` in SQL is the order `sessionise` sorts in: nulls first, ties by file and line."""
    from datetime import datetime, timedelta

    from trafficlens.classify.buckets import SESSION_ORDER, sessionise

    t0 = datetime(2026, 10, 1)
    n = 300
    events = pl.DataFrame(
        {
            "client_id": [f"c{i % 7}" for i in range(n)],
            "ts": [None if i % 41 == 0 else t0 + timedelta(seconds=(i * 977) % 5000) for i in range(n)],
            "source": [f"s{i % 2}" if i % 53 else None for i in range(n)],
            "line_no": [(i * 31) % 97 for i in range(n)],
            "status": [206 if i % 13 == 0 else 200 for i in range(n)],
            "path": [f"/p{i % 5}" for i in range(n)],
            "referer": [None if i % 3 else f"https://h{i % 4}.example/x" for i in range(n)],
        }
    ).sample(fraction=1.0, shuffle=True, seed=3)
    con = duckdb.connect()
    con.register("ev", events)
    ordered = con.sql(f"SELECT * FROM ev ORDER BY {SESSION_ORDER}").pl()
    assert sessionise(ordered, presorted=True).equals(sessionise(events))
