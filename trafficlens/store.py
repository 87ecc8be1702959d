"""The lake: partitioned Parquet, a manifest, and DuckDB views over them (DESIGN.md, "The lake").

Writes are transactional. A run writes into `LAKE/.staging/<run_id>/`, then commits by writing a
journal (`COMMIT`) and moving its files into place; a run that dies before the journal leaves no
trace (its staging folder is removed by the next run), one that dies after it is rolled forward
by the next run. One run at a time holds the lake's lock.

A lake may also be a URI (`s3://bucket/lake`, Hadoop's `s3a://`, `gs://`, `hdfs://`, `file://`),
reached through pyarrow's filesystem layer. Object storage has no rename, so such a lake is
committed by a list: every file a run writes goes under a name of its own (the run's id in it),
then one small object, `trafficlens.json`, is replaced whole to name the files each table holds.
Readers go through that list (`scan`, `connect`), so a run that dies before replacing it leaves
the lake as it was; files no list names are removed by the next run. Its runs stage their files in
a local folder (`TRAFFICLENS_STAGING`, else the system's temporary folder; on a cluster, one every
executor sees), and a lock object (`_lock`) keeps a second run out.

Paths are never part of SQL text. `lake.duckdb` holds views that name no folder: each finds the
lake from the variable `trafficlens_lake` when a connection sets it (trafficlens does), or else
from where DuckDB opened the database file, so `duckdb LAKE/lake.duckdb` works from any folder,
and after the lake was moved or copied (see `_LAKE_DIR_SQL`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# A lake on a URI: the object naming its committed files (its presence makes the place a lake), and
# the lock object a run holds.
LIST_FILE = "trafficlens.json"
LOCK_FILE = "_lock"
# The lake's key for pseudonyms (`ingest.privacy.lake_secret`), outside its tables.
SECRET_FILE = ".secret"
# Where runs on a lake at a URI stage their files, when set (else the system's temporary folder).
STAGING_VARIABLE = "TRAFFICLENS_STAGING"


def glob_escape(path: str) -> str:
    """`path` matching only itself in a DuckDB glob: `[`, `*` and `?` as one-character classes."""
    return re.sub(r"([\[*?])", r"[\1]", path)


def sql_literal(value: str) -> str:
    """A string as a SQL literal, for the few SQL texts built from catalogue values."""
    return "'" + value.replace("'", "''") + "'"


class Lake:
    """A lake folder. Creating one makes the folder; reading one that does not exist fails clearly."""

    def __init__(self, root: str | Path, create: bool = False) -> None:
        self.remote: Remote | None = None
        if isinstance(root, str) and URI.match(root):
            self.remote = Remote(root, create)
            # Runs in progress stage their files here (the lake's own folder for a local lake).
            self.root = staging_root(self.remote.uri)
            self.name = self.remote.uri
            return
        self.root = Path(root).expanduser().resolve()
        self.name = str(self.root)
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

    @property
    def location(self) -> str | Path:
        """The lake as a user named it: its folder, or its URI."""
        return self.root if self.remote is None else self.name

    def has_manifest(self) -> bool:
        if self.remote is not None:
            return "manifest.parquet" in self.remote.listed()
        return self.manifest_path.exists()

    def files(self, table: str) -> list[str]:
        """The table's Parquet files (a lake at a URI: their URIs). Listed here rather than globbed
        by a reader: polars and DuckDB would read `[`, `*` and `?` in the lake's own folder name as
        patterns."""
        if self.remote is not None:
            return [self.remote.uri_of(f) for f in self.remote.table_files(table)]
        return sorted(str(p) for p in self.root.glob(table_pattern(table))) if (self.root / table).is_dir() else []

    def table_rels(self, table: str) -> list[str]:
        """The table's files by their names in the lake's layout (`events/date=…/part-….parquet`):
        the names a run writes to replace them (`Transaction.path`)."""
        if self.remote is not None:
            return sorted(rel for rel in self.remote.listed() if _is_table_file(rel, table))
        return [str(Path(f).relative_to(self.root)) for f in self.files(table)]

    def read_parquet(self, rel: str) -> pl.DataFrame:
        """One file of the lake, by its name in the layout (`table_rels`)."""
        if self.remote is None:
            return pl.read_parquet(self.root / rel, hive_partitioning=False, glob=False)
        table = self.remote.read_table(rel)
        if table is None:
            raise LakeError(f"{self.name}: no {rel} in the lake")
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def read_text(self, rel: str) -> str | None:
        """A small file of the lake (its privacy choice), or None when there is none."""
        if self.remote is not None:
            return self.remote.read_text(rel)
        path = self.root / rel
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def stamp(self) -> str:
        """A string that changes whenever a run commits to a lake at a URI (its list's content)."""
        assert self.remote is not None
        listed = self.remote.refresh()
        return hashlib.blake2b(json.dumps(listed, sort_keys=True).encode(), digest_size=8).hexdigest()

    def require_labels(self) -> None:
        """Fail clearly when classify has not labelled this lake yet."""
        if not self.has_table("requests"):
            raise LakeError(
                f"{self.root}: no classified requests yet: run `trafficlens analyze LOG... --lake {self.root}` "
                f"(or `trafficlens classify --lake {self.root}` after an ingest)"
            )

    def has_table(self, table: str) -> bool:
        if self.remote is not None:
            return bool(self.remote.table_files(table))
        return (self.root / table).is_dir() and next(self.root.glob(table_pattern(table)), None) is not None

    def scan(self, table: str) -> pl.LazyFrame:
        """A LazyFrame over one table (empty, with its schema, when nothing was written yet)."""
        if not self.has_table(table):
            schema = EMPTY_SCHEMAS.get(table)
            if schema is None:
                raise LakeError(f"the lake has no {table} yet; run `trafficlens classify --lake {self.name}`")
            return pl.LazyFrame(schema=schema)
        if self.remote is not None:
            return pl.scan_pyarrow_dataset(self.remote.dataset(table, partitioned=False))
        return pl.scan_parquet(
            self.files(table), glob=False, hive_partitioning=False, missing_columns="insert", extra_columns="ignore"
        )

    def read_manifest(self) -> pl.DataFrame:
        if self.remote is not None:
            table = self.remote.read_table("manifest.parquet")
            if table is None:
                return pl.DataFrame(schema=MANIFEST_SCHEMA)
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            return frame
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
                    print(f"waiting for another trafficlens run on {self.name} ...", file=sys.stderr)
                fcntl.flock(fd, fcntl.LOCK_EX)
            with self.remote.locked() if self.remote is not None else contextlib.nullcontext():
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
        if self.remote is not None:
            self.remote.collect_garbage()

    def begin(self) -> Transaction:
        return Transaction(self, time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8])

    def refresh_views(self) -> None:
        """(Re)write lake.duckdb so the plain DuckDB CLI sees every table as a view (a local lake:
        `trafficlens query` builds the views of a lake at a URI when it opens it)."""
        if self.remote is None:
            refresh_views(self)


