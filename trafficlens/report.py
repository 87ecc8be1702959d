"""Named questions over a classified lake, as polars frames (DESIGN.md, "Who it is for").

One set of functions that `trafficlens report`, the dashboard and the tests share:

    rep = Report("trafficlens-lake", since=date(2025, 10, 1), by="week")
    rep.shares()          # requests, clients and bytes by actor_class
    rep.to_dict()         # every section, as `trafficlens report --format json` prints it

Every section is DuckDB SQL over the lake's `requests` (and `sessions`, `rejects`, `manifest`)
views, filtered once by period, site and class. Section names and columns are the stable JSON
contract documented in the README.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from trafficlens.classify.agents import load_catalogue
from trafficlens.errors import LakeError
from trafficlens.schema import ACTOR_CLASSES, PAGE_TYPES, THREATS
from trafficlens.store import Lake, connect

PERIODS = ("day", "week", "month")
# Page types that are pages a person reads (what a crawler "crawls"), as opposed to assets, feeds,
# robots.txt, sitemaps and API calls.
PAGE_VIEW_TYPES = tuple(t for t in PAGE_TYPES if t not in ("static", "robots", "sitemap", "feed", "api"))
# The industry's split of AI traffic (training crawlers, search crawlers, assistant fetchers,
# agents), from purpose first and class second.
AI_CATEGORIES = ("training_crawlers", "search_crawlers", "assistant_fetchers", "agents", "other_ai")
SECTIONS = (
    "period", "totals", "shares", "ai_share", "ai_breakdown", "operators", "agents", "verification",
    "page_types", "trends", "growth", "threats", "referrals", "robots", "bandwidth", "data_quality",
)


@dataclass(frozen=True)
class Referrer:
    """An AI assistant that sends visitors: its operator, referrer hosts and utm_source values."""

    operator: str
    assistant: str
    hosts: tuple[str, ...]
    utm_source: tuple[str, ...]


@functools.cache
def ai_referrers() -> tuple[Referrer, ...]:
    """The shipped list of AI assistants' referrer hosts and utm_source values."""
    text = resources.files("trafficlens").joinpath("catalogues/ai_referrers.yml").read_text()
    return tuple(
        Referrer(r["operator"], r["assistant"], tuple(r["hosts"]), tuple(r.get("utm_source") or ()))
        for r in yaml.safe_load(text)
    )


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ai_category() -> str:
    return """CASE WHEN purpose = 'ai_training' THEN 'training_crawlers'
                   WHEN purpose = 'ai_search' THEN 'search_crawlers'
                   WHEN purpose = 'ai_assistant' THEN 'assistant_fetchers'
                   WHEN purpose = 'ai_agent' OR actor_class = 'agent' THEN 'agents'
                   ELSE 'other_ai' END"""


