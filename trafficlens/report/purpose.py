"""Declared purpose against behaviour: does each agent do what its operator says it is for?

A user-triggered fetcher (`ai_assistant`) answers a person's question: a few pages at a time. One
that fetches dozens of pages a visit, most visits or even once, sweeps like an indexer (reading
sitemaps too is noted, weakly). A search crawler (`ai_search`, `search_engine`) earns its keep by
sending visitors: one whose operator sends none back after hundreds of pages does not, here. A
monitor checks a few paths; one reading many pages crawls. Each finding is a reason; the score is
the strongest of them (0: as declared, 1: plainly otherwise). Only claims that held (not spoofed)
are judged: a false claim is another party's behaviour.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import polars as pl
import yaml

from trafficlens.report.core import section
from trafficlens.report.referrals import ReferralSections, ai_referrers
from trafficlens.schema import PAGE_VIEW_TYPES
from trafficlens.store import sql_literal

# What an assistant's fetcher does for one question: a handful of pages (agents reading a whole
# listing stay well under these); beyond them it sweeps.
ASSISTANT_PAGES_PER_VISIT = 20  # the 90th percentile of its visits' pages
ASSISTANT_SWEEP_PAGES = 60  # pages in any one visit
# A search crawler that has crawled this many pages has had time to send visitors back.
SEARCH_MIN_PAGES = 300
# A monitor checks a few paths.
MONITOR_MAX_PATHS = 20


@functools.cache
def search_referrers() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(operator, referrer hosts) of the search engines (catalogues/search_referrers.yml)."""
    text = resources.files("trafficlens").joinpath("catalogues/search_referrers.yml").read_text()
    return tuple((r["operator"], tuple(r["hosts"])) for r in yaml.safe_load(text))


def _host_regex(hosts: tuple[str, ...]) -> str:
    """A host matches itself and its subdomains; `name.` any of its country domains."""
    parts = [rf"(^|\.){re.escape(h)}[a-z.]+$" if h.endswith(".") else rf"(^|\.){re.escape(h)}$" for h in hosts]
    return "|".join(parts)


