"""Row-level questions about a lake: find clients, then look at one of them.

`trafficlens.report` sums the lake; this module looks rows up, for the dashboard's client
explorer, for `trafficlens query` users who want the same answers, and for the tests:

    hits = search_clients("trafficlens-lake", user_agent="gptbot", threats=["spoofed_identity"])
    profile = client_profile("trafficlens-lake", hits["client_id"][0])
    client_requests("trafficlens-lake", profile.client_id, limit=100)

Every query binds the values it is given as parameters and returns at most `limit` rows, so a
search typed into a text box can neither break the SQL nor pull a whole table into memory.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from trafficlens.errors import OptionError
from trafficlens.schema import ACTOR_CLASSES, THREATS
from trafficlens.store import TABLES, Lake, connect

LakeLike = str | Path | Lake

# The columns of a clients row that name it, count it and label it; every other column (beyond
# the parsed browser/OS/device) is a behaviour feature the model read.
CLIENT_ID_COLUMNS = ("client_id", "site", "client_ip", "user_agent", "first_seen", "last_seen", "requests", "sessions")
CLIENT_LABEL_COLUMNS = (
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
CLIENT_DEVICE_COLUMNS = ("browser", "os", "device")
SEARCH_COLUMNS = (
    "client_id",
    "site",
    "client_ip",
    "user_agent",
    "actor_class",
    "ai_driven",
    "operator",
    "agent",
    "identity",
    "malicious",
    "threats",
    "requests",
    "sessions",
    "first_seen",
    "last_seen",
)
REQUEST_COLUMNS = (
    "ts",
    "method",
    "path",
    "query",
    "status",
    "bytes",
    "page_type",
    "referer",
    "session_id",
    "malicious",
    "threats",
    "source",
    "line_no",
)
SESSION_COLUMNS = (
    "session_id",
    "start",
    "end",
    "duration_s",
    "requests",
    "pages",
    "assets",
    "distinct_paths",
    "bytes",
    "favicon",
    "robots",
    "referer_share",
    "status_4xx",
    "post_share",
    "landing_path",
    "landing_referer",
    "page_types",
    "malicious",
    "threats",
)


def _lake(lake: LakeLike) -> Lake:
    return lake if isinstance(lake, Lake) else Lake(lake)


@contextlib.contextmanager
def _connect(lake: LakeLike) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(_lake(lake))
    con.execute("SET TimeZone = 'UTC'")  # timestamps come back in UTC, as the lake stores them
    try:
        yield con
    finally:
        con.close()


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _where(*terms: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A `WHERE` clause of the terms (`sql with one ?`, value) whose value is given, and its
    parameters; None, an empty string and an empty list mean "any" (False is a value)."""
    given = [(sql, v) for sql, v in terms if v is not None and v != "" and v != []]
    return ("WHERE " + " AND ".join(sql for sql, _ in given)) if given else "", [v for _, v in given]


def _limit(limit: int) -> int:
    if limit < 1:
        raise OptionError(f"limit {limit}: give a positive number of rows")
    return int(limit)


def lake_stamp(lake: LakeLike) -> str:
    """A string that changes whenever the lake's tables or manifest are rewritten.

    Built from the modification times of the table folders, their partitions and the manifest
    (a few dozen stat calls), so a cache keyed on it refreshes after a new ingest or classify.
    """
    store = _lake(lake)
    if store.remote is not None:
        return store.stamp()
    root = store.root
    parts = []
    for name in (*TABLES, "manifest.parquet", "lake.duckdb"):
        p = root / name
        if not p.exists():
            parts.append(f"{name}:-")
            continue
        entries = [p, *sorted(p.iterdir())] if p.is_dir() else [p]
        parts.append(f"{name}:" + ",".join(str(e.stat().st_mtime_ns) for e in entries))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class LakeBounds:
    """What a lake holds, for choosing filters: the first and last day with requests, the sites."""

    first: date | None
    last: date | None
    sites: tuple[str, ...]
    requests: bool


