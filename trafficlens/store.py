"""The lake: partitioned Parquet, a manifest, and DuckDB views over them (DESIGN.md, "The lake").

Writes are transactional. A run writes into `LAKE/.staging/<run_id>/`, then commits by writing a
journal (`COMMIT`) and moving its files into place; a run that dies before the journal leaves no
trace (its staging folder is removed by the next run), one that dies after it is rolled forward
by the next run. One run at a time holds the lake's lock.

Paths are never part of SQL text. `lake.duckdb` holds views that name no folder: each finds the
lake from the variable `trafficlens_lake` when a connection sets it (trafficlens does), or else
from where DuckDB opened the database file, so `duckdb LAKE/lake.duckdb` works from any folder,
and after the lake was moved or copied (see `_LAKE_DIR_SQL`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.errors import LakeError, TrafficlensError, disk_full
from trafficlens.schema import ALERT_SCHEMA, EVENT_SCHEMA, MANIFEST_SCHEMA, REJECT_SCHEMA, ROBOTS_TXT_SCHEMA

TABLES = ("events", "requests", "sessions", "clients", "rejects", "alerts", "robots_txt")
PARTITIONED = ("events", "requests")
DEFAULT_LAKE = "trafficlens-lake"
MARKER = ".trafficlens"
DB_FILE = "lake.duckdb"
# The oldest DuckDB that reads lake.duckdb: the DuckDB CLI a user has may be older than the library
# that wrote the file, and 1.1 is the first with getvariable().
DUCKDB_FILE_VERSION = "v1.1.0"
LAKE_VARIABLE = "trafficlens_lake"
# The lake folder, as a glob prefix with its glob characters escaped (`[` -> `[[]`: DuckDB globs the
# whole pattern). A trafficlens connection sets LAKE_VARIABLE. Without it, the folder of the
# database file: DuckDB resolves relative paths against the working folder, not the database's, but
# its `temp_directory` defaults to `<database>.tmp` (`X.tmp?Y` for a path `X?Y`: DuckDB reads what
# follows a `?` as parameters). When neither says (a custom temp_directory, an ATTACHed lake), the
# prefix is empty: paths are relative to the working folder, or to `file_search_path`.
_LAKE_DIR_SQL = (
    rf"regexp_replace(coalesce(getvariable('{LAKE_VARIABLE}') || '/', "
    r"regexp_extract(replace(current_setting('temp_directory'), '.tmp?', '?'), '^(.*/)?lake\.duckdb(\.tmp)?$', 1)), "
    r"'([\[*?])', '[\1]', 'g')"
)


# The tables a reader may ask for before anything wrote them: read as empty, with their schema.
EMPTY_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "events": EVENT_SCHEMA,
    "rejects": REJECT_SCHEMA,
    "alerts": ALERT_SCHEMA,
    "robots_txt": ROBOTS_TXT_SCHEMA,
}

# A URI (`s3a://bucket/logs/`, `hdfs://…`, `file:///…`): a place on Spark's filesystem, not a path.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def glob_escape(path: str) -> str:
    """`path` matching only itself in a DuckDB glob: `[`, `*` and `?` as one-character classes."""
    return re.sub(r"([\[*?])", r"[\1]", path)


def sql_literal(value: str) -> str:
    """A string as a SQL literal, for the few SQL texts built from catalogue values."""
    return "'" + value.replace("'", "''") + "'"


class Lake:
    """A lake folder. Creating one makes the folder; reading one that does not exist fails clearly."""

    def __init__(self, root: str | Path, create: bool = False) -> None:
        if isinstance(root, str) and URI.match(root):
            # A path would be made of it (`s3a:/bucket/lake`, here): say so instead.
            raise LakeError(
                f"{root}: a lake on object storage is not supported yet; give a folder on a local disk, or on a "
                "filesystem every machine of a cluster mounts (NFS, EFS)"
            )
        self.root = Path(root).expanduser().resolve()
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LakeError(f"cannot create lake folder {self.root}: {e.strerror}") from e
            if any(self.root.iterdir()) and not (self.root / MARKER).exists():
                raise LakeError(f"{self.root} is not empty and is not a trafficlens lake; choose a new or empty folder")
            try:
                (self.root / MARKER).touch()
            except OSError as e:
                raise _write_error(e, self.root) from e
        elif not (self.root / MARKER).exists():
            raise LakeError(
                f"no trafficlens lake at {self.root}; create one with `trafficlens ingest LOG --lake {root}`"
            )

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.parquet"

    def files(self, table: str) -> list[str]:
        """The table's Parquet files. Listed here rather than globbed by a reader: polars and DuckDB
        would read `[`, `*` and `?` in the lake's own folder name as patterns."""
        return sorted(str(p) for p in self.root.glob(table_pattern(table))) if (self.root / table).is_dir() else []

    def require_labels(self) -> None:
        """Fail clearly when classify has not labelled this lake yet."""
        if not self.has_table("requests"):
            raise LakeError(
                f"{self.root}: no classified requests yet: run `trafficlens analyze LOG... --lake {self.root}` "
                f"(or `trafficlens classify --lake {self.root}` after an ingest)"
            )

    def has_table(self, table: str) -> bool:
        return (self.root / table).is_dir() and next(self.root.glob(table_pattern(table)), None) is not None

    def scan(self, table: str) -> pl.LazyFrame:
        """A LazyFrame over one table (empty, with its schema, when nothing was written yet)."""
        if not self.has_table(table):
            schema = EMPTY_SCHEMAS.get(table)
            if schema is None:
                raise LakeError(f"the lake has no {table} yet; run `trafficlens classify --lake {self.root}`")
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(
            self.files(table), glob=False, hive_partitioning=False, missing_columns="insert", extra_columns="ignore"
        )

    def read_manifest(self) -> pl.DataFrame:
        if not self.manifest_path.exists():
            return pl.DataFrame(schema=MANIFEST_SCHEMA)
        return pl.read_parquet(self.manifest_path, glob=False)

    @contextlib.contextmanager
    def locked(self, wait_message: bool = True) -> Iterator[None]:
        """Hold the lake's lock; another run waits (saying so once on a terminal). A full disk
        inside the block becomes a DiskFullError (the block's transaction has been dropped)."""
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _write_error(e, self.root) from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if wait_message and sys.stderr.isatty():
                    print(f"waiting for another trafficlens run on {self.root} ...", file=sys.stderr)
                fcntl.flock(fd, fcntl.LOCK_EX)
            self.recover()
            yield
        except Exception as e:
            full = None if isinstance(e, TrafficlensError) else disk_full(e, self.root)
            if full is None:
                raise
            raise full from e
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def recover(self) -> None:
        """Finish committed runs that were interrupted mid-move; drop uncommitted ones."""
        # A lake.duckdb being installed when its run died.
        for stray in self.root.glob(f".{DB_FILE}.*.tmp*"):
            stray.unlink(missing_ok=True)
        staging = self.root / ".staging"
        if not staging.is_dir():
            return
        for run in sorted(staging.iterdir()):
            if (run / "COMMIT").exists():
                Transaction(self, run.name, existing=True).apply()
            else:
                shutil.rmtree(run, ignore_errors=True)

    def begin(self) -> Transaction:
        return Transaction(self, time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8])

    def refresh_views(self) -> None:
        """(Re)write lake.duckdb so the plain DuckDB CLI sees every table as a view."""
        refresh_views(self)