class Transaction:
    """Files written aside under the staging folder, made visible together by commit()."""

    def __init__(self, lake: Lake, run_id: str, existing: bool = False) -> None:
        self.lake: Lake | None = lake
        self.run_id = run_id
        self.dir = lake.root / ".staging" / run_id
        if not existing:
            self.dir.mkdir(parents=True)
        self._replace: list[str] = []  # tables replaced whole (sessions, clients)
        # Files a lake at a URI holds already, under their own names, written there by Spark's
        # tasks (name in the layout -> object): the commit lists them with the staged ones.
        self.uploaded: dict[str, str] = {}

    @classmethod
    def at(cls, folder: Path) -> Transaction:
        """A run's staging folder as a task writes into it: it stages files and commits nothing."""
        tx = cls.__new__(cls)
        tx.lake, tx.run_id, tx.dir, tx._replace, tx.uploaded = None, folder.name, folder, [], {}
        return tx

    def path(self, rel: str) -> Path:
        p = self.dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def replace_table(self, table: str) -> None:
        """Mark a whole table as replaced by what this run writes under it."""
        self._replace.append(table)

    def commit(self) -> None:
        files = sorted(str(p.relative_to(self.dir)) for p in self.dir.rglob("*") if p.is_file() and p.name != "COMMIT")
        journal = {"files": files, "replace": self._replace, "uploaded": self.uploaded}
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
        assert self.lake is not None, "a task's staging folder is committed by its run"
        journal = json.loads((self.dir / "COMMIT").read_text())
        if self.lake.remote is not None:
            remote = self.lake.remote
            remote.publish(
                self.dir, self.run_id, journal["files"], journal.get("replace", []), journal.get("uploaded", {})
            )
            shutil.rmtree(self.dir, ignore_errors=True)
            return
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
    if lake.remote is not None:
        _create_remote_views(con, lake, lake.remote)
        return
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


