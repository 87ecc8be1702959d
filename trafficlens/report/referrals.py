"""Report sections on what AI operators give back and how their crawlers behave: human visits
referred by AI assistants, and robots.txt fetches and violations."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import polars as pl
import yaml

from trafficlens.report.core import ReportBase, section
from trafficlens.schema import PAGE_VIEW_TYPES
from trafficlens.store import sql_literal


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


# Seconds from an assistant's fetch of a page to a person landing on it that still count as the
# person following the answer (`trafficlens report --ai-window`).
AI_WINDOW_S = 300.0


class ReferralSections(ReportBase):
    """AI referrals and robots.txt."""

    ai_window: float = AI_WINDOW_S

    @section
    def referrals(self) -> dict[str, Any]:
        """Human visits sent by AI assistants, per operator, by referrer host and by utm_source, and
        `crawl_to_refer`: the operator's automated page requests per visit it referred."""
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
            "visits": visits,
            "human_visits": human_visits,
            "share_of_human_visits": visits / human_visits if human_visits else 0.0,
        }
        return {"summary": summary, "by_operator": by_operator, "by_source": by_source}

    @section
    def inferred_referrals(self) -> dict[str, Any]:
        """Human visits that followed an AI assistant's fetch of their landing page: a person
        landing on page P, with no referrer and no utm_source, at most `ai_window` seconds after a
        user-triggered assistant fetcher (ChatGPT-User, Perplexity-User, Claude-User, …; a claim
        that failed verification does not count) fetched P. Apart from the referrer-attributed
        visits of `referrals` (which carry the assistant's host or utm_source). `summary` also
        gives `expected_by_chance`: the same count with time reversed (landings that came at most
        the window *before* such a fetch), which a click from an answer cannot make, so it
        estimates the coincidences among the inferred, and `net_estimate` the visits less them;
        `by_operator`, `by_agent`; `visits`: each inferred visit with its evidence (the fetch, its
        agent, the seconds between and a reason)."""
        window = float(self.ai_window)
        pages = ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)
        # The fetches of pages by user-triggered assistants whose identity held.
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE ai_fetch AS
                SELECT site, path, ts AS fetched, agent, operator
                FROM requests {self._where(extra=f"automated AND purpose = 'ai_assistant' AND identity <> 'spoofed' AND page_type IN ({pages})")}"""
        )
        # Human visits landing on a page with no referrer and no utm_source.
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE bare_landing AS
                SELECT session_id, site, path, ts FROM (
                    SELECT session_id, site, path, ts, referer, query, page_type FROM requests
                    {self._where(extra="actor_class = 'human'")}
                    QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY ts, source, line_no) = 1)
                WHERE referer IS NULL AND coalesce(query, '') NOT ILIKE '%utm_source=%' AND page_type IN ({pages})"""
        )
        visits = self.q(
            f"""SELECT l.session_id, l.site, l.path, l.ts AS landed, f.fetched, f.agent, f.operator,
                       epoch(l.ts) - epoch(f.fetched) AS seconds_after,
                       'inferred:ai_fetch:' || f.agent || ':' || l.path || ':' ||
                       round(epoch(l.ts) - epoch(f.fetched))::BIGINT || 's_after' AS reason
                FROM bare_landing l ASOF JOIN ai_fetch f
                  ON l.site = f.site AND l.path = f.path AND l.ts >= f.fetched
                WHERE epoch(l.ts) - epoch(f.fetched) <= {window}
                ORDER BY landed, session_id"""
        )
        chance = int(
            self.con.sql(
                f"""SELECT count(*) FROM bare_landing l ASOF JOIN ai_fetch f
                      ON l.site = f.site AND l.path = f.path AND l.ts < f.fetched
                    WHERE epoch(f.fetched) - epoch(l.ts) <= {window}"""
            ).fetchall()[0][0]
        )
        by_operator = (
            visits.group_by("operator")
            .agg(visits=pl.len(), median_seconds=pl.col("seconds_after").median())
            .sort(["visits", "operator"], descending=[True, False])
        )
        by_agent = (
            visits.group_by("agent", "operator")
            .agg(visits=pl.len(), median_seconds=pl.col("seconds_after").median())
            .sort(["visits", "agent"], descending=[True, False])
        )
        fetches = int(self.con.sql("SELECT count(*) FROM ai_fetch").fetchall()[0][0])
        human_visits = self._sessions(human_only=True)
        referred = self.referrals()["summary"]["visits"]
        summary = {
            "window_s": window,
            "visits": visits.height,
            "expected_by_chance": chance,
            "net_estimate": max(visits.height - chance, 0),
            "assistant_fetches": fetches,
            "bare_landings": int(self.con.sql("SELECT count(*) FROM bare_landing").fetchall()[0][0]),
            "referrer_attributed": referred,
            "share_of_human_visits": visits.height / human_visits if human_visits else 0.0,
        }
        return {
            "summary": summary,
            "by_operator": by_operator,
            "by_agent": by_agent,
            "visits": visits.head(max(self.top, 50)),
        }

    @section
    def robots(self) -> pl.DataFrame:
        """Per agent (or unnamed automated class): robots.txt fetches, and robots.txt violations
        (recorded when classify was given `--robots`)."""
        return self.q(
            f"""WITH v AS (SELECT cid, sum(requests) AS violations FROM th
                           WHERE threat = 'robots_violation' GROUP BY 1),
                     pc AS (SELECT cid, any_value(agent) AS agent, any_value(actor_class) AS actor_class,
                                   any_value(operator) AS operator, any_value(purpose) AS purpose,
                                   sum(requests) AS requests, sum(robots) AS robots,
                                   min(first_robots) AS first_robots
                            FROM x WHERE automated GROUP BY cid),
                     k AS (SELECT pc.*, coalesce(v.violations, 0) AS violations FROM pc LEFT JOIN v USING (cid))
                -- An unnamed class gathers clients of several purposes: the one of most requests.
                SELECT coalesce(agent, '(unnamed ' || any_value(actor_class) || ')') AS agent,
                       first(operator ORDER BY requests DESC, operator) AS operator,
                       first(purpose ORDER BY requests DESC, purpose) AS purpose,
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
