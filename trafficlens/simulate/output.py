"""Writing what a simulation generates: log lines in each format (rendered with polars string
expressions, a slice of rows at a time), the truth table beside the log, gzip without a timestamp.

A new log format goes in `FORMATS` and `Renderer._line`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from trafficlens.schema import SIMULATED_FORMATS, STR_LIST
from trafficlens.simulate.rows import BIT, METHODS, US
from trafficlens.simulate.scenarios import SCENARIOS
from trafficlens.simulate.site import REFERERS

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim

FORMATS = SIMULATED_FORMATS

# The truth file: one row per log line, the labels a perfect classifier would give it.
TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "ts": pl.Datetime("us", "UTC"),
    "client_ip": pl.String(),
    "user_agent": pl.String(),
    "actor_class": pl.String(),
    "automated": pl.Boolean(),
    "ai_driven": pl.Boolean(),
    "purpose": pl.String(),
    "operator": pl.String(),
    "agent": pl.String(),
    "identity": pl.String(),
    "malicious": pl.Boolean(),
    "threats": STR_LIST,
    "scenario": pl.String(),
    "family": pl.String(),  # the kind of client (families.FAMILIES), e.g. human:tab_opener
    "session": pl.String(),
    "method": pl.String(),
    "path": pl.String(),
    "status": pl.Int32(),
    "site_layout": pl.String(),  # the site's layout (schema.SITE_LAYOUTS), the same on every row
}

_HEX = pl.Series("hex", [f"{i:x}" for i in range(65536)])
_HEX4 = pl.Series("hex4", [f"{i:04x}" for i in range(65536)])
W3C_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
)


def _ip_strings(hi: pl.Series, lo: pl.Series, six: pl.Series) -> pl.Series:
    h, low = hi.to_numpy(), lo.to_numpy()
    v4 = pl.DataFrame({f"o{i}": ((low >> np.uint64(24 - 8 * i)) & np.uint64(255)).astype(np.int64) for i in range(4)})
    out = v4.select(pl.concat_str([pl.col(f"o{i}").cast(pl.String) for i in range(4)], separator=".")).to_series()
    if six.any():
        m = six.to_numpy()
        groups = [(h[m] >> np.uint64(48 - 16 * i)) & np.uint64(0xFFFF) for i in range(4)] + [
            (low[m] >> np.uint64(48 - 16 * i)) & np.uint64(0xFFFF) for i in range(4)
        ]
        g = pl.DataFrame({f"g{i}": _HEX.gather(pl.Series(x.astype(np.int64))) for i, x in enumerate(groups)})
        v6 = g.select(pl.concat_str([pl.col(f"g{i}") for i in range(8)], separator=":")).to_series()
        out = out.scatter(np.flatnonzero(m), v6)
    return out.rename("client_ip")


class Renderer:
    """Slices of generated rows -> log lines in one format, and the matching truth rows."""

    def __init__(self, sim: Sim, fmt: str, seed: int) -> None:
        self.sim, self.fmt, self.seed = sim, fmt, seed
        self.uas = pl.Series("ua", sim.uas, dtype=pl.String)
        self.refs = pl.Series("ref", REFERERS, dtype=pl.String)
        self._labels = pl.DataFrame()
        self.seconds = fmt != "alb"  # every format but ALB logs whole seconds

    def labels(self) -> pl.DataFrame:
        """The label columns of every profile (scenarios may add profiles on any day)."""
        p = self.sim.profiles
        if self._labels.height == len(p):
            return self._labels
        self._labels = pl.DataFrame(
            {
                "profile": pl.Series(range(len(p)), dtype=pl.Int16),
                "scenario": [x.scenario for x in p],
                "actor_class": [x.actor_class for x in p],
                "automated": [x.automated for x in p],
                "ai_driven": [x.ai_driven for x in p],
                "purpose": [x.purpose for x in p],
                "operator": pl.Series([x.operator for x in p], dtype=pl.String),
                "agent": pl.Series([x.agent for x in p], dtype=pl.String),
                "identity": [x.identity for x in p],
                "http2": [x.http2 for x in p],
                "family": [x.family for x in p],
            }
        )
        return self._labels

    def render(self, rows: pl.DataFrame, first_line: int) -> tuple[pl.Series, pl.DataFrame]:
        sim = self.sim
        n = rows.height
        ts_us = rows["ts"]
        if self.seconds:
            ts_us = ts_us - ts_us % US
        path = sim.site.paths.gather(rows["path"])
        ref = pl.select(
            pl.when(rows["ref_ext"] >= 0)
            .then(self.refs.gather(rows["ref_ext"].clip(0)))
            .when(rows["ref_path"] >= 0)
            .then(pl.lit(f"https://{sim.host}") + sim.site.paths.gather(rows["ref_path"].clip(0)))
            .otherwise(None)
        ).to_series()
        df = pl.DataFrame(
            {
                "line_no": pl.int_range(first_line, first_line + n, eager=True, dtype=pl.Int64),
                "ts": ts_us.cast(pl.Datetime("us", "UTC")),
                "client_ip": _ip_strings(rows["ip_hi"], rows["ip_lo"], rows["ip6"]),
                "user_agent": self.uas.gather(rows["ua"]),
                "method": pl.Series(METHODS).gather(rows["method"].cast(pl.Int64)),
                "path": path,
                "stem": sim.site.stem.gather(rows["path"]),
                "status": rows["status"].cast(pl.Int32),
                "bytes": rows["bytes"],
                "rt": rows["rt"],
                "referer": ref,
                "profile": rows["profile"],
                "threats_mask": rows["threats"],
                "sess": rows["sess"],
            }
        ).join(self.labels(), on="profile", how="left", maintain_order="left")
        lines = df.select(self._line().alias("line")).to_series()
        return lines, self._truth(df)

    def _truth(self, df: pl.DataFrame) -> pl.DataFrame:
        # Few distinct threat sets exist: name each once, then join.
        masks = df["threats_mask"].unique().sort().to_list()
        names = pl.DataFrame(
            {
                "threats_mask": pl.Series(masks, dtype=pl.Int32),
                "threats": pl.Series(
                    [[t for t, bit in BIT.items() if m & bit] for m in masks], dtype=pl.List(pl.String)
                ),
            }
        )
        df = df.join(names, on="threats_mask", how="left", maintain_order="left")
        mask = pl.col("threats_mask")
        scen = pl.Series(SCENARIOS)
        session = pl.concat_str(
            [
                pl.lit(scen).gather((pl.col("sess") // (1 << 48)).cast(pl.Int64)),
                pl.lit("-d"),
                (pl.col("sess") // (1 << 36) % (1 << 12)).cast(pl.String).str.zfill(2),
                pl.lit("-"),
                (pl.col("sess") % (1 << 36)).cast(pl.String).str.zfill(6),
            ]
        )
        return df.select(
            "line_no",
            "ts",
            "client_ip",
            "user_agent",
            "actor_class",
            "automated",
            "ai_driven",
            "purpose",
            "operator",
            "agent",
            "identity",
            malicious=(mask & ~BIT["robots_violation"]) != 0,
            threats=pl.col("threats"),
            scenario=pl.col("scenario"),
            family=pl.col("family"),
            session=session,
            method=pl.col("method"),
            path=pl.col("path"),
            status=pl.col("status"),
            site_layout=pl.lit(self.sim.site.layout),
        ).cast(TRUTH_SCHEMA)  # type: ignore[arg-type]

    def _line(self) -> pl.Expr:
        c = pl.col
        lit = pl.lit
        proto = pl.when(c("http2")).then(lit("HTTP/2.0")).otherwise(lit("HTTP/1.1"))
        status = c("status").cast(pl.String)
        host = self.sim.host
        if self.fmt in ("combined", "common", "vhost_combined"):
            size = pl.when(c("bytes") == 0).then(lit("-")).otherwise(c("bytes").cast(pl.String))
            parts = [
                c("client_ip"),
                lit(" - - ["),
                c("ts").dt.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                lit('] "'),
                c("method"),
                lit(" "),
                c("path"),
                lit(" "),
                proto,
                lit('" '),
                status,
                lit(" "),
                size,
            ]
            if self.fmt != "common":
                parts += [lit(' "'), c("referer").fill_null("-"), lit('" "'), c("user_agent"), lit('"')]
            if self.fmt == "vhost_combined":
                parts = [lit(f"{host}:443 ")] + parts
            return pl.concat_str(parts)
        secs = pl.concat_str(
            [(c("rt") // 1000).cast(pl.String), lit("."), (c("rt") % 1000).cast(pl.String).str.zfill(3)]
        )
        if self.fmt == "nginx_json":
            return pl.concat_str(
                [
                    lit('{"remote_addr":"'),
                    c("client_ip"),
                    lit('","time_iso8601":"'),
                    c("ts").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                    lit('","request":"'),
                    c("method"),
                    lit(" "),
                    c("path"),
                    lit(" "),
                    proto,
                    lit('","status":"'),
                    status,
                    lit('","body_bytes_sent":"'),
                    c("bytes").cast(pl.String),
                    lit('","http_referer":"'),
                    c("referer").fill_null(""),
                    lit('","http_user_agent":"'),
                    c("user_agent"),
                    lit('","request_time":"'),
                    secs,
                    lit(f'","http_x_forwarded_for":"","host":"{host}"}}'),
                ]
            )
        if self.fmt == "w3c":
            query = c("path").str.splitn("?", 2).struct.field("field_1").fill_null("-")
            win32 = pl.when(c("status") == 404).then(lit(" 0 2 ")).otherwise(lit(" 0 0 "))
            return pl.concat_str(
                [
                    c("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
                    lit(" 10.0.0.4 "),
                    c("method"),
                    lit(" "),
                    c("stem"),
                    lit(" "),
                    query,
                    lit(" 443 - "),
                    c("client_ip"),
                    lit(" "),
                    c("user_agent").str.replace_all(" ", "+"),
                    lit(" "),
                    c("referer").fill_null("-"),
                    lit(" "),
                    status,
                    win32,
                    c("rt").cast(pl.String),
                ]
            )
        if self.fmt == "alb":
            # Trace ids and ports derived from the line, so runs repeat exactly.
            h = (c("line_no").cast(pl.UInt64) * 0x9E3779B1 + self.seed) % (1 << 32)
            h2 = (c("line_no").cast(pl.UInt64) * 0x85EBCA77 + 0xC2B2AE3D) % (1 << 32)
            sess = c("sess").cast(pl.UInt64)
            h3 = ((sess % (1 << 31)) * 0x27D4EB2F + sess // (1 << 36)) % (1 << 32)
            hx = lambda e: pl.lit(_HEX4).gather((e % 65536).cast(pl.Int64))  # noqa: E731
            epoch = c("ts").dt.epoch("s")
            tls = (
                pl.when(c("http2"))
                .then(lit("TLS_AES_128_GCM_SHA256 TLSv1.3"))
                .otherwise(lit("ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"))
            )
            target = pl.when(c("sess") % 2 == 0).then(lit("10.0.1.15:8080")).otherwise(lit("10.0.1.16:8080"))
            created = (c("ts") - pl.duration(milliseconds=c("rt") + 1)).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            return pl.concat_str(
                [
                    pl.when(c("http2")).then(lit("h2")).otherwise(lit("https")),
                    lit(" "),
                    c("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
                    lit(" app/shop-prod/50dc6c495c0c9188 "),
                    c("client_ip"),
                    lit(":"),
                    (1024 + h3 % 64000).cast(pl.String),
                    lit(" "),
                    target,
                    lit(" 0.001 "),
                    secs,
                    lit(" 0.000 "),
                    status,
                    lit(" "),
                    status,
                    lit(" "),
                    (180 + c("path").str.len_bytes() + c("user_agent").str.len_bytes()).cast(pl.String),
                    lit(" "),
                    c("bytes").cast(pl.String),
                    lit(' "'),
                    c("method"),
                    lit(f" https://{host}:443"),
                    c("path"),
                    lit(" "),
                    proto,
                    lit('" "'),
                    c("user_agent"),
                    lit('" '),
                    tls,
                    lit(
                        " arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/73e2d6bc24d8a067 "
                        '"Root=1-'
                    ),
                    hx(epoch // 65536),
                    hx(epoch),
                    lit("-"),
                    hx(h // 65536),
                    hx(h),
                    hx(h2 // 65536),
                    hx(h2),
                    hx(h3 // 65536),
                    hx(h3),
                    lit(
                        f'" "{host}" "arn:aws:acm:us-east-1:123456789012:certificate/'
                        '0f8e2b4c-6d1a-4e3b-9c7f-2a5d8e1b3c4f" 0 '
                    ),
                    created,
                    lit(' "forward" "-" "-" "'),
                    target,
                    lit('" "'),
                    status,
                    lit('" "-" "-"'),
                ]
            )
        raise ValueError(f"unknown format {self.fmt!r}")


def w3c_directives(day: dt.date, terminator: str) -> bytes:
    """The directive block IIS writes when its log starts again (here: every day)."""
    return (
        f"#Software: Microsoft Internet Information Services 10.0{terminator}#Version: 1.0"
        f"{terminator}#Date: {day.isoformat()} 00:00:00{terminator}#Fields: {W3C_FIELDS}"
        f"{terminator}"
    ).encode()


def _open(path: Path, gz: bool) -> BinaryIO:
    raw = open(path, "wb")
    if gz:
        # No name or time in the header: the same seed gives the same bytes.
        gz_file = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        return gz_file  # type: ignore[return-value]
    return raw


class Output:
    """Writes log bytes and truth tables on a thread of its own, overlapping the next slice's rendering."""

    def __init__(self, log: Path, truth: Path, gz: bool) -> None:
        self.fh = _open(log, gz)
        self.truth = truth
        self.writer: pq.ParquetWriter | None = None
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=1)  # bounds the memory of rendered slices
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, data: bytes, table: pa.Table | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((data, table))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                data, table = item
                self.fh.write(data)
                if table is not None:
                    if self.writer is None:
                        self.writer = pq.ParquetWriter(self.truth, table.schema, compression="zstd")
                    self.writer.write_table(table)
            except BaseException as e:  # re-raised in the generating thread
                self.error = e

    def close(self) -> None:
        self.stop()
        if self.error is not None:
            raise self.error
        if self.writer is None:
            empty = pl.DataFrame(schema=TRUTH_SCHEMA).to_arrow(compat_level=pl.CompatLevel.oldest())
            self.writer = pq.ParquetWriter(self.truth, empty.schema, compression="zstd")
        self.writer.close()
        self.fh.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