def staging_root(uri: str) -> Path:
    """The local folder where runs on the lake at `uri` stage their files: under
    `TRAFFICLENS_STAGING` when set (on a cluster, a folder every executor sees), else under the
    system's temporary folder; one per lake, so a run rolls forward what one before it committed."""
    base = os.environ.get(STAGING_VARIABLE) or os.path.join(tempfile.gettempdir(), "trafficlens-staging")
    root = Path(base).expanduser().resolve() / hashlib.blake2b(uri.encode(), digest_size=8).hexdigest()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LakeError(f"cannot create the staging folder {root} for {uri}: {e.strerror}") from None
    return root


def _filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's filesystem for a lake's URI and the lake's path on it. Hadoop's `s3a://` and
    `s3n://` are read as `s3://`; options may follow the URI as pyarrow reads them
    (`?endpoint_override=…&region=…`)."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme, rest = uri.split("://", 1)
    try:
        fs, path = pafs.FileSystem.from_uri("s3://" + rest if scheme.lower() in ("s3a", "s3n") else uri)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise LakeError(f"cannot reach the lake at {uri.split('?', 1)[0]}: {_first_line(e)}") from None
    return fs, path.rstrip("/")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _stored_name(rel: str, run_id: str) -> str:
    """Where a run's file goes in a lake at a URI: its own name, the run's id in it, so no file of
    an earlier run is ever written over."""
    folder, _, name = rel.rpartition("/")
    if run_id not in name:
        name = f"{run_id}-{name}"
    return f"{folder}/{name}" if folder else name


def _has_folders(fs: Any) -> bool:
    """Whether `fs` keeps folders that must be made before a file goes in them (object stores keep
    keys, whose prefixes need no making)."""
    return fs.type_name not in ("s3", "gcs")


def _make_parent(fs: Any, path: str) -> None:
    if _has_folders(fs) and "/" in path:
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)


def _is_table_file(rel: str, table: str) -> bool:
    parts = rel.split("/")
    depth = 3 if table in PARTITIONED else 2
    return len(parts) == depth and parts[0] == table and parts[-1].endswith(".parquet")


