"""`trafficlens redact`: pseudonymise what a lake holds about traffic before a day, as ingest's
privacy options would have (DESIGN.md, "Privacy"): a retention policy for old partitions.

Before DAY, rewritten in one transaction (an interrupted run leaves the lake as it was):
- `events` and `requests` partitions: addresses pseudonymised (with the range files they are in,
  so verification still works after a re-classify), query values dropped;
- `sessions` that ended and `clients` last seen before DAY: the same, and a client's id (a hash of
  its address) becomes the id classify gives the pseudonymised client, in `requests` too;
- `rejects` logged before DAY (dated by the nearest event of their source; a source without
  events by when it was ingested): addresses and query values in the raw lines.
Partitions from DAY on are not touched. A client also seen from DAY on keeps its id (its address
is in those partitions anyway); only its rows before DAY lose the address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from trafficlens.classify.verify import ingest_lookup
from trafficlens.errors import OptionError
from trafficlens.ingest.privacy import Privacy, Pseudonymiser, lake_secret, redact_pairs, resolve
from trafficlens.store import Lake, Transaction


@dataclass
class RedactSummary:
    """What one redact run rewrote."""

    lake: str | Path
    before: date
    privacy: Privacy
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        counts = ", ".join(f"{n:,} {t}" for t, n in self.rows.items() if n) or "nothing"
        return f"redacted {self.lake} before {self.before}: {counts} in {self.files} file(s); {self.privacy.describe()}"


def _choice(root: Lake, ip_privacy: str | None, redact_query: bool | None, keep_query_values: str | None) -> Privacy:
    """The options given, else the lake's remembered choice; refuses a redact that would do nothing."""
    chosen = resolve(Privacy.load(root) or Privacy(), ip_privacy, redact_query, keep_query_values)
    if not chosen.active:
        raise OptionError("say what to redact: --ip-privacy truncate|hash, --redact-query, or both")
    return chosen


def _day(text: str | date) -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise OptionError(f"--before {text!r} is not a day; give it as YYYY-MM-DD") from None


def _client_id(site: str | None, ip: str | None, user_agent: str | None) -> str | None:
    # classify's client id (pipeline._client_sql): md5 of site, address and user agent.
    if site is None:
        return None
    text = f"{site}\x1f{ip if ip is not None else '-'}\x1f{user_agent if user_agent is not None else '-'}"
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:16]


