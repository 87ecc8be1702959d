"""Real logs written by others (../shared/external): skipped when that folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from conftest import external

from trafficlens.errors import FormatError
from trafficlens.ingest import ingest
from trafficlens.store import Lake


def test_real_apache_log_parses_without_rejects(lake: Path) -> None:
    log = external("elastic-apache-logs", "apache_logs")
    summary = ingest([str(log)], lake)
    assert summary.lines == 10_000 and summary.events == 10_000 and summary.rejects == 0
    df = Lake(lake).scan("events").collect()
    assert df["client_ip"].n_unique() == 1753
    assert df["user_agent"].n_unique() >= 500
    assert df["method"].null_count() == 0 and df["ts"].null_count() == 0


def test_matomo_format_samples(lake: Path) -> None:
    folder = external("matomo-log-analytics-formats")
    summary = ingest([str(folder)], lake)
    by_file = {Path(r.source).name: r for r in summary.results}
    # Not logs, or formats no access-log reader should guess (a custom date); said in the README.
    assert by_file["README.md"].status == "skipped" and by_file["LICENSE.txt"].status == "skipped"
    assert by_file["custom_regex_custom_date.log"].rejects == 1
    parsed = {name for name, r in by_file.items() if r.events > 0}
    expected = {
        "alb.log",
        "amazon_cloudfront_web.log",
        "caddy_json.log",
        "common.log",
        "common.log.bz2",
        "common.log.gz",
        "common_complete.log",
        "common_encoding_big5.log",
        "common_vhost.log",
        "elb.log",
        "gandi.log",
        "haproxy.log",
        "icecast2.log",
        "iis.log",
        "iis_custom.log",
        "incapsula_w3c.log",
        "logs_to_tests.log",
        "ncsa_extended.log",
        "netscaler.log",
        "nginx_json.log",
        "ovh.log",
        "s3.log",
        "shoutcast.log",
        "splitted_date_and_time.log",
        "static_ignores.log",
        "traefik_json.log",
    }
    assert expected <= parsed
    df = Lake(lake).scan("events").collect()
    assert df["ts"].null_count() == 0 and df["client_ip"].null_count() <= 1
    iis = df.filter(pl.col("source").str.ends_with("/iis.log")).row(0, named=True)
    assert (
        iis["user_agent"].startswith("Mozilla/5.0 (X11; U; Linux i686")
        and iis["query"] == "topCat1=divinity&submit=Search"
    )


def test_crowdsec_hub_logs(tmp_path: Path) -> None:
    index = json.loads(external("crowdsec-hub-tests", "index.json").read_text())
    base = external("crowdsec-hub-tests", "tests")
    clean = loaded = 0
    for t in index["tests"]:
        log = base / t["test"] / t["log_file"]
        try:
            summary = ingest([str(log)], tmp_path / t["test"])
        except FormatError:
            continue
        if summary.events:
            loaded += 1
        if summary.events and summary.rejects == 0:
            clean += 1
    # The rest are error logs or proxy formats of their own (see the README's format list).
    assert loaded >= 90 and clean >= 75, (loaded, clean)
