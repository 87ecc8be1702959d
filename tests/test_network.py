"""Network evidence: hosting providers' published ranges, ASN and country databases, and the
report's network section over a simulated week with cloud-hosted stealth scrapers."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import random
import threading
import urllib.error
from pathlib import Path

import polars as pl
import pytest
from conftest import simulated_lake

from trafficlens.classify.pipeline import classify
from trafficlens.classify.verify import (
    HostingRanges,
    geo_for,
    hosting_for,
    hosting_sources,
    load_geo,
    load_hosting,
    load_ranges,
    update_hosting,
)
from trafficlens.classify.verify.intervals import most_specific_segments
from trafficlens.errors import InputError, RangesDownloadError
from trafficlens.report import Report, build_report
from trafficlens.schema import AS_ORG, ASN, COUNTRY, HOSTING, HOSTING_SERVICE, NETWORK_SCHEMA, REGION
from trafficlens.simulate.addresses import CLOUD, HOSTING_16, RESIDENTIAL, RESIDENTIAL6, published_ranges, write_ranges
from trafficlens.store import Lake

# --- fixtures: the providers' files, in their own shapes --------------------------------------

AWS = {
    "syncToken": "1",
    "prefixes": [
        {"ip_prefix": "3.80.0.0/12", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
        {"ip_prefix": "3.80.0.0/12", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"},
        {"ip_prefix": "54.160.0.0/12", "region": "us-east-1", "service": "AMAZON", "network_border_group": "x"},
        {"ip_prefix": "54.164.0.0/16", "region": "us-east-1", "service": "EC2", "network_border_group": "x"},
    ],
    "ipv6_prefixes": [{"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "EC2"}],
}
GOOGLE = {
    "syncToken": "1",
    "prefixes": [
        {"ipv4Prefix": "34.16.0.0/12", "service": "Google Cloud", "scope": "us-central1"},
        {"ipv4Prefix": "35.192.0.0/12", "service": "Google Cloud", "scope": "europe-west1"},
        {"ipv6Prefix": "2600:1900:4000::/44", "service": "Google Cloud", "scope": "us-central1"},
    ],
}
AZURE = {
    "changeNumber": 1,
    "cloud": "Public",
    "values": [
        {"name": "AzureCloud", "properties": {"region": "", "systemService": "", "addressPrefixes": ["4.150.0.0/15"]}},
        {
            "name": "AzureCloud.eastus",
            "properties": {
                "region": "eastus",
                "systemService": "",
                "addressPrefixes": ["40.112.0.0/14", "4.150.0.0/16"],
            },
        },
        {
            "name": "Storage.EastUS",
            "properties": {"region": "eastus", "systemService": "AzureStorage", "addressPrefixes": ["40.112.4.0/24"]},
        },
    ],
}
ORACLE = {"regions": [{"region": "eu-frankfurt-1", "cidrs": [{"cidr": "130.61.0.0/16", "tags": ["OCI"]}]}]}


def _geofeed(prefixes: tuple[str, ...], country: str, region: str) -> str:
    return "# prefix,country,region,city,postal\n" + "".join(f"{p},{country},{region},,\n" for p in prefixes)


def provider_files() -> dict[str, bytes]:
    """One fixture file per provider shape, covering the simulator's hosting and cloud spaces."""
    do = tuple(p for p in HOSTING_16 if p.startswith(("159.89", "167.99", "134.209", "64.227", "143.198")))
    linode = ("172.104.0.0/16", "172.105.0.0/16")
    vultr = ("45.32.0.0/16", "149.28.0.0/16")
    return {
        "aws-ip-ranges.json": json.dumps(AWS).encode(),
        "google-cloud.json": json.dumps(GOOGLE).encode(),
        "azure-service-tags.json": json.dumps(AZURE).encode(),
        "oracle-public-ip-ranges.json": json.dumps(ORACLE).encode(),
        "digitalocean-geofeed.csv": _geofeed(do, "US", "US-NY").encode(),
        "linode-geofeed.csv": _geofeed(linode, "DE", "DE-HE").encode(),
        "vultr-geofeed.csv": _geofeed(vultr, "NL", "").encode(),
        "cloudflare-ips-v4.txt": b"104.16.0.0/13\n173.245.48.0/20\n",
        "cloudflare-ips-v6.txt": b"2606:4700::/32\n",
        "fastly-public-ip-list.json": json.dumps({"addresses": ["151.101.0.0/16"], "ipv6_addresses": []}).encode(),
    }


