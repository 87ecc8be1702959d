"""Verification by published IP ranges and reverse DNS (trafficlens/classify/verify/).

Fixtures under tests/fixtures/ranges/ use documentation prefixes only (RFC 5737, RFC 3849):
published/ is a --ranges folder in the operators' own file names and format, variants/ holds
the other shapes range lists come in, malformed/ files that must be refused.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import threading
import time
import urllib.error
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from trafficlens.classify import verify as R
from trafficlens.errors import InputError, RangesDownloadError, TrafficlensError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ranges"
PUBLISHED = FIXTURES / "published"


@pytest.fixture(scope="module")
def published() -> pl.DataFrame:
    return R.load_ranges(PUBLISHED)


def _ranges_from(tmp_path: Path, files: dict[str, list[str]]) -> pl.DataFrame:
    for name, prefixes in files.items():
        doc = {
            "creationTime": "2026-01-01T00:00:00",
            "prefixes": [{"ipv6Prefix" if ":" in p else "ipv4Prefix": p} for p in prefixes],
        }
        (tmp_path / name).write_text(json.dumps(doc))
    return R.load_ranges(tmp_path)


def _key(address: str) -> str:
    ip = ipaddress.ip_address(address)
    n = int(ip) | (0xFFFF << 32) if ip.version == 4 else int(ip)
    return f"{n:032x}"


# ---------------------------------------------------------------------------------------------
# The table of sources
# ---------------------------------------------------------------------------------------------


def test_range_sources_table_is_consistent() -> None:
    sources = R.range_sources()
    files = [s.file for s in sources]
    assert len(files) == len(set(files)), "a file name is listed twice"
    by_file = {s.file: s for s in sources}
    for s in sources:
        assert s.agents, f"{s.file} lists no agents"
        assert s.docs.startswith("https://"), s.file
        if s.url is not None:
            # contract: a downloaded file is stored under its published name
            assert s.url.startswith("https://") and s.url.rsplit("/", 1)[1] == s.file, s.file
        else:
            assert s.same_as, f"{s.file} is neither downloadable nor the old name of another file"
        if s.same_as:
            assert by_file[s.same_as].same_as == s.file, f"{s.file} and {s.same_as} must name each other"
            assert by_file[s.same_as].operator == s.operator
    # The files the design names must all be known.
    for name in (
        "gptbot.json",
        "searchbot.json",
        "chatgpt-user.json",
        "googlebot.json",
        "special-crawlers.json",
        "user-triggered-fetchers.json",
        "bingbot.json",
        "perplexitybot.json",
        "perplexity-user.json",
        "applebot.json",
        "ccbot.json",
        "duckduckbot.json",
        "duckassistbot.json",
        "mistralai-user-ips.json",
    ):
        assert name in by_file, name


# ---------------------------------------------------------------------------------------------
# Reading range files
# ---------------------------------------------------------------------------------------------

VARIANTS = {
    "prefix-strings.json": ["192.0.2.0/24", "2001:db8::/32"],
    "plain-list.json": ["192.0.2.0/24", "198.51.100.0/24"],
    "other-keys.json": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.0/25"],
    "addresses.json": ["192.0.2.7/32", "2001:db8::7/128"],
    "one-per-line.txt": ["192.0.2.0/28", "192.0.2.32/28", "2001:db8::/48"],
    "bom.json": ["192.0.2.0/24"],
    "host-bits.json": ["192.0.2.0/24"],
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parse_variant(name: str) -> None:
    nets = R.parse_range_file((FIXTURES / "variants" / name).read_bytes(), name)
    assert [str(n) for n in nets] == VARIANTS[name]


def test_parse_google_shape() -> None:
    nets = R.parse_range_file((PUBLISHED / "chatgpt-user.json").read_bytes())
    assert [str(n) for n in nets] == ["192.0.2.128/26", "2001:db8:a::/48"]


MALFORMED = {
    "truncated.json": "is not valid JSON",
    "action-needed.json": "has no list of prefixes (its keys: 'Action needed')",
    "bad-prefix.json": "entry 2 '192.0.2.300/24' is not an IP address or prefix",
    "no-prefix-field.json": "entry 1 has no prefix field (its keys: 'service')",
    "page.json": "is an HTML or XML page",
    "numbers.json": "entry 1 is int 3221225984, not a prefix",
    "junk.txt": "line 2 'not-a-prefix' is not an IP address or prefix",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_is_one_clear_line(name: str) -> None:
    path = FIXTURES / "malformed" / name
    with pytest.raises(InputError) as err:
        R.parse_range_file(path.read_bytes(), str(path))
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and MALFORMED[name] in msg
    assert "trafficlens ranges update" in msg


def test_parse_refuses_binary() -> None:
    with pytest.raises(InputError, match="is not UTF-8 text"):
        R.parse_range_file(b"\xff\xfe\x00\x01", "x.json")


def test_load_published_folder(published: pl.DataFrame) -> None:
    assert published.schema == pl.Schema(R.RANGES_SCHEMA)
    assert set(published["range_file"]) == {p.name for p in PUBLISHED.glob("*.json")}
    op = dict(zip(published["range_file"], published["operator"]))
    assert op["gptbot.json"] == "OpenAI"
    assert op["bots.json"] == "Anthropic"
    assert op["common-crawlers.json"] == "Google"
    assert op["bingbot.json"] == "Microsoft"
    row = published.filter(pl.col("prefix") == "2001:db8:b::/64").row(0, named=True)
    assert row["family"] == 6 and row["range_file"] == "bingbot.json"
    assert row["start"] == _key("2001:db8:b::") and row["end"] == _key("2001:db8:b:0:ffff:ffff:ffff:ffff")
    row = published.filter(pl.col("prefix") == "192.0.2.0/28").row(0, named=True)
    assert row["family"] == 4 and row["start"] == _key("192.0.2.0") and row["end"] == _key("192.0.2.15")


def test_load_dedupes_and_ignores_unknown_names(tmp_path: Path) -> None:
    ranges = _ranges_from(
        tmp_path, {"gptbot.json": ["192.0.2.0/28", "192.0.2.0/28"], "my-list.json": ["198.51.100.0/24"]}
    )
    assert ranges["prefix"].to_list() == ["192.0.2.0/28"]


def test_load_errors_are_actionable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder of IP range files.*ranges update"):
        R.load_ranges(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="holds none of the published range files"):
        R.load_ranges(tmp_path)
    (tmp_path / "bingbot.json").write_text('{"prefixes": [{"ipv4Prefix": "nope"}]}')
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "bingbot.json"))):
        R.load_ranges(tmp_path)


def test_file_without_prefixes_loads_nothing(tmp_path: Path) -> None:
    # An operator can publish an empty list; it proves nothing about any address.
    ranges = _ranges_from(tmp_path, {"duckassistbot.json": [], "gptbot.json": ["192.0.2.0/28"]})
    assert set(ranges["range_file"]) == {"gptbot.json"}


# ---------------------------------------------------------------------------------------------
# Parsing addresses
# ---------------------------------------------------------------------------------------------

ADDRESSES = {
    "192.0.2.1": ("192.0.2.1", 4),
    " 192.0.2.1 ": ("192.0.2.1", 4),
    "0.0.0.0": ("0.0.0.0", 4),
    "255.255.255.255": ("255.255.255.255", 4),
    "192.0.2.1:8080": ("192.0.2.1", 4),
    "::ffff:192.0.2.1": ("192.0.2.1", 4),
    "::FFFF:c000:0201": ("192.0.2.1", 4),
    "[::ffff:192.0.2.1]:443": ("192.0.2.1", 4),
    "2001:db8::1": ("2001:db8::1", 6),
    "2001:DB8::1": ("2001:db8::1", 6),
    "2001:0db8:0000:0000:0000:0000:0000:0001": ("2001:db8::1", 6),
    "[2001:db8::1]": ("2001:db8::1", 6),
    "[2001:db8::1]:443": ("2001:db8::1", 6),
    "fe80::1%eth0": ("fe80::1", 6),
    "::": ("::", 6),
    "::1": ("::1", 6),
    "1::": ("1::", 6),
    "1:2:3:4:5:6:7::": ("1:2:3:4:5:6:7:0", 6),
    "::2:3:4:5:6:7:8": ("0:2:3:4:5:6:7:8", 6),
    "64:ff9b::192.0.2.1": ("64:ff9b::c000:201", 6),
    "1:2:3:4:5:6:192.0.2.1": ("1:2:3:4:5:6:c000:201", 6),
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6),
}
JUNK = [
    "",
    " ",
    "-",
    "unknown",
    "localhost",
    "crawl-66-249-66-1.googlebot.com",
    "192.0.2",
    "192.0.2.1.5",
    "192.0.2.256",
    "192.0.2.01",
    "192.0.2.-1",
    "192.0.2.1/24",
    "192.0.2.1%eth0",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":::",
    "1:::2",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "12345::",
    "g::1",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:192.0.2.1",
    "::ffff:192.0.2.01",
    "[2001:db8::1",
    "2001:db8::1]",
    "fe80::1%",
]


@pytest.mark.parametrize("text", sorted(ADDRESSES))
def test_parse_address(text: str) -> None:
    expected, family = ADDRESSES[text]
    got = R.parse_ips(pl.Series([text])).row(0, named=True)
    assert got == {"client_ip": text, "family": family, "key": _key(expected)}


def test_parse_junk_is_null() -> None:
    got = R.parse_ips(pl.Series(JUNK + [None], dtype=pl.String))
    bad = got.filter(pl.col("key").is_not_null() | pl.col("family").is_not_null())
    assert bad.height == 0, bad


def _reference_key(text: str) -> str | None:
    """What the standard library makes of the same string (brackets and ports aside)."""
    t = text.strip()
    m = re.fullmatch(r"\[([^\]]*)\](?::[0-9]{1,5})?", t)
    if t.startswith("["):
        if not m:
            return None
        t = m.group(1)
    m = re.fullmatch(r"([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]{1,5}", t)
    if m:
        t = m.group(1)
    try:
        ip = ipaddress.ip_address(t)
    except ValueError:
        return None
    if ip.version == 6:
        return f"{int(ipaddress.IPv6Address(t.split('%')[0])):032x}"
    return _key(t)


def test_parse_agrees_with_ipaddress_on_random_and_mutated_strings() -> None:
    rnd = random.Random(20260101)
    texts = []
    for _ in range(3000):
        v4 = ipaddress.IPv4Address(rnd.getrandbits(32))
        n = rnd.getrandbits(128)
        if rnd.random() < 0.5:  # runs of zero groups, so "::" lands everywhere
            n &= ~((1 << rnd.randrange(128)) - 1)
        if rnd.random() < 0.3:
            n &= (1 << rnd.randrange(1, 128)) - 1
        v6 = ipaddress.IPv6Address(n)
        groups = v6.exploded.split(":")
        texts += [
            str(v4),
            f"::ffff:{v4}",
            f"{v4}:443",
            v6.compressed,
            v6.exploded,
            v6.compressed.upper(),
            f"[{v6}]:80",
            f"{v6}%en0",
            ":".join(groups[:6]) + ":" + str(v4),
        ]
    mutated = []
    for t in texts:
        chars = list(t)
        i = rnd.randrange(len(chars) + 1)
        op = rnd.randrange(3)
        if op == 0:
            del chars[min(i, len(chars) - 1)]
        elif op == 1:
            chars.insert(i, rnd.choice("0123456789abcdef:.%[] g"))
        else:
            chars[min(i, len(chars) - 1)] = rnd.choice("0123456789abcdef:.%[] g")
        mutated.append("".join(chars))
    every = texts + mutated
    got = R.parse_ips(pl.Series(every))["key"].to_list()
    wrong = [(t, g, _reference_key(t)) for t, g in zip(every, got) if g != _reference_key(t)]
    assert not wrong, wrong[:10]
    assert sum(k is None for k in got) > 1000  # the mutations did produce junk


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def _match(ips: list[str | None], ranges: pl.DataFrame) -> dict[str, list[str]]:
    m = R.match_ranges(pl.Series(ips, dtype=pl.String), ranges)
    return {ip: list(files) for ip, files in zip(m["client_ip"], m["range_files"])}


def test_match_boundaries_families_and_junk(published: pl.DataFrame) -> None:
    got = _match(
        [
            "192.0.2.0",
            "192.0.2.15",
            "192.0.2.16",
            "192.0.2.31",
            "192.0.2.32",
            "::ffff:192.0.2.33",
            "2001:db8:a::1",
            "[2001:db8:a:ffff:ffff:ffff:ffff:ffff]:443",
            "2001:db8:b:1::",
            "not-an-ip",
            None,
            "192.0.2.0",
        ],
        published,
    )
    assert got == {
        "192.0.2.0": ["gptbot.json"],
        "192.0.2.15": ["gptbot.json"],
        "192.0.2.16": [],
        "192.0.2.31": [],
        "192.0.2.32": ["gptbot.json"],
        "::ffff:192.0.2.33": ["gptbot.json"],
        "2001:db8:a::1": ["chatgpt-user.json"],
        "[2001:db8:a:ffff:ffff:ffff:ffff:ffff]:443": ["chatgpt-user.json"],
        "2001:db8:b:1::": [],
        "not-an-ip": [],
    }


def test_match_overlapping_and_nested_ranges(published: pl.DataFrame) -> None:
    # common-crawlers.json has 198.51.100.0/25; user-triggered-fetchers-google.json has the
    # enclosing /24 and a /29 nested in it. An address after a nested range but still inside
    # its parent is where a plain nearest-start join goes wrong.
    got = _match(
        [
            "198.51.100.5",
            "198.51.100.127",
            "198.51.100.128",
            "198.51.100.203",
            "198.51.100.208",
            "198.51.100.255",
            "198.51.101.0",
        ],
        published,
    )
    both = ["common-crawlers.json", "user-triggered-fetchers-google.json"]
    assert got == {
        "198.51.100.5": both,
        "198.51.100.127": both,
        "198.51.100.128": ["user-triggered-fetchers-google.json"],
        "198.51.100.203": ["user-triggered-fetchers-google.json"],
        "198.51.100.208": ["user-triggered-fetchers-google.json"],
        "198.51.100.255": ["user-triggered-fetchers-google.json"],
        "198.51.101.0": [],
    }


def test_match_agrees_with_brute_force(tmp_path: Path) -> None:
    rnd = random.Random(7)
    files: dict[str, list[str]] = {}
    for name in ("gptbot.json", "bingbot.json", "ccbot.json", "applebot.json"):
        nets = []
        for _ in range(60):
            if rnd.random() < 0.6:
                length = rnd.randrange(16, 33)
                base = (10 << 24) | rnd.getrandbits(20) << 4  # one /8, so prefixes overlap
                nets.append(str(ipaddress.ip_network((base >> (32 - length) << (32 - length), length))))
            else:
                length = rnd.randrange(100, 129)
                base = (0x20010DB8 << 96) | rnd.getrandbits(32)
                nets.append(str(ipaddress.ip_network((base >> (128 - length) << (128 - length), length))))
        files[name] = nets
    ranges = _ranges_from(tmp_path, files)
    ips = [str(ipaddress.IPv4Address((10 << 24) | rnd.getrandbits(24))) for _ in range(1500)]
    ips += [str(ipaddress.IPv6Address((0x20010DB8 << 96) | rnd.getrandbits(32))) for _ in range(1500)]
    got = _match(ips, ranges)
    nets = [(f, ipaddress.ip_network(p)) for f, ps in files.items() for p in ps]
    for ip in ips:
        a = ipaddress.ip_address(ip)
        assert got[ip] == sorted({f for f, n in nets if n.version == a.version and a in n}), ip
    assert sum(1 for v in got.values() if len(v) > 1) > 20, "the random ranges should overlap"


def test_match_against_no_ranges() -> None:
    assert _match(["192.0.2.1"], R.empty_ranges()) == {"192.0.2.1": []}


def test_attribute_addresses_picks_most_specific_file(published: pl.DataFrame) -> None:
    got = R.attribute_addresses(
        pl.Series(["198.51.100.5", "198.51.100.130", "203.0.113.170", "192.0.2.20", "junk"]), published
    ).sort("client_ip")
    assert got.rows() == [
        ("198.51.100.130", "Google", "user-triggered-fetchers-google.json"),
        ("198.51.100.5", "Google", "common-crawlers.json"),  # /25 beats the enclosing /24
        ("203.0.113.170", "Anthropic", "bots.json"),
    ]


# ---------------------------------------------------------------------------------------------
# Verifying claims
# ---------------------------------------------------------------------------------------------


def _claims(rows: list[tuple[str | None, str, str, list[str] | None, list[str] | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "client_ip": pl.String,
            "agent": pl.String,
            "operator": pl.String,
            "verify_ranges": pl.List(pl.String),
            "verify_rdns": pl.List(pl.String),
        },
        orient="row",
    )


def _decisions(out: pl.DataFrame) -> list[tuple[str, list[str]]]:
    return [(i, list(r)) for i, r in zip(out["identity"], out["reasons"])]


def test_verify_by_ranges(published: pl.DataFrame) -> None:
    claims = _claims(
        [
            ("192.0.2.5", "GPTBot", "OpenAI", ["gptbot.json"], None),
            ("198.51.100.9", "GPTBot", "OpenAI", ["gptbot.json"], None),
            ("203.0.113.9", "DuckDuckBot", "DuckDuckGo", ["duckduckbot.json"], []),
            ("203.0.113.9", "Bytespider", "ByteDance", [], []),
            ("unknown", "GPTBot", "OpenAI", ["gptbot.json"], None),
            (None, "GPTBot", "OpenAI", ["gptbot.json"], None),
            ("192.0.2.130", "ChatGPT-User", "OpenAI", ["chatgpt-user.json", "gptbot.json"], None),
            ("203.0.113.170", "ClaudeBot", "Anthropic", ["bots.json"], None),
        ]
    )
    out = R.verify_claims(claims, published)
    assert out.columns == claims.columns + ["identity", "reasons"]
    assert out.drop("identity", "reasons").equals(claims)
    assert _decisions(out) == [
        ("verified", ["ip:in_ranges:gptbot.json"]),
        ("spoofed", ["ip:not_in_ranges:gptbot.json"]),
        ("declared", ["ip:no_ranges_loaded"]),
        ("declared", ["verify:no_method"]),
        ("declared", ["ip:invalid"]),
        ("declared", ["ip:invalid"]),
        ("verified", ["ip:in_ranges:chatgpt-user.json"]),
        ("verified", ["ip:in_ranges:bots.json"]),
    ]


def test_verify_reasons_name_only_loaded_files(published: pl.DataFrame) -> None:
    claims = _claims([("192.0.2.5", "Googlebot", "Google", ["common-crawlers.json", "special-crawlers.json"], None)])
    assert _decisions(R.verify_claims(claims, published)) == [("spoofed", ["ip:not_in_ranges:common-crawlers.json"])]


def test_verify_renamed_file_is_checked_against_its_successor(published: pl.DataFrame) -> None:
    # Google renamed googlebot.json to common-crawlers.json; a catalogue naming either works.
    claims = _claims(
        [
            ("198.51.100.9", "Googlebot", "Google", ["googlebot.json"], None),
            ("192.0.2.9", "Googlebot", "Google", ["googlebot.json"], None),
        ]
    )
    assert _decisions(R.verify_claims(claims, published)) == [
        ("verified", ["ip:in_ranges:common-crawlers.json"]),
        ("spoofed", ["ip:not_in_ranges:common-crawlers.json"]),
    ]


def test_verify_without_ranges_is_declared() -> None:
    claims = _claims([("192.0.2.5", "GPTBot", "OpenAI", ["gptbot.json"], None)])
    assert _decisions(R.verify_claims(claims, R.empty_ranges())) == [("declared", ["ip:no_ranges_loaded"])]


def test_verify_rdns_not_asked(published: pl.DataFrame) -> None:
    claims = _claims(
        [
            ("203.0.113.5", "YandexBot", "Yandex", None, [".yandex.ru"]),
            ("203.0.113.5", "bingbot", "Microsoft", ["bingbot.json"], [".search.msn.com"]),
            ("192.0.2.200", "bingbot", "Microsoft", ["bingbot.json"], [".search.msn.com"]),
        ]
    )
    assert _decisions(R.verify_claims(claims, published)) == [
        ("declared", ["rdns:not_checked"]),
        ("verified", ["ip:in_ranges:bingbot.json"]),
        ("spoofed", ["ip:not_in_ranges:bingbot.json", "rdns:not_checked"]),
    ]


def test_verify_empty_claims(published: pl.DataFrame) -> None:
    out = R.verify_claims(_claims([]), published)
    assert out.height == 0 and out.columns[-2:] == ["identity", "reasons"]


# ---------------------------------------------------------------------------------------------
# Reverse DNS, with a resolver that needs no network
# ---------------------------------------------------------------------------------------------


class FakeResolver:
    """PTR and A/AAAA records from dicts; counts and times every lookup."""

    def __init__(
        self,
        ptr: dict[str, str | None],
        forward: dict[str, list[str]],
        fail: set[str] = frozenset(),
        slow: dict[str, float] | None = None,
        delay: float = 0.0,
    ):
        self.ptr, self.fwd, self.fail, self.slow, self.delay = ptr, forward, fail, slow or {}, delay
        self.reverse_calls: list[str] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def reverse(self, address: str) -> str | None:
        with self.lock:
            self.reverse_calls.append(address)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.slow.get(address, self.delay))
            if address in self.fail:
                raise TimeoutError("timed out")
            return self.ptr.get(address)
        finally:
            with self.lock:
                self.active -= 1

    def forward(self, hostname: str) -> list[str]:
        return self.fwd.get(hostname, [])


GOOGLE_SFX = [".googlebot.com", "google.com"]


def _dns() -> FakeResolver:
    return FakeResolver(
        ptr={
            "203.0.113.50": "crawl-203-0-113-50.googlebot.com.",
            "203.0.113.51": "crawl-203-0-113-51.googlebot.com",  # PTR set by whoever owns the address
            "203.0.113.52": "host.example.net",
            "203.0.113.53": None,
            "2001:db8::53": "rate-limited-proxy.Google.com",
            "198.51.100.9": "crawl-198-51-100-9.googlebot.com",
        },
        forward={
            "crawl-203-0-113-50.googlebot.com": ["203.0.113.50"],
            "crawl-203-0-113-51.googlebot.com": ["192.0.2.99"],
            "host.example.net": ["203.0.113.52"],
            "rate-limited-proxy.google.com": ["2001:db8::53", "192.0.2.1"],
            "crawl-198-51-100-9.googlebot.com": ["198.51.100.9"],
        },
        fail={"203.0.113.54"},
    )


def test_rdns_decisions(tmp_path: Path, published: pl.DataFrame) -> None:
    dns = _dns()
    claims = _claims(
        [
            ("203.0.113.50", "Googlebot", "Google", None, GOOGLE_SFX),
            ("203.0.113.51", "Googlebot", "Google", None, GOOGLE_SFX),
            ("203.0.113.52", "Googlebot", "Google", None, GOOGLE_SFX),
            ("203.0.113.53", "Googlebot", "Google", None, GOOGLE_SFX),
            ("203.0.113.54", "Googlebot", "Google", None, GOOGLE_SFX),
            ("[2001:db8::53]:443", "AdsBot-Google", "Google", None, GOOGLE_SFX),
            ("not-an-ip", "Googlebot", "Google", None, GOOGLE_SFX),
        ]
    )
    out = R.verify_claims(claims, published, rdns=True, resolver=dns, rdns_cache=tmp_path / "rdns.parquet")
    assert _decisions(out) == [
        ("verified", ["rdns:confirmed:.googlebot.com"]),
        ("spoofed", ["rdns:unconfirmed"]),
        ("spoofed", ["rdns:mismatch"]),
        ("spoofed", ["rdns:no_ptr"]),
        ("declared", ["rdns:lookup_failed"]),
        ("verified", ["rdns:confirmed:.google.com"]),
        ("declared", ["ip:invalid"]),
    ]
    # The resolver is given one canonical spelling, never brackets or ports.
    assert sorted(dns.reverse_calls) == [
        "2001:db8::53",
        "203.0.113.50",
        "203.0.113.51",
        "203.0.113.52",
        "203.0.113.53",
        "203.0.113.54",
    ]


def test_rdns_only_where_ranges_did_not_verify(tmp_path: Path, published: pl.DataFrame) -> None:
    dns = _dns()
    claims = _claims(
        [
            ("198.51.100.9", "Googlebot", "Google", ["common-crawlers.json"], GOOGLE_SFX),
            ("203.0.113.50", "Googlebot", "Google", ["common-crawlers.json"], GOOGLE_SFX),
            ("203.0.113.52", "Googlebot", "Google", ["common-crawlers.json"], GOOGLE_SFX),
            ("203.0.113.54", "Googlebot", "Google", ["common-crawlers.json"], GOOGLE_SFX),
            ("203.0.113.52", "GPTBot", "OpenAI", ["gptbot.json"], None),
        ]
    )
    out = R.verify_claims(claims, published, rdns=True, resolver=dns, rdns_cache=tmp_path / "c.parquet")
    assert _decisions(out) == [
        ("verified", ["ip:in_ranges:common-crawlers.json"]),
        # A stale range file does not overrule a forward-confirmed name.
        ("verified", ["ip:not_in_ranges:common-crawlers.json", "rdns:confirmed:.googlebot.com"]),
        ("spoofed", ["ip:not_in_ranges:common-crawlers.json", "rdns:mismatch"]),
        # DNS that could not answer leaves the range verdict standing.
        ("spoofed", ["ip:not_in_ranges:common-crawlers.json", "rdns:lookup_failed"]),
        # Another claim's lookup of the same address does not leak into this one.
        ("spoofed", ["ip:not_in_ranges:gptbot.json"]),
    ]
    assert "198.51.100.9" not in dns.reverse_calls


def test_rdns_cache_avoids_the_network(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "rdns.parquet"
    addresses = ["203.0.113.50", "203.0.113.52", "203.0.113.53", "203.0.113.54", "::ffff:203.0.113.50"]
    first = _dns()
    a = R.reverse_dns(addresses, resolver=first, cache=cache)
    assert sorted(first.reverse_calls) == ["203.0.113.50", "203.0.113.52", "203.0.113.53", "203.0.113.54"]
    assert cache.is_file()
    stored = pl.read_parquet(cache)
    assert set(stored["address"]) == {"203.0.113.50", "203.0.113.52", "203.0.113.53"}  # failures are not kept
    assert stored.schema["checked_at"] == pl.Datetime("us", "UTC")

    second = _dns()
    b = R.reverse_dns(addresses, resolver=second, cache=cache)
    assert second.reverse_calls == ["203.0.113.54"]  # only the failed lookup is tried again
    assert a.sort("client_ip").equals(b.sort("client_ip"))
    row = b.filter(pl.col("client_ip") == "::ffff:203.0.113.50").row(0, named=True)
    assert row == {
        "client_ip": "::ffff:203.0.113.50",
        "hostname": "crawl-203-0-113-50.googlebot.com",
        "confirmed": True,
        "status": "ok",
    }

    third = _dns()
    R.reverse_dns(addresses, resolver=third, cache=cache, max_age=timedelta(0))
    assert len(third.reverse_calls) == 4  # too old: asked again


def test_rdns_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "rdns.parquet"
    cache.write_bytes(b"not parquet")
    out = R.reverse_dns(["203.0.113.50"], resolver=_dns(), cache=cache)
    assert out["status"].to_list() == ["ok"]
    assert pl.read_parquet(cache).height == 1


def test_rdns_timeout_and_bounded_concurrency(tmp_path: Path) -> None:
    addresses = [f"192.0.2.{i}" for i in range(1, 41)]
    dns = FakeResolver(ptr={a: f"h{a}.example" for a in addresses}, forward={}, delay=0.02, slow={"192.0.2.7": 3.0})
    started = time.monotonic()
    out = R.reverse_dns(addresses, resolver=dns, cache=tmp_path / "c.parquet", workers=4, timeout=0.3)
    assert time.monotonic() - started < 2.0  # the slow lookup is not waited for
    status = dict(zip(out["client_ip"], out["status"]))
    assert status.pop("192.0.2.7") == "failed"
    assert set(status.values()) == {"ok"}
    assert dns.max_active <= 4


def test_socket_resolver_maps_answers_and_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    def gethostbyaddr(address: str) -> tuple[str, list[str], list[str]]:
        if address == "192.0.2.1":
            return ("host.example", [], [address])
        if address == "192.0.2.2":
            raise socket.herror(1, "Unknown host")
        raise socket.herror(2, "Host name lookup failure")

    def getaddrinfo(host: str, port: object, **kw: object) -> list[tuple]:
        if host == "host.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 0))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "gethostbyaddr", gethostbyaddr)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    r = R.SocketResolver()
    assert r.reverse("192.0.2.1") == "host.example"
    assert r.reverse("192.0.2.2") is None
    with pytest.raises(OSError):
        r.reverse("192.0.2.3")
    assert r.forward("host.example") == ["192.0.2.1"]
    assert r.forward("gone.example") == []


# ---------------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------------


def _payload(i: int) -> bytes:
    return json.dumps(
        {"creationTime": "2026-01-01T00:00:00", "prefixes": [{"ipv4Prefix": f"198.51.100.{i}/32"}]}
    ).encode()


class FakeWeb:
    """Serves every published URL, except those told to fail or to answer something else."""

    def __init__(self, broken: dict[str, Exception | bytes] | None = None, offline: bool = False):
        self.pages = {s.url: _payload(i) for i, s in enumerate(R.range_sources()) if s.url}
        self.broken = broken or {}
        self.offline = offline
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, timeout: float) -> bytes:
        with self.lock:
            self.asked.append(url)
        if self.offline:
            raise urllib.error.URLError(OSError("Network is unreachable"))
        name = url.rsplit("/", 1)[1]
        answer = self.broken.get(name, self.pages[url])
        if isinstance(answer, Exception):
            raise answer
        return answer


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_update_downloads_every_file(tmp_path: Path) -> None:
    web = FakeWeb()
    result = R.update_ranges(tmp_path / "ranges", fetch=web)
    downloadable = {s.file for s in R.range_sources() if s.url}
    assert set(result.updated) == downloadable and not result.failed and not result.unchanged
    assert set(web.asked) == {s.url for s in R.range_sources() if s.url}
    assert not any("googlebot.json" in u for u in web.asked)  # retired address
    assert {p.name for p in (tmp_path / "ranges").iterdir()} == downloadable  # no temporary files left
    ranges = R.load_ranges(tmp_path / "ranges")
    assert set(ranges["range_file"]) == downloadable
    again = R.update_ranges(tmp_path / "ranges", fetch=FakeWeb())
    assert set(again.unchanged) == downloadable and not again.updated
    assert (
        again.describe()
        == f"{len(downloadable)} of {len(downloadable)} range files current in {tmp_path / 'ranges'} (0 updated)"
    )


def test_update_keeps_previous_copy_when_a_download_fails(tmp_path: Path) -> None:
    dest = tmp_path / "ranges"
    dest.mkdir()
    old = b'{"prefixes": [{"ipv4Prefix": "192.0.2.0/28"}]}'
    for name in ("gptbot.json", "common-crawlers.json", "bingbot.json", "ccbot.json"):
        (dest / name).write_bytes(old)
    action_needed = (FIXTURES / "malformed" / "action-needed.json").read_bytes()
    web = FakeWeb(
        broken={
            "gptbot.json": urllib.error.HTTPError("https://openai.com/gptbot.json", 503, "busy", {}, None),  # type: ignore[arg-type]
            "common-crawlers.json": action_needed,
            "bingbot.json": b'{"prefixes": []}',
            "ccbot.json": TimeoutError("timed out"),
        }
    )
    result = R.update_ranges(dest, fetch=web)
    assert result.failed == {
        "gptbot.json": "HTTP 503",
        "common-crawlers.json": "has no list of prefixes (its keys: 'Action needed')",
        "bingbot.json": "holds no prefixes",
        "ccbot.json": "timed out",
    }
    for name in result.failed:
        assert (dest / name).read_bytes() == old
    assert "searchbot.json" in result.updated
    line = result.describe()
    assert "\n" not in line and "kept the previous copy of bingbot.json (holds no prefixes)" in line


def test_update_offline_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "ranges"
    dest.mkdir()
    (dest / "gptbot.json").write_bytes(b'{"prefixes": [{"ipv4Prefix": "192.0.2.0/28"}]}')
    before = _snapshot(dest)
    with pytest.raises(RangesDownloadError) as err:
        R.update_ranges(dest, fetch=FakeWeb(offline=True))
    assert isinstance(err.value, TrafficlensError)
    msg = str(err.value)
    assert "\n" not in msg and "could not download any IP range file" in msg and "nothing was changed" in msg
    assert _snapshot(dest) == before
    with pytest.raises(RangesDownloadError):
        R.update_ranges(tmp_path / "never-created", fetch=FakeWeb(offline=True))
    assert not (tmp_path / "never-created").exists()


def test_default_dirs_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert R.default_cache_dir() == tmp_path / "xdg" / "trafficlens"
    assert R.default_ranges_dir() is None
    result = R.update_ranges(fetch=FakeWeb())
    assert result.dest == tmp_path / "xdg" / "trafficlens" / "ranges"
    assert R.default_ranges_dir() == result.dest
    # The XDG spec: a relative XDG_CACHE_HOME is ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert R.default_cache_dir() == tmp_path / "home" / ".cache" / "trafficlens"
