"""Privacy at ingest and `trafficlens redact`: no full client address and no query value (but the
allowed ones) anywhere in a lake written with the privacy options, while verification, operator
attribution and sessions still work; old partitions pseudonymised later, newer ones untouched."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from trafficlens.cli import main
from trafficlens.errors import OptionError
from trafficlens.ingest.privacy import MARK, Privacy, Pseudonymiser, lake_secret, pseudonym, redact_pairs
from trafficlens.report.redact import redact
from trafficlens.store import Lake

RANGES = FIXTURES / "ranges" / "published"
GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36"
)
# Addresses the lake must never hold in full (none ends in .0: a truncated address would contain it).
VERIFIED = "192.0.2.5"  # in gptbot.json's 192.0.2.0/28
SPOOFED = "192.0.2.20"  # the same /24, outside both of gptbot.json's /28s
OPERATOR_BROWSER = "192.0.2.130"  # in chatgpt-user.json's 192.0.2.128/26
PEOPLE = ("198.18.7.11", "198.18.7.12")  # one /24, one user agent: two clients all the same
IPV6 = "2001:db8:77:5::9"
MAPPED = "::ffff:198.18.9.77"
FORWARDED = "198.18.50.61"
REJECTED = "198.18.9.99"
ADDRESSES = (VERIFIED, SPOOFED, OPERATOR_BROWSER, *PEOPLE, IPV6, "198.18.9.77", FORWARDED, REJECTED)
SECRETS = ("secretref1", "hunter2secret", "passwordvalue", "jsonsecret", "rejectsecret", "fragtoken9")


def _line(ip: str, minute: int, path: str, ua: str, referer: str = "-", day: int = 6) -> str:
    return f'{ip} - - [{day:02d}/Oct/2025:10:{minute:02d}:00 +0000] "GET {path} HTTP/1.1" 200 512 "{referer}" "{ua}"\n'


def _logs(folder: Path) -> list[Path]:
    lines = [
        _line(VERIFIED, 1, "/products/1?ref=secretref1", GPTBOT),
        _line(SPOOFED, 2, "/products/2", GPTBOT),
        _line(OPERATOR_BROWSER, 3, "/cart", CHROME),
        _line(IPV6, 4, "/", CHROME),
        _line(MAPPED, 5, "/", CHROME),
    ]
    for i, ip in enumerate(PEOPLE):
        for m in range(3):
            lines.append(
                _line(
                    ip,
                    10 + 3 * i + m,
                    f"/search?q=hunter2secret&page={m}&utm_source=chatgpt.com",
                    CHROME,
                    "https://shop.example/search?q=passwordvalue&utm_campaign=spring#access_token=fragtoken9",
                )
            )
    lines.append(f"garbage from {REJECTED} GET /x?token=rejectsecret\n")
    combined = folder / "access.log"
    combined.write_text("".join(lines))
    doc = {
        "remote_addr": "10.9.8.7",
        "time_iso8601": "2025-10-06T11:00:00+00:00",
        "request": "GET /j?k=jsonsecret HTTP/1.1",
        "status": "200",
        "body_bytes_sent": "10",
        "http_user_agent": CHROME,
        "http_x_forwarded_for": f"{FORWARDED}, 10.9.8.7",
    }
    js = folder / "proxy.json.log"
    js.write_text(json.dumps(doc) + "\n")
    return [combined, js]


def _analyze(lake: Path, logs: list[Path], *options: str) -> None:
    args = ["analyze", *map(str, logs), "--lake", str(lake), "--ranges", str(RANGES), "--no-progress", *options]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, (r.output, r.exception)


def _lake_text(lake: Path) -> dict[str, str]:
    """Every file of the lake as text: Parquet files decoded (values and metadata), others as bytes."""
    out = {}
    for path in sorted(p for p in lake.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("latin-1")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            raw += json.dumps(table.to_pylist(), default=str) + str(pq.read_metadata(path).schema)
        out[str(path.relative_to(lake))] = raw
    return out


@pytest.fixture(scope="module", params=["truncate", "hash"])
def private_lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(f"private-{request.param}")
    lake = folder / "lake"
    _analyze(lake, _logs(folder), "--ip-privacy", request.param, "--redact-query")
    return lake


def test_no_address_or_query_value_anywhere(private_lake: Path) -> None:
    files = _lake_text(private_lake)
    assert any(f.startswith("requests/") for f in files) and any(f.startswith("rejects/") for f in files)
    for name, text in files.items():
        for secret in (*ADDRESSES, MAPPED, *SECRETS):
            assert secret not in text, f"{secret} in {name}"
    events = Lake(private_lake).scan("events").collect()
    assert events.height == 12 and events["client_ip"].str.contains(MARK, literal=True).all()
    # keys stay, values go, but for the allowed keys (utm_* by default)
    assert "q=&page=&utm_source=chatgpt.com" in events["query"].to_list()
    referers = pl.read_parquet(private_lake / "requests" / "*" / "*.parquet")["referer"].drop_nulls().unique()
    assert referers.to_list() == ["https://shop.example/search?q=&utm_campaign=spring#access_token="]
    rejects = pl.read_parquet(private_lake / "rejects" / "*.parquet")["raw"].to_list()
    assert rejects == [f"garbage from {rejects[0].split()[2]} GET /x?token="] and MARK in rejects[0]
    settings = json.loads((private_lake / "privacy.json").read_text())
    assert settings["redact_query"] and settings["ip"] in ("truncate", "hash")
    assert (private_lake / ".secret").stat().st_mode & 0o077 == 0


def test_verification_and_attribution_still_work(private_lake: Path) -> None:
    clients = pl.read_parquet(private_lake / "clients" / "*.parquet")
    bots = {r["reasons"][1]: r["identity"] for r in clients.filter(pl.col("agent") == "GPTBot").to_dicts()}
    assert bots == {"ip:in_ranges:gptbot.json": "verified", "ip:not_in_ranges:gptbot.json": "spoofed"}
    browser = clients.filter(pl.col("reasons").list.contains("ip:operator_range:chatgpt-user.json"))
    assert browser.height == 1 and browser["identity"][0] == "undeclared"
    # Two people in one /24 with one user agent stay two clients with their own sessions.
    people = clients.filter(pl.col("requests") == 3)
    assert people.height == 2 and people["client_ip"].n_unique() == 2 and people["sessions"].to_list() == [1, 1]


def test_truncation_keeps_the_network_in_clear(tmp_path: Path) -> None:
    secret = lake_secret(Lake(tmp_path, create=True))
    assert lake_secret(Lake(tmp_path)) == secret and len(secret) == 32
    a, b = pseudonym("198.18.7.11", "truncate", secret), pseudonym("198.18.7.12", "truncate", secret)
    assert a.startswith("198.18.7.0~") and b.startswith("198.18.7.0~") and a != b
    assert pseudonym("2001:db8:77:5::9", "truncate", secret).startswith("2001:db8:77::~")
    assert pseudonym("::ffff:198.18.7.11", "truncate", secret) == a
    assert pseudonym(a, "truncate", secret) == a  # a pseudonym is not pseudonymised again


def test_hashes_keep_the_networks_apart_and_together(tmp_path: Path) -> None:
    secret = lake_secret(Lake(tmp_path / "lake", create=True))

    def net(ip: str) -> list[str]:
        return pseudonym(ip, "hash", secret).split(MARK)[0].split(".")

    same24, same16, other = net("198.18.7.11"), net("198.18.7.200"), net("198.18.9.1")
    assert same24 == net("198.18.7.12") and same16 == same24
    assert other[:2] == same24[:2] and other[2] != same24[2]  # one /16, two /24s
    assert net("203.0.113.9")[:2] != same24[:2]
    for ip in ("198.18.7.11", "2001:db8:77:5::9"):
        token = pseudonym(ip, "hash", secret)
        assert ip not in token and pseudonym(ip, "hash", lake_secret(Lake(tmp_path / "other", create=True))) != token
        with pytest.raises(ValueError):
            ipaddress.ip_address(token.split(MARK)[0])  # never an address someone else has


def test_query_values_dropped_but_the_allowed_ones() -> None:
    frame = pl.DataFrame(
        {
            "q": [
                "a=1&utm_source=x&b=",
                "ref=me&REF=you&refx=no&k",
                "/p;jsessionid=abc?x=1#t=2",
                None,
                'GET /s?q=a%20b&utm_medium=cpc HTTP/1.1" 200 "https://r.example/?s=1"',
            ]
        }
    )
    out = frame.select(redact_pairs(pl.col("q"), ("utm_*", "ref"))).to_series().to_list()
    assert out == [
        "a=&utm_source=x&b=",
        "ref=me&REF=you&refx=&k",
        "/p;jsessionid=?x=#t=",
        None,
        'GET /s?q=&utm_medium=cpc HTTP/1.1" 200 "https://r.example/?s="',
    ]
    assert frame.select(redact_pairs(pl.col("q"), ())).to_series()[0] == "a=&utm_source=&b="


def test_the_lake_remembers_the_choice(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    lake = tmp_path / "lake"
    r = CliRunner().invoke(main, ["ingest", str(logs[0]), "--lake", str(lake), "--ip-privacy", "hash"])
    assert r.exit_code == 0 and "privacy: addresses replaced by keyed hashes" in r.output, r.output
    later = tmp_path / "later.log"
    later.write_text(_line("198.18.99.99", 30, "/", CHROME))
    assert CliRunner().invoke(main, ["ingest", str(later), "--lake", str(lake)]).exit_code == 0
    assert "198.18.99.99" not in json.dumps(Lake(lake).scan("events").collect()["client_ip"].to_list())
    off = tmp_path / "off.log"
    off.write_text(_line("198.18.99.98", 31, "/", CHROME))
    r = CliRunner().invoke(main, ["ingest", str(off), "--lake", str(lake), "--ip-privacy", "off"])
    assert r.exit_code == 0 and "privacy:" not in r.output
    assert "198.18.99.98" in Lake(lake).scan("events").collect()["client_ip"].to_list()


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "LOG", "--keep-query-values", "a=b"], "is not a query key"),
        (["ingest", "LOG", "--ip-privacy", "rot13"], "Invalid value for '--ip-privacy'"),
        (["ingest", "LOG", "--ip-privacy", "hash", "--ranges", "/no/such/ranges"], "no such folder"),
        (["redact", "--before", "2025-10-07"], "say what to redact"),
        (["redact", "--before", "last week", "--redact-query"], "is not a day"),
    ],
)
def test_bad_privacy_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    log = _logs(tmp_path)[0]
    lake = tmp_path / "lake"
    assert CliRunner().invoke(main, ["ingest", str(log), "--lake", str(lake), "--no-progress"]).exit_code == 0
    r = CliRunner().invoke(main, [str(log) if a == "LOG" else a for a in args] + ["--lake", str(lake)])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    with pytest.raises(OptionError):
        redact(lake, "2025-10-07")


def test_redact_before_a_day(tmp_path: Path) -> None:
    day1 = [_line("198.18.1.21", m, f"/search?q=oldsecret{m}", CHROME, day=6) for m in range(3)]
    both = [_line("198.18.1.22", 20, "/a?q=bothsecret", CHROME, day=6), _line("198.18.1.22", 21, "/b", CHROME, day=7)]
    day2 = [_line("198.18.2.31", m, f"/search?q=newvalue{m}", CHROME, day=7) for m in range(3)]
    log = tmp_path / "two-days.log"
    junk = "junk 198.18.1.23 /x?y=rejsecret\n"  # between lines of the earlier day: of that day
    log.write_text("".join([*day1, junk, *both, *day2]))
    lake = tmp_path / "lake"
    _analyze(lake, [log])
    later = sorted((lake / "events" / "date=2025-10-07").glob("*.parquet")) + sorted(
        (lake / "requests" / "date=2025-10-07").glob("*.parquet")
    )
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in later}

    r = CliRunner().invoke(
        main,
        ["redact", "--lake", str(lake), "--before", "2025-10-07", "--ip-privacy", "hash", "--redact-query"],
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert r.exit_code == 0 and "redacted" in r.output, r.output
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in later} == before, "later partitions are untouched"
    for name, text in _lake_text(lake).items():
        if "date=2025-10-07" in name:
            continue
        for secret in ("198.18.1.21", "198.18.1.23", "oldsecret", "bothsecret", "rejsecret"):
            assert secret not in text, f"{secret} in {name}"
    clients = pl.read_parquet(lake / "clients" / "*.parquet")
    assert {"198.18.1.22", "198.18.2.31"} <= set(clients["client_ip"])  # seen on the later day: kept
    gone = clients.filter(pl.col("client_ip").str.contains(MARK, literal=True))
    assert gone.height == 1
    requests = Lake(lake).scan("requests").collect()
    assert set(requests.filter(pl.col("client_ip") == gone["client_ip"][0])["client_id"]) == {gone["client_id"][0]}
    # A classify now names the pseudonymised client as redact did.
    assert CliRunner().invoke(main, ["classify", "--lake", str(lake), "--no-progress"]).exit_code == 0
    again = pl.read_parquet(lake / "clients" / "*.parquet")
    assert gone["client_id"][0] in again["client_id"].to_list()
    # Running it again changes no value.
    first = pl.read_parquet(lake / "events" / "date=2025-10-06" / "*.parquet")
    assert redact(lake, "2025-10-07", ip_privacy="hash", redact_query=True).rows["events"] == first.height
    assert pl.read_parquet(lake / "events" / "date=2025-10-06" / "*.parquet").equals(first)


def test_pseudonymiser_keeps_rows_and_order(tmp_path: Path) -> None:
    looked_up: list[str] = []

    def ranges(ips: pl.Series) -> pl.DataFrame:
        looked_up.extend(ips.to_list())
        return pl.DataFrame({"client_ip": ips, "ip_ranges": [["x.json"]] * len(ips)})

    p = Pseudonymiser(Privacy("truncate", True), lake_secret(Lake(tmp_path / "lake", create=True)), ranges)
    columns = Lake(tmp_path / "lake", create=True).scan("events").collect_schema()

    def chunk(ips: list[str | None], forwarded: list[str | None]) -> pl.DataFrame:
        given = {"client_ip": ips, "forwarded_for": forwarded, "line_no": list(range(1, len(ips) + 1))}
        return pl.DataFrame({c: given.get(c, [None] * len(ips)) for c in columns}, schema=columns)

    # An address first seen in a header, then as a client, still gets its ranges looked up.
    header = p.events(chunk(["198.18.1.9"], ["198.18.1.1, 10.0.0.1"]))["forwarded_for"][0]
    assert header.startswith(pseudonym("198.18.1.1", "truncate", p.secret) + ", 10.0.0.0~") and "10.0.0.1" not in header
    out = p.events(chunk(["198.18.1.1", None, "198.18.1.2", "198.18.1.1"], [None] * 4))
    assert out["line_no"].to_list() == [1, 2, 3, 4] and out["client_ip"][1] is None
    assert out["client_ip"][0] == out["client_ip"][3] != out["client_ip"][2]
    assert out["ip_ranges"].to_list() == [["x.json"], None, ["x.json"], ["x.json"]]
    assert sorted(looked_up) == ["198.18.1.1", "198.18.1.2", "198.18.1.9"], "each address looked up once"


def test_labels_are_the_same_with_privacy_on(tmp_path: Path) -> None:
    """A simulated day labelled with addresses and with hashed ones: every request gets the same
    labels, threats included (network threats group hashed networks as they did addresses)."""
    log, ranges = tmp_path / "sim.log", tmp_path / "ranges"
    args = ["simulate", "--out", str(log), "--days", "1", "--scale", "0.3", "--seed", "11"]
    r = CliRunner().invoke(main, [*args, "--ranges-out", str(ranges), "--no-progress"])
    assert r.exit_code == 0, r.output
    labels = ["source", "line_no", "actor_class", "identity", "operator", "malicious", "threats", "ai_driven"]
    seen = []
    for options in ([], ["--ip-privacy", "hash"]):
        lake = tmp_path / f"lake{len(options)}"
        args = ["analyze", str(log), "--lake", str(lake), "--ranges", str(ranges), "--no-progress", *options]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        seen.append(Lake(lake).scan("requests").select(labels).collect().sort("source", "line_no"))
    assert seen[0]["identity"].is_in(["verified"]).any() and seen[0]["identity"].is_in(["spoofed"]).any()
    assert seen[0].equals(seen[1])
