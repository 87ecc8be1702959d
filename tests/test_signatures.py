"""Web Bot Auth: HTTP message signatures (RFC 9421) made here with a generated Ed25519 key, logged
the way nginx, Apache, Caddy and Envoy record them, and verified offline against a cached key directory."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trafficlens.classify.verify import KeyDirectory, load_keys, update_keys, verify_signatures
from trafficlens.classify.verify.signatures import DIRECTORY_PATH, jwk_thumbprint, parse_directory
from trafficlens.cli import main
from trafficlens.errors import InputError, RangesDownloadError
from trafficlens.ingest import IngestOptions, ingest
from trafficlens.schema import EVENT_SCHEMA, SIGNATURE_STATUSES
from trafficlens.store import Lake

AGENT = "agent.example"
SITE = "shop.example"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """An agent with its own Ed25519 key, signing by hand as RFC 9421 section 2.5 builds the base
    (independent of the library trafficlens verifies with)."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
        self.keyid = jwk_thumbprint(self.jwk)

    def headers(
        self,
        authority: str = SITE,
        created: datetime = T0,
        expires: datetime | None = None,
        nonce: str | None = "n-1",
        agent: str = f'"https://{AGENT}"',
        components: tuple[str, ...] = ("@authority", "signature-agent"),
        values: dict[str, str] | None = None,
    ) -> dict[str, str]:
        expires = expires or created + timedelta(minutes=1)
        params = f';created={int(created.timestamp())};expires={int(expires.timestamp())};keyid="{self.keyid}"'
        params += ';alg="ed25519"' + (f';nonce="{nonce}"' if nonce else "") + ';tag="web-bot-auth"'
        inner = "(" + " ".join(f'"{c}"' for c in components) + ")" + params
        known = {"@authority": authority, "signature-agent": agent, **(values or {})}
        base = "".join(f'"{c}": {known[c]}\n' for c in components) + f'"@signature-params": {inner}'
        sig = base64.b64encode(self.key.sign(base.encode())).decode()
        return {"Signature-Agent": agent, "Signature-Input": f"sig1={inner}", "Signature": f"sig1=:{sig}:"}

    def directory(self) -> dict[str, object]:
        return {"keys": [self.jwk]}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def keys(signer: Signer) -> KeyDirectory:
    return KeyDirectory(parse_directory(signer.directory(), AGENT, T0))


def _request(h: dict[str, str], ts: datetime = T0, host: str = SITE, ip: str = "192.0.2.1") -> dict[str, object]:
    return {
        "ts": ts,
        "host": host,
        "client_ip": ip,
        "method": "GET",
        "path": "/products/1",
        "query": None,
        "signature_agent": h.get("Signature-Agent"),
        "signature_input": h.get("Signature-Input"),
        "signature": h.get("Signature"),
    }


def _statuses(rows: list[dict[str, object]], keys: KeyDirectory) -> dict[str, str]:
    frame = pl.DataFrame(rows, schema_overrides={"ts": pl.Datetime("us", "UTC")})
    out = verify_signatures(frame, keys)
    return dict(zip(out["client_ip"].to_list(), out["signature_status"].to_list()))


