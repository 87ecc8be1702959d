"""Apache Spark as an engine (`--engine spark`): the session every Spark step runs in.

PySpark is an optional extra (`pip install 'trafficlens[spark]'`); without it, or without the Java
it needs, `--engine spark` is one line saying what to install. A session already active in the
process (a notebook, Databricks, `spark-submit`) is used as it is and left running; one started here
is stopped when the step ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from trafficlens.errors import OptionError

ENGINES = ("local", "spark")
INSTALL = "pip install 'trafficlens[spark]'"
DEFAULT_MASTER = "local[*]"

# What trafficlens needs of every session, whatever the cluster's own defaults: UTC partition days,
# Parquet timestamps as microseconds (what the lake holds), Arrow between the JVM and Python, no
# `_SUCCESS` marker files in the lake, and no console progress bar drawn over ours.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.ui.showConsoleProgress": "false",
}


def parse_conf(items: Sequence[str]) -> dict[str, str]:
    """`--conf key=value` pairs as a dict; a pair without `=` is a one-line error."""
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--conf {item}: expected key=value, e.g. spark.executor.memory=4g")
        conf[key.strip()] = value
    return conf


def check_engine(engine: str, master: str | None = None, conf: Sequence[str] = ()) -> None:
    """Refuse an unknown engine, Spark options without `--engine spark`, or Spark without PySpark
    or Java, each in one line, before any work."""
    if engine not in ENGINES:
        raise OptionError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    if engine != "spark":
        if master or conf:
            raise OptionError("--master and --conf are options of --engine spark")
        return
    parse_conf(conf)
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise OptionError(f"--engine spark needs PySpark: {INSTALL}") from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise OptionError(
            "--engine spark needs Java 17 or later (e.g. apt-get install -y openjdk-17-jre-headless), or JAVA_HOME set"
        )


def error_line(e: BaseException) -> str:
    """What a Spark error says, in one line: the Java exception's message where there is one."""
    java = getattr(e, "java_exception", None)
    text = str(java.toString()) if java is not None else str(e)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """PySpark's warning about pandas 3, given whenever an Arrow function is declared, silenced: the
    Arrow paths trafficlens uses do not go through pandas."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not yet fully support pandas", category=FutureWarning)
        yield


@contextlib.contextmanager
def spark_session(master: str | None = None, conf: Sequence[str] = ()) -> Iterator[Any]:
    """The active Spark session, or a new one on `master` (default: spark-submit's, else
    `local[*]`) with `conf` (`key=value` strings) over SESSION_CONF; a new one is stopped on
    leaving."""
    check_engine("spark", master, conf)
    # Spark's Python workers must run this interpreter, with trafficlens and its packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    with quiet():
        from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # spark-submit's, a notebook's, or `analyze`'s for both its steps
        for key, value in {**SESSION_CONF, **parse_conf(conf)}.items():
            if not key.startswith("spark.hadoop.") and key != "spark.ui.showConsoleProgress":
                active.conf.set(key, value)
        yield active
        return
    builder = SparkSession.builder.appName("trafficlens")
    # Under spark-submit the master is spark-submit's (--master there); else ours, or local[*].
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or DEFAULT_MASTER)
    for key, value in {**SESSION_CONF, **parse_conf(conf)}.items():
        builder = builder.config(key, value)
    try:
        with quiet():
            session = builder.getOrCreate()
    except Exception as e:  # Spark's own errors are long Java traces: keep what the JVM said, in a line
        raise OptionError(f"Spark did not start on {master or DEFAULT_MASTER}: {error_line(e)}") from e
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


__all__ = [
    "DEFAULT_MASTER",
    "ENGINES",
    "INSTALL",
    "SESSION_CONF",
    "check_engine",
    "error_line",
    "parse_conf",
    "quiet",
    "spark_session",
]
