"""Pay-per-crawl replay: the requests already in the lake, answered by a pricing policy (charge,
allow or refuse, by identity, agent and purpose), and what each operator would have paid or been
refused, the bandwidth that saves and the visits its assistants referred that it puts at risk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from trafficlens.classify.threats.config import read_yaml
from trafficlens.errors import OptionError
from trafficlens.report.core import section
from trafficlens.report.referrals import ReferralSections
from trafficlens.schema import IDENTITIES, PURPOSES

ACTIONS = ("charge", "allow", "refuse")


@dataclass(frozen=True)
class Rule:
    """What a policy does with a request: its action, and its price per request if charged."""

    action: str
    price: float = 0.0


@dataclass(frozen=True)
class Pricing:
    """A pay-per-crawl policy (catalogues/pay_per_crawl.yml documents its fields)."""

    currency: str
    default: Rule
    identities: dict[str, Rule]
    agents: dict[str, Rule]
    purposes: dict[str, Rule]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Pricing:
        """The policy in `path` (YAML), or the shipped one; a bad file is one line naming what is wrong."""
        doc, where = read_yaml("--pricing", path, "pay_per_crawl.yml", OptionError)
        if not isinstance(doc, dict):
            raise OptionError(
                f"--pricing {where}: expected a mapping (currency, default, identities, purposes, agents)"
            )
        unknown = sorted(set(doc) - {"currency", "default", "identities", "agents", "purposes"})
        if unknown:
            raise OptionError(f"--pricing {where}: unknown key {unknown[0]!r}")

        def rule(value: Any, what: str) -> Rule:
            if isinstance(value, str):
                value = {"action": value}
            if not isinstance(value, dict) or value.get("action") not in ACTIONS:
                raise OptionError(f"--pricing {where}: {what} needs an action, one of {', '.join(ACTIONS)}")
            price = value.get("price", 0.0)
            if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
                raise OptionError(f"--pricing {where}: {what}'s price must be a number of 0 or more")
            if value["action"] == "charge" and not price:
                raise OptionError(f"--pricing {where}: {what} charges, so it needs a price above 0")
            return Rule(value["action"], float(price))

        def rules(key: str, known: tuple[str, ...] | None) -> dict[str, Rule]:
            part = doc.get(key) or {}
            if not isinstance(part, dict):
                raise OptionError(f"--pricing {where}: {key} must map names to rules")
            for name in part:
                if known is not None and name not in known:
                    raise OptionError(f"--pricing {where}: {key}: no {name!r}; choose from {', '.join(known)}")
            return {str(k): rule(v, f"{key}.{k}") for k, v in part.items()}

        return cls(
            currency=str(doc.get("currency") or "USD"),
            default=rule(doc.get("default", {"action": "allow"}), "default"),
            identities=rules("identities", IDENTITIES),
            agents=rules("agents", None),
            purposes=rules("purposes", PURPOSES),
        )

    def table(self) -> pl.DataFrame:
        """`kind, name, action, price`: every rule, for a join."""
        rows = [("identity", k, r.action, r.price) for k, r in self.identities.items()]
        rows += [("agent", k, r.action, r.price) for k, r in self.agents.items()]
        rows += [("purpose", k, r.action, r.price) for k, r in self.purposes.items()]
        return pl.DataFrame(
            rows, schema={"kind": pl.String, "name": pl.String, "action": pl.String, "price": pl.Float64}, orient="row"
        )


class ReplaySections(ReferralSections):
    """Pay-per-crawl replay (reads the referrals section: the visits at risk)."""

    pricing: Pricing | None = None

    @section
    def pay_per_crawl(self) -> dict[str, Any]:
        """Per operator (automation naming none: `(undeclared)`, false claims: `(spoofed)`): its
        automated requests as the policy would answer them, charged (served with content, at a
        price), allowed, refused (403) or asked to pay (402, when a charged request is not paid);
        what it would owe; the bytes refusing saves and the bytes a 402 would; the human visits
        its assistants referred (the `referrals` section), at risk where it is refused or charged."""
        pricing = self.pricing or Pricing.load()
        self.con.register("ppc_rules", pricing.table())
        d = pricing.default
        rule = "SELECT name, action, price FROM ppc_rules WHERE kind = "
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE ppc AS
                WITH r AS (SELECT coalesce(operator, CASE WHEN identity = 'spoofed' THEN '(spoofed)'
                                                          ELSE '(undeclared)' END) AS operator,
                                  agent, purpose, identity, page_type, status, coalesce(bytes, 0) AS bytes
                           FROM requests {self._where(extra="automated")}),
                     d AS (SELECT r.*, coalesce(i.action, a.action, p.action, '{d.action}') AS action,
                                  coalesce(CASE WHEN i.action IS NOT NULL THEN i.price END, a.price, p.price,
                                           {d.price}) AS price
                           FROM r LEFT JOIN ({rule}'identity') i ON r.identity = i.name
                                  LEFT JOIN ({rule}'agent') a ON r.agent = a.name
                                  LEFT JOIN ({rule}'purpose') p ON r.purpose = p.name)
                -- robots.txt is free to all; a charge is for content served (2xx), the rest passes.
                SELECT operator, agent, bytes,
                       CASE WHEN page_type = 'robots' THEN 'allow'
                            WHEN action = 'charge' AND NOT (status >= 200 AND status < 300) THEN 'allow'
                            ELSE action END AS action,
                       price
                FROM d"""
        )
        referred = self.referrals()["by_operator"].select("operator", referred_visits="visits")
        self.con.register("ppc_referred", referred)
        by_operator = self.q(
            """WITH o AS (SELECT operator, list(DISTINCT agent ORDER BY agent) FILTER (agent IS NOT NULL) AS agents,
                                 count(*) AS requests,
                                 count(*) FILTER (action = 'charge') AS charged,
                                 round(coalesce(sum(price) FILTER (action = 'charge'), 0), 6) AS amount,
                                 count(*) FILTER (action = 'allow') AS allowed,
                                 count(*) FILTER (action = 'refuse') AS refused,
                                 coalesce(sum(bytes) FILTER (action = 'refuse'), 0)::BIGINT AS bytes_refused,
                                 coalesce(sum(bytes) FILTER (action = 'charge'), 0)::BIGINT AS bytes_charged
                          FROM ppc GROUP BY operator)
               SELECT o.*, coalesce(f.referred_visits, 0) AS referred_visits
               FROM o LEFT JOIN ppc_referred f USING (operator)
               ORDER BY amount DESC, refused DESC, requests DESC, operator"""
        ).with_columns(pl.col("agents").fill_null([]))
        total = by_operator.select(
            pl.col("requests", "charged", "allowed", "refused", "bytes_refused", "bytes_charged").sum()
        ).row(0, named=True)
        refused_ops = by_operator.filter(pl.col("refused") > 0)
        charged_ops = by_operator.filter(pl.col("charged") > 0)
        summary = {
            "currency": pricing.currency,
            "amount": round(float(by_operator["amount"].sum()), 6),
            **{k: int(v or 0) for k, v in total.items()},
            "operators_charged": charged_ops.height,
            "operators_refused": refused_ops.height,
            "referrals_at_risk_refused": int(refused_ops["referred_visits"].sum()),
            "referrals_at_risk_charged": int(charged_ops["referred_visits"].sum()),
        }
        return {"summary": summary, "by_operator": by_operator}


__all__ = ["ACTIONS", "Pricing", "ReplaySections", "Rule"]