@pytest.fixture
def hosting_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ranges"
    folder.mkdir()
    for name, data in provider_files().items():
        (folder / name).write_bytes(data)
    return folder


def _expected_hosting(ip: str, files: dict[str, bytes]) -> tuple[str | None, str | None, str | None]:
    """The most specific prefix holding `ip` over the fixtures, found by brute force with ipaddress."""
    addr = ipaddress.ip_address(ip)
    best: tuple[int, int, tuple[str | None, str | None, str | None]] | None = None
    by_file = {s.file: s for s in hosting_sources()}
    order = [s.file for s in hosting_sources()]
    for name, data in files.items():
        provider = by_file[name].provider
        for prefix, service, region, rank in _fixture_entries(name, data):
            net = ipaddress.ip_network(prefix)
            if net.version == addr.version and addr in net:
                key = (-net.prefixlen, order.index(name) * 10 + rank)
                if best is None or key < best[:2]:
                    best = (*key, (provider, service, region))
    return best[2] if best else (None, None, None)


def _fixture_entries(name: str, data: bytes) -> list[tuple[str, str | None, str | None, int]]:
    text = data.decode()
    if name == "aws-ip-ranges.json":
        doc = json.loads(text)
        return [(e["ip_prefix"], e["service"], e["region"], int(e["service"] == "AMAZON")) for e in doc["prefixes"]] + [
            (e["ipv6_prefix"], e["service"], e["region"], 0) for e in doc["ipv6_prefixes"]
        ]
    if name == "google-cloud.json":
        return [
            (e.get("ipv4Prefix") or e["ipv6Prefix"], e["service"], e["scope"], 0) for e in json.loads(text)["prefixes"]
        ]
    if name == "azure-service-tags.json":
        out = []
        for tag in json.loads(text)["values"]:
            p = tag["properties"]
            rank = 0 if p["systemService"] else (1 if "." in tag["name"] else 2)
            service = p["systemService"] or tag["name"].split(".")[0]
            out += [(x, service, p["region"] or None, rank) for x in p["addressPrefixes"]]
        return out
    if name == "oracle-public-ip-ranges.json":
        return [(c["cidr"], "OCI", r["region"], 0) for r in json.loads(text)["regions"] for c in r["cidrs"]]
    if name == "fastly-public-ip-list.json":
        return [(p, None, None, 0) for p in json.loads(text)["addresses"]]
    if name.endswith(".csv"):
        rows = [ln.split(",") for ln in text.splitlines() if ln and not ln.startswith("#")]
        return [(r[0], None, r[2] or r[1], 0) for r in rows]
    return [(ln, None, None, 0) for ln in text.split()]


def _random_addresses(seed: int, n: int) -> list[str]:
    """Addresses inside, at the edges of and around the fixtures' prefixes, and elsewhere."""
    rng = random.Random(seed)
    out = []
    prefixes = [p for name, d in provider_files().items() for p, *_ in _fixture_entries(name, d)]
    for _ in range(n):
        net = ipaddress.ip_network(rng.choice(prefixes))
        pick = rng.random()
        if pick < 0.25:
            out.append(str(net.network_address))
        elif pick < 0.5:
            out.append(str(net.broadcast_address))
        elif pick < 0.6:  # just outside
            out.append(
                str(net.broadcast_address + 1)
                if int(net.broadcast_address) < (1 << net.max_prefixlen) - 1
                else "8.8.8.8"
            )
        elif pick < 0.9:
            out.append(str(net.network_address + rng.randrange(net.num_addresses)))
        else:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    return out


# --- hosting ---------------------------------------------------------------------------------


