"""How AI agents find their way into a site: the discovery funnel from robots.txt, through
sitemaps and the files a site offers language models (llms.txt, llms-full.txt, Markdown copies of
its pages, llmstxt.org), to the pages themselves."""

from __future__ import annotations

from typing import Any

from trafficlens.report.core import ReportBase, section
from trafficlens.schema import PAGE_VIEW_TYPES
from trafficlens.store import sql_literal

# The funnel's stages, in the order a well-behaved agent reaches them.
DISCOVERY_STAGES = ("robots", "sitemap", "llms_txt", "llms_full_txt", "markdown", "pages")


def stage_sql() -> str:
    """The funnel stage of a request (NULL for what is none of them), from its path and page type.
    Markdown copies come before pages: `/p/item.md` is the copy, not the item's page."""
    pages = ", ".join(sql_literal(t) for t in PAGE_VIEW_TYPES)
    return f"""CASE WHEN page_type = 'robots' THEN 'robots'
                    WHEN page_type = 'sitemap' THEN 'sitemap'
                    WHEN regexp_matches(lower(path), '(^|/)llms\\.txt$') THEN 'llms_txt'
                    WHEN regexp_matches(lower(path), '(^|/)llms-full\\.txt$') THEN 'llms_full_txt'
                    WHEN regexp_matches(lower(path), '\\.(md|mdx|markdown)$') THEN 'markdown'
                    WHEN page_type IN ({pages}) THEN 'pages' END"""


class DiscoverySections(ReportBase):
    """The discovery funnel per agent."""

    @section
    def discovery(self) -> dict[str, Any]:
        """Per agent (unnamed automation by class): its requests at each stage of the funnel, the
        clients it came from and when it first reached each stage; `summary`: how many agents
        reached each stage, and which ever read llms.txt or llms-full.txt."""
        counts = ",\n".join(f"count(*) FILTER (stage = '{s}') AS {s}" for s in DISCOVERY_STAGES)
        firsts = ",\n".join(f"min(ts) FILTER (stage = '{s}') AS first_{s}" for s in DISCOVERY_STAGES)
        by_agent = self.q(
            f"""WITH r AS (SELECT agent, actor_class, operator, purpose, client_id, ts, {stage_sql()} AS stage
                           FROM requests {self._where(extra="automated")})
                SELECT coalesce(agent, '(unnamed ' || any_value(actor_class) || ')') AS agent,
                       any_value(operator) AS operator, any_value(purpose) AS purpose,
                       count(DISTINCT client_id) AS clients, {counts}, {firsts}
                FROM r WHERE stage IS NOT NULL
                GROUP BY agent, CASE WHEN agent IS NULL THEN actor_class END
                ORDER BY llms_txt + llms_full_txt + markdown DESC, robots + sitemap DESC, pages DESC, agent"""
        )
        reached = {s: by_agent.filter(by_agent[s] > 0).height for s in DISCOVERY_STAGES}
        readers = by_agent.filter((by_agent["llms_txt"] + by_agent["llms_full_txt"]) > 0)["agent"].to_list()
        summary = {"agents": by_agent.height, "reached": reached, "llms_txt_readers": readers}
        return {"summary": summary, "by_agent": by_agent}


__all__ = ["DISCOVERY_STAGES", "DiscoverySections", "stage_sql"]
