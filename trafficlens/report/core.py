"""The report's base: its filters, the small tables every section reads, and the cache of sections.

A `Report` (trafficlens.report.lake_report) is this base with the section groups mixed in; each
section is a method marked `@section`, computed on first call and kept for the Report's lifetime.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TypeVar

import polars as pl

from trafficlens.classify.agents import load_catalogue
from trafficlens.classify.evidence import LIKELY_AUTOMATED, SUPPORT_REASONS
from trafficlens.errors import OptionError
from trafficlens.schema import ACTOR_CLASSES, PAGE_VIEW_TYPES, PERIODS
from trafficlens.store import Lake, connect, sql_literal

B = TypeVar("B", bound="ReportBase")
T = TypeVar("T")


def _as_datetime(value: date | datetime | str | None, end: bool = False) -> datetime | None:
    """A bound given as a date (whole days, `until` inclusive) or a time, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            raise OptionError(f"{value!r} is not a date: give YYYY-MM-DD (or YYYY-MM-DDTHH:MM)") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day) + (timedelta(days=1) if end else timedelta())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def section(method: Callable[[B], T]) -> Callable[[B], T]:
    """A report section: computed on its first call, then returned from the Report's cache (by name)."""
    name = method.__name__

    @functools.wraps(method)
    def cached(self: B) -> T:
        if name not in self._cache:
            self._cache[name] = method(self)
        value: T = self._cache[name]
        return value

    return cached


