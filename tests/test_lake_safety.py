"""What the lake and the model folder withstand: folder names that are SQL or glob syntax, a moved
or copied lake opened by DuckDB from elsewhere, a full disk at any step, and model files crafted
to run code."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from trafficlens.classify import pipeline
from trafficlens.classify.behaviour import FEATURES, NAV_FEATURES
from trafficlens.classify.model import META_FILE, MODEL_FILE, NAV_FILE, fit, load_model, model_dir
from trafficlens.cli import main
from trafficlens.errors import DiskFullError, ModelError
from trafficlens.simulate import simulate
from trafficlens.store import DB_FILE, Lake, Transaction

VIEWS = ("events", "requests", "sessions", "clients", "rejects", "manifest")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """Two small logs (the second, a day later) and the first one's line count."""
    tmp = tmp_path_factory.mktemp("logs")
    first, second = tmp / "first.log", tmp / "second.log"
    simulate(first, days=1, scale=0.02, seed=21, progress=False)
    simulate(second, days=1, scale=0.01, seed=22, progress=False)
    return first, second, sum(1 for _ in open(first))


def _run(*args: str) -> str:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0, (args, r.output)
    return r.stdout


def _count(lake: Path, view: str) -> int:
    out = _run("query", "--lake", str(lake), "--format", "json", f"SELECT count(*) AS n FROM {view}")
    return int(json.loads(out)["n"])


def _files(root: Path) -> dict[str, str]:
    """Every file of a lake (but its lock) with a hash of its content."""
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# --- folder names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["o'brien", "lake[1]", "a b*?{c}"])
def test_a_lake_folder_named_like_sql_or_a_glob_works(tmp_path: Path, logs: tuple[Path, Path, int], name: str) -> None:
    first, second, lines = logs
    if name == "lake[1]":  # a sibling the name matches as a glob: it must never be read
        _run("ingest", str(second), "--lake", str(tmp_path / "lake1"), "--no-progress")
    lake = tmp_path / name
    _run("analyze", str(first), "--lake", str(lake), "--no-progress")
    assert "Period" in _run("report", "--lake", str(lake))
    assert _count(lake, "events") == _count(lake, "requests") == lines
    assert _count(lake, "manifest") == 1
    # polars reads the same files (Lake.scan) as DuckDB does.
    assert Lake(lake).scan("requests").select(pl.len()).collect().item() == lines
    # A second ingest into it commits and leaves it usable.
    _run("ingest", str(second), "--lake", str(lake), "--no-progress")
    assert _count(lake, "manifest") == 2
    con = duckdb.connect(str(lake / DB_FILE), read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (_count(lake, "events"),)


# --- lake.duckdb -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, logs: tuple[Path, Path, int]) -> Path:
    lake = tmp_path_factory.mktemp("built") / "lake"
    _run("analyze", str(logs[0]), "--lake", str(lake), "--no-progress")
    return lake


def _copy(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest)
    return dest


def _counts_in_duckdb(db: str) -> dict[str, int]:
    con = duckdb.connect(db, read_only=True)
    try:
        return {v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] for v in VIEWS}  # type: ignore[index]
    finally:
        con.close()