def test_a_signed_request_verifies_and_tampered_expired_replayed_unknown_ones_do_not(
    signer: Signer, keys: KeyDirectory
) -> None:
    good = signer.headers(nonce="a")
    forged = dict(signer.headers(nonce="b"))
    sig = bytearray(base64.b64decode(forged["Signature"][6:-1]))
    sig[0] ^= 1
    forged["Signature"] = "sig1=:" + base64.b64encode(bytes(sig)).decode() + ":"
    stranger = Signer()
    rows = [
        _request(good, ip="10.0.0.1"),
        # The same signature, sent to another site: @authority differs.
        _request(signer.headers(nonce="c"), host="other.example", ip="10.0.0.2"),
        # A Signature-Agent other than the one signed.
        _request({**signer.headers(nonce="d"), "Signature-Agent": f'"https://{AGENT}/x"'}, ip="10.0.0.3"),
        _request(forged, ip="10.0.0.4"),
        # Arrived after `expires`, and before `created`.
        _request(signer.headers(nonce="e"), ts=T0 + timedelta(minutes=5), ip="10.0.0.5"),
        _request(signer.headers(nonce="f"), ts=T0 - timedelta(minutes=5), ip="10.0.0.6"),
        # The first request's nonce, used again by a later one.
        _request(good, ts=T0 + timedelta(seconds=20), ip="10.0.0.7"),
        # A key in no directory; a key the directory of another host lists.
        _request(stranger.headers(nonce="g"), ip="10.0.0.8"),
        # Covers a header the log does not record: cannot be checked.
        _request(signer.headers(nonce="h", components=("@authority", "date"), values={"date": "x"}), ip="10.0.0.9"),
        _request({}, ip="10.0.0.10"),  # not signed: no row
    ]
    got = _statuses(rows, keys)
    assert got == {
        "10.0.0.1": "valid",
        "10.0.0.2": "invalid",
        "10.0.0.3": "invalid",
        "10.0.0.4": "invalid",
        "10.0.0.5": "expired",
        "10.0.0.6": "expired",
        "10.0.0.7": "replayed",
        "10.0.0.8": "unknown_key",
        "10.0.0.9": "unverifiable",
    }
    assert set(got.values()) <= set(SIGNATURE_STATUSES)
    out = verify_signatures(pl.DataFrame(rows[:1]), keys)
    assert out.row(0, named=True)["signature_reason"] == f"sig:web-bot-auth:{AGENT}:{signer.keyid}"
    assert out.row(0, named=True)["signature_host"] == AGENT
    stranger_keys = KeyDirectory(parse_directory(stranger.directory(), "elsewhere.example", T0))
    assert _statuses(rows[7:8], stranger_keys) == {"10.0.0.8": "unknown_key"}  # its Signature-Agent is not that host


def test_replay_is_judged_in_time_order_and_only_valid_uses_spend_a_nonce(signer: Signer, keys: KeyDirectory) -> None:
    h = signer.headers(nonce="once")
    late_first = [_request(h, ts=T0 + timedelta(seconds=30), ip="10.0.1.2"), _request(h, ts=T0, ip="10.0.1.1")]
    assert _statuses(late_first, keys) == {"10.0.1.1": "valid", "10.0.1.2": "replayed"}
    # A stale copy arriving first (expired) does not make the genuine request a replay.
    stale = [_request(h, ts=T0 - timedelta(minutes=9), ip="10.0.1.3"), _request(h, ts=T0, ip="10.0.1.4")]
    assert _statuses(stale, keys) == {"10.0.1.3": "expired", "10.0.1.4": "valid"}
    # Without a nonce nothing is a replay: reuse within the window is the signer's choice.
    bare = signer.headers(nonce=None)
    assert set(_statuses([_request(bare, ip="10.0.1.5"), _request(bare, ip="10.0.1.6")], keys).values()) == {"valid"}


def test_covered_method_and_path_are_read_from_the_log(signer: Signer, keys: KeyDirectory) -> None:
    h = signer.headers(
        nonce=None,
        components=("@method", "@path", "@authority", "signature-agent"),
        values={"@method": "GET", "@path": "/products/1"},
    )
    rows = [
        _request(h, ip="10.0.2.1"),
        {**_request(h, ip="10.0.2.2"), "path": "/products/2"},
        {**_request(h, ip="10.0.2.3"), "method": "POST"},
        {**_request(h, ip="10.0.2.4"), "path": "/a path with spaces"},
    ]
    assert _statuses(rows, keys) == {
        "10.0.2.1": "valid",
        "10.0.2.2": "invalid",
        "10.0.2.3": "invalid",
        "10.0.2.4": "unverifiable",
    }
    # Not covered, the path does not matter: one agent's signature holds for every page it fetched.
    plain = signer.headers(nonce=None)
    pages = [{**_request(plain, ip=f"10.0.3.{i}"), "path": f"/p/{i}", "method": "HEAD"} for i in range(5)]
    assert set(_statuses(pages, keys).values()) == {"valid"}


