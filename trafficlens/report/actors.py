"""Report sections on who sends the traffic: operators, named agents, the verification of their
claims, clients by identity and the automated agents, named or not."""

from __future__ import annotations

import polars as pl

from trafficlens.report.core import ReportBase, section


class ActorSections(ReportBase):
    """Operators and agents: their volume, status mix and how many of their clients are verified."""

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

    @section
    def operators(self) -> pl.DataFrame:
        """Per operator: requests, share, clients, bytes, pages, status mix, first and last seen,
        purposes and agents of its own traffic, and the clients that claim it by identity
        (verified / declared / spoofed: spoofed ones are not in its volume)."""
        extra = """, list(DISTINCT purpose ORDER BY purpose) AS purposes,
                     coalesce(list(DISTINCT agent ORDER BY agent) FILTER (agent IS NOT NULL), []) AS agents"""
        return self.q(self._per("operator", extra, claim="claimed_operator"))

    @section
    def agents(self) -> pl.DataFrame:
        """Per named agent: the operator figures, plus its operator, purpose and class."""
        extra = """, any_value(operator) AS operator, mode(purpose) AS purpose, mode(actor_class) AS actor_class"""
        return self.q(self._per("agent", extra))

    @section
    def verification(self) -> pl.DataFrame:
        """Per claimed agent that can be checked: clients verified, declared and spoofed, and the
        spoofed requests and addresses."""
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

    @section
    def identities(self) -> pl.DataFrame:
        """Clients per identity (verified, declared, spoofed, undeclared, none), most first."""
        return self.q("SELECT identity, count(DISTINCT cid) AS clients FROM x GROUP BY 1 ORDER BY 2 DESC, 1")

    @section
    def automated(self) -> pl.DataFrame:
        """Requests per automated agent, busiest first, named as a reader says it: 'GPTBot by
        OpenAI · AI training', 'Pingdom (SolarWinds) · monitoring' (an operator named after its
        agent once), 'Googlebot (spoofed) · security scanner' (a false claim has no operator), and
        the unnamed ones as 'unnamed scraper (undeclared)'."""
        name = """CASE WHEN agent IS NOT NULL AND operator IS NOT NULL AND NOT starts_with(operator, agent)
                        THEN agent || ' by ' || operator
                        ELSE coalesce(operator, agent) END"""
        purpose = (
            "CASE purpose WHEN 'seo' THEN 'SEO' ELSE regexp_replace(replace(purpose, '_', ' '), '^ai ', 'AI ') END"
        )
        return self.q(
            f"""SELECT CASE WHEN agent IS NULL AND operator IS NULL
                            THEN 'unnamed ' || actor_class || ' (' || identity || ')'
                            ELSE {name} || CASE WHEN identity = 'spoofed' THEN ' (spoofed)' ELSE '' END
                                 || ' · ' || {purpose} END AS agent,
                       sum(requests)::BIGINT AS requests
                FROM x WHERE automated GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {self.top}"""
        )