def test_a_moved_or_copied_lake_opens_in_duckdb_from_any_folder(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _counts_in_duckdb(str(built / DB_FILE))
    assert expected["requests"] > 0 and expected["manifest"] == 1
    # The views name no folder: the file holds no absolute path.
    assert str(built).encode() not in (built / DB_FILE).read_bytes()
    copy, moved = tmp_path / "copies" / "copy", tmp_path / "moved"
    shutil.copytree(built, copy)
    shutil.copytree(built, tmp_path / "to-move")
    os.rename(tmp_path / "to-move", moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for db in (str(copy / DB_FILE), str(moved / DB_FILE), os.path.relpath(moved / DB_FILE)):
        assert _counts_in_duckdb(db) == expected, db
    cli = shutil.which("duckdb")
    if cli:  # the DuckDB CLI a user has, when this machine has one
        r = subprocess.run(
            [cli, "-readonly", "-csv", "-noheader", str(moved / DB_FILE), "-c", "SELECT count(*) FROM requests"],
            capture_output=True,
            text=True,
            cwd=elsewhere,
        )
        assert r.returncode == 0 and int(r.stdout.strip()) == expected["requests"], r.stderr


def test_lake_duckdb_is_replaced_whole_or_not_at_all(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(built)
    before = (built / DB_FILE).read_bytes()

    def half_then_full(src: object, dst: object) -> None:
        dst.write(b"half a database")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", half_then_full)
    with pytest.raises(DiskFullError, match="no space left on device writing .*lake.duckdb"):
        lake.refresh_views()
    monkeypatch.undo()
    assert (built / DB_FILE).read_bytes() == before
    assert not [p.name for p in built.iterdir() if p.name.startswith(".lake.duckdb") or p.suffix == ".wal"]
    # Leftovers of a run killed while installing it are removed by the next run.
    (built / ".lake.duckdb.99999.tmp").write_bytes(b"x")
    (built / ".lake.duckdb.99999.tmp.wal").write_bytes(b"x")
    with lake.locked():
        pass
    assert not [p.name for p in built.iterdir() if p.name.startswith(".lake.duckdb")]


# --- a full disk -----------------------------------------------------------------------------


def _full(*a: object, **k: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/part.parquet")


def _duckdb_full(*a: object, **k: object) -> None:
    raise duckdb.IOException('IO Error: Could not write file "/somewhere/part-0.parquet": No space left on device')


@pytest.mark.parametrize(
    "command, target, attr, fault",
    [
        ("ingest", Transaction, "path", _full),  # a staged file or folder
        ("ingest", Transaction, "commit", _full),  # the journal
        ("classify", pipeline, "_write_tables", _duckdb_full),  # DuckDB writing the tables
    ],
    ids=["ingest-staging", "ingest-journal", "classify-tables"],
)
def test_a_full_disk_is_one_line_and_the_lake_stays_as_it_was(
    tmp_path: Path,
    built: Path,
    logs: tuple[Path, Path, int],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    target: object,
    attr: str,
    fault: object,
) -> None:
    lake = _copy(built, tmp_path / "lake")
    before = _files(lake)
    monkeypatch.setattr(target, attr, fault)
    args = [command, *([str(logs[1])] if command == "ingest" else []), "--lake", str(lake), "--no-progress"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    monkeypatch.undo()
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines() == [
        f"Error: no space left on device writing {lake}; free space or choose another --lake"
    ]
    assert _files(lake) == before


def test_a_full_disk_after_the_commit_keeps_the_previous_views(
    tmp_path: Path, built: Path, logs: tuple[Path, Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _copy(built, tmp_path / "lake")
    before = (lake / DB_FILE).read_bytes()
    import trafficlens.store as store

    monkeypatch.setattr(store, "_install", _full)
    r = CliRunner().invoke(main, ["ingest", str(logs[1]), "--lake", str(lake)], catch_exceptions=False)
    assert r.exit_code != 0 and r.stderr.startswith("Error: no space left on device writing")
    assert len(r.stderr.strip().splitlines()) == 1
    assert (lake / DB_FILE).read_bytes() == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a file system needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_really_full_disk(small_disk: Path, built: Path, logs: tuple[Path, Path, int]) -> None:
    second = logs[1]
    lake = _copy(built, small_disk / "lake")
    before = _files(lake)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free - 12 * 1024))
    for args in (["ingest", str(second)], ["classify"]):
        r = CliRunner().invoke(main, [*args, "--lake", str(lake), "--no-progress"], catch_exceptions=False)
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        assert r.stderr.strip().splitlines() == [
            f"Error: no space left on device writing {lake}; free space or choose another --lake"
        ]
        assert _files(lake) == before
        assert not list(lake.rglob("*.wal"))
    filler.unlink()
    _run("ingest", str(second), "--lake", str(lake), "--no-progress")
    assert _counts_in_duckdb(str(lake / DB_FILE))["manifest"] == 2


# --- model files -----------------------------------------------------------------------------


class _RunsCode:
    """A pickle that, loaded, runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


def _model_folder(folder: Path) -> Path:
    folder.mkdir()
    for f in model_dir().iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def test_a_pickle_in_a_model_folder_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = pickle.dumps(_RunsCode(marker))
    # A joblib file where the model should be.
    d = _model_folder(tmp_path / "joblib")
    (d / NAV_FILE).unlink()
    (d / "navigation.joblib").write_bytes(crafted)
    with pytest.raises(ModelError, match="navigation.joblib: pickle files can run code"):
        load_model(d)
    # A pickle under the skops name.
    d = _model_folder(tmp_path / "renamed")
    (d / NAV_FILE).write_bytes(crafted)
    with pytest.raises(ModelError, match="not a readable skops model"):
        load_model(d)
    r = CliRunner().invoke(main, ["classify", "--lake", str(tmp_path / "none"), "--model-dir", str(d)])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert not marker.exists()


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    d = _model_folder(tmp_path / "model")
    sio.dump(FunctionTransformer(func=os.system), d / MODEL_FILE)
    with pytest.raises(ModelError, match=r"behaviour.skops: holds types trafficlens does not trust \(posix.system\)"):
        load_model(d)


def test_training_writes_skops_files_that_load_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 120
    data = pl.DataFrame({f: rng.random(n) for f in FEATURES}).with_columns(
        label=pl.Series(["human", "crawler", "scraper", "agent"] * (n // 4)),
        group=pl.Series(np.arange(n) // 4 % 4),
        identity=pl.lit("none"),
        client_id=pl.Series([f"c{i}" for i in range(n)]),
        # Enough page views for the navigation model to read every client.
        log_pages=pl.lit(float(np.log1p(20))),
    )
    out = tmp_path / "model"
    with threadpool_limits(1):  # on a tiny set, OpenMP threads cost more than they give
        meta = fit(data, description="test", out=out, only="logistic_regression", folds=2)
    assert sorted(p.name for p in out.iterdir()) == sorted([MODEL_FILE, NAV_FILE, META_FILE])
    assert meta["versions"]["skops"]
    m = load_model(out)
    x = data.select(NAV_FEATURES).to_numpy().astype(np.float64)
    assert m.navigation is not None and m.navigation.predict_proba(x).shape == (n, 2)  # type: ignore[attr-defined]
    assert json.loads((out / META_FILE).read_text())["versions"]["skops"] == meta["versions"]["skops"]