def test_every_provider_shape_loads_and_the_most_specific_prefix_names_the_service(hosting_dir: Path) -> None:
    table = load_hosting(hosting_dir)
    assert isinstance(table, HostingRanges)
    assert set(table.files) == set(provider_files())
    assert set(table.providers) == {s.provider for s in hosting_sources()}
    got = hosting_for(
        pl.Series(
            [
                "3.81.2.3",  # AWS: EC2 and AMAZON list the same /12; EC2 is the service
                "54.165.0.1",  # inside AMAZON's /12, outside EC2's /16
                "54.164.9.9",  # EC2's /16 inside AMAZON's /12
                "40.112.4.7",  # Azure: the storage tag inside the region's tag
                "40.113.0.1",  # the region's tag only
                "4.151.0.1",  # the whole cloud's tag only (AzureCloud)
                "2600:1f18::1",  # IPv6
                "::ffff:34.16.0.1",  # IPv4-mapped spelling of a Google Cloud address
                "172.104.3.4",  # a geofeed: region from the feed
                "192.0.2.1",  # nobody's
                "not an address",
                "3.81.2.3",  # repeated: one row per distinct address
                None,
            ]
        ),
        table,
    )
    assert got.columns == ["client_ip", HOSTING, HOSTING_SERVICE, REGION]
    assert got.height == 11
    rows = {r[0]: r[1:] for r in got.iter_rows()}
    assert rows["3.81.2.3"] == ("aws", "EC2", "us-east-1")
    assert rows["54.165.0.1"] == ("aws", "AMAZON", "us-east-1")
    assert rows["54.164.9.9"] == ("aws", "EC2", "us-east-1")
    assert rows["40.112.4.7"] == ("azure", "AzureStorage", "eastus")
    assert rows["40.113.0.1"] == ("azure", "AzureCloud", "eastus")
    assert rows["4.151.0.1"] == ("azure", "AzureCloud", None)
    assert rows["2600:1f18::1"] == ("aws", "EC2", "us-east-1")
    assert rows["::ffff:34.16.0.1"] == ("google_cloud", "Google Cloud", "us-central1")
    assert rows["172.104.3.4"] == ("linode", None, "DE-HE")
    assert rows["192.0.2.1"] == (None, None, None)
    assert rows["not an address"] == (None, None, None)


def test_hosting_matches_a_brute_force_search(hosting_dir: Path) -> None:
    # contract: for any address, the answer is that of the most specific prefix holding it
    files = provider_files()
    table = load_hosting(hosting_dir)
    plain = _random_addresses(11, 3000)
    # Other spellings of the same addresses, as proxies and dual-stack servers log them.
    spelt = {ip: ip for ip in plain}
    for ip in plain[::7]:
        other = f"::ffff:{ip}" if "." in ip else f"[{ip.upper()}]:443"
        spelt[other] = ip
    for ip in plain[3::11]:
        if "." in ip:
            spelt[f"{ip}:8080"] = ip
    got = {r[0]: r[1:] for r in hosting_for(pl.Series(list(spelt)), table).iter_rows()}
    assert len(got) == len(spelt)
    for ip, canonical in spelt.items():
        assert got[ip] == _expected_hosting(canonical, files), ip


def test_segments_of_nested_and_disjoint_intervals() -> None:
    # [0, 99] holds [10, 19] and [50, 59]; [200, 209] stands alone; the tie at [10, 19] goes to index 1.
    cut = most_specific_segments([0, 10, 50, 200, 10], [99, 19, 59, 209, 19])
    assert cut == [(0, 9, 0), (10, 19, 1), (20, 49, 0), (50, 59, 2), (60, 99, 0), (200, 209, 3)]


def test_hosting_files_sit_beside_the_operators_files(hosting_dir: Path) -> None:
    (hosting_dir / "gptbot.json").write_text('{"prefixes": [{"ipv4Prefix": "192.0.2.0/28"}]}')
    assert set(load_ranges(hosting_dir)["range_file"]) == {"gptbot.json"}
    assert "gptbot.json" not in load_hosting(hosting_dir).files
    empty = hosting_dir.parent / "only-operators"
    empty.mkdir()
    (empty / "gptbot.json").write_text('{"prefixes": [{"ipv4Prefix": "192.0.2.0/28"}]}')
    none = load_hosting(empty)
    assert none.files == () and hosting_for(pl.Series(["192.0.2.1"]), none)[HOSTING].to_list() == [None]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("aws-ip-ranges.json", b'{"prefixes": [{"ip_prefix": "3.0.0.0/33", "service": "EC2"}]}', "'3.0.0.0/33'"),
        ("aws-ip-ranges.json", b'{"syncToken": "1"}', "has no list 'prefixes'"),
        ("google-cloud.json", b"{not json", "is not valid JSON"),
        ("azure-service-tags.json", b"<html>sign in</html>", "HTML"),
        ("cloudflare-ips-v4.txt", b"", "holds no prefixes"),
        ("linode-geofeed.csv", b"# only comments\n", "holds no prefixes"),
    ],
)
def test_a_bad_provider_file_is_one_line_naming_it(hosting_dir: Path, name: str, data: bytes, words: str) -> None:
    (hosting_dir / name).write_bytes(data)
    with pytest.raises(InputError) as err:
        load_hosting(hosting_dir)
    msg = str(err.value)
    assert "\n" not in msg and str(hosting_dir / name) in msg and words in msg


