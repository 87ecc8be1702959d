"""Ingest on live, damaged and odd inputs: a log that grows and rotates, lines that are no log lines,
one bad file among good ones, streams named by path, and times no server can have written."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from trafficlens.cli import main
from trafficlens.ingest import IngestOptions, ingest
from trafficlens.schema import SKIP_REASONS
from trafficlens.store import Lake

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"


def line(i: int, when: datetime | None = None) -> bytes:
    """A combined line whose path names it: /r/<i>."""
    t = when or datetime(2025, 10, 6, tzinfo=UTC) + timedelta(seconds=i)
    stamp = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'192.0.2.{i % 250 + 1} - - [{stamp}] "GET /r/{i} HTTP/1.1" 200 {i} "-" "curl/8.5"\n'.encode()


def paths(lake: Path) -> list[str]:
    return Lake(lake).scan("events").collect()["path"].to_list()


def rejects(lake: Path) -> pl.DataFrame:
    return Lake(lake).scan("rejects").collect().sort("source", "line_no")


def manifest(lake: Path) -> pl.DataFrame:
    return Lake(lake).read_manifest()


def age(path: Path, seconds: float = 3600) -> None:
    """Make a file look untouched for a while, as a rotated log is once its writer has moved on."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# --- a growing, rotating log ------------------------------------------------------------------


def test_a_line_still_being_written_waits_until_it_is_whole(tmp_path: Path) -> None:
    log, lake = tmp_path / "g.log", tmp_path / "lake"
    a = b'1.2.3.4 - - [06/Oct/2025:00:00:06 +0000] "GET /a HTTP/1.1" 200 1 "-" "curl/8"\n'
    log.write_bytes(a + b'1.2.3.4 - - [06/Oct/2025:00:00:07 +0000] "GET /he')
    first = ingest([str(log)], lake)
    assert (first.lines, first.events, first.rejects) == (1, 1, 0)  # not a reject: not read yet
    assert first.results[0].waiting
    assert manifest(lake)["end_offset"].to_list() == [len(a)]  # stops before the unfinished line
    with open(log, "ab") as f:
        f.write(
            b'alth HTTP/1.1" 200 1 "-" "curl/8"\n1.2.3.4 - - [06/Oct/2025:00:00:08 +0000] "GET /b HTTP/1.1" 200 1 "-" "curl/8"\n'
        )
    ingest([str(log)], lake)
    assert sorted(paths(lake)) == ["/a", "/b", "/health"]
    assert rejects(lake).height == 0
    assert Lake(lake).scan("events").collect().sort("line_no")["line_no"].to_list() == [1, 2, 3]


def test_a_line_held_back_may_change_without_doubling_the_lines_before(tmp_path: Path, lake: Path) -> None:
    """A writer that, restarted, cuts its log back to the last whole line and goes on."""
    log = tmp_path / "a.log"
    log.write_bytes(line(0) + line(1)[:30])
    ingest([str(log)], lake)
    os.truncate(log, len(line(0)))
    with open(log, "ab") as f:
        f.write(line(1) + line(2))
    s = ingest([str(log)], lake)
    assert s.results[0].status == "resumed"
    assert sorted(paths(lake)) == ["/r/0", "/r/1", "/r/2"]


class Server:
    """A web server writing its access log: one file open for appending, lines written in pieces."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by reopen() and close()
        self.n = 0
        self.half: bytes | None = None

    def lines(self, k: int) -> None:
        """Finish a line begun, then write k whole lines."""
        if self.half is not None:
            self.fh.write(self.half)
            self.half = None
        for _ in range(k):
            self.fh.write(line(self.n))
            self.n += 1

    def begin(self) -> None:
        """Write the first part of the next line, cut inside the request."""
        self.lines(0)
        text = line(self.n)
        cut = text.index(b"/r/") + 2
        self.fh.write(text[:cut])
        self.half = text[cut:]
        self.n += 1

    def reopen(self) -> None:
        """What a server does on its reload signal after a rotation: open the log's path anew."""
        self.fh.close()
        self.fh = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def close(self) -> None:
        self.fh.close()