class PurposeSections(ReferralSections):
    """Declared purpose against behaviour (reads `referrals` for the AI assistants' visits)."""

    @section
    def purpose_check(self) -> dict[str, Any]:
        """Per agent whose claim held: `purpose`, `requests`, `pages`, `visits`, `pages_per_visit_p90`,
        `max_pages_per_visit`, `distinct_pages`, `coverage` (its distinct pages over those anyone viewed on its sites),
        `sitemap_fetches`, `referred_visits` (its operator's: AI referrals and search result
        clicks), `score` and `reasons`; `summary`: agents judged, and those scored 0.5 or more."""
        pages = ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)
        # The agents' requests are read once: per agent, and per visit for the visits' sizes.
        agents = self.q(
            f"""WITH r AS (SELECT agent, operator, purpose, session_id, site, path, page_type
                           FROM requests {self._where(extra="automated AND agent IS NOT NULL AND identity <> 'spoofed'")}),
                     v AS (SELECT agent, quantile_cont(pages, 0.9) AS pages_per_visit_p90,
                                  max(pages) AS max_pages_per_visit
                           FROM (SELECT agent, session_id, count(*) FILTER (page_type IN ({pages})) AS pages
                                 FROM r GROUP BY ALL)
                           GROUP BY agent),
                     site_pages AS (SELECT count(DISTINCT (site, path)) AS n FROM requests
                                    {self._where(extra=f"page_type IN ({pages})")}),
                     a AS (SELECT r.agent, any_value(operator) AS operator, any_value(purpose) AS purpose,
                                  count(*) AS requests, count(*) FILTER (page_type IN ({pages})) AS pages,
                                  count(DISTINCT session_id) AS visits,
                                  count(DISTINCT (site, path)) FILTER (page_type IN ({pages})) AS distinct_pages,
                                  count(DISTINCT (site, path)) FILTER (page_type IN ({pages}))
                                      / greatest(any_value(sp.n), 1) AS coverage,
                                  count(*) FILTER (page_type = 'sitemap') AS sitemap_fetches
                           FROM r, site_pages sp GROUP BY r.agent)
                SELECT a.*, v.pages_per_visit_p90, v.max_pages_per_visit FROM a JOIN v USING (agent)"""
        )
        # Visits each operator sent: its AI assistants' (the referrals section) and clicks on its
        # search results.
        ai = self.referrals()["by_operator"].select("operator", ai_visits="visits")
        rows = [(op, _host_regex(hosts)) for op, hosts in search_referrers()]
        self.con.register("search_ref", pl.DataFrame(rows, schema=["operator", "pattern"], orient="row"))
        self.con.register("ai_hosts", pl.DataFrame({"host": sorted({h for r in ai_referrers() for h in r.hosts})}))
        sites = f"AND site IN ({', '.join(sql_literal(x) for x in self.sites)})" if self.sites else ""
        times = " ".join(
            f"AND start {op} TIMESTAMPTZ '{t.isoformat()}'" for op, t in ((">=", self.since), ("<", self.until)) if t
        )
        search = self.q(
            f"""WITH h AS (SELECT lower(regexp_extract(landing_referer, '^[a-zA-Z]+://([^/:?#]+)', 1)) AS host
                           FROM sessions WHERE landing_referer IS NOT NULL AND actor_class = 'human' {sites} {times}),
                     d AS (SELECT host, count(*) AS n FROM h
                           -- an AI assistant's host (gemini.google.com) is its referrals', not search's
                           WHERE NOT EXISTS (SELECT 1 FROM ai_hosts a WHERE h.host = a.host OR h.host LIKE '%.' || a.host)
                           GROUP BY host)
                SELECT s.operator, sum(d.n)::BIGINT AS search_visits
                FROM d JOIN search_ref s ON regexp_matches(d.host, s.pattern) GROUP BY s.operator"""
        )
        df = (
            agents.join(ai, on="operator", how="left")
            .join(search, on="operator", how="left")
            .with_columns(
                referred_visits=(pl.col("ai_visits").fill_null(0) + pl.col("search_visits").fill_null(0)).cast(pl.Int64)
            )
            .drop("ai_visits", "search_visits")
        )
        assistant = pl.col("purpose") == "ai_assistant"
        searcher = pl.col("purpose").is_in(["ai_search", "search_engine"])
        checks = [
            (
                assistant & (pl.col("pages_per_visit_p90") > ASSISTANT_PAGES_PER_VISIT),
                (pl.col("pages_per_visit_p90") / (2 * ASSISTANT_PAGES_PER_VISIT)).clip(0.5, 1.0),
                pl.format("purpose:ai_assistant:sweeps:pages_per_visit_p90={}", pl.col("pages_per_visit_p90").round(0)),
            ),
            (
                assistant & (pl.col("max_pages_per_visit") > ASSISTANT_SWEEP_PAGES),
                (pl.col("max_pages_per_visit") / (2 * ASSISTANT_SWEEP_PAGES)).clip(0.5, 1.0),
                pl.format("purpose:ai_assistant:sweep:max_pages_per_visit={}", pl.col("max_pages_per_visit")),
            ),
            # A sitemap read for a question is odd, not damning (it may look for the page asked about).
            (
                assistant & (pl.col("sitemap_fetches") > 0),
                pl.lit(0.3),
                pl.format("purpose:ai_assistant:reads_sitemaps={}", pl.col("sitemap_fetches")),
            ),
            (
                searcher & (pl.col("pages") >= SEARCH_MIN_PAGES) & (pl.col("referred_visits") == 0),
                pl.lit(0.5),
                pl.format("purpose:search:no_visits_back:pages={}", pl.col("pages")),
            ),
            (
                (pl.col("purpose") == "monitoring") & (pl.col("distinct_pages") > MONITOR_MAX_PATHS),
                pl.lit(0.5),
                pl.format("purpose:monitoring:crawls:distinct_pages={}", pl.col("distinct_pages")),
            ),
        ]
        empty = pl.lit([], pl.List(pl.String))
        df = df.with_columns(
            score=pl.max_horizontal([pl.when(c.fill_null(False)).then(s).otherwise(0.0) for c, s, _ in checks]).round(
                2
            ),
            reasons=pl.concat_list(
                [pl.when(c.fill_null(False)).then(pl.concat_list(r)).otherwise(empty) for c, _, r in checks]
            ),
        ).sort(["score", "requests"], descending=True)
        flagged = df.filter(pl.col("score") >= 0.5)
        summary = {"agents": df.height, "flagged": flagged.height, "flagged_agents": flagged["agent"].to_list()}
        return {"summary": summary, "by_agent": df}


__all__ = ["PurposeSections", "search_referrers"]