class FakeWeb:
    """Serves the providers' published URLs with the fixtures, except those told to fail."""

    def __init__(self, broken: dict[str, Exception | bytes] | None = None) -> None:
        files = provider_files()
        self.pages = {s.url: files[s.file] for s in hosting_sources() if s.url}
        self.names = {s.url: s.file for s in hosting_sources() if s.url}
        self.broken = broken or {}
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, timeout: float) -> bytes:
        with self.lock:
            self.asked.append(url)
        answer = self.broken.get(self.names[url], self.pages[url])
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_update_downloads_the_hosting_files_and_keeps_a_copy_when_one_fails(tmp_path: Path) -> None:
    dest = tmp_path / "ranges"
    web = FakeWeb()
    result = update_hosting(dest, fetch=web)
    downloadable = {s.file for s in hosting_sources() if s.url}
    assert set(result.updated) == downloadable and not result.failed
    assert "azure-service-tags.json" not in downloadable  # a new dated address every week
    assert set(web.asked) == {s.url for s in hosting_sources() if s.url}
    assert set(load_hosting(dest).files) == downloadable
    before = (dest / "aws-ip-ranges.json").read_bytes()
    again = update_hosting(
        dest,
        fetch=FakeWeb(
            broken={
                "aws-ip-ranges.json": b'{"message": "moved"}',
                "fastly-public-ip-list.json": urllib.error.HTTPError("u", 503, "busy", {}, None),  # type: ignore[arg-type]
            }
        ),
    )
    assert again.failed == {
        "aws-ip-ranges.json": "has no list 'prefixes' as AWS publishes it (its keys: 'message')",
        "fastly-public-ip-list.json": "HTTP 503",
    }
    assert (dest / "aws-ip-ranges.json").read_bytes() == before
    line = again.describe()
    assert "\n" not in line and line.startswith(f"{len(downloadable) - 2} of {len(downloadable)} hosting range files")


def test_update_with_no_hosting_file_downloaded_changes_nothing(tmp_path: Path) -> None:
    offline = urllib.error.URLError(OSError("Network is unreachable"))
    web = FakeWeb(broken={s.file: offline for s in hosting_sources()})
    with pytest.raises(RangesDownloadError) as err:
        update_hosting(tmp_path / "never", fetch=web)
    assert "\n" not in str(err.value) and "nothing was changed" in str(err.value)
    assert not (tmp_path / "never").exists()


# --- ASN and country -------------------------------------------------------------------------


def _asn_rows() -> list[tuple[str, int, str, str]]:
    """The simulator's address spaces, each as its own network with an ASN, a name and a country."""
    spaces = list(dict.fromkeys(RESIDENTIAL + HOSTING_16 + CLOUD))
    countries = ("US", "DE", "FR", "GB", "NL")
    return [(p, 64512 + i, f"Example Net {i}", countries[i % len(countries)]) for i, p in enumerate(spaces)]