def _as_datetime(value: date | datetime | str | None, end: bool = False) -> datetime | None:
    """A bound given as a date (whole days, `until` inclusive) or a time, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            raise LakeError(f"{value!r} is not a date: give YYYY-MM-DD (or YYYY-MM-DDTHH:MM)") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day) + (timedelta(days=1) if end else timedelta())
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class Report:
    """The report sections over one lake, filtered by period, sites and classes.

    `since` and `until` are dates (both inclusive) or times (`until` exclusive); `by` is the
    trend period (day, week or month). Each section is a method returning a polars DataFrame
    (or a dict of them); results are computed once per Report.
    """

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
            raise LakeError(f"--by {by}: choose one of {', '.join(PERIODS)}")
        self.by, self.top = by, int(top)
        self.since, self.until = _as_datetime(since), _as_datetime(until, end=True)
        self.sites = tuple([sites] if isinstance(sites, str) else sites or ())
        self.classes = tuple([classes] if isinstance(classes, str) else classes or ())
        bad = [c for c in self.classes if c not in ACTOR_CLASSES]
        if bad:
            raise LakeError(f"class {bad[0]!r}: choose from {', '.join(ACTOR_CLASSES)}")
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
        (`pt`), and per client and threat (`th`); client, session and address ids are hashed to
        integers, which count and join several times faster than the strings.
        """
        pages = ", ".join(_lit(t) for t in PAGE_VIEW_TYPES)
        # A spoofed claim carries no operator (it is not the operator's traffic); the operator it
        # claims comes from the catalogue, for the operators section's spoofed counts.
        cat = load_catalogue()
        claims = pl.DataFrame({"agent": [a.name for a in cat.agents], "claimed": [a.operator for a in cat.agents]})
        self.con.register("agent_operators", claims.unique("agent", keep="first"))
        self.con.execute(
            f"""CREATE TEMP TABLE c AS
                SELECT hash(client_id) AS cid, site, hash(client_ip) AS aid, actor_class, automated, ai_driven,
                       purpose, operator, agent, identity, coalesce(operator, a.claimed) AS claimed_operator
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
        self.con.execute(
            f"""CREATE TEMP TABLE th AS
                SELECT t.*, c.aid
                FROM (SELECT cid, day, threat, count(*) AS requests
                      FROM (SELECT hash(client_id) AS cid, unnest(threats) AS threat,
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
            conds.append(f"site IN ({', '.join(_lit(s) for s in self.sites)})")
        if self.classes:
            conds.append(f"actor_class IN ({', '.join(_lit(c) for c in self.classes)})")
        if extra:
            conds.append(extra)
        return ("WHERE " + " AND ".join(conds)) if conds else ""

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def q(self, sql: str) -> pl.DataFrame:
        """Run SQL against the report's tables (`x`, `c`, `pt`, `th`) and the lake's views."""
        return self.con.sql(sql).pl()

    def _once(self, name: str, build: Any) -> Any:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def _sessions(self, human_only: bool = False) -> int:
        """Sessions that start in the period, of the clients in the report."""
        times = []
        if self.since:
            times.append(f"start >= TIMESTAMPTZ '{self.since.isoformat()}'")
        if self.until:
            times.append(f"start < TIMESTAMPTZ '{self.until.isoformat()}'")
        keep = "hash(client_id) IN (SELECT cid FROM c" + (" WHERE actor_class = 'human'" if human_only else "") + ")"
        return int(self.con.sql(
            f"SELECT count(*) FROM sessions WHERE {' AND '.join([*times, keep])}"
        ).fetchall()[0][0])

    # --- sections ---------------------------------------------------------------------------

    def period(self) -> dict[str, Any]:
        """The time the report covers, its trend period and sites."""
        def build() -> dict[str, Any]:
            row = self.q(
                """SELECT min(first_seen) AS first, max(last_seen) AS last, count(DISTINCT day) AS days,
                          count(DISTINCT period) AS periods, list(DISTINCT site ORDER BY site) AS sites
                   FROM x"""
            ).row(0, named=True)
            return {
                "since": self.since, "until": self.until, "first": row["first"], "last": row["last"],
                "days": row["days"], "by": self.by, "periods": row["periods"], "sites": row["sites"] or [],
                "classes": list(self.classes) or list(ACTOR_CLASSES),
            }
        return self._once("period", build)

    def totals(self) -> dict[str, Any]:
        """Requests, clients, sessions, addresses and bytes, and how many were automated or malicious."""
        def build() -> dict[str, Any]:
            row = self.q(
                """SELECT coalesce(sum(requests), 0)::BIGINT AS requests, count(DISTINCT cid) AS clients,
                          count(DISTINCT aid) AS addresses, coalesce(sum(bytes), 0)::BIGINT AS bytes,
                          coalesce(sum(pages), 0)::BIGINT AS pages,
                          coalesce(sum(requests) FILTER (automated), 0)::BIGINT AS automated_requests,
                          coalesce(sum(requests) FILTER (ai_driven), 0)::BIGINT AS ai_requests,
                          coalesce(sum(malicious_requests), 0)::BIGINT AS malicious_requests
                   FROM x"""
            ).row(0, named=True)
            row["sessions"] = self._sessions()
            order = ("requests", "clients", "sessions", "addresses", "bytes", "pages", "automated_requests",
                     "ai_requests", "malicious_requests")
            return {k: row[k] for k in order}
        return self._once("totals", build)

    def shares(self) -> pl.DataFrame:
        """Requests, clients and bytes per actor_class, each with its share (shares sum to 1)."""
        def build() -> pl.DataFrame:
            classes = ", ".join(f"({_lit(c)}, {i})" for i, c in enumerate(ACTOR_CLASSES))
            return self.q(
                f"""WITH k(actor_class, o) AS (VALUES {classes}),
                         s AS (SELECT actor_class, sum(requests)::BIGINT AS requests,
                                      count(DISTINCT cid) AS clients, sum(bytes)::BIGINT AS bytes
                               FROM x GROUP BY 1)
                    SELECT k.actor_class, coalesce(requests, 0) AS requests,
                           coalesce(requests / sum(requests) OVER (), 0) AS requests_share,
                           coalesce(clients, 0) AS clients,
                           coalesce(clients / sum(clients) OVER (), 0) AS clients_share,
                           coalesce(bytes, 0) AS bytes,
                           coalesce(bytes / nullif(sum(bytes) OVER (), 0), 0) AS bytes_share
                    FROM k LEFT JOIN s USING (actor_class) ORDER BY o"""
            )
        return self._once("shares", build)

    def ai_share(self) -> dict[str, Any]:
        """AI-driven traffic: requests, clients and bytes with their shares, and its split by class."""
        def build() -> dict[str, Any]:
            row = self.q(
                """SELECT coalesce(sum(requests) FILTER (ai_driven), 0)::BIGINT AS requests,
                          coalesce(sum(requests) FILTER (ai_driven) / nullif(sum(requests), 0), 0) AS share,
                          count(DISTINCT cid) FILTER (ai_driven) AS clients,
                          coalesce(count(DISTINCT cid) FILTER (ai_driven) / nullif(count(DISTINCT cid), 0), 0)
                              AS clients_share,
                          coalesce(sum(bytes) FILTER (ai_driven), 0)::BIGINT AS bytes,
                          coalesce(sum(bytes) FILTER (ai_driven) / nullif(sum(bytes), 0), 0) AS bytes_share
                   FROM x"""
            ).row(0, named=True)
            counts = dict(self.q("SELECT actor_class, sum(requests)::BIGINT FROM x WHERE ai_driven GROUP BY 1").iter_rows())
            total = sum(counts.values())
            row["by_class"] = {c: (counts.get(c, 0) / total if total else 0.0) for c in ACTOR_CLASSES}
            return row
        return self._once("ai_share", build)

    def ai_breakdown(self) -> pl.DataFrame:
        """AI-driven traffic split into training crawlers, search crawlers, assistant fetchers and agents."""
        def build() -> pl.DataFrame:
            cats = ", ".join(f"({_lit(c)}, {i})" for i, c in enumerate(AI_CATEGORIES))
            return self.q(
                f"""WITH k(category, o) AS (VALUES {cats}),
                         t AS (SELECT sum(requests) AS n FROM x),
                         s AS (SELECT {_ai_category()} AS category, sum(requests)::BIGINT AS requests,
                                      count(DISTINCT cid) AS clients, sum(bytes)::BIGINT AS bytes,
                                      list(DISTINCT operator ORDER BY operator) FILTER (operator IS NOT NULL) AS operators
                               FROM x WHERE ai_driven GROUP BY 1)
                    SELECT category, coalesce(requests, 0) AS requests,
                           coalesce(requests / nullif(sum(requests) OVER (), 0), 0) AS share_of_ai,
                           coalesce(requests / nullif((SELECT n FROM t), 0), 0) AS share_of_all,
                           coalesce(clients, 0) AS clients, coalesce(bytes, 0) AS bytes,
                           coalesce(operators, []) AS operators
                    FROM k LEFT JOIN s USING (category) ORDER BY o"""
            )
        return self._once("ai_breakdown", build)

    def _per(self, key: str, extra: str = "", claim: str | None = None) -> str:
        """Per-operator or per-agent figures (SQL): volume, pages, status mix, and clients by
        identity over every client that claims it (`claim`: the column naming the claim)."""
        claim = claim or key
        return f"""
            WITH v AS (SELECT {key}, sum(requests)::BIGINT AS requests,
                              sum(requests) / (SELECT sum(requests) FROM x) AS share,
                              count(DISTINCT cid) AS clients, sum(bytes)::BIGINT AS bytes, sum(pages)::BIGINT AS pages,
                              sum(s2xx) / sum(requests) AS status_2xx, sum(s3xx) / sum(requests) AS status_3xx,
                              sum(s4xx) / sum(requests) AS status_4xx, sum(s5xx) / sum(requests) AS status_5xx,
                              min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                              bool_or(ai_driven) AS ai_driven, sum(malicious_requests)::BIGINT AS malicious_requests{extra}
                       FROM x WHERE {key} IS NOT NULL GROUP BY {key}),
                 i AS (SELECT {claim} AS {key},
                              count(DISTINCT cid) FILTER (identity = 'verified') AS verified_clients,
                              count(DISTINCT cid) FILTER (identity = 'declared') AS declared_clients,
                              count(DISTINCT cid) FILTER (identity = 'spoofed') AS spoofed_clients,
                              count(DISTINCT cid) FILTER (identity = 'undeclared') AS undeclared_clients
                       FROM x WHERE {claim} IS NOT NULL GROUP BY 1)
            SELECT v.*, coalesce(i.verified_clients, 0) AS verified_clients,
                   coalesce(i.declared_clients, 0) AS declared_clients,
                   coalesce(i.spoofed_clients, 0) AS spoofed_clients,
                   coalesce(i.undeclared_clients, 0) AS undeclared_clients
            FROM v LEFT JOIN i USING ({key})
            ORDER BY requests DESC, {key}"""

    def operators(self) -> pl.DataFrame:
        """Per operator: requests, share, clients, bytes, pages, status mix, first and last seen,
        purposes and agents of its own traffic, and the clients that claim it by identity
        (verified / declared / spoofed: spoofed ones are not in its volume)."""
        def build() -> pl.DataFrame:
            extra = """, list(DISTINCT purpose ORDER BY purpose) AS purposes,
                         coalesce(list(DISTINCT agent ORDER BY agent) FILTER (agent IS NOT NULL), []) AS agents"""
            return self.q(self._per("operator", extra, claim="claimed_operator"))
        return self._once("operators", build)

    def agents(self) -> pl.DataFrame:
        """Per named agent: the operator figures, plus its operator, purpose and class."""
        def build() -> pl.DataFrame:
            extra = """, any_value(operator) AS operator, mode(purpose) AS purpose, mode(actor_class) AS actor_class"""
            return self.q(self._per("agent", extra))
        return self._once("agents", build)

    def verification(self) -> pl.DataFrame:
        """Per claimed agent that can be checked: clients verified, declared and spoofed, and the
        spoofed requests and addresses."""
        def build() -> pl.DataFrame:
            return self.q(
                """WITH k AS (SELECT cid, aid, agent, any_value(operator) AS operator, any_value(identity) AS identity,
                                     sum(requests) AS requests
                              FROM x WHERE agent IS NOT NULL GROUP BY cid, aid, agent),
                        ips AS (SELECT DISTINCT hash(client_ip) AS aid, client_ip FROM clients
                                WHERE identity = 'spoofed')
                   SELECT agent, any_value(operator) AS operator, count(*) AS clients,
                          count(*) FILTER (identity = 'verified') AS verified,
                          count(*) FILTER (identity = 'declared') AS declared,
                          count(*) FILTER (identity = 'spoofed') AS spoofed,
                          count(*) FILTER (identity = 'spoofed') / count(*) AS spoofed_share,
                          coalesce(sum(requests) FILTER (identity = 'spoofed'), 0)::BIGINT AS spoofed_requests,
                          count(DISTINCT aid) FILTER (identity = 'spoofed') AS spoofed_addresses,
                          coalesce(any_value(t.addresses), []) AS top_spoofed_addresses
                   FROM k LEFT JOIN (
                       SELECT agent, list(client_ip ORDER BY n DESC, client_ip)[1:5] AS addresses
                       FROM (SELECT k.agent, ips.client_ip, sum(k.requests) AS n
                             FROM k JOIN ips USING (aid) WHERE k.identity = 'spoofed' GROUP BY 1, 2)
                       GROUP BY agent) t USING (agent)
                   GROUP BY agent
                   HAVING count(*) FILTER (identity IN ('verified', 'spoofed')) > 0
                   ORDER BY spoofed DESC, clients DESC, agent"""
            )
        return self._once("verification", build)

    def page_types(self) -> pl.DataFrame:
        """Page-type mix per class: requests and the share of the class's requests per page type."""
        def build() -> pl.DataFrame:
            return self.q(
                """SELECT actor_class, page_type, sum(requests)::BIGINT AS requests,
                          sum(requests) / sum(sum(requests)) OVER (PARTITION BY actor_class) AS share,
                          coalesce(sum(requests) FILTER (ai_driven), 0)::BIGINT AS ai_requests,
                          count(DISTINCT cid) AS clients
                   FROM pt GROUP BY 1, 2
                   ORDER BY list_position(['human', 'crawler', 'scraper', 'agent'], actor_class), requests DESC,
                            page_type"""
            )
        return self._once("page_types", build)

    def trends(self) -> dict[str, pl.DataFrame]:
        """Per period: requests, share and bytes by class (`classes`), AI-driven (`ai`), by operator
        (`operators`) and by threat (`threats`)."""
        def build() -> dict[str, pl.DataFrame]:
            classes = self.q(
                """WITH p AS (SELECT DISTINCT period FROM x),
                        k AS (SELECT unnest(['human', 'crawler', 'scraper', 'agent']) AS actor_class),
                        s AS (SELECT period, actor_class, sum(requests)::BIGINT AS requests,
                                     sum(bytes)::BIGINT AS bytes, count(DISTINCT cid) AS clients
                              FROM x GROUP BY 1, 2)
                   SELECT period, actor_class, coalesce(requests, 0) AS requests,
                          coalesce(requests, 0) / sum(coalesce(requests, 0)) OVER (PARTITION BY period) AS share,
                          coalesce(bytes, 0) AS bytes, coalesce(clients, 0) AS clients
                   FROM p CROSS JOIN k LEFT JOIN s USING (period, actor_class)
                   ORDER BY period, list_position(['human', 'crawler', 'scraper', 'agent'], actor_class)"""
            )
            cats = ", ".join(
                f"coalesce(sum(requests) FILTER (ai_driven AND {_ai_category()} = '{c}'), 0)::BIGINT AS {c}"
                for c in AI_CATEGORIES
            )
            ai = self.q(
                f"""SELECT period, coalesce(sum(requests) FILTER (ai_driven), 0)::BIGINT AS requests,
                           coalesce(sum(requests) FILTER (ai_driven), 0) / sum(requests) AS share,
                           sum(malicious_requests)::BIGINT AS malicious_requests,
                           sum(malicious_requests) / sum(requests) AS malicious_share, {cats}
                    FROM x GROUP BY 1 ORDER BY 1"""
            )
            operators = self.q(
                """SELECT period, operator, sum(requests)::BIGINT AS requests, sum(bytes)::BIGINT AS bytes,
                          bool_or(ai_driven) AS ai_driven
                   FROM x WHERE operator IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"""
            )
            threats = self.q(
                f"""SELECT date_trunc('{self.by}', day)::DATE AS period, threat, sum(requests)::BIGINT AS requests,
                           count(DISTINCT cid) AS clients
                    FROM th GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"""
            )
            return {"classes": classes, "ai": ai, "operators": operators, "threats": threats}
        return self._once("trends", build)

    def growth(self) -> pl.DataFrame:
        """The last period against the one before, per class, for AI-driven and malicious traffic and
        in all.

        Periods are compared per day of data they hold, so a week that has only begun does not read
        as a collapse; `ratio` is "x2.9 vs the previous period"."""
        def build() -> pl.DataFrame:
            return self.q(
                """WITH b AS (SELECT min(first_seen) AS f0, max(last_seen) AS l0 FROM x),
                        p AS (SELECT period, count(DISTINCT day) AS n, min(first_seen) AS f, max(last_seen) AS l
                              FROM x GROUP BY 1),
                        -- Days of data: the first and the last day of the data count for the part
                        -- of them the data covers (a log that ends at noon has half a last day).
                        d AS (SELECT period,
                                     greatest(n - CASE WHEN l = l0 THEN 1 - epoch(l0 - date_trunc('day', l0)) / 86400
                                                       ELSE 0 END
                                                - CASE WHEN f = f0 THEN epoch(f0 - date_trunc('day', f0)) / 86400
                                                       ELSE 0 END, 1.0 / 24) AS days
                              FROM p, b),
                        last2 AS (SELECT period, days, row_number() OVER (ORDER BY period DESC) AS k FROM d),
                        g(segment, o) AS (VALUES ('all', 1), ('ai_driven', 2), ('malicious', 3), ('human', 4),
                                                 ('crawler', 5), ('scraper', 6), ('agent', 7)),
                        n AS (SELECT period, sum(requests) AS "all", sum(requests) FILTER (ai_driven) AS ai_driven,
                                     sum(malicious_requests) AS malicious,
                                     sum(requests) FILTER (actor_class = 'human') AS human,
                                     sum(requests) FILTER (actor_class = 'crawler') AS crawler,
                                     sum(requests) FILTER (actor_class = 'scraper') AS scraper,
                                     sum(requests) FILTER (actor_class = 'agent') AS agent
                              FROM x WHERE period IN (SELECT period FROM last2 WHERE k <= 2) GROUP BY 1),
                        u AS (FROM n UNPIVOT INCLUDE NULLS (requests FOR segment IN
                              ("all", ai_driven, malicious, human, crawler, scraper, agent))),
                        cur AS (SELECT u.*, l.days FROM u JOIN last2 l USING (period) WHERE l.k = 1),
                        prev AS (SELECT u.*, l.days FROM u JOIN last2 l USING (period) WHERE l.k = 2)
                   SELECT g.segment, cur.period, prev.period AS previous_period,
                          coalesce(cur.requests, 0)::BIGINT AS requests,
                          coalesce(prev.requests, 0)::BIGINT AS previous_requests,
                          cur.days, prev.days AS previous_days,
                          coalesce(cur.requests, 0) / cur.days AS per_day,
                          coalesce(prev.requests, 0) / prev.days AS previous_per_day,
                          (coalesce(cur.requests, 0) / cur.days) / nullif(coalesce(prev.requests, 0) / prev.days, 0)
                              AS ratio
                   FROM g LEFT JOIN cur USING (segment) LEFT JOIN prev USING (segment)
                   WHERE cur.period IS NOT NULL
                   ORDER BY g.o"""
            ).with_columns(change=pl.col("ratio") - 1)
        return self._once("growth", build)

    def threats(self) -> dict[str, Any]:
        """Requests, clients and addresses per threat, and the top malicious client profiles."""
        def build() -> dict[str, Any]:
            known = ", ".join(f"({_lit(t)}, {i})" for i, t in enumerate(THREATS))
            by_threat = self.q(
                f"""WITH k(threat, o) AS (VALUES {known})
                    SELECT threat, sum(requests)::BIGINT AS requests,
                           sum(requests) / (SELECT sum(requests) FROM x) AS share,
                           count(DISTINCT cid) AS clients, count(DISTINCT aid) AS addresses
                    FROM th LEFT JOIN k USING (threat)
                    GROUP BY threat, o ORDER BY requests DESC, o"""
            )
            summary = self.q(
                """SELECT coalesce(sum(malicious_requests), 0)::BIGINT AS requests,
                          coalesce(sum(malicious_requests) / nullif(sum(requests), 0), 0) AS share,
                          count(DISTINCT cid) FILTER (malicious_requests > 0) AS clients,
                          count(DISTINCT aid) FILTER (malicious_requests > 0) AS addresses
                   FROM x"""
            ).row(0, named=True)
            top = self.q(
                f"""WITH m AS (SELECT cid, sum(malicious_requests)::BIGINT AS requests,
                                      min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                                      sum(s4xx + s5xx) / sum(requests) AS error_share
                               FROM x WHERE cid IN (SELECT cid FROM x WHERE malicious_requests > 0) GROUP BY 1
                               ORDER BY requests DESC, cid LIMIT {self.top}),
                         t AS (SELECT cid, list(threat ORDER BY threat) AS threats FROM th GROUP BY 1)
                    SELECT c.client_id, c.site, c.client_ip, c.user_agent, c.actor_class, c.agent, c.operator,
                           c.identity, m.requests, m.error_share, m.first_seen, m.last_seen,
                           coalesce(t.threats, []) AS threats, c.reasons
                    FROM m JOIN {self._clients("SELECT cid FROM m")} c USING (cid) LEFT JOIN t USING (cid)
                    ORDER BY m.requests DESC, c.client_id"""
            )
            return {"summary": summary, "by_threat": by_threat, "top_clients": top}
        return self._once("threats", build)

    def referrals(self) -> dict[str, Any]:
        """Human visits sent by AI assistants, per operator, by referrer host and by utm_source, and
        `crawl_to_refer`: the operator's automated page requests per visit it referred."""
        def build() -> dict[str, Any]:
            rows = [(r.operator, r.assistant, "referer", h) for r in ai_referrers() for h in r.hosts]
            rows += [(r.operator, r.assistant, "utm_source", u.lower()) for r in ai_referrers() for u in r.utm_source]
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE ai_ref(operator VARCHAR, assistant VARCHAR, via VARCHAR, value VARCHAR)"
            )
            self.con.executemany("INSERT INTO ai_ref VALUES (?, ?, ?, ?)", rows)
            # A visit (session) counts once, for the operator of its first AI-attributed request.
            # Hosts are read once per distinct referer; then only the human requests that carry
            # one of the AI referers (or a utm_source) are read again.
            human = self._where(extra="actor_class = 'human'")
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE ai_referer AS
                    WITH d AS (SELECT DISTINCT referer FROM requests {human} AND referer IS NOT NULL),
                         h AS (SELECT referer, lower(regexp_extract(referer, '^[a-zA-Z]+://([^/:?#]+)', 1)) AS host
                               FROM d)
                    SELECT h.referer, h.host, a.operator, a.assistant
                    FROM h JOIN ai_ref a ON a.via = 'referer' AND (h.host = a.value OR h.host LIKE '%.' || a.value)
                    QUALIFY row_number() OVER (PARTITION BY h.referer ORDER BY length(a.value) DESC) = 1"""
            )
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE referred AS
                    WITH h AS (SELECT session_id, ts, referer,
                                      CASE WHEN query ILIKE '%utm_source=%' THEN
                                           lower(url_decode(regexp_extract(query, '(?:^|&)utm_source=([^&]*)', 1)))
                                      END AS utm
                               FROM requests {human}
                                 AND (referer IN (SELECT referer FROM ai_referer) OR query ILIKE '%utm_source=%')),
                         m AS (SELECT h.session_id, h.ts, a.operator, a.assistant, 'referer' AS via, a.host AS source
                               FROM h JOIN ai_referer a USING (referer)
                               UNION ALL
                               SELECT h.session_id, h.ts, a.operator, a.assistant, 'utm_source', h.utm
                               FROM h JOIN ai_ref a ON a.via = 'utm_source' AND h.utm = a.value)
                    SELECT session_id, w['operator'] AS operator, w['assistant'] AS assistant, w['via'] AS via,
                           w['source'] AS source
                    FROM (SELECT session_id,
                                 arg_min({{'operator': operator, 'assistant': assistant, 'via': via, 'source': source}},
                                         (ts, via, operator, source)) AS w
                          FROM m GROUP BY session_id)"""
            )
            by_source = self.q(
                """SELECT operator, assistant, via, source, count(*) AS visits
                   FROM referred GROUP BY ALL ORDER BY visits DESC, operator, source"""
            )
            by_operator = self.q(
                """WITH v AS (SELECT operator, count(*) AS visits,
                                     count(*) FILTER (via = 'referer') AS by_referer,
                                     count(*) FILTER (via = 'utm_source') AS by_utm_source
                              FROM referred GROUP BY 1),
                        k AS (SELECT operator, sum(pages)::BIGINT AS crawled_pages,
                                     sum(requests)::BIGINT AS crawl_requests
                              FROM x WHERE automated AND operator IN (SELECT DISTINCT operator FROM ai_ref) GROUP BY 1)
                   SELECT operator, coalesce(visits, 0) AS visits, coalesce(by_referer, 0) AS by_referer,
                          coalesce(by_utm_source, 0) AS by_utm_source, coalesce(crawled_pages, 0) AS crawled_pages,
                          coalesce(crawl_requests, 0) AS crawl_requests,
                          coalesce(crawled_pages, 0) / nullif(visits, 0) AS crawl_to_refer
                   FROM v FULL JOIN k USING (operator)
                   ORDER BY visits DESC, crawled_pages DESC, operator"""
            )
            visits = int(self.con.sql("SELECT count(*) FROM referred").fetchall()[0][0])
            human_visits = self._sessions(human_only=True)
            summary = {
                "visits": visits, "human_visits": human_visits,
                "share_of_human_visits": visits / human_visits if human_visits else 0.0,
            }
            return {"summary": summary, "by_operator": by_operator, "by_source": by_source}
        return self._once("referrals", build)

    def robots(self) -> pl.DataFrame:
        """Per agent (or unnamed automated class): robots.txt fetches, and robots.txt violations
        (recorded when classify was given `--robots`)."""
        def build() -> pl.DataFrame:
            return self.q(
                f"""WITH v AS (SELECT cid, sum(requests) AS violations FROM th
                               WHERE threat = 'robots_violation' GROUP BY 1),
                         pc AS (SELECT cid, any_value(agent) AS agent, any_value(actor_class) AS actor_class,
                                       any_value(operator) AS operator, any_value(purpose) AS purpose,
                                       sum(requests) AS requests, sum(robots) AS robots,
                                       min(first_robots) AS first_robots
                                FROM x WHERE automated GROUP BY cid),
                         k AS (SELECT pc.*, coalesce(v.violations, 0) AS violations FROM pc LEFT JOIN v USING (cid))
                    SELECT coalesce(agent, '(unnamed ' || any_value(actor_class) || ')') AS agent,
                           any_value(operator) AS operator, any_value(purpose) AS purpose,
                           sum(requests)::BIGINT AS requests, sum(robots)::BIGINT AS robots_fetches,
                           count(*) FILTER (robots > 0) AS clients_fetching, count(*) AS clients,
                           sum(violations)::BIGINT AS violations,
                           count(*) FILTER (violations > 0) AS violating_clients,
                           min(first_robots) AS first_fetch
                    FROM k GROUP BY agent, CASE WHEN agent IS NULL THEN actor_class END
                    HAVING sum(robots) > 0 OR sum(violations) > 0 OR bool_or(agent IS NOT NULL)
                    ORDER BY violations DESC, robots_fetches DESC, requests DESC, agent
                    LIMIT {max(self.top, 50)}"""
            )
        return self._once("robots", build)

    def bandwidth(self) -> dict[str, pl.DataFrame]:
        """Bytes per class and per operator, with shares of all bytes."""
        def build() -> dict[str, pl.DataFrame]:
            by_class = self.shares().select(
                "actor_class", "bytes", pl.col("bytes_share").alias("share"), "requests",
                (pl.col("bytes") / pl.col("requests").replace(0, None)).fill_null(0).alias("bytes_per_request"),
            )
            by_operator = self.q(
                f"""SELECT operator, sum(bytes)::BIGINT AS bytes,
                           coalesce(sum(bytes) / nullif((SELECT sum(bytes) FROM x), 0), 0) AS share,
                           sum(requests)::BIGINT AS requests, sum(bytes) / sum(requests) AS bytes_per_request
                    FROM x WHERE operator IS NOT NULL GROUP BY 1 ORDER BY bytes DESC, operator LIMIT {self.top}"""
            )
            return {"by_class": by_class, "by_operator": by_operator}
        return self._once("bandwidth", build)

    def data_quality(self) -> dict[str, Any]:
        """What was ingested (sources) and what could not be read (rejects by reason and source)."""
        def build() -> dict[str, Any]:
            sources = (
                self.q(
                    """SELECT source, any_value(format) AS format, sum(events)::BIGINT AS events,
                              sum(rejects)::BIGINT AS rejects, count(*) AS runs, max(ingested_at) AS last_ingested
                       FROM manifest GROUP BY 1 ORDER BY events DESC, source"""
                )
                if self.lake.manifest_path.exists()
                else pl.DataFrame(schema={"source": pl.String, "format": pl.String, "events": pl.Int64,
                                          "rejects": pl.Int64, "runs": pl.Int64,
                                          "last_ingested": pl.Datetime("us", "UTC")})
            )
            rejects = self.q(
                """SELECT source, regexp_replace(reason, ':.*', '') AS reason, count(*) AS lines,
                          any_value(raw) AS example
                   FROM rejects GROUP BY 1, 2 ORDER BY lines DESC, source, reason"""
            )
            events = int(sources["events"].sum() or 0)
            n_rejects = int(rejects["lines"].sum() or 0)
            summary = {
                "sources": sources.height, "events": events, "rejects": n_rejects,
                "reject_share": n_rejects / (events + n_rejects) if events + n_rejects else 0.0,
            }
            return {"summary": summary, "sources": sources, "rejects": rejects}
        return self._once("data_quality", build)

    # --- all of it --------------------------------------------------------------------------

    def sections(self, names: tuple[str, ...] | list[str] = SECTIONS) -> dict[str, Any]:
        """The named sections (default: all), in order, as frames and dicts."""
        unknown = [n for n in names if n not in SECTIONS]
        if unknown:
            raise LakeError(f"no report section {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
        return {name: getattr(self, name)() for name in names}

    def to_dict(self, names: tuple[str, ...] | list[str] = SECTIONS) -> dict[str, Any]:
        """The sections as plain JSON-ready values (frames become lists of row dicts)."""
        return jsonable(self.sections(names))


def jsonable(value: Any) -> Any:
    """Frames to lists of dicts, times to ISO strings, NaN and infinities to None."""
    if isinstance(value, pl.DataFrame):
        return [jsonable(row) for row in value.to_dicts()]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def build_report(lake: str | Path, **filters: Any) -> dict[str, Any]:
    """Every section of the report over `lake` as JSON-ready values (see Report for filters)."""
    with Report(lake, **filters) as rep:
        return rep.to_dict()


__all__ = ["AI_CATEGORIES", "PAGE_VIEW_TYPES", "SECTIONS", "Report", "ai_referrers", "build_report", "jsonable"]