def lake_bounds(lake: LakeLike) -> LakeBounds:
    """The days and sites of the classified clients (no requests scan: clients hold first/last seen)."""
    lk = _lake(lake)
    if not lk.has_table("clients") or not lk.has_table("requests"):
        return LakeBounds(None, None, (), False)
    with _connect(lk) as con:
        first, last, sites = con.sql(
            "SELECT min(first_seen), max(last_seen), list(DISTINCT site ORDER BY site) FROM clients"
        ).fetchall()[0]
    return LakeBounds(
        first.astimezone(UTC).date() if first else None,
        last.astimezone(UTC).date() if last else None,
        tuple(s for s in sites or () if s is not None),
        first is not None,
    )


def search_clients(
    lake: LakeLike,
    *,
    address: str | None = None,
    user_agent: str | None = None,
    classes: Sequence[str] = (),
    threats: Sequence[str] = (),
    malicious: bool | None = None,
    ai_driven: bool | None = None,
    sites: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    limit: int = 200,
) -> pl.DataFrame:
    """Clients that match every criterion given, busiest first.

    `address` matches a part of the client address (`203.0.113.` finds the whole /24);
    `user_agent` a part of the user agent, any case; `classes` and `threats` match any of the
    values listed; `malicious` and `ai_driven` keep only clients that are (or are not);
    `since` and `until` (days, both inclusive, UTC) keep clients seen in that time.
    """
    bad = [c for c in classes if c not in ACTOR_CLASSES]
    if bad:
        raise OptionError(f"class {bad[0]!r}: choose from {', '.join(ACTOR_CLASSES)}")
    bad = [t for t in threats if t not in THREATS]
    if bad:
        raise OptionError(f"threat {bad[0]!r}: choose from {', '.join(THREATS)}")
    where, params = _where(
        ("contains(client_ip, ?)", (address or "").strip()),
        ("contains(lower(user_agent), ?)", (user_agent or "").strip().lower()),
        ("list_contains(?::VARCHAR[], actor_class)", list(classes)),
        ("list_has_any(threats, ?::VARCHAR[])", list(threats)),
        ("malicious = ?", malicious),
        ("ai_driven = ?", ai_driven),
        ("list_contains(?::VARCHAR[], site)", list(sites)),
        ("last_seen >= ?", None if since is None else _day_start(since)),
        ("first_seen < ?", None if until is None else _day_start(until) + timedelta(days=1)),
    )
    lk = _lake(lake)
    if not lk.has_table("clients"):
        return _empty(SEARCH_COLUMNS)
    with _connect(lk) as con:
        return con.sql(
            f"""SELECT {", ".join(SEARCH_COLUMNS)} FROM clients {where}
                ORDER BY requests DESC, client_id LIMIT {_limit(limit)}""",
            params=params,
        ).pl()


@dataclass(frozen=True)
class ClientProfile:
    """One client: who it is, its labels and the reasons for them, and the features the model read."""

    client_id: str
    identity: dict[str, Any]
    labels: dict[str, Any]
    reasons: list[str]
    device: dict[str, Any]
    features: dict[str, float] = field(default_factory=dict)


def client_profile(lake: LakeLike, client_id: str) -> ClientProfile | None:
    """The clients row of `client_id`, split into identity, labels, reasons, device and features."""
    lk = _lake(lake)
    if not lk.has_table("clients"):
        return None
    with _connect(lk) as con:
        rows = con.sql("SELECT * FROM clients WHERE client_id = ? LIMIT 1", params=[client_id]).pl().to_dicts()
    if not rows:
        return None
    row = rows[0]
    known = {*CLIENT_ID_COLUMNS, *CLIENT_LABEL_COLUMNS, *CLIENT_DEVICE_COLUMNS}
    return ClientProfile(
        client_id=row["client_id"],
        identity={k: row.get(k) for k in CLIENT_ID_COLUMNS},
        labels={k: row.get(k) for k in CLIENT_LABEL_COLUMNS if k != "reasons"},
        reasons=list(row.get("reasons") or []),
        device={k: row.get(k) for k in CLIENT_DEVICE_COLUMNS},
        features={k: v for k, v in row.items() if k not in known and isinstance(v, (int, float))},
    )