class Remote:
    """A lake at a URI, through pyarrow's filesystem layer: the list of its committed files, their
    reading, a run's publishing, its lock object and the removal of files no list names. What the
    storage refuses (no credentials, no network, no bucket) is a LakeError of one line."""

    def __init__(self, uri: str, create: bool) -> None:
        # The URI without its options: what Spark and messages use.
        self.uri = uri.split("?", 1)[0].rstrip("/")
        self.fs, self.base = _filesystem(uri)
        self._list: dict[str, str] | None = None
        try:
            if self._read_list() is None:
                if not create:
                    raise LakeError(
                        f"no trafficlens lake at {self.uri}; create one with `trafficlens ingest LOG --lake {self.uri}`"
                    )
                if self._stored_files():
                    raise LakeError(
                        f"{self.uri} is not empty and is not a trafficlens lake; choose a new or empty place"
                    )
                self._write_list({})
        except OSError as e:
            raise LakeError(f"cannot reach the lake at {self.uri}: {_first_line(e)}") from None

    @contextlib.contextmanager
    def _storage(self, doing: str, then: str = "") -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise LakeError(f"cannot {doing} the lake at {self.uri}: {_first_line(e)}{then}") from None

    # The list -----------------------------------------------------------------------------------
    def path_of(self, stored: str) -> str:
        return f"{self.base}/{stored}"

    def uri_of(self, stored: str) -> str:
        return f"{self.uri}/{stored}"

    def _read_list(self) -> dict[str, str] | None:
        with self._storage("read"):
            doc = self._read_json(LIST_FILE)
        if doc is not None and not (isinstance(doc, dict) and isinstance(doc.get("files"), dict)):
            raise LakeError(f"{self.uri}/{LIST_FILE} is damaged; restore it from a backup of the lake")
        self._list = None if doc is None else dict(doc["files"])
        return self._list

    def refresh(self) -> dict[str, str]:
        """The list as it is now (another process may have committed since it was read)."""
        return self._read_list() or {}

    def listed(self) -> dict[str, str]:
        """Each committed file's name in the lake's layout -> the object holding it."""
        return self._list if self._list is not None else (self._read_list() or {})

    def table_files(self, table: str) -> list[str]:
        return [stored for rel, stored in sorted(self.listed().items()) if _is_table_file(rel, table)]

    def _write_list(self, files: dict[str, str]) -> None:
        data = json.dumps({"format": 1, "files": dict(sorted(files.items()))}, indent=0).encode()
        target = self.path_of(LIST_FILE)
        if not _has_folders(self.fs):
            # One PUT replaces an object whole: a reader sees the old list or the new one.
            self._write_bytes(target, data)
        else:
            tmp = self.path_of(f".{LIST_FILE}.{uuid.uuid4().hex[:8]}.tmp")
            self._write_bytes(tmp, data)
            self.fs.move(tmp, target)  # a rename on a filesystem
        self._list = files

    # Files --------------------------------------------------------------------------------------
    def _write_bytes(self, path: str, data: bytes) -> None:
        _make_parent(self.fs, path)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def _read_bytes(self, path: str) -> bytes | None:
        import pyarrow.fs as pafs

        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return bytes(f.read())

    def _read_json(self, name: str) -> Any:
        data = self._read_bytes(self.path_of(name))
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise LakeError(f"{self.uri}/{name} is damaged; restore it from a backup of the lake") from None

    def read_text(self, rel: str) -> str | None:
        stored = self.listed().get(rel)
        with self._storage("read"):
            data = None if stored is None else self._read_bytes(self.path_of(stored))
        return None if data is None else data.decode("utf-8")

    def read_table(self, rel: str) -> Any:
        import pyarrow.parquet as pq

        stored = self.listed().get(rel)
        with self._storage("read"):
            return None if stored is None else pq.read_table(self.path_of(stored), filesystem=self.fs)

    def create_once(self, name: str, data: bytes) -> bytes:
        """A file of the lake outside its tables (its key), made when missing: what it holds."""
        path = self.path_of(name)
        with self._storage("write to"):
            found = self._read_bytes(path)
            if found is None:
                self._write_bytes(path, data)
                found = data
        return found

    def _stored_files(self) -> list[str]:
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return []
        prefix = self.base + "/"
        return [i.path[len(prefix) :] for i in infos if i.type == pafs.FileType.File and i.path.startswith(prefix)]

    def dataset(self, table: str, partitioned: bool) -> Any:
        """A pyarrow dataset over the table's committed files, their schemas unified (a column a
        file lacks reads as null); with `partitioned`, the partition column from the folders."""
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        paths = [self.path_of(f) for f in self.table_files(table)]
        # Each file's footer: side by side, since on object storage each is a round trip.
        with self._storage("read"), ThreadPoolExecutor(max_workers=16) as pool:
            schemas = list(pool.map(lambda p: pq.read_schema(p, filesystem=self.fs), paths))
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        if partitioned and table in PARTITIONED:
            keys = pa.schema([pa.field("date", pa.date32())])
            schema = pa.unify_schemas(
                [schema.remove(schema.get_field_index("date")) if "date" in schema.names else schema, keys]
            )
            part = ds.partitioning(keys, flavor="hive")
            return ds.dataset(
                paths,
                schema=schema,
                filesystem=self.fs,
                format="parquet",
                partitioning=part,
                partition_base_dir=self.path_of(table),
            )
        return ds.dataset(paths, schema=schema, filesystem=self.fs, format="parquet")

    # Commit ------------------------------------------------------------------------------------
    def publish(
        self, staged: Path, run_id: str, files: list[str], replace: list[str], uploaded: dict[str, str] | None = None
    ) -> None:
        """A run's staged files uploaded under names of their own, then the list replaced to name
        them (and no longer the files of the tables the run replaced), then the files it dropped
        removed. Safe to repeat after an interruption: the staged files stay until it is done."""
        # Its journal is written: the next run on this machine finishes the commit.
        with self._storage(f"commit run {run_id} to", "; the next run on this machine finishes it"):
            self._publish(staged, run_id, files, replace, uploaded or {})

    def _publish(
        self, staged: Path, run_id: str, files: list[str], replace: list[str], uploaded: dict[str, str]
    ) -> None:
        old = self._read_list() or {}
        new = {rel: s for rel, s in old.items() if not any(rel.startswith(t + "/") for t in replace)}
        root = self.area()
        for rel in files:
            stored = _stored_name(rel, run_id)
            if (staged / rel).exists():
                root.put(staged / rel, stored)
            new[rel] = stored
        new.update(uploaded)
        self._write_list(new)
        self._remove(set(old.values()) - set(new.values()))

    def collect_garbage(self) -> None:
        """Remove the files no list names: those of runs that died before committing, and those a
        run dropped but did not remove before it died."""
        keep = set(self.listed().values()) | {LIST_FILE, LOCK_FILE, SECRET_FILE}
        with self._storage("clean"):
            self._remove({f for f in self._stored_files() if f not in keep})

    def _remove(self, stored: set[str]) -> None:
        for f in sorted(stored):
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self.path_of(f))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock object. Object storage has no lock: a run writes one, and a second run that
        finds it refuses, unless it was left by a process of this machine that is gone."""
        with self._storage("lock"):
            held = self._read_json(LOCK_FILE)
        if held is not None and not _gone(held):
            raise LakeError(
                f"{self.uri} is held by a trafficlens run on {held.get('host')} (process {held.get('pid')}) since "
                f"{held.get('since')}; if that run is no longer going, delete {self.uri}/{LOCK_FILE}"
            )
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with self._storage("lock"):
            self._write_bytes(self.path_of(LOCK_FILE), json.dumps(me).encode())
        try:
            self._read_list()
            yield
        finally:
            with contextlib.suppress(OSError):
                self.fs.delete_file(self.path_of(LOCK_FILE))

    def area(self, rel: str = "") -> Area:
        """The lake's storage (or a folder of it) as a place a run's driver and tasks share."""
        return Area(self.fs, self.path_of(rel) if rel else self.base, self.uri_of(rel) if rel else self.uri)


@dataclass(frozen=True)
class Area:
    """A folder on a lake's storage that a run's driver and its Spark tasks reach alike (pyarrow's
    filesystem for Python, `uri` for Spark): a run's work area, or the lake's own folder."""

    fs: Any
    base: str
    uri: str

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def uri_of(self, rel: str) -> str:
        return f"{self.uri}/{rel}"

    def put(self, local: Path, rel: str) -> None:
        """A local file or folder copied to `rel`."""
        import pyarrow.fs as pafs

        _make_parent(self.fs, self.path(f"{rel}/-") if local.is_dir() else self.path(rel))
        pafs.copy_files(
            str(local), self.path(rel), source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs
        )

    def get(self, rel: str, local: Path) -> bool:
        """The file or folder `rel` copied to `local`; False when there is none."""
        import pyarrow.fs as pafs

        kind = self.fs.get_file_info(self.path(rel)).type
        if kind == pafs.FileType.NotFound:
            return False
        (local if kind == pafs.FileType.Directory else local.parent).mkdir(parents=True, exist_ok=True)
        pafs.copy_files(
            self.path(rel), str(local), source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem()
        )
        return True

    def write_table(self, table: Any, rel: str) -> None:
        """An Arrow table written as the Parquet file `rel`."""
        import pyarrow.parquet as pq

        _make_parent(self.fs, self.path(rel))
        pq.write_table(table, self.path(rel), filesystem=self.fs)

    def remove(self) -> None:
        """The folder and what it holds removed (and its parent, a filesystem's `_work`, once empty)."""
        import pyarrow.fs as pafs

        with contextlib.suppress(OSError):
            self.fs.delete_dir(self.base)
            parent = self.base.rsplit("/", 1)[0]
            if _has_folders(self.fs) and not self.fs.get_file_info(pafs.FileSelector(parent)):
                self.fs.delete_dir(parent)


def upload_run_files(lake: Area, folder: Path, run_id: str) -> dict[str, str]:
    """Every file under a task's local `folder` uploaded into the lake at `lake` under its own name
    (`_stored_name`); name in the layout -> object, for the run's commit to list."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        out[rel] = _stored_name(rel, run_id)
        lake.put(f, out[rel])
    return out


def _gone(held: dict[str, Any]) -> bool:
    """Whether a lock object was left by a process of this machine that no longer runs."""
    if held.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(held.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return int(held.get("pid", 0)) == os.getpid()


def _create_remote_views(con: duckdb.DuckDBPyConnection, lake: Lake, remote: Remote) -> None:
    """The views of a lake at a URI: each over a pyarrow dataset of the table's listed files,
    registered on the connection (DuckDB scans it through pyarrow's filesystem)."""
    for table in TABLES:
        if lake.has_table(table):
            con.register(f"_lake_{table}", remote.dataset(table, partitioned=True))
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _lake_{table}")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(lake, table)}")
    manifest = remote.read_table("manifest.parquet")
    if manifest is not None:
        con.register("_lake_manifest", manifest)
        con.execute("CREATE OR REPLACE VIEW manifest AS SELECT * FROM _lake_manifest")
