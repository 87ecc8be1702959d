"""A lake at a URI: on S3 (an S3 server emulated in this process by moto) and at a `file://` URI,
through pyarrow's filesystem layer. It must hold what a lake in a folder holds, be committed by its
list of files (a run that dies before replacing the list leaves the lake as it was, and the next
run removes what it left), and keep a second run out."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from trafficlens.cli import main
from trafficlens.simulate import simulate
from trafficlens.store import LIST_FILE, LOCK_FILE, SECRET_FILE, Lake, Remote, Transaction

BUCKET = "trafficlens-test"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small simulated logs of a day each (two seeds)."""
    tmp = tmp_path_factory.mktemp("logs")
    first, second = tmp / "first.log", tmp / "second.log"
    simulate(first, days=1, scale=0.02, seed=31, progress=False)
    simulate(second, days=1, scale=0.01, seed=32, progress=False)
    return first, second


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 endpoint with an empty bucket, found by pyarrow through AWS_ENDPOINT_URL; runs stage
    their files in a folder of the test's."""
    server_mod = pytest.importorskip("moto.server", reason="moto[server] emulates S3 for these tests")
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "TRAFFICLENS_STAGING": str(tmp_path_factory.mktemp("staging")),
    }
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _run(*args: str, ok: bool = True) -> str:
    r = CliRunner().invoke(main, [*args, "--no-progress"] if args[0] in ("ingest", "analyze") else list(args))
    if ok:
        assert r.exit_code == 0, (args, r.output, r.exception)
    return r.output


def _count(lake: str, view: str) -> int:
    return int(json.loads(_run("query", "--lake", lake, "--format", "json", f"SELECT count(*) AS n FROM {view}"))["n"])