def _gzip_away(plain: Path) -> None:
    """logrotate's compress: the rotated file replaced by its .gz."""
    with open(plain, "rb") as src, gzip.open(str(plain) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain.unlink()


def test_tail_of_a_live_log_through_rotations(tmp_path: Path) -> None:
    """Ingested after every step, the lake holds exactly the whole lines written so far, once each:
    lines written in two pieces, rename rotation with the server still appending to the renamed
    file, compression, and copytruncate (at a line boundary: a line cut by a copytruncate is
    split between two files, which no reader can join)."""
    logs, lake = tmp_path / "logs", tmp_path / "lake"
    logs.mkdir()
    live = logs / "access.log"
    server = Server(live)

    def check() -> None:
        summary = ingest([str(logs)], lake, progress=False)
        assert all(r.status != "failed" for r in summary.results)
        whole = server.n - (1 if server.half is not None else 0)
        got = paths(lake)
        assert sorted(got, key=lambda p: int(p.rsplit("/", 1)[1])) == [f"/r/{i}" for i in range(whole)]
        assert rejects(lake).height == 0
        m = manifest(lake)
        assert (m["lines"] == m["events"] + m["rejects"] + m["skipped"]).all()

    server.lines(3)
    server.begin()
    check()
    server.lines(1)
    server.begin()
    check()
    live.rename(logs / "access.log.1")  # logrotate renames; the server still holds the file
    check()
    server.lines(1)  # rotate-then-append: the line begun is finished in the renamed file
    server.begin()
    check()
    server.lines(0)
    server.reopen()  # the reload: a new access.log
    server.lines(1)
    server.begin()
    check()
    _gzip_away(logs / "access.log.1")
    server.lines(2)
    check()
    server.lines(1)
    shutil.copyfile(live, logs / "access.log.2")  # copytruncate: copy, then empty the live file
    os.truncate(live, 0)
    check()
    server.begin()  # the server appends to the emptied file from its start
    check()
    server.lines(2)
    server.begin()
    check()
    server.lines(1)
    shutil.copyfile(live, logs / "access.log.3")
    os.truncate(live, 0)
    _gzip_away(logs / "access.log.3")
    server.lines(1)
    check()
    again = ingest([str(logs)], lake, progress=False)
    assert again.events == 0
    server.close()


def test_a_finished_source_reads_its_unterminated_last_line(tmp_path: Path) -> None:
    body = line(0) + line(1) + line(2).rstrip(b"\n")
    # Standard input has ended.
    r = CliRunner().invoke(main, ["ingest", "-", "--lake", str(tmp_path / "stdin")], input=body)
    assert r.exit_code == 0, r.output
    assert sorted(paths(tmp_path / "stdin")) == ["/r/0", "/r/1", "/r/2"]
    # A compressed file is written whole.
    gz = tmp_path / "old.log.gz"
    gz.write_bytes(gzip.compress(body))
    ingest([str(gz)], tmp_path / "gz")
    assert sorted(paths(tmp_path / "gz")) == ["/r/0", "/r/1", "/r/2"]
    # A plain file nobody has written to for a while.
    plain = tmp_path / "export.log"
    plain.write_bytes(body)
    fresh = ingest([str(plain)], tmp_path / "plain")
    assert fresh.results[0].waiting and sorted(paths(tmp_path / "plain")) == ["/r/0", "/r/1"]
    assert "unterminated last line" in fresh.describe()
    age(plain)
    later = ingest([str(plain)], tmp_path / "plain")
    assert later.results[0].status == "resumed" and not later.results[0].waiting
    assert sorted(paths(tmp_path / "plain")) == ["/r/0", "/r/1", "/r/2"]


def test_a_finished_last_line_that_grows_after_all_is_read_on(tmp_path: Path, lake: Path) -> None:
    """A server that stopped mid-line and, restarted, appends to the same file: the cut line was
    read as it was, and what was glued to it is read as that line's rest, not dropped."""
    log = tmp_path / "a.log"
    cut = line(1)[:40]
    log.write_bytes(line(0) + cut)
    age(log)
    ingest([str(log)], lake)
    with open(log, "ab") as f:
        f.write(line(2) + line(3))
    s = ingest([str(log)], lake)
    assert s.lines == 2 and s.events == 2  # line 2's text follows the cut line on its line
    assert sorted(paths(lake)) == ["/r/0", "/r/2", "/r/3"]
    assert rejects(lake)["raw"].to_list() == [cut.decode()]
    ev = Lake(lake).scan("events").collect().sort("line_no")
    assert ev["line_no"].to_list() == [1, 2, 3]  # physical lines: the glued request is on line 2
    m = manifest(lake)
    assert m["lines"].sum() == m["events"].sum() + m["rejects"].sum() == 4


# --- every line accounted for -----------------------------------------------------------------


def test_lines_that_are_no_log_lines_are_counted_with_their_reason(tmp_path: Path, lake: Path) -> None:
    log = tmp_path / "a.log"
    parts = [line(0), b"# a comment\n", line(1), "\u3000\n".encode(), line(2), b"\n", line(3), b"  \t\r\n", line(4)]
    log.write_bytes(b"".join(parts))
    s = ingest([str(log)], lake)
    assert (s.lines, s.events, s.rejects) == (9, 5, 0)
    assert s.skipped == {"blank": 3, "comment": 1}
    assert "4 skipped (blank 3, comment 1)" in s.describe()
    row = manifest(lake).row(0, named=True)
    assert (row["lines"], row["events"], row["rejects"], row["skipped"]) == (9, 5, 0, 4)
    assert json.loads(row["skipped_reasons"]) == {"blank": 3, "comment": 1}


def _fixture_cases() -> list[tuple[Path, dict]]:
    cases = []
    for expected in sorted(LOGS.glob("*.expected.json")):
        opts = json.loads(expected.read_text()).get("options") or {}
        cases.append((expected.with_name(expected.name[: -len(".expected.json")]), opts))
    return cases


def _junk(path: Path) -> Path:
    """Binary junk: random bytes, with '#' lines, blank and U+3000 lines and NUL bytes among them."""
    rng = random.Random(7)
    pieces = []
    for k in range(400):
        pieces.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120))).replace(b"\n", b"\r"))
        pieces.append([b"", b"#", "\u3000".encode(), b"\x00", b" "][k % 5])
    path.write_bytes(b"\n".join(pieces) + b"\n")
    return path