def client_sessions(lake: LakeLike, client_id: str, limit: int = 200) -> pl.DataFrame:
    """One client's sessions, in time order."""
    lk = _lake(lake)
    if not lk.has_table("sessions"):
        return _empty(SESSION_COLUMNS)
    with _connect(lk) as con:
        return con.sql(
            f"""SELECT {", ".join(f'"{c}"' for c in SESSION_COLUMNS)} FROM sessions WHERE client_id = ?
                ORDER BY start LIMIT {_limit(limit)}""",
            params=[client_id],
        ).pl()


def _seen(con: duckdb.DuckDBPyConnection, client_id: str) -> tuple[datetime, datetime] | None:
    rows = con.sql(
        "SELECT first_seen, last_seen FROM clients WHERE client_id = ? LIMIT 1", params=[client_id]
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows and rows[0][0] is not None else None


def client_requests(lake: LakeLike, client_id: str, limit: int = 500) -> pl.DataFrame:
    """One client's raw requests with their page type and threats, in time order (the first `limit`)."""
    lk = _lake(lake)
    if not lk.has_table("requests"):
        return _empty(REQUEST_COLUMNS)
    with _connect(lk) as con:
        seen = _seen(con, client_id)
        if seen is None:
            return con.sql(f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests WHERE false").pl()
        # The client's first and last seen bound the scan, so DuckDB skips the days (files) and row
        # groups it never touched instead of reading the client id column of the whole lake.
        return con.sql(
            f"""SELECT {", ".join(REQUEST_COLUMNS)} FROM requests
                WHERE ts BETWEEN ? AND ? AND client_id = ?
                ORDER BY ts, line_no LIMIT {_limit(limit)}""",
            params=[seen[0], seen[1], client_id],
        ).pl()


def client_activity(lake: LakeLike, client_id: str) -> pl.DataFrame:
    """One client's requests per minute, hour or day (whichever suits its span), by status class."""
    lk = _lake(lake)
    empty = pl.DataFrame(schema={"bucket": pl.Datetime("us", "UTC"), "status": pl.String, "requests": pl.Int64})
    if not lk.has_table("requests"):
        return empty
    with _connect(lk) as con:
        seen = _seen(con, client_id)
        if seen is None:
            return empty
        span = seen[1] - seen[0]
        unit = "minute" if span <= timedelta(hours=3) else "hour" if span <= timedelta(days=4) else "day"
        return con.sql(
            f"""SELECT date_trunc('{unit}', ts) AS bucket,
                       CASE WHEN status < 300 THEN '2xx' WHEN status < 400 THEN '3xx'
                            WHEN status < 500 THEN '4xx' ELSE '5xx' END AS status,
                       count(*)::BIGINT AS requests
                FROM requests WHERE ts BETWEEN ? AND ? AND client_id = ?
                GROUP BY ALL ORDER BY 1, 2""",
            params=[seen[0], seen[1], client_id],
        ).pl()


def top_paths(
    lake: LakeLike,
    *,
    operator: str | None = None,
    agent: str | None = None,
    since: date | None = None,
    until: date | None = None,
    sites: Sequence[str] = (),
    classes: Sequence[str] = (),
    limit: int = 20,
) -> pl.DataFrame:
    """The paths an operator's (or one agent's) clients requested most, with their status mix.

    `since` and `until` are days, both inclusive (UTC), as in `Report`.
    """
    where, params = _where(
        ("operator = ?", operator),
        ("agent = ?", agent),
        ("ts >= ?", None if since is None else _day_start(since)),
        ("ts < ?", None if until is None else _day_start(until) + timedelta(days=1)),
        ("list_contains(?::VARCHAR[], site)", list(sites)),
        ("list_contains(?::VARCHAR[], actor_class)", list(classes)),
    )
    lk = _lake(lake)
    cols = ("path", "page_type", "requests", "share", "clients", "status_2xx", "status_3xx", "status_4xx", "status_5xx")
    if not lk.has_table("requests"):
        return _empty(cols)
    with _connect(lk) as con:
        return con.sql(
            f"""SELECT path, mode(page_type) AS page_type, count(*)::BIGINT AS requests,
                       count(*) / sum(count(*)) OVER () AS share, count(DISTINCT client_id) AS clients,
                       avg((status < 300)::INT) AS status_2xx, avg((status >= 300 AND status < 400)::INT) AS status_3xx,
                       avg((status >= 400 AND status < 500)::INT) AS status_4xx, avg((status >= 500)::INT) AS status_5xx
                FROM requests {where} GROUP BY path
                QUALIFY row_number() OVER (ORDER BY count(*) DESC, path) <= {_limit(limit)}
                ORDER BY requests DESC, path""",
            params=params,
        ).pl()


def hourly_trends(
    lake: LakeLike,
    *,
    since: date | None = None,
    until: date | None = None,
    sites: Sequence[str] = (),
    classes: Sequence[str] = (),
    path: str | None = None,
) -> dict[str, pl.DataFrame]:
    """`Report.trends()` per UTC hour instead of per day: the same `classes`, `ai` and `operators`
    frames, with `period` the hour's start. The report sums days; a short range (one day, a
    weekend) needs hours to show a shape. `path` keeps only the requests for that exact path.

    One scan of the requests, grouped by hour and labels; the three frames are sums of it.
    """
    from trafficlens.report.traffic import _ai_category  # the AI kinds, as the report defines them
    from trafficlens.schema import AI_CATEGORIES

    where, params = _where(
        ("ts >= ?", None if since is None else _day_start(since)),
        ("ts < ?", None if until is None else _day_start(until) + timedelta(days=1)),
        ("list_contains(?::VARCHAR[], site)", list(sites)),
        ("list_contains(?::VARCHAR[], actor_class)", list(classes)),
        ("path = ?", path),
    )
    schema = pl.Schema(
        [
            ("period", pl.Datetime("us", "UTC")),
            ("actor_class", pl.String()),
            ("ai_driven", pl.Boolean()),
            ("kind", pl.String()),
            ("operator", pl.String()),
            ("requests", pl.Int64()),
            ("bytes", pl.Int64()),
            ("clients", pl.Int64()),
            ("malicious_requests", pl.Int64()),
        ]
    )
    lk = _lake(lake)
    if not lk.has_table("requests"):
        g = pl.DataFrame(schema=schema)
    else:
        with _connect(lk) as con:
            g = (
                con.sql(
                    f"""SELECT date_trunc('hour', ts) AS period, actor_class, ai_driven,
                               {_ai_category()} AS kind, operator, count(*)::BIGINT AS requests,
                               coalesce(sum(bytes), 0)::BIGINT AS bytes,
                               count(DISTINCT client_id)::BIGINT AS clients,
                               count(*) FILTER (malicious)::BIGINT AS malicious_requests
                        FROM requests {where} GROUP BY ALL""",
                    params=params,
                )
                .pl()
                .cast(dict(schema))
            )
    periods = g.select("period").unique()
    cls = (
        periods.join(pl.DataFrame({"actor_class": list(ACTOR_CLASSES)}), how="cross")
        .join(
            # A client seen under two kinds in one hour is counted once per kind: close enough
            # for a chart's tooltip, and the report's daily counts stay exact.
            g.group_by("period", "actor_class").agg(pl.col("requests", "bytes", "clients").sum()),
            on=["period", "actor_class"],
            how="left",
        )
        .fill_null(0)
        .with_columns((pl.col("requests") / pl.col("requests").sum().over("period")).fill_nan(0).alias("share"))
        .with_columns(pl.col("actor_class").replace_strict({c: i for i, c in enumerate(ACTOR_CLASSES)}).alias("_o"))
        .sort("period", "_o")
        .select("period", "actor_class", "requests", "share", "bytes", "clients")
    )
    ai = (
        g.group_by("period")
        .agg(
            pl.col("requests").filter(pl.col("ai_driven")).sum().alias("ai"),
            pl.col("requests").sum().alias("all"),
            pl.col("malicious_requests").sum(),
            *[
                pl.col("requests").filter(pl.col("ai_driven") & (pl.col("kind") == c)).sum().alias(c)
                for c in AI_CATEGORIES
            ],
        )
        .sort("period")
        .select(
            "period",
            pl.col("ai").alias("requests"),
            (pl.col("ai") / pl.col("all")).alias("share"),
            "malicious_requests",
            (pl.col("malicious_requests") / pl.col("all")).alias("malicious_share"),
            *AI_CATEGORIES,
        )
    )
    operators = (
        g.filter(pl.col("operator").is_not_null())
        .group_by("period", "operator")
        .agg(pl.col("requests", "bytes").sum(), pl.col("ai_driven").any())
        .sort("period", "requests", "operator", descending=[False, True, False])
    )
    return {"classes": cls, "ai": ai, "operators": operators}


PATH_READER_COLUMNS = (
    "client_id",
    "client_ip",
    "user_agent",
    "actor_class",
    "ai_driven",
    "operator",
    "agent",
    "identity",
    "malicious",
    "requests",
    "statuses",
    "first",
    "last",
)


def path_readers(
    lake: LakeLike,
    path: str,
    *,
    since: date | None = None,
    until: date | None = None,
    sites: Sequence[str] = (),
    classes: Sequence[str] = (),
    limit: int = 200,
) -> pl.DataFrame:
    """Who reads `path` (exactly that path, any query): its clients, busiest first, with their labels,
    how often they asked for it, the statuses they got and when."""
    where, params = _where(
        ("path = ?", path),
        ("ts >= ?", None if since is None else _day_start(since)),
        ("ts < ?", None if until is None else _day_start(until) + timedelta(days=1)),
        ("list_contains(?::VARCHAR[], site)", list(sites)),
        ("list_contains(?::VARCHAR[], actor_class)", list(classes)),
    )
    lk = _lake(lake)
    if not lk.has_table("requests"):
        return _empty(PATH_READER_COLUMNS)
    with _connect(lk) as con:
        return con.sql(
            f"""SELECT client_id, any_value(client_ip) AS client_ip, any_value(user_agent) AS user_agent,
                       any_value(actor_class) AS actor_class, bool_or(ai_driven) AS ai_driven,
                       any_value(operator) AS operator, any_value(agent) AS agent,
                       any_value(identity) AS identity, bool_or(malicious) AS malicious,
                       count(*)::BIGINT AS requests,
                       string_agg(DISTINCT status::VARCHAR, ', ' ORDER BY status::VARCHAR) AS statuses,
                       min(ts) AS first, max(ts) AS last
                FROM requests {where} GROUP BY client_id
                ORDER BY requests DESC, client_id LIMIT {_limit(limit)}""",
            params=params,
        ).pl()


@dataclass(frozen=True)
class IdentityChecks:
    """Whether classify could check claimed identities: clients whose claim went unchecked because
    no published ranges were loaded (`ip:no_ranges_loaded`), and clients checked against ranges."""

    unchecked_clients: int
    checked_clients: int

    @property
    def ranges_missing(self) -> bool:
        return self.unchecked_clients > 0


def identity_checks(lake: LakeLike) -> IdentityChecks:
    """How many claims classify checked against published ranges, and how many it could not (the
    reasons it recorded on each client: the lake keeps no other trace of the ranges it loaded)."""
    lk = _lake(lake)
    if not lk.has_table("clients"):
        return IdentityChecks(0, 0)
    with _connect(lk) as con:
        unchecked, checked = con.sql(
            """SELECT count(*) FILTER (list_contains(reasons, 'ip:no_ranges_loaded')),
                      count(*) FILTER (len(list_filter(reasons, lambda r: r LIKE 'ip:in_ranges:%'
                                                                    OR r LIKE 'ip:not_in_ranges:%')) > 0)
               FROM clients"""
        ).fetchall()[0]
    return IdentityChecks(int(unchecked), int(checked))


def _empty(columns: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in columns})


__all__ = [
    "ClientProfile",
    "IdentityChecks",
    "LakeBounds",
    "client_activity",
    "client_profile",
    "client_requests",
    "client_sessions",
    "hourly_trends",
    "identity_checks",
    "lake_bounds",
    "lake_stamp",
    "path_readers",
    "search_clients",
    "top_paths",
]
