"""SQL over the lake's views (`trafficlens query`), as a frame, a file, or an interactive prompt."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import duckdb
import polars as pl

from trafficlens.errors import LakeError, OptionError, disk_full
from trafficlens.schema import QUERY_FORMATS
from trafficlens.store import TABLES, Lake, connect

OUTPUT_FORMATS = QUERY_FORMATS


def open_lake(lake: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's views (Lake fails clearly when there is no lake)."""
    con = connect(Lake(lake))
    con.execute("SET TimeZone = 'UTC'")
    return con


def run_sql(lake: str | Path, sql: str) -> pl.DataFrame:
    """The result of one SQL statement (the last, if several) over the lake's views."""
    con = open_lake(lake)
    try:
        return _run(con, sql)
    finally:
        con.close()


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    try:
        rel = con.sql(sql)
        return rel.pl() if rel is not None else pl.DataFrame()
    except duckdb.Error as e:
        # DuckDB's messages name the problem and its position; keep them to their first lines.
        text = " ".join(str(e).strip().splitlines()[:3])
        raise LakeError(f"query failed: {text}") from None


def write_result(df: pl.DataFrame, fmt: str, out: str | None, stream: TextIO | None = None) -> None:
    """Write a result as a table, CSV, JSON lines or Parquet (Parquet needs `out`)."""
    if fmt not in OUTPUT_FORMATS:
        raise OptionError(f"--format {fmt}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "parquet":
        if not out:
            raise OptionError("--format parquet writes a file: give --out FILE.parquet")
        _write(out, lambda: df.write_parquet(out))
        return
    if fmt == "csv":
        text = _flat(df).write_csv()
    elif fmt == "json":
        text = df.write_ndjson()
    else:
        text = format_table(df)
    if out:
        _write(out, lambda: Path(out).write_text(text, encoding="utf-8"))
    else:
        (stream or sys.stdout).write(text if text.endswith("\n") or not text else text + "\n")


def _write(out: str, write: Callable[[], object]) -> None:
    """Run `write`; a file that cannot be written is one line naming it."""
    try:
        write()
    except OSError as e:
        raise disk_full(e, out) or OptionError(f"--out {out}: cannot write it ({e.strerror or e})") from None
    except pl.exceptions.PolarsError as e:  # polars reports some file errors as its own
        raise disk_full(e, out) or OptionError(f"--out {out}: cannot write it ({str(e).splitlines()[0]})") from None


def _flat(df: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: join them with '|'."""
    lists = [c for c, t in df.schema.items() if isinstance(t, (pl.List, pl.Array))]
    return df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join("|") for c in lists) if lists else df


def format_table(df: pl.DataFrame, max_rows: int = 50) -> str:
    """A plain table for a terminal (polars' own, without the type row)."""
    with pl.Config(
        tbl_rows=max_rows,
        tbl_cols=-1,
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        fmt_str_lengths=60,
        tbl_width_chars=160,
        tbl_formatting="ASCII_MARKDOWN",
    ):
        text = str(df)
    if df.height > max_rows:
        text += f"\n({df.height:,} rows; --format csv or json for all of them)"
    return text


def repl(lake: str | Path, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """An interactive SQL prompt on the lake: statements end with ';', `.tables` lists the views,
    `.quit` (or end of input) leaves."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    con = open_lake(lake)
    interactive = stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    say = stdout.write
    say(f"trafficlens SQL on {lake}: views {', '.join(TABLES)}, manifest. End statements with ';', .quit leaves.\n")
    buf: list[str] = []
    try:
        while True:
            prompt = "trafficlens> " if not buf else "        ...> "
            if interactive:
                try:
                    line = input(prompt)
                except EOFError:
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\n")
            cmd = line.strip()
            if not buf and cmd in (".quit", ".exit", "\\q"):
                break
            if not buf and cmd == ".tables":
                say("  ".join(TABLES) + "  manifest\n")
                continue
            if not buf and cmd.startswith(".schema"):
                table = cmd.split(maxsplit=1)[1] if " " in cmd else "requests"
                cmd_sql = f"DESCRIBE {table}"
                buf = [cmd_sql + ";"]
            else:
                buf.append(line)
            text = "\n".join(buf).strip()
            if not text.endswith(";"):
                if not text:
                    buf = []
                continue
            buf = []
            try:
                say(format_table(_run(con, text)) + "\n")
            except LakeError as e:
                say(f"error: {e}\n")
    except KeyboardInterrupt:
        say("\n")
    finally:
        con.close()


__all__ = ["OUTPUT_FORMATS", "format_table", "open_lake", "repl", "run_sql", "write_result"]