def write_tsv(path: Path) -> Path:
    """An iptoasn ip2asn TSV: start, end, AS number, country, AS description; with an unrouted range."""
    lines = []
    for prefix, asn, org, country in sorted(_asn_rows(), key=lambda r: ipaddress.ip_network(r[0]).network_address):
        net = ipaddress.ip_network(prefix)
        lines.append(f"{net.network_address}\t{net.broadcast_address}\t{asn}\t{country}\t{org}")
    lines.append("192.0.2.0\t192.0.2.255\t0\tNone\tNot routed")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_mmdb(path: Path, kind: str) -> Path:
    """A tiny GeoLite2-ASN or GeoLite2-Country database over the simulator's IPv6 spaces."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type=f"GeoLite2-{kind}", ipv4_compatible=True)
    for i, prefix in enumerate(RESIDENTIAL6):
        if kind == "ASN":
            record = {"autonomous_system_number": 65000 + i, "autonomous_system_organization": f"Example Six {i}"}
        else:
            record = {"country": {"iso_code": ("us", "fr", "de")[i % 3]}}
        writer.insert_network(IPSet([prefix]), record)
    # An IPv4 network, so the IPv4 subtree is read through the mmdb too.
    writer.insert_network(
        IPSet(["198.51.100.0/24"]),
        {"autonomous_system_number": 64496, "autonomous_system_organization": "Doc Net"}
        if kind == "ASN"
        else {"country": {"iso_code": "JP"}},
    )
    writer.to_db_file(str(path))
    return path


def test_geo_from_a_tsv_matches_a_brute_force_search(tmp_path: Path) -> None:
    tsv = write_tsv(tmp_path / "ip2asn-v4.tsv")
    rng = random.Random(3)
    rows = _asn_rows()
    ips = []
    for _ in range(2000):
        net = ipaddress.ip_network(rng.choice(rows)[0])
        ips.append(str(net.network_address + rng.randrange(net.num_addresses)))
    ips += ["192.0.2.9", "203.0.113.1", "junk"]
    with load_geo([tsv]) as dbs:
        got = geo_for(pl.Series(ips), dbs)
    assert got.schema == pl.Schema({"client_ip": pl.String, **{c: NETWORK_SCHEMA[c] for c in (ASN, AS_ORG, COUNTRY)}})
    assert got.height == len(set(ips))
    answers = {r[0]: r[1:] for r in got.iter_rows()}
    for ip in set(ips) - {"192.0.2.9", "203.0.113.1", "junk"}:
        addr = ipaddress.ip_address(ip)
        want = [(asn, org, c) for p, asn, org, c in rows if addr in ipaddress.ip_network(p)]
        assert answers[ip] == want[0], ip
    # Unrouted (AS 0, "None"), unknown and junk addresses know nothing.
    for ip in ("192.0.2.9", "203.0.113.1", "junk"):
        assert answers[ip] == (None, None, None)


def test_mmdb_and_tsv_combine_in_the_order_given(tmp_path: Path) -> None:
    asn = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", "ASN")
    country = write_mmdb(tmp_path / "GeoLite2-Country.mmdb", "Country")
    tsv = write_tsv(tmp_path / "ip2asn-combined.tsv.gz.tmp")
    gz = tmp_path / "ip2asn-combined.tsv.gz"
    gz.write_bytes(gzip.compress(tsv.read_bytes()))
    tsv.unlink()
    ips = pl.Series(["2601::1", "[2a01:cb00::5]:443", "198.51.100.7", "::ffff:198.51.100.8", "73.1.2.3", "2001:db8::1"])
    with load_geo([asn, country, gz]) as dbs:
        got = {r[0]: r[1:] for r in geo_for(ips, dbs).iter_rows()}
    assert got["2601::1"] == (65000, "Example Six 0", "US")
    assert got["[2a01:cb00::5]:443"] == (65001, "Example Six 1", "FR")
    assert got["198.51.100.7"] == (64496, "Doc Net", "JP")
    assert got["::ffff:198.51.100.8"] == (64496, "Doc Net", "JP")
    assert got["73.1.2.3"] == (64512, "Example Net 0", "US")  # from the TSV only
    assert got["2001:db8::1"] == (None, None, None)
    # The other order: the TSV's answer wins where both know the address.
    (tmp_path / "geo").mkdir()
    write_tsv(tmp_path / "geo" / "a.tsv").write_text("198.51.100.0\t198.51.100.255\t64499\tDE\tTSV Net\n")
    with load_geo([tmp_path / "geo", asn]) as dbs:
        row = geo_for(pl.Series(["198.51.100.7"]), dbs).row(0)
    assert row == ("198.51.100.7", 64499, "TSV Net", "DE")


def test_db_ip_lite_csvs_give_asn_and_country(tmp_path: Path) -> None:
    asn = tmp_path / "dbip-asn-lite.csv"
    asn.write_text('1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."\n2001:db8::,2001:db8::ffff,64500,Example Six\n')
    country = tmp_path / "dbip-country-lite.csv.gz"
    country.write_bytes(gzip.compress(b"1.0.0.0,1.0.0.127,AU\n2001:db8::,2001:db8::ffff,nz\n"))
    with load_geo([asn, country]) as dbs:
        got = {r[0]: r[1:] for r in geo_for(pl.Series(["1.0.0.5", "1.0.0.200", "2001:db8::7"]), dbs).iter_rows()}
    assert got == {
        "1.0.0.5": (13335, "Cloudflare, Inc.", "AU"),
        "1.0.0.200": (13335, "Cloudflare, Inc.", None),
        "2001:db8::7": (64500, "Example Six", "NZ"),
    }


def test_the_default_geo_folder_is_read_when_none_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with load_geo() as dbs:
        assert dbs.paths == () and geo_for(pl.Series(["73.1.2.3"]), dbs)[ASN].to_list() == [None]
    folder = tmp_path / "xdg" / "trafficlens" / "geo"
    folder.mkdir(parents=True)
    write_tsv(folder / "ip2asn-v4.tsv")
    (folder / "notes.txt").write_text("not a database\n")
    with load_geo() as dbs:
        assert dbs.paths == (str(folder / "ip2asn-v4.tsv"),)
        assert geo_for(pl.Series(["73.1.2.3"]), dbs)[ASN].to_list() == [64512]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("bad.mmdb", b"\x00" * 64, "not a readable MaxMind DB file"),
        ("bad.tsv", b"1.0.0.0\t1.0.0.255\t13335\tUS\tX\nnot-an-ip\t1.0.1.255\t1\tUS\tY\n", "line 2"),
        ("reversed.tsv", b"1.0.0.255\t1.0.0.0\t13335\tUS\tX\n", "line 1"),
        ("wide.tsv", b"1\t2\t3\t4\t5\t6\t7\n", "has 7 columns"),
    ],
)
def test_a_bad_database_is_one_line_naming_it(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError) as err:
        load_geo([tmp_path / name])
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / name) in msg and words in msg
    with pytest.raises(InputError, match="no such file or folder"):
        load_geo([tmp_path / "missing.mmdb"])


def test_geo_option_refuses_a_missing_path_before_any_work(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from trafficlens.cli import main

    result = CliRunner().invoke(
        main, ["classify", "--lake", str(tmp_path / "lake"), "--geo", str(tmp_path / "no.mmdb")]
    )
    assert result.exit_code != 0 and "--geo" in result.output and "no such file or folder" in result.output
    assert not (tmp_path / "lake").exists()


# --- the report's network section ------------------------------------------------------------


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated week (stealth scrapers run from cloud and hosting addresses), classified."""
    return simulated_lake(tmp_path_factory.mktemp("network"), days=7, scale=0.1, seed=5)