class Transaction:
    """Files written aside under the staging folder, made visible together by commit()."""

    def __init__(self, lake: Lake, run_id: str, existing: bool = False) -> None:
        self.lake = lake
        self.run_id = run_id
        self.dir = lake.root / ".staging" / run_id
        if not existing:
            self.dir.mkdir(parents=True)
        self._replace: list[str] = []  # tables replaced whole (sessions, clients)

    def path(self, rel: str) -> Path:
        p = self.dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def replace_table(self, table: str) -> None:
        """Mark a whole table as replaced by what this run writes under it."""
        self._replace.append(table)

    def commit(self) -> None:
        files = sorted(str(p.relative_to(self.dir)) for p in self.dir.rglob("*") if p.is_file() and p.name != "COMMIT")
        journal = {"files": files, "replace": self._replace}
        tmp = self.dir / "COMMIT.tmp"
        with open(tmp, "w") as f:
            json.dump(journal, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / "COMMIT")
        _fsync_dir(self.dir)
        self.apply()

    def apply(self) -> None:
        """Move committed files into the lake. Safe to repeat after an interruption."""
        journal = json.loads((self.dir / "COMMIT").read_text())
        root = self.lake.root
        for table in journal.get("replace", []):
            # Old files of a replaced table are removed unless they are the ones being moved in.
            incoming = {f for f in journal["files"] if f.startswith(table + "/")}
            for old in (root / table).rglob("*.parquet") if (root / table).is_dir() else []:
                if str(old.relative_to(root)) not in incoming:
                    old.unlink()
        manifest = None
        for rel in journal["files"]:
            src, dst = self.dir / rel, root / rel
            if rel == "manifest.parquet":
                manifest = (src, dst)
                continue
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        # The manifest goes last: until it moves, a re-run sees these sources as new, and the
        # journal makes sure it does move.
        if manifest and manifest[0].exists():
            os.replace(*manifest)
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self) -> None:
        """Drop an uncommitted run. A committed one stays, to be rolled forward by recover()."""
        if (self.dir / "COMMIT").exists():
            return
        shutil.rmtree(self.dir, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _empty_select(schema: dict[str, pl.DataType]) -> str:
    duck = {
        pl.String: "VARCHAR",
        pl.Int32: "INTEGER",
        pl.Int64: "BIGINT",
        pl.Float64: "DOUBLE",
        pl.Boolean: "BOOLEAN",
        pl.Date: "DATE",
    }
    cols = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            t = "TIMESTAMPTZ"
        elif isinstance(dtype, pl.List):
            t = "VARCHAR[]"
        else:
            t = duck.get(type(dtype), "VARCHAR")
        cols.append(f"NULL::{t} AS {name}")
    return "SELECT " + ", ".join(cols) + " WHERE false"


def table_pattern(table: str) -> str:
    """The table's files, relative to the lake folder."""
    return f"{table}/*/*.parquet" if table in PARTITIONED else f"{table}/*.parquet"


def view_sql(lake: Lake, table: str) -> str:
    """The SELECT of one view: the table's files under the lake folder the connection finds
    (`_LAKE_DIR_SQL`), or an empty table of its schema before anything was written."""
    if lake.has_table(table):
        hive = ", hive_partitioning = true" if table in PARTITIONED else ""
        return f"SELECT * FROM read_parquet({_LAKE_DIR_SQL} || '{table_pattern(table)}', union_by_name = true{hive})"
    schema = EMPTY_SCHEMAS.get(table)
    return _empty_select(schema) if schema else "SELECT NULL::VARCHAR AS empty WHERE false"


def _create_views(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    # The variable makes the views bind to this lake while they are created; it is not stored.
    con.execute(f"SET VARIABLE {LAKE_VARIABLE} = ?", [str(lake.root)])
    for table in TABLES:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(lake, table)}")
    if lake.manifest_path.exists():
        con.execute(
            f"CREATE OR REPLACE VIEW manifest AS SELECT * FROM read_parquet({_LAKE_DIR_SQL} || 'manifest.parquet')"
        )


def refresh_views(lake: Lake) -> None:
    """(Re)write lake.duckdb, replacing it whole: a DuckDB user never sees a half-written file, and a
    failure (a full disk) leaves the previous one. It is built in a private temporary folder, since
    DuckDB misplaces its write-ahead log for a path holding `?`, then copied beside the old file,
    synced and renamed over it."""
    db = lake.root / DB_FILE
    with tempfile.TemporaryDirectory(prefix="trafficlens-views-") as work:
        built = Path(work) / DB_FILE
        try:
            con = duckdb.connect(str(built), config={"storage_compatibility_version": DUCKDB_FILE_VERSION})
            try:
                _create_views(con, lake)
                con.execute("CHECKPOINT")  # everything into the file itself, or an error here
            finally:
                con.close()
        except (OSError, duckdb.Error) as e:
            full = disk_full(e, built)
            if full is None:
                raise
            raise full from e
        try:
            _install(built, db)
        except OSError as e:
            raise _write_error(e, db) from e


def _install(src: Path, dst: Path) -> None:
    """Copy `src` over `dst` atomically: to a temporary file beside it, synced, then renamed."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)


def _write_error(e: BaseException, path: Path) -> Exception:
    """A write that failed, as one line: a full disk, or the folder cannot be written."""
    full = disk_full(e, path)
    if full is not None:
        return full
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
    return LakeError(f"cannot write to the lake at {path}: {reason}")


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake's views (no lock on lake.duckdb)."""
    con = duckdb.connect()
    # DuckDB's own progress bar would write to the terminal over ours (and into logs and pipes).
    con.execute("SET enable_progress_bar = false")
    _create_views(con, lake)
    return con
