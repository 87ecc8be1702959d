"""Report sections on the traffic as a whole: period, totals, class shares, AI-driven traffic and
its kinds, page types, trends, growth and bandwidth."""

from __future__ import annotations

from typing import Any

import polars as pl

from trafficlens.classify.evidence import LIKELY_AUTOMATED, SUPPORT_REASONS
from trafficlens.report.core import ReportBase, section
from trafficlens.schema import ACTOR_CLASSES, AI_CATEGORIES
from trafficlens.store import sql_literal


def _ai_category() -> str:
    """The AI kind of a client (SQL): from its purpose first and its class second."""
    return """CASE WHEN purpose = 'ai_training' THEN 'training_crawlers'
                   WHEN purpose = 'ai_search' THEN 'search_crawlers'
                   WHEN purpose = 'ai_assistant' THEN 'assistant_fetchers'
                   WHEN purpose = 'ai_agent' OR actor_class = 'agent' THEN 'agents'
                   ELSE 'other_ai' END"""


class TrafficSections(ReportBase):
    """Volumes and shares of the traffic, by class, AI kind, page type and period."""

    @section
    def period(self) -> dict[str, Any]:
        """The time the report covers, its trend period and sites."""
        row = self.q(
            """SELECT min(first_seen) AS first, max(last_seen) AS last, count(DISTINCT day) AS days,
                      count(DISTINCT period) AS periods, list(DISTINCT site ORDER BY site) AS sites
               FROM x"""
        ).row(0, named=True)
        return {
            "since": self.since,
            "until": self.until,
            "first": row["first"],
            "last": row["last"],
            "days": row["days"],
            "by": self.by,
            "periods": row["periods"],
            "sites": row["sites"] or [],
            "classes": list(self.classes) or list(ACTOR_CLASSES),
        }

    @section
    def totals(self) -> dict[str, Any]:
        """Requests, clients, sessions, addresses and bytes, and how many were automated or malicious."""
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
        order = (
            "requests",
            "clients",
            "sessions",
            "addresses",
            "bytes",
            "pages",
            "automated_requests",
            "ai_requests",
            "malicious_requests",
        )
        return {k: row[k] for k in order}

    @section
    def shares(self) -> pl.DataFrame:
        """Requests, clients and bytes per actor_class, each with its share (shares sum to 1)."""
        classes = ", ".join(f"({sql_literal(c)}, {i})" for i, c in enumerate(ACTOR_CLASSES))
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

    @section
    def likely_automated(self) -> dict[str, Any]:
        """The band beside the confident shares: clients labelled human whose automation_score is at
        least LIKELY_AUTOMATED (some evidence of automation, short of what the labels require), with
        their requests and their shares of the human and of all traffic, and `raised_by`: how many
        of them each supporting family's evidence shows in (`evidence.SUPPORT_REASONS`; a client
        may show several)."""
        counts = ", ".join(f"count(DISTINCT cid) FILTER (raised_{name}) AS raised_{name}" for name in SUPPORT_REASONS)
        row = self.q(
            f"""SELECT coalesce(sum(requests) FILTER (band), 0)::BIGINT AS requests,
                       count(DISTINCT cid) FILTER (band) AS clients,
                       coalesce(sum(requests) FILTER (band) / nullif(sum(requests) FILTER (human), 0), 0)
                           AS human_requests_share,
                       coalesce(count(DISTINCT cid) FILTER (band) / nullif(count(DISTINCT cid) FILTER (human), 0), 0)
                           AS human_clients_share,
                       coalesce(sum(requests) FILTER (band) / nullif(sum(requests), 0), 0) AS requests_share,
                       {counts}
                FROM (SELECT *, actor_class = 'human' AS human, likely_automated AS band FROM x)"""
        ).row(0, named=True)
        raised = {name: row.pop(f"raised_{name}") for name in SUPPORT_REASONS}
        return {"threshold": LIKELY_AUTOMATED, **row, "raised_by": raised}

    @section
    def ai_share(self) -> dict[str, Any]:
        """AI-driven traffic: requests, clients and bytes with their shares, and its split by class."""
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

    @section
    def ai_breakdown(self) -> pl.DataFrame:
        """AI-driven traffic split into training crawlers, search crawlers, assistant fetchers and agents."""
        cats = ", ".join(f"({sql_literal(c)}, {i})" for i, c in enumerate(AI_CATEGORIES))
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

    @section
    def page_types(self) -> pl.DataFrame:
        """Page-type mix per class: requests and the share of the class's requests per page type."""
        return self.q(
            """SELECT actor_class, page_type, sum(requests)::BIGINT AS requests,
                      sum(requests) / sum(sum(requests)) OVER (PARTITION BY actor_class) AS share,
                      coalesce(sum(requests) FILTER (ai_driven), 0)::BIGINT AS ai_requests,
                      count(DISTINCT cid) AS clients
               FROM pt GROUP BY 1, 2
               ORDER BY list_position(['human', 'crawler', 'scraper', 'agent'], actor_class), requests DESC,
                        page_type"""
        )

    @section
    def trends(self) -> dict[str, pl.DataFrame]:
        """Per period: requests, share and bytes by class (`classes`), AI-driven (`ai`), by operator
        (`operators`) and by threat (`threats`)."""
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

    @section
    def growth(self) -> pl.DataFrame:
        """The last period against the one before, per class, for AI-driven and malicious traffic and
        in all.

        Periods are compared per day of data they hold, so a week that has only begun does not read
        as a collapse; `ratio` is "x2.9 vs the previous period"."""
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

    @section
    def bandwidth(self) -> dict[str, pl.DataFrame]:
        """Bytes per class and per operator, with shares of all bytes."""
        by_class = self.shares().select(
            "actor_class",
            "bytes",
            pl.col("bytes_share").alias("share"),
            "requests",
            (pl.col("bytes") / pl.col("requests").replace(0, None)).fill_null(0).alias("bytes_per_request"),
        )
        by_operator = self.q(
            f"""SELECT operator, sum(bytes)::BIGINT AS bytes,
                       coalesce(sum(bytes) / nullif((SELECT sum(bytes) FROM x), 0), 0) AS share,
                       sum(requests)::BIGINT AS requests, sum(bytes) / sum(requests) AS bytes_per_request
                FROM x WHERE operator IS NOT NULL GROUP BY 1 ORDER BY bytes DESC, operator LIMIT {self.top}"""
        )
        return {"by_class": by_class, "by_operator": by_operator}