def _with_network_columns(lake: Path, tmp: Path) -> pl.DataFrame:
    """The lake classified again with the providers' range files and an ASN/country table: its
    clients table, hosting, ASN and country on every client."""
    ranges = tmp / "ranges"
    write_ranges(ranges, published_ranges(), dt.date(2025, 10, 6))
    for name, data in provider_files().items():
        (ranges / name).write_bytes(data)
    tsv = write_tsv(tmp / "ip2asn.tsv")
    classify(lake, ranges_dir=ranges, geo=[tsv], progress=False)
    return pl.read_parquet(lake / "clients" / "*.parquet")


def _independent(lake: Path, clients: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The section's tables computed from the lake's requests with polars alone."""
    req = pl.concat(
        [pl.read_parquet(f) for f in sorted((lake / "requests").glob("*/*.parquet"))], how="diagonal_relaxed"
    )
    df = req.select("client_id").join(
        clients.select("client_id", "actor_class", "identity", COUNTRY, ASN, AS_ORG, HOSTING, HOSTING_SERVICE),
        on="client_id",
    )
    total = df.height
    per_class = [
        pl.col("actor_class").eq(c).sum().cast(pl.Int64).alias(c) for c in ("human", "crawler", "scraper", "agent")
    ]
    by_country = (
        df.group_by(COUNTRY)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            pl.col("client_id").n_unique().cast(pl.Int64).alias("clients"),
            *per_class,
        )
        .with_columns(share=pl.col("requests") / total)
    )
    by_network = df.group_by(ASN).agg(
        pl.len().cast(pl.Int64).alias("requests"),
        pl.col("client_id").n_unique().cast(pl.Int64).alias("clients"),
        *per_class,
    )
    hosting_share = (
        df.group_by("actor_class")
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            pl.col(HOSTING).is_not_null().sum().cast(pl.Int64).alias("hosting_requests"),
            pl.col("client_id").n_unique().cast(pl.Int64).alias("clients"),
            pl.col("client_id")
            .filter(pl.col(HOSTING).is_not_null())
            .n_unique()
            .cast(pl.Int64)
            .alias("hosting_clients"),
        )
        .with_columns(hosting_share=pl.col("hosting_requests") / pl.col("requests"))
    )
    und = df.filter(pl.col("identity") == "undeclared")
    undeclared = (
        und.filter(pl.col(HOSTING).is_not_null())
        .group_by(HOSTING)
        .agg(pl.len().cast(pl.Int64).alias("requests"), pl.col("client_id").n_unique().cast(pl.Int64).alias("clients"))
        .with_columns(share=pl.col("requests") / und.height)
    )
    return {
        "by_country": by_country,
        "by_network": by_network,
        "hosting_share": hosting_share,
        "undeclared_by_provider": undeclared,
    }


def _same(got: pl.DataFrame, want: pl.DataFrame, key: str) -> None:
    cols = want.columns
    g = got.select(cols).with_columns(pl.col(pl.Int32, pl.UInt32, pl.UInt64).cast(pl.Int64)).sort(key, nulls_last=True)
    w = want.sort(key, nulls_last=True)
    assert g.select(pl.exclude(pl.Float64)).equals(w.select(pl.exclude(pl.Float64))), (g, w)
    for c in w.select(pl.col(pl.Float64)).columns:
        assert g[c].to_list() == pytest.approx(w[c].to_list()), c


def test_network_section_equals_an_independent_computation(week: Path, tmp_path: Path) -> None:
    clients = _with_network_columns(week, tmp_path)
    # The simulated stealth scrapers run from cloud and hosting addresses: the fixtures hold them.
    assert clients.filter(pl.col(HOSTING).is_not_null() & (pl.col("identity") == "undeclared")).height > 0
    with Report(week) as rep:
        section = rep.network()
    assert section["missing"] == [] and section["note"] is None
    want = _independent(week, clients)
    _same(section["by_country"], want["by_country"], COUNTRY)
    _same(section["by_network"], want["by_network"], ASN)
    _same(section["hosting_share"], want["hosting_share"], "actor_class")
    _same(section["undeclared_by_provider"], want["undeclared_by_provider"], HOSTING)
    # The AS organisation goes with its number, and the busiest rows come first.
    orgs = dict(zip(*[section["by_network"][c].to_list() for c in (ASN, AS_ORG)]))
    assert all(orgs[asn] == f"Example Net {asn - 64512}" for asn in orgs if asn is not None)
    assert section["by_country"]["requests"].to_list() == sorted(section["by_country"]["requests"], reverse=True)
    # The JSON report carries the section.
    assert build_report(week)["network"]["by_country"][0][COUNTRY] == section["by_country"][COUNTRY][0]


def test_network_section_on_a_lake_without_network_columns_says_so(tmp_path: Path) -> None:
    lake = simulated_lake(tmp_path, days=1, scale=0.02, seed=2)
    # A lake classified before clients carried where their addresses are.
    files = sorted((lake / "clients").glob("*.parquet"))
    older = pl.read_parquet(files).drop(*NETWORK_SCHEMA)
    for f in files:
        f.unlink()
    older.write_parquet(lake / "clients" / "part-0.parquet")
    assert HOSTING not in Lake(lake).scan("clients").collect_schema().names()
    with Report(lake) as rep:
        section = rep.network()
    assert section["missing"] == sorted([AS_ORG, ASN, COUNTRY, HOSTING, HOSTING_SERVICE])
    assert "--geo" in section["note"] and "ranges update" in section["note"]
    for name in ("by_country", "by_network", "hosting_share", "undeclared_by_provider"):
        assert section[name].height == 0, name
    assert build_report(lake)["network"]["note"] == section["note"]