class _Redactor:
    def __init__(self, lake: Lake, tx: Transaction, privacy: Privacy, ranges_dir: str | Path | None) -> None:
        self.lake, self.tx, self.privacy = lake, tx, privacy
        ranges = ingest_lookup(ranges_dir) if privacy.ip else None
        self.p = Pseudonymiser(privacy, lake_secret(lake), ranges)
        # client_id -> the id classify gives the client once pseudonymised, for clients gone before the day
        self.ids: pl.DataFrame | None = None

    def write(self, frame: pl.DataFrame, rel: str, summary: RedactSummary, table: str, rows: int) -> None:
        """`frame` in place of the lake's file `rel` once the run commits; `rows` of it were redacted."""
        frame.write_parquet(self.tx.path(rel), compression="zstd")
        summary.files += 1
        summary.rows[table] = summary.rows.get(table, 0) + rows

    def address(self, frame: pl.DataFrame, rows: pl.Expr) -> pl.DataFrame:
        """`client_ip` pseudonymised in `rows`."""
        if not self.privacy.ip:
            return frame
        old = frame.filter(rows).get_column("client_ip").unique().drop_nulls().to_list()
        hidden = pl.col("client_ip").replace_strict(old, self.p.pseudonyms(old), default=pl.col("client_ip"))
        return frame.with_columns(client_ip=pl.when(rows).then(hidden).otherwise(pl.col("client_ip")))

    def renamed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """client_id and session_id of the clients gone before the day, as classify now names them."""
        if self.ids is None or not self.ids.height or "client_id" not in frame.columns:
            return frame
        frame = frame.join(self.ids, on="client_id", how="left", maintain_order="left")
        out = [pl.coalesce("_pseudo_id", "client_id").alias("client_id")]
        if "session_id" in frame.columns:
            tail = pl.col("session_id").str.slice(pl.col("client_id").str.len_chars())
            out.append(
                pl.when(pl.col("_pseudo_id").is_null())
                .then(pl.col("session_id"))
                .otherwise(pl.col("_pseudo_id") + tail)
            )
        return frame.with_columns(out).drop("_pseudo_id")

    def clients(self, cutoff: datetime, summary: RedactSummary) -> None:
        if not self.privacy.ip or not self.lake.has_table("clients"):
            return  # a client row holds no query
        for rel in self.lake.table_rels("clients"):
            frame = self.lake.read_parquet(rel)
            gone = pl.col("last_seen") < cutoff
            frame = self.address(frame, gone)
            olds = frame.filter(gone).select("client_id", "site", "client_ip", "user_agent")
            ids = pl.DataFrame(
                {
                    "client_id": olds["client_id"],
                    "_pseudo_id": [_client_id(*row) for row in olds.select("site", "client_ip", "user_agent").rows()],
                },
                schema={"client_id": pl.String, "_pseudo_id": pl.String},
            )
            self.ids = ids if self.ids is None else pl.concat([self.ids, ids])
            self.write(self.renamed(frame), rel, summary, "clients", olds.height)

    def partitions(self, table: str, before: date, summary: RedactSummary) -> None:
        for rel in self.lake.table_rels(table):
            try:
                day = date.fromisoformat(rel.split("/")[1].removeprefix("date="))
            except ValueError:
                continue
            if day >= before:
                continue
            frame = self.p.events(self.lake.read_parquet(rel))
            self.write(self.renamed(frame), rel, summary, table, frame.height)

    def sessions(self, cutoff: datetime, summary: RedactSummary) -> None:
        if not self.lake.has_table("sessions"):
            return
        for rel in self.lake.table_rels("sessions"):
            frame = self.lake.read_parquet(rel)
            ended = pl.col("end") < cutoff
            frame = self.renamed(self.address(frame, ended))
            if self.privacy.redact_query:
                keep = self.privacy.keep_query_values
                frame = frame.with_columns(
                    pl.when(ended).then(redact_pairs(pl.col(c), keep)).otherwise(pl.col(c)).alias(c)
                    for c in ("landing_path", "landing_referer")
                    if c in frame.columns
                )
            self.write(frame, rel, summary, "sessions", frame.filter(ended).height)

    def rejects(self, cutoff: datetime, summary: RedactSummary) -> None:
        if not self.lake.has_table("rejects"):
            return
        for rel in self.lake.table_rels("rejects"):
            frame = self._dated(self.lake.read_parquet(rel))
            old = pl.coalesce("_ts", "ingested_at") < cutoff
            if not frame.select(old.any()).item():
                continue
            done = self.p.rejects(frame.filter(old))
            merged = pl.concat([done, frame.filter(~old)]).sort("source", "line_no").drop("_ts")
            self.write(merged, rel, summary, "rejects", done.height)

    def _dated(self, rejects: pl.DataFrame) -> pl.DataFrame:
        """Rejected lines with `_ts`, the time of the event logged last before them in their source
        (else the first after): a line that could not be read has no time of its own."""
        sources = rejects.get_column("source").unique()
        events = (
            self.lake.scan("events")
            .select("source", "line_no", "ts")
            .filter(pl.col("source").is_in(sources.implode()))
            .collect()
            .sort("line_no")
        )
        rows = rejects.with_row_index("_row").sort("line_no")
        near = {"on": "line_no", "by": "source", "check_sortedness": False}  # both sorted by line_no above
        back = rows.join_asof(events, strategy="backward", **near).get_column("ts")  # type: ignore[arg-type]
        ahead = rows.join_asof(events, strategy="forward", **near).get_column("ts")  # type: ignore[arg-type]
        return rows.with_columns(_ts=back.fill_null(ahead)).sort("_row").drop("_row")


def redact(
    lake: str | Path,
    before: str | date,
    *,
    ip_privacy: str | None = None,
    redact_query: bool | None = None,
    keep_query_values: str | None = None,
    ranges_dir: str | Path | None = None,
) -> RedactSummary:
    """Pseudonymise the lake's traffic before the day `before` (see the module's docstring).

    The options are ingest's (`--ip-privacy`, `--redact-query`, `--keep-query-values`); left out,
    the lake's remembered choice applies. `ranges_dir` (default: the `ranges update` cache) gives
    the range files recorded for each address. Running it again changes nothing.
    """
    day = _day(before)
    store = Lake(lake)
    cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with store.locked():
        privacy = _choice(store, ip_privacy, redact_query, keep_query_values)
        summary = RedactSummary(store.location, day, privacy)
        tx = store.begin()
        try:
            r = _Redactor(store, tx, privacy, ranges_dir)
            r.clients(cutoff, summary)  # first: the ids the other tables are renamed by
            r.partitions("events", day, summary)
            r.partitions("requests", day, summary)
            r.sessions(cutoff, summary)
            r.rejects(cutoff, summary)
            if summary.files:
                tx.commit()
            else:
                tx.abort()
        except BaseException:
            tx.abort()
            raise
        store.refresh_views()
    return summary


__all__ = ["RedactSummary", "redact"]
