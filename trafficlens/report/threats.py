"""Report section on malicious traffic: requests, clients and addresses per threat, and the top
malicious clients."""

from __future__ import annotations

from typing import Any

from trafficlens.report.core import ReportBase, section
from trafficlens.schema import THREATS
from trafficlens.store import sql_literal


class ThreatSections(ReportBase):
    """The threats found in the traffic."""

    @section
    def threats(self) -> dict[str, Any]:
        """Requests, clients and addresses per threat (the requests that show it, see `th`), and the
        top malicious client profiles (all their requests: malice is a client's verdict)."""
        known = ", ".join(f"({sql_literal(t)}, {i})" for i, t in enumerate(THREATS))
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
