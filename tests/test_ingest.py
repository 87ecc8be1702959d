"""Ingest: parsing details, compression, standard input, idempotence, growth, atomicity, the CLI."""

from __future__ import annotations

import bz2
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from trafficlens import store
from trafficlens.cli import main
from trafficlens.errors import FormatError, LakeError
from trafficlens.ingest import IngestOptions, detect_format, ingest
from trafficlens.store import Lake

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def combined_line(i: int, ip: str = "192.0.2.10", path: str = "/page", day: int = 10) -> str:
    sec = i % 60
    minute = (i // 60) % 60
    hour = (i // 3600) % 24
    return (
        f'{ip} - - [{day:02d}/Oct/2025:{hour:02d}:{minute:02d}:{sec:02d} +0200] "GET {path}?n={i} HTTP/1.1" '
        f'200 {100 + i} "-" "{UA}"'
    )


def write_lines(path: Path, lines: list[str], mode: str = "w") -> Path:
    with open(path, mode) as f:
        f.write("\n".join(lines) + "\n")
    return path


def events(lake: Path) -> pl.DataFrame:
    return Lake(lake).scan("events").collect().sort("source", "line_no")


def rejects(lake: Path) -> pl.DataFrame:
    return Lake(lake).scan("rejects").collect().sort("line_no")


# --- parsing ----------------------------------------------------------------------------------


def test_combined_fields_time_zone_and_nulls(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "a.log",
        [
            '2001:db8::7 - alice [10/Oct/2025:13:55:36 -0700] "GET /shop/item?id=7&x=%20 HTTP/2.0" 200 2326 '
            '"https://example.com/" "curl/8.5.0"',
            '203.0.113.9 - - [10/Oct/2025:01:00:00 +0530] "POST /login HTTP/1.1" 302 - "-" "-"',
        ],
    )
    ingest([str(log)], lake)
    df = events(lake)
    a, b = df.row(0, named=True), df.row(1, named=True)
    assert a["ts"] == datetime(2025, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert (a["client_ip"], a["remote_user"], a["method"], a["path"], a["query"], a["protocol"]) == (
        "2001:db8::7",
        "alice",
        "GET",
        "/shop/item",
        "id=7&x=%20",
        "HTTP/2.0",
    )
    assert (a["status"], a["bytes"], a["referer"], a["user_agent"]) == (200, 2326, "https://example.com/", "curl/8.5.0")
    assert a["format"] == "combined" and a["site"] == "default" and a["line_no"] == 1
    assert b["ts"] == datetime(2025, 10, 9, 19, 30, tzinfo=UTC)
    assert b["bytes"] is None and b["referer"] is None and b["user_agent"] is None and b["query"] is None


def test_escaped_quotes_apache_and_nginx(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "esc.log",
        [
            r'198.51.100.1 - - [10/Oct/2025:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "Mozilla/5.0 \"quoted\" agent"',
            r'198.51.100.2 - - [10/Oct/2025:10:00:01 +0000] "GET /b HTTP/1.1" 200 5 "-" "nginx \x22quoted\x22 agent"',
        ],
    )
    ingest([str(log)], lake)
    assert events(lake)["user_agent"].to_list() == ['Mozilla/5.0 "quoted" agent', 'nginx "quoted" agent']
    assert rejects(lake).height == 0


def test_binary_and_malformed_request_lines_are_kept(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "junk.log",
        [
            r'45.148.10.77 - - [10/Oct/2025:10:00:00 +0000] "\x16\x03\x01\x00\xa5\x01" 400 157 "-" "-"',
            '45.148.10.77 - - [10/Oct/2025:10:00:01 +0000] "-" 408 0 "-" "-"',
            '45.148.10.77 - - [10/Oct/2025:10:00:02 +0000] "garbage" 400 0 "-" "-"',
        ],
    )
    ingest([str(log)], lake)
    df = events(lake)
    assert df["method"].to_list() == [None, None, None]
    assert df["path"].to_list() == [r"\x16\x03\x01\x00\xa5\x01", "-", "garbage"]  # "-" was sent as is
    assert df["query"].null_count() == 3


def test_garbage_first_line_does_not_break_detection(tmp_path: Path, lake: Path) -> None:
    lines = ["\x00\x01 this is not a log line at all"] + [combined_line(i) for i in range(20)]
    log = write_lines(tmp_path / "g.log", lines)
    summary = ingest([str(log)], lake)
    assert summary.events == 20 and summary.rejects == 1
    rj = rejects(lake).row(0, named=True)
    assert rj["line_no"] == 1 and "does not fit" in rj["reason"] and rj["raw"].startswith("\x00\x01 this")
    assert rj["source"] == str(log.resolve())


def test_invalid_utf8_becomes_replacement_characters(tmp_path: Path, lake: Path) -> None:
    log = tmp_path / "bytes.log"
    log.write_bytes(
        b'192.0.2.1 - - [10/Oct/2025:10:00:00 +0000] "GET /caf\xe9 HTTP/1.1" 200 1 "-" "agent \xff"\n'
        + (combined_line(1) + "\n").encode()
    )
    ingest([str(log)], lake)
    df = events(lake)
    assert df["path"][0] == "/caf\ufffd" and df["user_agent"][0] == "agent \ufffd"
    assert df.height == 2


def test_common_vhost_and_mixed_lines(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "mixed.log",
        [
            'shop.example.com:443 192.0.2.1 - - [10/Oct/2025:10:00:00 +0000] "GET / HTTP/1.1" 200 10 "-" "x"',
            'shop.example.com:443 192.0.2.2 - - [10/Oct/2025:10:00:01 +0000] "GET /b HTTP/1.1" 200 10',
            '192.0.2.3 - - [10/Oct/2025:10:00:02 +0000] "GET /c HTTP/1.1" 200 10 "-" "y"',
        ],
    )
    ingest([str(log)], lake)
    df = events(lake)
    assert df["format"].to_list() == ["vhost_combined", "vhost_common", "combined"]
    assert df["host"].to_list() == ["shop.example.com", "shop.example.com", None]
    assert df["site"].to_list() == ["shop.example.com", "shop.example.com", "default"]
    assert df["server_port"].to_list() == [443, 443, None]


def test_w3c_fields_change_mid_file(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "u_ex251010.log",
        [
            "#Software: Microsoft Internet Information Services 10.0",
            "#Version: 1.0",
            "#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status sc-bytes time-taken cs(User-Agent)",
            "2025-10-10 10:00:00 192.0.2.5 GET /a q=1 200 512 15 Mozilla/5.0+(Windows+NT+10.0)",
            "#Fields: date time cs(User-Agent) c-ip cs-method cs-uri-stem cs-uri-query sc-status",
            "2025-10-10 10:00:01 curl/8.0 192.0.2.6 GET /b - 404",
        ],
    )
    summary = ingest([str(log)], lake)
    assert summary.results[0].format == "w3c" and summary.rejects == 0
    df = events(lake)
    assert df["line_no"].to_list() == [4, 6]
    assert df["user_agent"].to_list() == ["Mozilla/5.0 (Windows NT 10.0)", "curl/8.0"]
    assert df["client_ip"].to_list() == ["192.0.2.5", "192.0.2.6"]
    assert df["query"].to_list() == ["q=1", None]
    assert df["request_time"].to_list() == [0.015, None]


def test_json_lines_with_custom_mapping(tmp_path: Path, lake: Path) -> None:
    log = write_lines(
        tmp_path / "app.jsonl",
        [
            '{"time": "2025-10-10T10:00:00Z", "ip": "192.0.2.1", "ua": "curl/8", "req": "GET /x?y=1 HTTP/1.1", "code": 201}',
            '{"time": "2025-10-10T12:00:00+02:00", "ip": "192.0.2.2", "ua": "wget", "req": "HEAD / HTTP/1.0", "code": 200}',
            "not json",
        ],
    )
    opts = IngestOptions(format="json", json_map="ts=$.time,client_ip=$.ip,user_agent=$.ua,request=$.req,status=$.code")
    summary = ingest([str(log)], lake, opts)
    assert summary.events == 2 and summary.rejects == 1
    df = events(lake)
    assert df["ts"].to_list() == [datetime(2025, 10, 10, 10, tzinfo=UTC)] * 2
    assert df["path"].to_list() == ["/x", "/"] and df["query"].to_list() == ["y=1", None]
    assert df["status"].to_list() == [201, 200]


def test_custom_nginx_and_apache_formats(tmp_path: Path, lake: Path) -> None:
    nginx = write_lines(
        tmp_path / "n.log",
        [
            '192.0.2.1 - - [10/Oct/2025:10:00:00 +0000] "GET /n HTTP/1.1" 200 7 "-" "ua one" 0.125 "203.0.113.1, 10.0.0.1"'
        ],
    )
    fmt = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time "$http_x_forwarded_for"'
    ingest([str(nginx)], lake, IngestOptions(log_format=fmt))
    row = events(lake).row(0, named=True)
    assert (row["request_time"], row["forwarded_for"], row["user_agent"], row["format"]) == (
        0.125,
        "203.0.113.1, 10.0.0.1",
        "ua one",
        "custom",
    )
    apache = write_lines(
        tmp_path / "ap.log", ['192.0.2.2 - - [10/Oct/2025:10:00:00 +0000] "GET /ap HTTP/1.1" 200 7 "-" "ua two" 2500']
    )
    ingest(
        [str(apache)],
        lake,
        IngestOptions(log_format=r"%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D"),
    )
    row = events(lake).filter(pl.col("path") == "/ap").row(0, named=True)
    assert row["request_time"] == pytest.approx(0.0025) and row["user_agent"] == "ua two"


def test_bad_log_format_string_is_one_clear_error(tmp_path: Path, lake: Path) -> None:
    with pytest.raises(FormatError, match="--log-format"):
        ingest([str(write_lines(tmp_path / "x.log", ["a"]))], lake, IngestOptions(log_format="no variables here"))
    assert not (lake / "events").exists()


def test_detection_names_each_family() -> None:
    alb = (
        "https 2025-10-10T10:00:00.123456Z app/my-lb/50dc6c495c0c9188 192.0.2.1:2817 10.0.0.1:80 0.001 0.002 0.000 "
        '200 200 34 366 "GET https://shop.example.com:443/p?q=1 HTTP/1.1" "curl/8" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2'
    )
    assert detect_format([alb]).name == "alb"
    assert detect_format(['{"level":"info","ts":1.7e9,"request":{"remote_ip":"1.2.3.4"}}']).name == "caddy"
    assert detect_format(['{"ClientHost":"1.2.3.4","RequestMethod":"GET"}']).name == "traefik"
    assert detect_format(["#Version: 1.0", "#Fields: date time x-edge-location c-ip"]).name == "cloudfront"
    with pytest.raises(FormatError, match="--format"):
        detect_format(["hello world", "nothing to see"])


# --- compression and standard input -----------------------------------------------------------


def _compress(src: Path, dst: Path, kind: str) -> Path:
    data = src.read_bytes()
    if kind == "gz":
        dst.write_bytes(gzip.compress(data))
    elif kind == "bz2":
        dst.write_bytes(bz2.compress(data))
    else:
        with pa.CompressedOutputStream(str(dst), "zstd") as out:
            out.write(data)
    return dst


@pytest.mark.parametrize("kind", ["gz", "bz2", "zst"])
def test_compressed_inputs_match_plain(tmp_path: Path, kind: str) -> None:
    plain = write_lines(tmp_path / "p.log", [combined_line(i) for i in range(500)])
    ingest([str(plain)], tmp_path / "plain")
    # A rotated name without the usual suffix: compression is told by content.
    packed = _compress(plain, tmp_path / "access.log.1", kind)
    summary = ingest([str(packed)], tmp_path / "packed")
    assert summary.results[0].compression == {"gz": "gzip", "bz2": "bz2", "zst": "zstd"}[kind]
    cols = ["ts", "client_ip", "path", "query", "bytes", "line_no"]
    assert events(tmp_path / "packed").select(cols).equals(events(tmp_path / "plain").select(cols))


def test_stdin_and_its_repetition(tmp_path: Path, lake: Path) -> None:
    data = "\n".join(combined_line(i) for i in range(50)) + "\n"
    runner = CliRunner()
    r1 = runner.invoke(main, ["ingest", "-", "--lake", str(lake), "--site", "shop"], input=data.encode())
    assert r1.exit_code == 0, r1.output
    assert "50 events" in r1.output
    r2 = runner.invoke(main, ["ingest", "-", "--lake", str(lake)], input=data.encode())
    assert r2.exit_code == 0 and "already ingested" in r2.output
    df = events(lake)
    assert df.height == 50 and set(df["source"]) == {"-"} and set(df["site"]) == {"shop"}


# --- idempotence, growth, rotation ------------------------------------------------------------


def test_reingest_adds_nothing(tmp_path: Path, lake: Path) -> None:
    log = write_lines(tmp_path / "a.log", [combined_line(i) for i in range(100)])
    ingest([str(log)], lake)
    again = ingest([str(log), str(tmp_path)], lake)  # named twice, and once more through its folder
    assert again.events == 0 and {r.status for r in again.results} == {"unchanged"}
    assert events(lake).height == 100
    assert Lake(lake).read_manifest().height == 1


def test_a_grown_file_adds_only_new_lines(tmp_path: Path, lake: Path) -> None:
    log = write_lines(tmp_path / "access.log", [combined_line(i) for i in range(100)])
    ingest([str(log)], lake)
    write_lines(log, [combined_line(i) for i in range(100, 130)], mode="a")
    s = ingest([str(log)], lake)
    assert s.results[0].status == "resumed" and s.events == 30 and s.results[0].resumed_at_line == 100
    df = events(lake)
    assert df.height == 130 and df["line_no"].to_list() == list(range(1, 131))
    assert df["query"].to_list() == [f"n={i}" for i in range(130)]


def test_rotation_then_append_then_compress(tmp_path: Path, lake: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = write_lines(logs / "access.log", [combined_line(i) for i in range(100)])
    ingest([str(logs)], lake)
    # logrotate: the live file is renamed, gets its last lines, is compressed; a new one starts.
    rotated = logs / "access.log.1"
    live.rename(rotated)
    write_lines(rotated, [combined_line(i) for i in range(100, 120)], mode="a")
    _compress(rotated, logs / "access.log.1.gz", "gz")
    rotated.unlink()
    write_lines(logs / "access.log", [combined_line(i, ip="192.0.2.99") for i in range(200, 230)])
    s = ingest([str(logs)], lake)
    assert sorted(r.status for r in s.results) == ["ingested", "resumed"]
    assert s.events == 50
    df = events(lake)
    assert df.height == 150
    assert df.filter(pl.col("client_ip") == "192.0.2.10")["query"].n_unique() == 120


def test_unterminated_last_line_then_completed(tmp_path: Path, lake: Path) -> None:
    log = tmp_path / "live.log"
    full = combined_line(5)
    log.write_text(combined_line(0) + "\n" + full)  # the writer has not finished the line yet
    ingest([str(log)], lake)
    with open(log, "a") as f:
        f.write("\n" + combined_line(6) + "\n")
    ingest([str(log)], lake)
    df = events(lake)
    assert df["query"].to_list() == ["n=0", "n=5", "n=6"]


def test_same_head_different_content_is_a_new_source(tmp_path: Path, lake: Path) -> None:
    head = [combined_line(i) for i in range(2000)]  # longer than the fingerprint's head
    a = write_lines(tmp_path / "a.log", head + [combined_line(3000)])
    ingest([str(a)], lake)
    b = write_lines(tmp_path / "b.log", head + [combined_line(4000), combined_line(4001)])
    s = ingest([str(b)], lake)
    assert s.results[0].status == "ingested" and s.events == 2002


# --- atomicity, locking -----------------------------------------------------------------------


def test_failed_run_leaves_lake_unchanged(tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_lines(tmp_path / "first.log", [combined_line(i) for i in range(100)])
    ingest([str(first)], lake)
    before = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    second = write_lines(tmp_path / "second.log", [combined_line(i, day=11) for i in range(100)])
    from trafficlens.ingest.writer import PartWriter

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(PartWriter, "close", boom)
    with pytest.raises(RuntimeError):
        ingest([str(second)], lake)
    monkeypatch.undo()
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == before
    assert not any((lake / ".staging").iterdir()) if (lake / ".staging").exists() else True
    assert ingest([str(second)], lake).events == 100
    assert events(lake).height == 200


def test_commit_interrupted_after_journal_is_rolled_forward(
    tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_lines(tmp_path / "a.log", [combined_line(i, day=10 + i % 3) for i in range(300)])
    real_replace = os.replace
    moved = {"n": 0}

    def flaky_replace(src: object, dst: object) -> None:
        if str(dst).endswith(".parquet") and "/.staging/" not in str(dst):
            moved["n"] += 1
            if moved["n"] == 2:
                raise KeyboardInterrupt  # stopped in the middle of moving files into place
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        ingest([str(log)], lake)
    monkeypatch.undo()
    # The next run finds the journal and finishes the move; the source is then already known.
    s = ingest([str(log)], lake)
    assert s.events == 0
    df = events(lake)
    assert df.height == 300 and df["line_no"].n_unique() == 300


def _big_log(path: Path, n: int) -> Path:
    line = combined_line(1)
    path.write_text((line + "\n") * n)
    return path


def test_killed_ingest_leaves_lake_as_before(tmp_path: Path, lake: Path) -> None:
    small = write_lines(tmp_path / "small.log", [combined_line(i) for i in range(10)])
    ingest([str(small)], lake)
    big = _big_log(tmp_path / "big.log", 1_500_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trafficlens", "ingest", str(big), "--lake", str(lake), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = lake / ".staging"
    deadline = time.time() + 60
    while time.time() < deadline and not (staging.exists() and any(staging.iterdir())):
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert events(lake).height == 10  # the half-done run is invisible
    assert Lake(lake).read_manifest().height == 1
    s = ingest([str(big)], lake)
    assert s.events == 1_500_000 and not any(staging.iterdir())
    assert events(lake).height == 1_500_010


def test_two_ingests_at_once(tmp_path: Path, lake: Path) -> None:
    a = write_lines(tmp_path / "a.log", [combined_line(i, ip="192.0.2.1") for i in range(3000)])
    b = write_lines(tmp_path / "b.log", [combined_line(i, ip="192.0.2.2") for i in range(3000)])
    Lake(lake, create=True)
    errors: list[BaseException] = []

    def run(p: Path) -> None:
        try:
            ingest([str(p)], lake)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    df = events(lake)
    assert df.height == 6000 and df.group_by("client_ip").len()["len"].to_list() == [3000, 3000]
    assert Lake(lake).read_manifest().height == 2


# --- the lake as others see it ----------------------------------------------------------------


def test_duckdb_views_and_partitions(tmp_path: Path, lake: Path) -> None:
    log = write_lines(tmp_path / "a.log", [combined_line(i, day=10 + i % 2) for i in range(40)] + ["junk"])
    ingest([str(log)], lake)
    parts = sorted(p.name for p in (lake / "events").iterdir())
    assert parts == ["date=2025-10-09", "date=2025-10-10"]  # 00:00 +0200 is the evening before in UTC
    con = duckdb.connect(str(lake / "lake.duckdb"), read_only=True)
    assert con.execute("select count(*) from events").fetchone()[0] == 40
    assert con.execute("select count(*) from rejects").fetchone()[0] == 1
    assert con.execute("select count(*) from manifest").fetchone()[0] == 1
    assert con.execute("select count(*) from events where date = '2025-10-10'").fetchone()[0] == 20
    # Tables classify writes later exist as empty views, so queries against them do not fail.
    assert con.execute("select count(*) from clients").fetchone()[0] == 0


def test_lake_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(LakeError, match="not a trafficlens lake"):
        ingest([str(write_lines(tmp_path / "a.log", [combined_line(1)]))], tmp_path / "photos")


# --- the CLI ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "missing.log"], "no such file or folder"),
        (["ingest", "a.log", "--format", "bogus"], "unknown --format"),
        (["ingest", "a.log", "--tz", "Mars/Base"], "unknown time zone"),
        (["ingest", "a.log", "--log-format", "%{%d %Q}t %h"], "%Q in the time format"),
        (["ingest", "text.txt"], "no known format"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(tmp_path / "a.log", [combined_line(1)])
    write_lines(tmp_path / "text.txt", ["Dear diary,", "today I wrote no logs."])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args + ["--lake", str(tmp_path / "lake")])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_analyze_prints_a_summary(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "a.log", [combined_line(i, path=f"/p{i % 5}") for i in range(30)])
    result = CliRunner().invoke(main, ["analyze", str(log), "--lake", str(tmp_path / "lake"), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "30 events" in result.output and "Top 3 paths" in result.output and "Requests" in result.output


def test_sample_logs_demo(tmp_path: Path) -> None:
    """The README's `make demo` job on the bundled sample."""
    sample = Path(__file__).resolve().parent.parent / "sample_logs"
    result = CliRunner().invoke(main, ["analyze", str(sample), "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output
    df = events(tmp_path / "lake")
    assert df.height > 5000 and rejects(tmp_path / "lake").height <= 5