class ReportBase:
    """The report's lake, filters and tables, over which every section is SQL (see Report)."""

    _cache: dict[str, Any]

    def __init__(
        self,
        lake: str | Path,
        since: date | datetime | str | None = None,
        until: date | datetime | str | None = None,
        sites: list[str] | tuple[str, ...] | str | None = None,
        classes: list[str] | tuple[str, ...] | str | None = None,
        by: str = "day",
        top: int = 20,
    ) -> None:
        self.lake = Lake(lake)
        self.lake.require_labels()
        if by not in PERIODS:
            raise OptionError(f"--by {by}: choose one of {', '.join(PERIODS)}")
        self.by, self.top = by, int(top)
        self.since, self.until = _as_datetime(since), _as_datetime(until, end=True)
        self.sites = tuple([sites] if isinstance(sites, str) else sites or ())
        self.classes = tuple([classes] if isinstance(classes, str) else classes or ())
        bad = [c for c in self.classes if c not in ACTOR_CLASSES]
        if bad:
            raise OptionError(f"class {bad[0]!r}: choose from {', '.join(ACTOR_CLASSES)}")
        self.con = connect(self.lake)
        self.con.execute("SET TimeZone = 'UTC'")
        # Row order inside the report's own tables does not matter (every output is ORDER BY'd).
        self.con.execute("SET preserve_insertion_order = false")
        self.where = self._where()
        self._build()
        self._cache: dict[str, Any] = {}

    def _build(self) -> None:
        """Read the lake once into small tables that every section joins.

        Labels belong to clients (requests carry their client's), so the requests are read once
        and summed per client and day (`x`, with the client's labels), per client and page type
        (`pt`), and per client, day and threat (`th`: the requests that show it); client, session
        and address ids are hashed to integers, which count and join several times faster than
        the strings.
        """
        pages = ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)
        # A spoofed claim carries no operator (it is not the operator's traffic); the operator it
        # claims comes from the catalogue, for the operators section's spoofed counts.
        cat = load_catalogue()
        claims = pl.DataFrame({"agent": [a.name for a in cat.agents], "claimed": [a.operator for a in cat.agents]})
        self.con.register("agent_operators", claims.unique("agent", keep="first"))
        # Lakes classified before clients carried automation_score read as sure of every label.
        has_score = "automation_score" in self.con.sql("SELECT * FROM clients LIMIT 0").columns
        score = "coalesce(automation_score, 0)" if has_score else "0.0"
        # The "likely automated" band (people with some evidence of automation), and which
        # supporting families raised each one's score, from its reasons (read for the band alone).
        band = f"actor_class = 'human' AND {score} >= {LIKELY_AUTOMATED}"
        raised = ", ".join(
            f"CASE WHEN {band} THEN len(list_filter(reasons, lambda r: regexp_matches(r, {sql_literal(rx)}))) > 0 "
            f"ELSE false END AS raised_{name}"
            for name, rx in SUPPORT_REASONS.items()
        )
        self.con.execute(
            f"""CREATE TEMP TABLE c AS
                SELECT hash(client_id) AS cid, site, hash(client_ip) AS aid, actor_class, automated, ai_driven,
                       purpose, operator, agent, identity, coalesce(operator, a.claimed) AS claimed_operator,
                       {score} AS automation_score, {band} AS likely_automated, {raised}
                FROM clients LEFT JOIN agent_operators a USING (agent) {self._where(times=False)}"""
        )
        # The requests, read once per client, day and page type, and once more where they carry
        # threats (a list as a group key costs more than a second, filtered read).
        self.con.execute(
            f"""CREATE TEMP TABLE g AS
                SELECT hash(client_id) AS cid, DATE '1970-01-01' + (epoch_us(ts) // 86400000000)::INT AS day,
                       page_type, count(*) AS requests, coalesce(sum(bytes), 0)::BIGINT AS bytes,
                       count(*) FILTER (status < 300) AS s2xx,
                       count(*) FILTER (status >= 300 AND status < 400) AS s3xx,
                       count(*) FILTER (status >= 400 AND status < 500) AS s4xx,
                       count(*) FILTER (status >= 500) AS s5xx,
                       count(*) FILTER (malicious) AS malicious_requests,
                       min(ts) AS first_seen, max(ts) AS last_seen
                FROM requests {self.where} GROUP BY 1, 2, 3"""
        )
        self.con.execute(
            f"""CREATE TEMP TABLE x AS
                WITH d AS (SELECT cid, day, sum(requests)::BIGINT AS requests, sum(bytes)::BIGINT AS bytes,
                                  coalesce(sum(requests) FILTER (page_type IN ({pages})), 0)::BIGINT AS pages,
                                  sum(s2xx)::BIGINT AS s2xx, sum(s3xx)::BIGINT AS s3xx, sum(s4xx)::BIGINT AS s4xx,
                                  sum(s5xx)::BIGINT AS s5xx,
                                  coalesce(sum(requests) FILTER (page_type = 'robots'), 0)::BIGINT AS robots,
                                  sum(malicious_requests)::BIGINT AS malicious_requests,
                                  min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                                  min(first_seen) FILTER (page_type = 'robots') AS first_robots
                           FROM g GROUP BY 1, 2)
                SELECT d.*, date_trunc('{self.by}', d.day)::DATE AS period, c.* EXCLUDE (cid)
                FROM d JOIN c USING (cid)"""
        )
        self.con.execute(
            """CREATE TEMP TABLE pt AS
               SELECT p.*, c.actor_class, c.ai_driven
               FROM (SELECT cid, page_type, sum(requests)::BIGINT AS requests FROM g GROUP BY 1, 2) p
               JOIN c USING (cid)"""
        )
        # A threat's requests are those that show it themselves (`request_threats`: an attack rule,
        # a disallowed path); for a threat seen only in its client's behaviour (stuffing, floods,
        # scraping), the client's requests. Older lakes keep no request's own matches: all of them.
        own = "request_threats" in self.con.sql("SELECT * FROM requests LIMIT 0").columns
        matched = "count(*) FILTER (list_contains(request_threats, threat))" if own else "0"
        self.con.execute(
            f"""CREATE TEMP TABLE th AS
                SELECT t.cid, t.day, t.threat,
                       CASE WHEN sum(t.matched) OVER (PARTITION BY t.cid, t.threat) > 0 THEN t.matched
                            ELSE t.requests END AS requests,
                       c.aid
                FROM (SELECT cid, day, threat, count(*) AS requests, {matched} AS matched
                      FROM (SELECT hash(client_id) AS cid, unnest(threats) AS threat, {"request_threats" if own else "1"},
                                   DATE '1970-01-01' + (epoch_us(ts) // 86400000000)::INT AS day
                            FROM requests {self._where(extra="len(threats) > 0")})
                      GROUP BY 1, 2, 3) t
                JOIN c USING (cid)"""
        )
        self.con.execute("DROP TABLE g")

    def _clients(self, sql: str) -> str:
        """The lake's `clients` rows of the client ids (`cid`) that `sql` selects."""
        return f"(SELECT hash(client_id) AS cid, * FROM clients WHERE hash(client_id) IN ({sql}))"

    def _where(self, times: bool = True, extra: str | None = None) -> str:
        conds = []
        if times and self.since:
            conds.append(f"ts >= TIMESTAMPTZ '{self.since.isoformat()}'")
        if times and self.until:
            conds.append(f"ts < TIMESTAMPTZ '{self.until.isoformat()}'")
        if self.sites:
            conds.append(f"site IN ({', '.join(sql_literal(s) for s in self.sites)})")
        if self.classes:
            conds.append(f"actor_class IN ({', '.join(sql_literal(c) for c in self.classes)})")
        if extra:
            conds.append(extra)
        return ("WHERE " + " AND ".join(conds)) if conds else ""

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def q(self, sql: str) -> pl.DataFrame:
        """Run SQL against the report's tables (`x`, `c`, `pt`, `th`) and the lake's views."""
        return self.con.sql(sql).pl()

    def _sessions(self, human_only: bool = False) -> int:
        """Sessions that start in the period, of the clients in the report."""
        times = []
        if self.since:
            times.append(f"start >= TIMESTAMPTZ '{self.since.isoformat()}'")
        if self.until:
            times.append(f"start < TIMESTAMPTZ '{self.until.isoformat()}'")
        keep = "hash(client_id) IN (SELECT cid FROM c" + (" WHERE actor_class = 'human'" if human_only else "") + ")"
        return int(self.con.sql(f"SELECT count(*) FROM sessions WHERE {' AND '.join([*times, keep])}").fetchall()[0][0])


def jsonable(value: Any) -> Any:
    """Frames to lists of dicts, times to ISO strings, NaN and infinities to None."""
    if isinstance(value, pl.DataFrame):
        return [jsonable(row) for row in value.to_dicts()]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