def test_a_key_outside_its_validity_expires_its_signatures(signer: Signer) -> None:
    jwk = {**signer.jwk, "exp": int((T0 - timedelta(days=1)).timestamp())}
    old = KeyDirectory(parse_directory({"keys": [jwk]}, AGENT, T0))
    assert _statuses([_request(signer.headers())], old) == {"192.0.2.1": "expired"}


def test_requests_without_signature_columns_give_no_rows(keys: KeyDirectory) -> None:
    frame = pl.DataFrame({"client_ip": ["192.0.2.1"], "host": [SITE]})
    out = verify_signatures(frame, keys)
    assert out.height == 0 and "signature_status" in out.columns


# --- from the logs -------------------------------------------------------------------------


def _nginx_escape(value: str) -> str:
    return value.replace("\\", "\\x5C").replace('"', "\\x22")


def _apache_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def test_signature_headers_from_nginx_apache_caddy_and_envoy_logs_verify(
    signer: Signer, keys: KeyDirectory, tmp_path: Path
) -> None:
    h = signer.headers(nonce="log-1")
    h2 = signer.headers(nonce="log-2")
    h3 = signer.headers(nonce="log-3")
    stamp = T0.strftime("%d/%b/%Y:%H:%M:%S +0000")
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    nginx_fmt = (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
        '"$http_user_agent" $host "$http_signature_agent" "$http_signature_input" "$http_signature"'
    )
    nginx = tmp_path / "nginx.log"
    nginx.write_text(
        f'192.0.2.10 - - [{stamp}] "GET /products/1 HTTP/1.1" 200 512 "-" "{ua}" {SITE} '
        + " ".join(f'"{_nginx_escape(h[k])}"' for k in ("Signature-Agent", "Signature-Input", "Signature"))
        + "\n"
    )
    apache_fmt = (
        '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %v "%{Signature-Agent}i" '
        '"%{Signature-Input}i" "%{Signature}i"'
    )
    apache = tmp_path / "apache.log"
    apache.write_text(
        f'192.0.2.11 - - [{stamp}] "GET /products/1 HTTP/1.1" 200 512 "-" "{ua}" {SITE} '
        + " ".join(f'"{_apache_escape(h2[k])}"' for k in ("Signature-Agent", "Signature-Input", "Signature"))
        + "\n"
    )
    caddy = tmp_path / "caddy.log"
    caddy.write_text(
        json.dumps(
            {
                "level": "info",
                "ts": T0.timestamp(),
                "logger": "http.log.access",
                "msg": "handled request",
                "request": {
                    "remote_ip": "192.0.2.12",
                    "client_ip": "192.0.2.12",
                    "proto": "HTTP/2.0",
                    "method": "GET",
                    "host": SITE,
                    "uri": "/products/1",
                    "headers": {"User-Agent": [ua], **{k: [v] for k, v in h3.items()}},
                },
                "status": 200,
                "size": 512,
                "duration": 0.01,
            }
        )
        + "\n"
    )
    h4 = signer.headers(nonce="log-4")
    envoy = tmp_path / "envoy.log"
    envoy.write_text(
        json.dumps(
            {
                "start_time": T0.isoformat().replace("+00:00", "Z"),
                "method": "GET",
                "path": "/products/1",
                "protocol": "HTTP/1.1",
                "response_code": 200,
                "bytes_sent": 512,
                "duration": 3,
                "user-agent": ua,
                "authority": SITE,
                "downstream_remote_address": "192.0.2.13:51234",
                **{k.lower(): v for k, v in h4.items()},
            }
        )
        + "\n"
    )
    lake = tmp_path / "lake"
    ingest([str(envoy)], lake, IngestOptions(), progress=False)
    ingest([str(nginx)], lake, IngestOptions(log_format=nginx_fmt), progress=False)
    ingest([str(apache)], lake, IngestOptions(log_format=apache_fmt), progress=False)
    ingest([str(caddy)], lake, IngestOptions(), progress=False)
    events = Lake(lake).scan("events").collect().sort("client_ip")
    assert {"signature", "signature_input"} <= set(events.columns) and "signature" in EVENT_SCHEMA
    sent = (h, h2, h3, h4)
    assert events["format"].to_list() == ["custom", "custom", "caddy", "envoy"]
    assert events["signature_input"].to_list() == [x["Signature-Input"] for x in sent]
    assert events["signature"].to_list() == [x["Signature"] for x in sent]
    assert events["signature_agent"].to_list() == [f'"https://{AGENT}"'] * 4
    out = verify_signatures(events, keys)
    assert dict(zip(out["client_ip"], out["signature_status"])) == {
        "192.0.2.10": "valid",
        "192.0.2.11": "valid",
        "192.0.2.12": "valid",
        "192.0.2.13": "valid",
    }


