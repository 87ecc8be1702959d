"""classify on Apache Spark (`--engine spark`, local[2]): the same labels as the local engine, and a
failed or interrupted run leaves the lake as it was.

Marked `spark`; skipped cleanly without PySpark (`pip install 'trafficlens[spark]'`) or Java. Java 17
is installed with apt-get when it is missing and this runs as root (as CI does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from trafficlens.cli import main
from trafficlens.errors import OptionError
from trafficlens.spark import check_engine, parse_conf

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "shop-week.log.gz"
RANGES = ROOT / "sample_logs" / "ranges"
# Five buckets of the sample week's 184,705 requests: bucket boundaries matter.
BUCKET_ROWS = 40_000
LABEL_COLUMNS = (
    "actor_class",
    "automated",
    "ai_driven",
    "purpose",
    "operator",
    "agent",
    "identity",
    "malicious",
    "threats",
    "confidence",
    "reasons",
)


def _java() -> None:
    """Java for Spark: there, or installed with apt-get (skip when it cannot be)."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Java is missing and cannot be installed here (needs root and apt-get)")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "openjdk-17-jre-headless"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"cannot install Java ({' '.join(cmd)}): {done.stderr.strip().splitlines()[-1:]}")
    if not shutil.which("java"):
        pytest.skip("apt-get installed Java but `java` is not on PATH")


@pytest.fixture(scope="module")
def spark_ready() -> None:
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'trafficlens[spark]')")
    _java()


def _tables(lake: Path) -> dict[str, pl.DataFrame]:
    keys = {"clients": ["client_id"], "sessions": ["session_id"], "requests": ["source", "line_no"]}
    return {t: pl.read_parquet(f"{lake}/{t}/**/*.parquet", hive_partitioning=False).sort(k) for t, k in keys.items()}


def _files(lake: Path) -> dict[str, str]:
    """Every file of the lake's labelled tables and manifest, with a digest of its bytes."""
    out = {}
    for p in sorted(lake.rglob("*")):
        rel = p.relative_to(lake).as_posix()
        if p.is_file() and rel.split("/")[0] in ("requests", "sessions", "clients", "events", "manifest.parquet"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample week ingested, not yet classified."""
    lake = tmp_path_factory.mktemp("spark") / "lake"
    r = CliRunner().invoke(main, ["ingest", str(SAMPLE), "--lake", str(lake), "--no-progress"])
    assert r.exit_code == 0, r.output
    return lake


@pytest.fixture(scope="module")
def both(week: Path, spark_ready: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pl.DataFrame]]:
    """The sample week classified by each engine, in the same buckets."""
    from trafficlens.classify import classify

    out = {}
    for engine in ("local", "spark"):
        lake = tmp_path_factory.mktemp(engine) / "lake"
        shutil.copytree(week, lake)
        spark = {"master": "local[2]"} if engine == "spark" else {}
        classify(lake, ranges_dir=RANGES, progress=False, bucket_rows=BUCKET_ROWS, engine=engine, **spark)
        out[engine] = _tables(lake)
    return out


@pytest.mark.spark
def test_every_client_has_the_local_engines_labels(both: dict[str, dict[str, pl.DataFrame]]) -> None:
    local, spark = both["local"]["clients"], both["spark"]["clients"]
    assert local.height == spark.height == 5_236
    assert local.columns == spark.columns
    assert local["client_id"].to_list() == spark["client_id"].to_list()
    for c in (*LABEL_COLUMNS, "automation_score", "requests", "sessions", "first_seen", "last_seen", "hosting"):
        assert local[c].equals(spark[c]), c
    # Features are float aggregates summed in another order: equal to the last bits.
    for c, dtype in local.schema.items():
        if dtype == pl.Float64:
            assert ((local[c] - spark[c]).abs().fill_null(0) < 1e-9).all(), c
    # The week holds every class, so the comparison covers each path of the labels.
    assert set(spark["actor_class"]) >= {"human", "crawler", "scraper", "agent"}


@pytest.mark.spark
def test_sessions_and_requests_match_the_local_engine(both: dict[str, dict[str, pl.DataFrame]]) -> None:
    for table in ("sessions", "requests"):
        local, spark = both["local"][table], both["spark"][table]
        assert local.columns == spark.columns, table
        assert local.height == spark.height, table
        assert local.equals(spark), table
    assert both["spark"]["requests"].height == 184_705


@pytest.mark.spark
def test_an_interrupted_spark_classify_leaves_the_lake_as_it_was(
    week: Path, spark_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after Spark's tasks wrote the buckets, before the commit: nothing of the run is
    left, and the labels of the previous run are intact; the next run works."""
    from trafficlens.classify import pipeline

    lake = tmp_path / "lake"
    shutil.copytree(week, lake)
    first = CliRunner().invoke(main, ["classify", "--lake", str(lake), "--ranges", str(RANGES), "--no-progress"])
    assert first.exit_code == 0, first.output
    before = _files(lake)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "final_labels", interrupted)
    args = ["classify", "--lake", str(lake), "--ranges", str(RANGES), "--engine", "spark", "--master", "local[2]"]
    r = CliRunner().invoke(main, [*args, "--no-progress"])
    assert r.exit_code == 130
    assert r.output == "interrupted; the lake is as it was before this run\n"
    assert _files(lake) == before
    assert not list((lake / ".staging").glob("*"))
    monkeypatch.undo()
    r = CliRunner().invoke(main, [*args, "--no-progress", "--conf", "spark.sql.shuffle.partitions=3"])
    assert r.exit_code == 0, r.output
    assert "184,705 requests" in r.output


@pytest.mark.spark
def test_spark_that_does_not_start_is_one_line_and_changes_nothing(
    week: Path, spark_ready: None, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(week, lake)
    before = _files(lake)
    r = CliRunner().invoke(
        main, ["classify", "--lake", str(lake), "--engine", "spark", "--master", "nowhere://x", "--no-progress"]
    )
    assert r.exit_code == 1
    assert r.output.startswith("Error: Spark did not start on nowhere://x: ")
    assert len(r.output.strip().splitlines()) == 1
    assert _files(lake) == before


def test_engine_options_are_checked_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OptionError, match="--master and --conf are options of --engine spark"):
        check_engine("local", master="local[2]")
    with pytest.raises(OptionError, match="expected key=value"):
        parse_conf(["spark.executor.memory"])
    assert parse_conf(["a.b=1", "c = x=y"]) == {"a.b": "1", "c": " x=y"}
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as on a machine without the extra
    with pytest.raises(OptionError, match=r"--engine spark needs PySpark: pip install 'trafficlens\[spark\]'"):
        check_engine("spark")


def test_without_pyspark_the_cli_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    r = CliRunner().invoke(main, ["classify", "--lake", str(tmp_path / "lake"), "--engine", "spark"])
    assert r.exit_code == 1
    assert r.output == "Error: --engine spark needs PySpark: pip install 'trafficlens[spark]'\n"
    assert not (tmp_path / "lake").exists()