def _table(lake: str, table: str, key: str) -> pl.DataFrame:
    return Lake(lake).scan(table).collect().sort(key)


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Equal frames, but for the last bits of float columns (summed in whatever order threads give)."""
    if a.schema != b.schema or a.height != b.height:
        return False
    for c, dtype in a.schema.items():
        if dtype == pl.Float64:
            if not ((a[c] - b[c]).abs().fill_null(0) < 1e-9).all() or not a[c].is_null().equals(b[c].is_null()):
                return False
        elif not a[c].equals(b[c]):
            return False
    return True


def _report(lake: str) -> dict:
    """The JSON report, rows of equal rank in any order, without the times of ingest."""

    def rows(v: object) -> object:
        if isinstance(v, dict):
            return {k: rows(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((rows(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
        return v

    doc = json.loads(_run("report", "--lake", lake, "--format", "json"))
    doc["data_quality"].pop("sources")
    return rows(doc)  # type: ignore[return-value]


def _objects(remote: Remote) -> set[str]:
    return set(remote._stored_files())


@pytest.mark.parametrize("place", ["s3", "file"])
def test_a_lake_at_a_uri_holds_what_a_lake_in_a_folder_holds(
    place: str, request: pytest.FixtureRequest, tmp_path: Path, logs: tuple[Path, Path]
) -> None:
    first, second = logs
    if place == "s3":
        request.getfixturevalue("s3")
        uri = f"s3a://{BUCKET}/lakes/{tmp_path.name}"
    else:
        uri = (tmp_path / "remote [lake]").as_uri()
    folder = str(tmp_path / "lake")
    for lake in (uri, folder):
        _run("analyze", str(first), "--lake", lake)
        _run("ingest", str(second), "--lake", lake)
        _run("ingest", str(first), "--lake", lake)  # already ingested: nothing new
        _run("classify", "--lake", lake)
    assert (
        _count(uri, "events") == _count(folder, "events") == sum(1 for _ in open(first)) + sum(1 for _ in open(second))
    )
    for table, key in (("clients", "client_id"), ("sessions", "session_id")):
        here, there = _table(uri, table, key), _table(folder, table, key)
        assert here.height > 100 and _same(here, there), table
    requests = ("client_id", "ts", "line_no", "actor_class", "operator", "threats", "request_threats", "date")
    sql = f"SELECT {', '.join(requests)} FROM requests ORDER BY client_id, ts, line_no"
    assert _run("query", "--lake", uri, "--format", "csv", sql) == _run(
        "query", "--lake", folder, "--format", "csv", sql
    )
    assert _count(uri, "manifest") == 2 and _count(uri, "rejects") == _count(folder, "rejects")
    # The report reads the lake at the URI as it reads the folder (but for when each was ingested).
    here, there = (_report(lake) for lake in (uri, folder))
    assert here == there and here["totals"]["requests"] == _count(folder, "requests")
    # The files the list names are all the lake holds (classify twice replaced its tables whole).
    remote = Lake(uri).remote
    assert remote is not None
    assert _objects(remote) == set(remote.listed().values()) | {LIST_FILE}
    assert not (Path(folder) / LIST_FILE).exists()


def test_a_run_that_dies_before_its_list_leaves_the_lake_as_it_was(
    s3: str, tmp_path: Path, logs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = logs
    uri = f"s3://{BUCKET}/lakes/{tmp_path.name}"
    _run("analyze", str(first), "--lake", uri)
    remote = Lake(uri).remote
    assert remote is not None
    before, events = dict(remote.refresh()), _count(uri, "events")

    real = Remote._write_list

    def dies(self: Remote, files: dict[str, str]) -> None:
        raise OSError("the connection was reset")

    monkeypatch.setattr(Remote, "_write_list", dies)
    r = CliRunner().invoke(main, ["ingest", str(second), "--lake", uri, "--no-progress"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert f"to the lake at {uri}: the connection was reset; the next run on this machine finishes it" in r.output
    # The run's files were uploaded, but no reader sees them.
    assert remote.refresh() == before and _count(uri, "events") == events
    assert _objects(remote) - set(before.values()) - {LIST_FILE}
    monkeypatch.setattr(Remote, "_write_list", real)

    # The next run finishes that commit first: its events are there once, and nothing else is left.
    _run("ingest", str(second), "--lake", uri)
    assert _count(uri, "events") == events + sum(1 for _ in open(second))
    assert _objects(remote) == set(remote.refresh().values()) | {LIST_FILE}
    # A run interrupted before its journal leaves nothing for the next run to commit.
    listed = dict(remote.refresh())

    def cut(self: Transaction) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Transaction, "commit", cut)
    r = CliRunner().invoke(main, ["classify", "--lake", uri, "--no-progress"])
    assert r.exit_code == 130 and remote.refresh() == listed
    monkeypatch.undo()
    _run("ingest", str(first), "--lake", uri)  # nothing new
    assert remote.refresh() == listed and _objects(remote) == set(listed.values()) | {LIST_FILE}


def test_a_second_run_is_kept_out_by_the_lock_object(s3: str, tmp_path: Path, logs: tuple[Path, Path]) -> None:
    first, second = logs
    uri = f"s3://{BUCKET}/lakes/{tmp_path.name}"
    _run("ingest", str(first), "--lake", uri)
    remote = Lake(uri).remote
    assert remote is not None
    listed = dict(remote.refresh())
    held = {"host": "another-machine", "pid": 4242, "since": "2026-01-01T00:00:00Z"}
    remote._write_bytes(remote.path_of(LOCK_FILE), json.dumps(held).encode())
    r = CliRunner().invoke(main, ["ingest", str(second), "--lake", uri, "--no-progress"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "held by a trafficlens run on another-machine (process 4242)" in r.output
    assert f"delete {uri}/{LOCK_FILE}" in r.output
    assert remote.refresh() == listed
    # A lock left by a process of this machine that is gone is taken over.
    gone = {"host": socket.gethostname(), "pid": 2**22 + 17, "since": "2026-01-01T00:00:00Z"}
    remote._write_bytes(remote.path_of(LOCK_FILE), json.dumps(gone).encode())
    _run("ingest", str(second), "--lake", uri)
    assert LOCK_FILE not in _objects(remote) and remote.refresh() != listed


def test_pseudonyms_in_a_lake_on_object_storage_keep_its_key_and_choice(
    s3: str, tmp_path: Path, logs: tuple[Path, Path]
) -> None:
    first, second = logs
    uri = f"s3://{BUCKET}/lakes/{tmp_path.name}"
    _run("ingest", str(first), "--lake", uri, "--ip-privacy", "hash")
    remote = Lake(uri).remote
    assert remote is not None and SECRET_FILE in _objects(remote) and "privacy.json" in remote.refresh()
    key = remote._read_bytes(remote.path_of(SECRET_FILE))
    _run("ingest", str(second), "--lake", uri)  # the lake's remembered choice applies
    out = json.loads(
        _run("query", "--lake", uri, "--format", "json", "SELECT count(*) AS n FROM events WHERE client_ip LIKE '%~%'")
    )
    assert out["n"] == _count(uri, "events") > 0
    assert remote._read_bytes(remote.path_of(SECRET_FILE)) == key


def test_a_uri_that_is_no_lake_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["classify", "--lake", (tmp_path / "none").as_uri()])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert r.output.startswith(f"Error: no trafficlens lake at {(tmp_path / 'none').as_uri()}; ")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("not a lake\n")
    r = CliRunner().invoke(
        main, ["ingest", str(tmp_path / "full" / "notes.txt"), "--lake", (tmp_path / "full").as_uri()]
    )
    assert r.exit_code == 1 and "is not empty and is not a trafficlens lake" in r.output
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]
    # A filesystem pyarrow does not know, named as the user gave it.
    r = CliRunner().invoke(main, ["report", "--lake", "ftp://example.org/lake"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert r.output.startswith("Error: cannot reach the lake at ftp://example.org/lake: ")


def test_redact_rewrites_a_lake_on_object_storage_through_its_list(
    s3: str, tmp_path: Path, logs: tuple[Path, Path]
) -> None:
    first, _ = logs
    uri = f"s3://{BUCKET}/lakes/{tmp_path.name}"
    _run("analyze", str(first), "--lake", uri)
    store = Lake(uri)
    assert store.remote is not None
    addresses = set(store.scan("events").select("client_ip").collect()["client_ip"])
    counts = {t: _count(uri, t) for t in ("events", "requests", "sessions", "clients")}
    r = CliRunner().invoke(main, ["redact", "--lake", uri, "--before", "2030-01-01", "--ip-privacy", "hash"])
    assert r.exit_code == 0 and r.output.startswith(f"redacted {uri} before 2030-01-01: "), r.output
    assert {t: _count(uri, t) for t in counts} == counts
    for table in ("events", "requests", "sessions", "clients"):
        seen = set(Lake(uri).scan(table).select("client_ip").collect()["client_ip"])
        assert not seen & addresses, table
    # The old files are gone: the lake holds what its list names, its key and nothing else.
    assert _objects(store.remote) == set(store.remote.refresh().values()) | {LIST_FILE, SECRET_FILE}
    # Running it again changes no value.
    events = Lake(uri).scan("events").collect().sort("source", "line_no")
    assert (
        CliRunner().invoke(main, ["redact", "--lake", uri, "--before", "2030-01-01", "--ip-privacy", "hash"]).exit_code
        == 0
    )
    assert Lake(uri).scan("events").collect().sort("source", "line_no").equals(events)