def test_events_rejects_and_skipped_add_up_to_the_lines_read(tmp_path: Path) -> None:
    cases = _fixture_cases()
    cases.append((_junk(tmp_path / "junk.bin"), {"format": "combined"}))
    assert any(p.suffix in (".gz", ".bz2", ".zst") for p, _ in cases) and len(cases) > 20
    for k, (log, opts) in enumerate(cases):
        lake = tmp_path / f"lake{k}"
        s = ingest([str(log)], lake, IngestOptions(**opts), progress=False)
        data = log.read_bytes()
        if s.results[0].compression != "none":
            data = pa.CompressedInputStream(pa.BufferReader(data), s.results[0].compression).read()
        row = manifest(lake).row(0, named=True)
        assert row["lines"] == row["events"] + row["rejects"] + row["skipped"], log.name
        assert row["lines"] == physical_lines(data), log.name
        stored = Lake(lake).scan("events").collect().height + rejects(lake).height
        assert stored == row["events"] + row["rejects"], log.name
        assert set(json.loads(row["skipped_reasons"] or "{}")) <= set(SKIP_REASONS)
        if log.name == "w3c_iis.log":
            assert json.loads(row["skipped_reasons"])["directive"] >= 4
        if log.name == "junk.bin":
            assert row["skipped"] >= 200 and row["events"] == 0  # blank, U+3000, '#' and ' ' lines


