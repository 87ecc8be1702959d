"""classify on Apache Spark (`--engine spark`, local[2]): the same labels as the local engine, and a
failed or interrupted run leaves the lake as it was.

Marked `spark`; skipped cleanly without PySpark (`pip install 'trafficlens[spark]'`) or Java. Java 17
is installed with apt-get when it is missing and this runs as root (as CI does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import apt_install

from trafficlens.classify.pipeline import LABELS
from trafficlens.cli import main
from trafficlens.errors import InputError, OptionError
from trafficlens.spark import check_engine, parse_conf

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "shop-week.log.gz"
RANGES = ROOT / "sample_logs" / "ranges"
ROBOTS = ROOT / "sample_logs" / "robots"
# Five buckets of the sample week's 190,070 requests: bucket boundaries matter.
BUCKET_ROWS = 40_000


def _java() -> None:
    """Java for Spark: there, or installed with apt-get (skip when it cannot be)."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    failed = apt_install("openjdk-17-jre-headless")
    if failed:
        pytest.skip(f"Java is missing and cannot be installed here ({failed})")
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
def classified(week: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample week classified by the local engine, in BUCKET_ROWS buckets, judged against its
    robots.txt."""
    from trafficlens.classify import classify

    lake = tmp_path_factory.mktemp("local") / "lake"
    shutil.copytree(week, lake)
    classify(lake, ranges_dir=RANGES, robots=ROBOTS, progress=False, bucket_rows=BUCKET_ROWS)
    return lake


@pytest.fixture(scope="module")
def both(
    week: Path, classified: Path, spark_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, pl.DataFrame]]:
    """The sample week classified by each engine, in the same buckets, judged against its
    robots.txt."""
    from trafficlens.classify import classify

    lake = tmp_path_factory.mktemp("spark") / "lake"
    shutil.copytree(week, lake)
    classify(
        lake,
        ranges_dir=RANGES,
        robots=ROBOTS,
        progress=False,
        bucket_rows=BUCKET_ROWS,
        engine="spark",
        master="local[2]",
    )
    return {"local": _tables(classified), "spark": _tables(lake)}


@pytest.mark.spark
def test_every_client_has_the_local_engines_labels(both: dict[str, dict[str, pl.DataFrame]]) -> None:
    local, spark = both["local"]["clients"], both["spark"]["clients"]
    assert local.height == spark.height == 5_381
    assert local.columns == spark.columns
    assert local["client_id"].to_list() == spark["client_id"].to_list()
    for c in (*LABELS, "automation_score", "requests", "sessions", "first_seen", "last_seen", "hosting"):
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
    assert both["spark"]["requests"].height == 190_070
    # robots.txt judged in Spark's tasks, bucket by bucket: the comparison covers its findings.
    judged = both["spark"]["requests"].filter(pl.col("request_threats").list.contains("robots_violation"))
    assert judged.height > 0


@pytest.mark.spark
def test_an_interrupted_spark_classify_leaves_the_lake_as_it_was(
    classified: Path, spark_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after Spark's tasks wrote the buckets, before the commit: nothing of the run is
    left, and the labels of the previous run are intact; the next run works."""
    from trafficlens.classify import pipeline

    lake = tmp_path / "lake"
    shutil.copytree(classified, lake)
    before = _files(lake)
    assert any(f.startswith("requests/") for f in before)

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
    assert "190,070 requests" in r.output


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


def _split_week(folder: Path) -> list[Path]:
    """The sample week as three logs, the second also gzipped under another name (the same
    content twice in one run), and a file of no known format."""
    import gzip

    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines(keepends=True)
    third = len(lines) // 3
    folder.mkdir()
    parts = []
    for i, chunk in enumerate((lines[:third], lines[third : 2 * third], lines[2 * third :])):
        p = folder / f"access-{i}.log"
        p.write_bytes(b"".join(chunk))
        parts.append(p)
    (folder / "access-1-copy.log.gz").write_bytes(gzip.compress(parts[1].read_bytes()))
    (folder / "README.txt").write_text("not a log\n")
    return parts


def _events(lake: Path) -> pl.DataFrame:
    return pl.read_parquet(f"{lake}/events/**/*.parquet", hive_partitioning=False).sort("source", "line_no")


def _manifest(lake: Path) -> pl.DataFrame:
    return pl.read_parquet(lake / "manifest.parquet").drop("run_id", "ingested_at").sort("source", "start_offset")


@pytest.mark.spark
def test_spark_ingest_reads_what_the_local_engine_reads(spark_ready: None, tmp_path: Path) -> None:
    from trafficlens.ingest import ingest
    from trafficlens.spark import spark_session

    parts = _split_week(tmp_path / "logs")
    local, spark = tmp_path / "local", tmp_path / "spark"
    a = ingest([str(tmp_path / "logs")], local, progress=False)
    with spark_session("local[2]"):  # one session for the three runs
        b = ingest([str(tmp_path / "logs")], spark, progress=False, engine="spark")
        assert [(r.source, r.status, r.lines, r.events) for r in a.results] == [
            (r.source, r.status, r.lines, r.events) for r in b.results
        ]
        assert b.events == 190_070
        twice = [r.status for r in b.results if "access-1" in r.source]
        assert sorted(twice) == ["ingested", "unchanged"]  # the same content, read once
        assert _events(local).equals(_events(spark))
        assert _manifest(local).equals(_manifest(spark))
        # Again: nothing new. Then the last log grows: only its new lines are read.
        again = ingest([str(tmp_path / "logs")], spark, progress=False, engine="spark")
        assert again.events == 0 and {r.status for r in again.results} <= {"unchanged", "skipped"}
        with open(parts[2], "ab") as f:
            f.write(parts[0].read_bytes().splitlines(keepends=True)[0])
        grown = ingest([str(tmp_path / "logs")], spark, progress=False, engine="spark")
        assert grown.events == 1
        assert [r.status for r in grown.results if r.source.endswith("access-2.log")] == ["resumed"]
    assert _events(spark).height == 190_071
    assert not list((spark / ".staging").glob("*"))


def _ranged_log(path: Path) -> None:
    """Clients whose counted requests depend on range fetches (a viewer reading a PDF in pieces,
    with and without the whole file, after a failed whole fetch), form pages loaded or posted
    blind, and the site's home host (the log names none) decided by a tie: referrers counted as
    the features count them name two hosts equally often. A wrong count of range fetches, or the
    other host on the tie, changes the navigation of the clients whose referrers name
    shop.example (they go back to a page they were on)."""
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    lines = []
    named = {"https://www.shop.example/": 0, "https://shop.example/": 0}

    def hit(
        ip: str, second: int, method: str, target: str, status: int, referer: str = "-", counts: bool = True
    ) -> None:
        minute, sec = divmod(second, 60)
        ts = f"06/Oct/2025:10:{minute:02d}:{sec:02d} +0000"
        lines.append(f'{ip} - - [{ts}] "{method} {target} HTTP/1.1" {status} 5120 "{referer}" "{ua}"')
        for host in named:
            if counts and referer.startswith(host):
                named[host] += 1

    for n in range(12):
        ip, t = f"198.51.100.{n + 1}", n * 60
        kind = n % 4
        home = "https://shop.example/" if kind == 3 else "https://www.shop.example/"
        hit(ip, t, "GET", "/docs", 200, home)
        if kind == 0:  # ranges only: the first counts
            for k in range(5):
                hit(ip, t + 1 + k, "GET", "/files/manual.pdf", 206, home + "docs", counts=k == 0)
        elif kind == 1:  # the whole file, then ranges: none of them counts
            hit(ip, t + 1, "GET", "/files/manual.pdf", 200, home + "docs")
            for k in range(3):
                hit(ip, t + 2 + k, "GET", "/files/manual.pdf", 206, home + "docs", counts=False)
        elif kind == 2:  # a failed whole fetch, then ranges: the failed one counts
            hit(ip, t + 1, "GET", "/files/manual.pdf", 404, home + "docs")
            for k in range(2):
                hit(ip, t + 2 + k, "GET", "/files/manual.pdf", 206, home + "docs", counts=False)
        else:  # the sign-in form loaded and posted, back to the docs' list; and one posted blind
            hit(ip, t + 1, "GET", "/account/login", 200, home + "docs")
            hit(ip, t + 20, "POST", "/account/login", 302, home + "account/login")
            hit(ip, t + 40, "GET", "/faq", 200, home + "docs")
            hit(f"203.0.113.{n}", t + 5, "POST", "/account/login", 200)
    # Readers arriving from shop.example until both hosts are named equally often.
    extra = named["https://www.shop.example/"] - named["https://shop.example/"]
    assert extra > 0
    for k in range(extra):
        hit(f"192.0.2.{k + 1}", 900 + k, "GET", "/docs", 200, "https://shop.example/")
    assert len(set(named.values())) == 1
    path.write_text("\n".join(sorted(lines, key=lambda s: s.split("[", 1)[1])) + "\n")


@pytest.mark.spark
def test_range_fetches_forms_and_home_host_as_the_local_engine_counts_them(spark_ready: None, tmp_path: Path) -> None:
    from trafficlens.classify import classify
    from trafficlens.ingest import ingest

    log = tmp_path / "ranged.log"
    _ranged_log(log)
    tables = {}
    for engine in ("local", "spark"):
        lake = tmp_path / engine
        ingest([str(log)], lake, progress=False)
        spark = {"master": "local[2]"} if engine == "spark" else {}
        classify(lake, progress=False, bucket_rows=10, engine=engine, **spark)
        tables[engine] = _tables(lake)
    local, spark = tables["local"]["clients"], tables["spark"]["clients"]
    assert local.height == spark.height
    assert (local["return_share"].fill_null(0) > 0).any()  # the back steps the home host decides
    for c, dtype in local.schema.items():
        if dtype == pl.Float64:
            assert ((local[c] - spark[c]).abs().fill_null(0) < 1e-9).all(), c
        else:
            assert local[c].equals(spark[c]), c
    assert tables["local"]["requests"].equals(tables["spark"]["requests"])


@pytest.mark.spark
@pytest.mark.parametrize("staging", ["work area on the lake's storage", "shared staging folder"])
def test_a_lake_at_a_uri_on_spark_holds_what_the_local_engine_writes_in_a_folder(
    spark_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staging: str
) -> None:
    """A lake at a `file://` URI (reached as one on object storage is: through its list of files),
    ingested and classified on Spark, judged against robots.txt: the local engine's answers in a
    folder lake, and nothing in the lake that its list does not name. Without a staging folder the
    tasks share, they copy their buckets' files from a work area on the lake's storage, and write
    their share of the tables into the lake themselves."""
    from trafficlens.classify import classify
    from trafficlens.ingest import ingest
    from trafficlens.simulate import simulate
    from trafficlens.spark import spark_session
    from trafficlens.store import LIST_FILE, Lake

    if staging == "shared staging folder":
        monkeypatch.setenv("TRAFFICLENS_STAGING", str(tmp_path / "staging"))
    else:
        monkeypatch.delenv("TRAFFICLENS_STAGING", raising=False)
    log = tmp_path / "day.log"
    simulate(log, days=1, scale=0.02, seed=31, progress=False)
    uri, folder = (tmp_path / "remote").as_uri(), tmp_path / "local"
    ingest([str(log)], folder, progress=False)
    opts = {"ranges_dir": RANGES, "robots": ROBOTS, "progress": False, "bucket_rows": 1_000}
    classify(folder, **opts)
    with spark_session("local[2]"):
        ingest([str(log)], uri, progress=False, engine="spark")
        classify(uri, engine="spark", master="local[2]", **opts)
        if staging != "shared staging folder":
            # A run that fails once its tasks uploaded their share leaves the lake as it was, and
            # the next run removes what they uploaded.
            from trafficlens.classify import spark as on_spark

            before = Lake(uri).remote.refresh()  # type: ignore[union-attr]
            real = on_spark.write_buckets

            def fails(*args: object, **kwargs: object) -> object:
                real(*args, **kwargs)  # type: ignore[arg-type]
                raise KeyboardInterrupt

            monkeypatch.setattr(on_spark, "write_buckets", fails)
            with pytest.raises(KeyboardInterrupt):
                classify(uri, engine="spark", master="local[2]", **opts)
            monkeypatch.setattr(on_spark, "write_buckets", real)
            assert Lake(uri).remote.refresh() == before  # type: ignore[union-attr]
            assert ingest([str(log)], uri, progress=False).events == 0
    store = Lake(uri)
    keys = {"clients": ["client_id"], "sessions": ["session_id"], "requests": ["source", "line_no"]}
    for table, key in keys.items():
        here, there = store.scan(table).collect().sort(key), Lake(folder).scan(table).collect().sort(key)
        assert here.height > 100 and here.columns == there.columns, table
        for c, dtype in here.schema.items():
            if dtype == pl.Float64:
                assert ((here[c] - there[c]).abs().fill_null(0) < 1e-9).all(), (table, c)
            else:
                assert here[c].equals(there[c]), (table, c)
    assert store.remote is not None
    listed = set(store.remote.listed().values())
    held = {p.relative_to(tmp_path / "remote").as_posix() for p in (tmp_path / "remote").rglob("*") if p.is_file()}
    assert held == listed | {LIST_FILE}
    assert not list((tmp_path / "staging").glob("*/.staging/*"))
    assert not (tmp_path / "remote" / "_work").exists()  # the run's work area, once it is done
    requests = store.scan("requests").select("request_reasons").collect()["request_reasons"]
    assert requests.list.eval(pl.element().str.starts_with("robots:")).list.any().sum() > 0


@pytest.mark.spark
def test_spark_ingest_reads_uris_through_sparks_filesystem(spark_ready: None, tmp_path: Path) -> None:
    """`file://` URIs (a folder, a glob) go through Spark's filesystem as `s3a://` or `hdfs://` do:
    the same events as the local engine reads from the paths, content named twice read once, a
    repeated run a no-op, a grown file resumed."""
    from trafficlens.ingest import ingest
    from trafficlens.spark import spark_session

    parts = _split_week(tmp_path / "logs")
    local, remote = tmp_path / "local", tmp_path / "remote"
    a = ingest([str(tmp_path / "logs")], local, progress=False)
    uri = (tmp_path / "logs").as_uri()
    with spark_session("local[2]"):
        b = ingest([uri, uri + "/access-0.log"], remote, progress=False, engine="spark")
        assert {r.source for r in b.results} == {"file:" + r.source for r in a.results}
        assert sorted((r.status, r.lines, r.events) for r in a.results) == sorted(
            (r.status, r.lines, r.events) for r in b.results
        )
        assert b.events == 190_070
        assert sorted(r.status for r in b.results if "access-1" in r.source) == ["ingested", "unchanged"]
        renamed = _events(remote).with_columns(pl.col("source").str.strip_prefix("file:"))
        assert renamed.sort("source", "line_no").equals(_events(local))
        again = ingest([uri + "/access-*.log*"], remote, progress=False, engine="spark")
        assert again.events == 0 and {r.status for r in again.results} == {"unchanged"}
        with open(parts[2], "ab") as f:
            f.write(parts[0].read_bytes().splitlines(keepends=True)[0])
        grown = ingest([uri], remote, progress=False, engine="spark")
        assert grown.events == 1
        assert [r.status for r in grown.results if r.source.endswith("access-2.log")] == ["resumed"]
        with pytest.raises(InputError, match=r"^no file matches file:"):
            ingest([uri + "/nothing-*.log"], remote, progress=False, engine="spark")
    assert _events(remote).height == 190_071
    assert not list((remote / ".staging").glob("*"))


def test_a_uri_without_spark_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["ingest", "s3a://bucket/logs/", "--lake", str(tmp_path / "lake")])
    assert r.exit_code == 1
    assert r.output.strip() == (
        "Error: s3a://bucket/logs/: a URI is read through Spark's filesystem: add --engine spark (a file on "
        "this machine is given by its path)"
    )
    assert not (tmp_path / "lake").exists()