# --- key directories -------------------------------------------------------------------------


class FakeWeb:
    def __init__(self, pages: dict[str, bytes | Exception]) -> None:
        self.pages = pages
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, timeout: float) -> bytes:
        with self.lock:
            self.asked.append(url)
        answer = self.pages.get(url, urllib.error.HTTPError(url, 404, "not found", {}, None))  # type: ignore[arg-type]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_keys_update_caches_each_directory_with_its_date(signer: Signer, tmp_path: Path) -> None:
    dest = tmp_path / "keys"
    url = f"https://{AGENT}{DIRECTORY_PATH}"
    web = FakeWeb({url: json.dumps(signer.directory()).encode(), f"https://bad.example{DIRECTORY_PATH}": b"<html>"})
    result = update_keys([f"https://{AGENT}", "bad.example", "gone.example"], dest, fetch=web, now=T0)
    assert result.updated == [AGENT]
    assert result.failed == {"bad.example": "not a key directory", "gone.example": "HTTP 404"}
    cached = json.loads((dest / f"{AGENT}.json").read_text())
    assert cached["fetched"] == T0.isoformat() and cached["url"] == url
    loaded = load_keys(dest)
    assert loaded.hosts == (AGENT,) and signer.keyid in loaded.keys["keyid"].to_list()
    assert loaded.keys["fetched"].to_list() == [T0]
    # The cached directory verifies, offline.
    assert _statuses([_request(signer.headers())], loaded) == {"192.0.2.1": "valid"}
    again = update_keys([AGENT], dest, fetch=web, now=T0 + timedelta(days=1))
    assert again.unchanged == [AGENT] and "1 of 1 key directories current" in again.describe()
    # Nothing fetched: an error, and the cache is as it was.
    before = (dest / f"{AGENT}.json").read_bytes()
    with pytest.raises(RangesDownloadError):
        update_keys([AGENT], dest, fetch=FakeWeb({}))
    assert (dest / f"{AGENT}.json").read_bytes() == before


def test_a_bad_cached_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.example.json").write_text(
        '{"host": "x.example", "fetched": "2026-01-01T00:00:00+00:00", "directory": {"keys": []}}'
    )
    with pytest.raises(InputError) as err:
        load_keys(tmp_path)
    assert (
        "\n" not in str(err.value) and "x.example.json" in str(err.value) and "holds no Ed25519 key" in str(err.value)
    )
    with pytest.raises(InputError, match="no such folder"):
        load_keys(tmp_path / "none")


def test_keys_update_command(signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trafficlens.classify.verify.signatures as sigs

    web = FakeWeb({f"https://{AGENT}{DIRECTORY_PATH}": json.dumps(signer.directory()).encode()})
    monkeypatch.setattr(sigs, "_http_get", web)
    result = CliRunner().invoke(main, ["keys", "update", "--host", AGENT, "--dir", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"1 of 1 key directories current in {tmp_path / 'k'} (1 updated)"
    assert load_keys(tmp_path / "k").hosts == (AGENT,)
    bad = CliRunner().invoke(main, ["keys", "update", "--host", "not a host", "--dir", str(tmp_path / "k")])
    assert bad.exit_code != 0 and bad.output.startswith("Error: ") and len(bad.output.strip().splitlines()) == 1