def test_a_manifest_from_before_the_line_counts_still_reads(tmp_path: Path, lake: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(line(0) + line(1))
    ingest([str(log)], lake)
    old = manifest(lake).drop("lines", "skipped", "skipped_reasons")
    old.write_parquet(Lake(lake).manifest_path)
    with open(log, "ab") as f:
        f.write(line(2))
    s = ingest([str(log)], lake)
    assert s.events == 1 and manifest(lake)["lines"].to_list() == [None, 1]


# --- one bad source among good ones -----------------------------------------------------------


def _folder_with_bad_files(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.log").write_bytes(line(0) + line(1))
    whole = gzip.compress(b"".join(line(i) for i in range(10, 2000)))
    (logs / "broken.log.gz").write_bytes(whole[: len(whole) // 2])
    if Path("/proc/self/mem").exists():
        # Reading it fails (EIO) even for root, whom file permissions do not stop.
        (logs / "unreadable.log").symlink_to("/proc/self/mem")
    return logs


def test_one_bad_file_does_not_stop_a_folder(tmp_path: Path, lake: Path) -> None:
    logs = _folder_with_bad_files(tmp_path)
    r = CliRunner().invoke(main, ["ingest", str(logs), "--lake", str(lake)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "/r/0" in paths(lake) and "/r/1" in paths(lake)
    assert "broken.log.gz: cannot decompress (gzip)" in r.output
    bad = 2 if Path("/proc/self/mem").exists() else 1
    assert sum(ln.startswith("failed ") for ln in r.output.splitlines()) == bad
    if bad == 2:
        assert "/mem: cannot read: Input/output error" in r.output
    assert f"({bad} failed)" in r.output and f"{bad} of {bad + 1} source(s) could not be read" in r.output
    again = ingest([str(logs)], lake)
    assert again.events == 0 and len(again.failed) == bad
    # Nothing readable at all: one line naming each bad source.
    (logs / "good.log").unlink()
    r = CliRunner().invoke(main, ["ingest", str(logs), "--lake", str(tmp_path / "other")])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "nothing could be read: " in r.output and r.output.count("broken.log.gz: cannot decompress") == 1


def test_a_truncated_archive_keeps_the_lines_before_the_damage(tmp_path: Path, lake: Path) -> None:
    body = b"".join(line(i) for i in range(60_000))  # several MB: the damage is past the first read
    whole = gzip.compress(body, compresslevel=1)
    broken = tmp_path / "old.log.gz"
    broken.write_bytes(whole[: len(whole) * 3 // 4])
    s = ingest([str(broken)], lake)
    got = sorted(int(p.rsplit("/", 1)[1]) for p in paths(lake))
    assert s.results[0].status == "failed" and 0 < len(got) < 60_000
    assert got == list(range(len(got)))
    broken.write_bytes(whole)  # the whole archive after all: the rest, once
    s = ingest([str(broken)], lake)
    assert s.results[0].status == "resumed" and len(paths(lake)) == 60_000 == len(set(paths(lake)))


def test_analyze_classifies_what_it_could_read_then_fails(tmp_path: Path, lake: Path) -> None:
    logs = _folder_with_bad_files(tmp_path)
    r = CliRunner().invoke(main, ["analyze", str(logs), "--lake", str(lake), "--no-progress"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "classified" in r.output and "failed " in r.output
    assert Lake(lake).has_table("requests")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_read_as_a_stream(tmp_path: Path, lake: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    body = line(0) + line(1) + line(2).rstrip(b"\n")

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(body)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    s = ingest([str(fifo)], lake)
    t.join(5)
    assert s.results[0].source == str(fifo) and sorted(paths(lake)) == ["/r/0", "/r/1", "/r/2"]
    # In a folder a FIFO is left out: reading it would wait for a writer.
    folder = tmp_path / "logs"
    folder.mkdir()
    os.mkfifo(folder / "pipe")
    (folder / "a.log").write_bytes(line(5))
    s = ingest([str(folder)], tmp_path / "lake2")
    assert [Path(r.source).name for r in s.results] == ["a.log"]


def test_dev_stdin_is_read_as_a_stream(tmp_path: Path, lake: Path) -> None:
    if not Path("/dev/stdin").exists():
        pytest.skip("no /dev/stdin here")
    body = line(0) + line(1) + line(2).rstrip(b"\n")
    r = subprocess.run(
        [sys.executable, "-m", "trafficlens", "ingest", "/dev/stdin", "--lake", str(lake), "--no-progress"],
        input=body,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(paths(lake)) == ["/r/0", "/r/1", "/r/2"]


# --- implausible times ------------------------------------------------------------------------


def test_times_outside_a_sane_window_are_rejected(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    when = {
        "epoch": datetime(1970, 1, 1, tzinfo=UTC),
        "1025": datetime(1025, 10, 6, tzinfo=UTC),
        "9999": datetime(9999, 10, 6, tzinfo=UTC),
        "tomorrow": now + timedelta(days=1),
        "in a week": now + timedelta(days=7),
        "ok": datetime(2025, 10, 6, tzinfo=UTC),
    }
    log = tmp_path / "a.log"
    log.write_bytes(b"".join(line(i, t) for i, t in enumerate(when.values())))
    s = ingest([str(log)], tmp_path / "lake")
    assert (s.events, s.rejects) == (2, 4)
    assert sorted(paths(tmp_path / "lake")) == ["/r/3", "/r/5"]
    reasons = rejects(tmp_path / "lake")["reason"].to_list()
    assert reasons[1] == "time out of range: 1025-10-06T00:00:00Z"
    assert all(r.startswith("time out of range: ") for r in reasons)
    # Widened on one side; the other keeps its default.
    s = ingest([str(log)], tmp_path / "wide", IngestOptions(time_window="1000-01-01.."))
    assert sorted(paths(tmp_path / "wide")) == ["/r/0", "/r/1", "/r/3", "/r/5"]
    s = ingest([str(log)], tmp_path / "narrow", IngestOptions(time_window="2025-10-01..2025-10-31T23:59:59Z"))
    assert paths(tmp_path / "narrow") == ["/r/5"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("2030-01-01", "has no '..'"),
        ("yesterday..", "'yesterday' is not a date"),
        ("2030-01-01..2020-01-01", "ends before it starts"),
    ],
)
def test_a_bad_time_window_is_one_line(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "a.log").write_bytes(line(0))
    r = CliRunner().invoke(
        main, ["ingest", str(tmp_path / "a.log"), "--lake", str(tmp_path / "l"), "--time-window", value]
    )
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "l").exists()
