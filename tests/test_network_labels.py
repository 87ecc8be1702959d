"""Network evidence in classify: hosting providers' ranges, ASN and country on every client, and
logged Web Bot Auth signatures deciding whether a signed agent is verified or spoofed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
from test_signatures import T0, Signer

from trafficlens.classify.pipeline import classify
from trafficlens.ingest import ingest
from trafficlens.simulate.addresses import published_ranges, write_ranges

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SITE = "shop.example"


def _envoy(ip: str, ts: object, path: str, headers: dict[str, str] | None = None, ua: str = UA) -> str:
    return json.dumps(
        {
            "start_time": ts.isoformat().replace("+00:00", "Z"),  # type: ignore[attr-defined]
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "response_code": 200,
            "bytes_sent": 512,
            "duration": 3,
            "user-agent": ua,
            "authority": SITE,
            "downstream_remote_address": f"{ip}:51234",
            **{k.lower(): v for k, v in (headers or {}).items()},
        }
    )


def _clients(lake: Path) -> dict[str, dict]:
    df = pl.read_parquet(lake / "clients" / "*.parquet")
    return {r["client_ip"]: r for r in df.iter_rows(named=True)}


def test_signed_agents_are_verified_or_spoofed_by_their_signatures(tmp_path: Path) -> None:
    signer, stranger = Signer(), Signer()
    agent = '"https://chatgpt.com"'
    keys = tmp_path / "keys"
    keys.mkdir()
    cached = {"host": "chatgpt.com", "fetched": T0.isoformat(), "directory": signer.directory()}
    (keys / "chatgpt.com.json").write_text(json.dumps(cached))
    lines = [
        _envoy("192.0.2.10", T0, "/", signer.headers(agent=agent, nonce="a")),
        _envoy("192.0.2.11", T0, "/", signer.headers(agent=agent, nonce="b", authority="elsewhere.example")),
        _envoy("192.0.2.12", T0, "/", stranger.headers(agent=agent, nonce="c")),
        _envoy("192.0.2.13", T0, "/", {"Signature-Agent": agent}),
    ]
    log = tmp_path / "envoy.log"
    log.write_text("\n".join(lines) + "\n")
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, keys_dir=keys)
    c = _clients(lake)
    good = c["192.0.2.10"]
    assert good["identity"] == "verified" and good["agent"] == "ChatGPT agent"
    assert f"sig:web-bot-auth:chatgpt.com:{signer.keyid}" in good["reasons"]
    tampered = c["192.0.2.11"]
    assert tampered["identity"] == "spoofed" and "spoofed_identity" in tampered["threats"]
    assert any(r.startswith("sig:invalid:chatgpt.com") for r in tampered["reasons"])
    # A key the cached directory does not hold, or no signature at all: the header alone declares.
    assert c["192.0.2.12"]["identity"] == "declared"
    assert any(r.startswith("sig:unknown_key:") for r in c["192.0.2.12"]["reasons"])
    assert c["192.0.2.13"]["identity"] == "declared"


def test_clients_carry_their_hosting_provider_and_it_counts_as_evidence(tmp_path: Path) -> None:
    ranges = tmp_path / "ranges"
    write_ranges(ranges, published_ranges(), T0.date())  # the operators' files, as `ranges update` keeps them
    doc = {"prefixes": [{"ip_prefix": "3.80.0.0/12", "region": "us-east-1", "service": "EC2"}]}
    (ranges / "aws-ip-ranges.json").write_text(json.dumps(doc))
    lines = []
    # People of the site load its assets; the cloud client reads twelve pages and no asset.
    for i in range(6):
        ip = f"203.0.113.{i + 1}"
        for k in range(4):
            t = T0 + timedelta(minutes=i, seconds=40 * k)
            lines += [_envoy(ip, t, f"/p/{k}"), _envoy(ip, t + timedelta(seconds=1), "/app.css")]
    at = [0, 30, 125, 166, 336, 402, 454, 664, 702, 777, 897, 955]  # read like a person, not a clock
    lines += [_envoy("3.81.2.3", T0 + timedelta(seconds=s), f"/p/{k}") for k, s in enumerate(at)]
    log = tmp_path / "envoy.log"
    log.write_text("\n".join(lines) + "\n")
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, ranges_dir=ranges)
    c = _clients(lake)
    cloud = c["3.81.2.3"]
    assert (cloud["hosting"], cloud["hosting_service"], cloud["region"]) == ("aws", "EC2", "us-east-1")
    assert "ip:hosting:aws" in cloud["reasons"]
    assert any(r.startswith("evidence:assets:none_where_site_norm=") for r in cloud["reasons"])
    assert cloud["automated"] and cloud["identity"] == "undeclared", "two families agree"
    person = c["203.0.113.1"]
    assert person["hosting"] is None and not person["automated"]
    assert not any(r.startswith("ip:hosting") for r in person["reasons"])
