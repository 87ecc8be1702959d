"""Rules from what the lake saw (`trafficlens export`): robots.txt groups per agent by policy, and
server rules (nginx, Apache, Caddy, HAProxy) that refuse what ignores robots.txt or lies.

A policy is `block-KIND` or `allow-KIND`; kinds are purposes (`ai-training`, `ai-search`,
`ai-assistant`, `ai-agent`, `search-engine`, `seo`, `archive`, …), `ai` (every AI-driven agent)
or `all`. The most specific policy that names an agent's kind decides it (`allow-ai-search`
beats `block-ai`); between equally specific ones the later wins. The default blocks AI training
and allows AI search and AI assistants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trafficlens.classify.agents import Agent, load_catalogue
from trafficlens.errors import OptionError
from trafficlens.schema import EXPORT_TARGETS, PURPOSES
from trafficlens.store import Lake, connect

TARGETS = EXPORT_TARGETS
DEFAULT_POLICY = ("block-ai-training", "allow-ai-search", "allow-ai-assistant")
# Kinds a policy can name: each purpose (dashes for underscores), then the broad ones.
KINDS = tuple(p.replace("_", "-") for p in PURPOSES if p not in ("human", "unknown")) + ("ai", "all")
_SPECIFICITY = {"all": 0, "ai": 1}  # purposes: 2


@dataclass(frozen=True)
class Policy:
    """One `block-KIND` / `allow-KIND` rule, in the order given."""

    action: str  # block | allow
    kind: str
    order: int

    @property
    def specificity(self) -> int:
        return _SPECIFICITY.get(self.kind, 2)

    def applies(self, purpose: str, ai_driven: bool) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "ai":
            return ai_driven
        return purpose == self.kind.replace("-", "_")


def parse_policies(specs: list[str] | tuple[str, ...] | None) -> list[Policy]:
    """`["block-ai-training", "allow-ai-search"]` (or comma-separated) -> policies, checked."""
    items = [p.strip() for spec in (specs or DEFAULT_POLICY) for p in spec.split(",") if p.strip()]
    out = []
    for i, item in enumerate(items):
        action, _, kind = item.partition("-")
        if action not in ("block", "allow") or kind not in KINDS:
            raise OptionError(f"--policy {item}: use block-KIND or allow-KIND, KIND one of {', '.join(KINDS)}")
        out.append(Policy(action, kind, i))
    return out


def decide(policies: list[Policy], purpose: str, ai_driven: bool) -> Policy | None:
    """The policy that decides an agent: the most specific that applies, the later on a tie."""
    hits = [p for p in policies if p.applies(purpose, ai_driven)]
    return max(hits, key=lambda p: (p.specificity, p.order)) if hits else None


@dataclass
class AgentRule:
    """One agent of the catalogue with what the lake saw of it and what the policies decide."""

    name: str
    operator: str
    purpose: str
    ai_driven: bool
    tokens: tuple[str, ...]
    requests: int = 0
    violations: int = 0
    spoofed_clients: int = 0
    decision: Policy | None = None
    seen: bool = False
    in_user_agent: bool = True  # false: a robots.txt-only token (Google-Extended), never in a user agent


@dataclass
class Plan:
    """What the exports write: agents by decision, robots.txt violators, spoofed addresses."""

    agents: list[AgentRule]
    spoofed_addresses: list[tuple[str, str, int]]  # (address, claimed agent, requests)
    policies: list[Policy]
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocked(self) -> list[AgentRule]:
        return [a for a in self.agents if a.decision and a.decision.action == "block"]

    @property
    def allowed(self) -> list[AgentRule]:
        return [a for a in self.agents if a.decision and a.decision.action == "allow"]

    @property
    def violators(self) -> list[AgentRule]:
        return [a for a in self.agents if a.violations > 0]


def _seen(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame]:
    lake.require_labels()
    con = connect(lake)
    try:
        agents = con.sql(
            """SELECT agent, count(*) AS requests,
                      count(*) FILTER (list_contains(threats, 'robots_violation')) AS violations,
                      count(DISTINCT client_id) FILTER (identity = 'spoofed') AS spoofed_clients
               FROM requests WHERE agent IS NOT NULL GROUP BY 1"""
        ).pl()
        # A pseudonymised address (NET~KEY, --ip-privacy) names no address a server can refuse.
        spoofed = con.sql(
            """SELECT client_ip, any_value(agent) AS agent, sum(requests)::BIGINT AS requests
               FROM clients WHERE identity = 'spoofed' AND client_ip IS NOT NULL AND NOT contains(client_ip, '~')
               GROUP BY 1 ORDER BY requests DESC, client_ip"""
        ).pl()
    finally:
        con.close()
    return agents, spoofed


def plan(lake: str | Path, policies: list[str] | tuple[str, ...] | None = None, all_known: bool = False) -> Plan:
    """The rules for `lake`: every catalogue agent with a robots.txt token that the lake saw (or
    every one, with `all_known`), and the robots-only tokens (Google-Extended, Applebot-Extended,
    …) of operators it saw."""
    pols = parse_policies(policies)
    seen, spoofed = _seen(Lake(lake))
    stats = {r["agent"]: r for r in seen.iter_rows(named=True)}
    cat = load_catalogue()
    seen_operators = {a.operator for a in cat.agents if a.name in stats}
    rules: list[AgentRule] = []
    names: set[str] = set()
    for a in cat.agents:
        if not a.robots or a.name in names:
            continue
        keep = all_known or a.name in stats or (not a.in_user_agent and a.operator in seen_operators)
        if not keep:
            continue
        names.add(a.name)
        s = stats.get(a.name, {})
        rules.append(_rule(a, s, pols))
    rules.sort(key=lambda r: (-r.requests, r.name.lower()))
    return Plan(rules, [(r["client_ip"], r["agent"] or "", r["requests"]) for r in spoofed.iter_rows(named=True)], pols)


def _rule(a: Agent, s: dict, pols: list[Policy]) -> AgentRule:
    return AgentRule(
        name=a.name,
        operator=a.operator,
        purpose=a.purpose,
        ai_driven=a.ai_driven,
        tokens=a.robots,
        requests=int(s.get("requests") or 0),
        violations=int(s.get("violations") or 0),
        spoofed_clients=int(s.get("spoofed_clients") or 0),
        decision=decide(pols, a.purpose, a.ai_driven),
        seen=bool(s),
        in_user_agent=a.in_user_agent,
    )


def _header(p: Plan, target: str) -> list[str]:
    pol = " ".join(f"{x.action}-{x.kind}" for x in p.policies)
    c = "#"
    return [
        f"{c} Generated by trafficlens export {target} on {p.generated:%Y-%m-%d} from the traffic in the lake.",
        f"{c} Policy: {pol}",
    ]


def _seen_note(a: AgentRule) -> str:
    what = f"{a.requests:,} requests seen" if a.seen else "not seen"
    return f"{a.name} ({a.operator}, {a.purpose}; {what})"


def robots_txt(p: Plan) -> str:
    """robots.txt groups: one Disallow group for blocked agents, one Allow group for allowed ones."""
    out = _header(p, "robots")
    out.append(
        "# Merge these groups into the site's robots.txt; they name agents, so they do not change `User-agent: *`."
    )
    groups = [("block", "Disallow: /", p.blocked), ("allow", "Allow: /", p.allowed)]
    for _action, line, agents in groups:
        by_policy: dict[str, list[AgentRule]] = {}
        for a in agents:
            by_policy.setdefault(f"{a.decision.action}-{a.decision.kind}", []).append(a)  # type: ignore[union-attr]
        for pol, members in by_policy.items():
            out += ["", f"# {pol}:"] + [f"#   {_seen_note(a)}" for a in members]
            tokens = list(dict.fromkeys(t for a in members for t in a.tokens))
            out += [f"User-agent: {t}" for t in tokens]
            out.append(line)
    if not p.blocked and not p.allowed:
        out += ["", "# No agent seen in the lake falls under these policies."]
    return "\n".join(out) + "\n"


def _ua_regex(agents: list[AgentRule]) -> str:
    tokens = sorted({t for a in agents for t in (a.name, *a.tokens)}, key=str.lower)
    return "|".join(re.escape(t).replace("\\-", "-") for t in tokens)


def _server_sets(p: Plan, enforce: bool) -> tuple[list[AgentRule], list[tuple[str, str, int]]]:
    """User agents to refuse (robots.txt violators, and every blocked agent with `enforce`) and
    addresses to refuse (those that spoofed a verifiable agent: the real agent keeps its access)."""
    agents = {a.name: a for a in p.violators if not (a.decision and a.decision.action == "allow")}
    if enforce:
        agents.update({a.name: a for a in p.blocked if a.in_user_agent})
    return sorted(agents.values(), key=lambda a: a.name.lower()), p.spoofed_addresses


def _comments(p: Plan, agents: list[AgentRule], addresses: list[tuple[str, str, int]]) -> list[str]:
    lines = []
    for a in agents:
        why = [f"{a.violations:,} requests against robots.txt"] if a.violations else []
        if a.decision and a.decision.action == "block":
            why.append(f"policy {a.decision.action}-{a.decision.kind}")
        lines.append(f"#   {a.name} ({a.operator}): {', '.join(why)}")
    if addresses:
        lines.append(f"#   {len(addresses):,} addresses that claimed a verifiable agent and failed the check")
    return lines


def server_rules(p: Plan, target: str, enforce: bool = False) -> str:
    """Blocking rules for nginx, Apache, Caddy or HAProxy."""
    agents, addresses = _server_sets(p, enforce)
    out = _header(p, target) + ["# Refused:"] + _comments(p, agents, addresses)
    if not agents and not addresses:
        return "\n".join(out + ["# Nothing to refuse: no agent ignored robots.txt and no claim was spoofed."]) + "\n"
    ua = _ua_regex(agents)
    ips = [ip for ip, _, _ in addresses]
    if target == "nginx":
        out.append("# In the http block:")
        if ua:
            out += ["map $http_user_agent $trafficlens_block_agent {", "    default 0;", f'    "~*({ua})" 1;', "}"]
        if ips:
            out += ["geo $trafficlens_block_address {", "    default 0;"] + [f"    {ip} 1;" for ip in ips] + ["}"]
        out.append("# In each server block:")
        if ua:
            out.append("if ($trafficlens_block_agent) { return 403; }")
        if ips:
            out.append("if ($trafficlens_block_address) { return 403; }")
    elif target == "apache":
        if ua:
            out.append(f'SetEnvIfNoCase User-Agent "({ua})" trafficlens_block')
        out += ["<Location />", "    <RequireAll>", "        Require all granted"]
        if ua:
            out.append("        Require not env trafficlens_block")
        out += [f"        Require not ip {ip}" for ip in ips]
        out += ["    </RequireAll>", "</Location>"]
    elif target == "caddy":
        out.append("# Inside the site block:")
        if ua:
            out += [
                "@trafficlens_agents {",
                f'    header_regexp User-Agent "(?i)({ua})"',
                "}",
                "respond @trafficlens_agents 403",
            ]
        if ips:
            out += [
                "@trafficlens_addresses {",
                "    remote_ip " + " ".join(ips),
                "}",
                "respond @trafficlens_addresses 403",
            ]
    elif target == "haproxy":
        out.append("# In the frontend section:")
        if ua:
            out.append(f'acl trafficlens_agent hdr_reg(User-Agent) -i "({ua})"')
            out.append("http-request deny deny_status 403 if trafficlens_agent")
        if ips:
            out.append("acl trafficlens_address src " + " ".join(ips))
            out.append("http-request deny deny_status 403 if trafficlens_address")
    else:
        raise OptionError(f"export {target}: choose one of {', '.join(TARGETS)}")
    return "\n".join(out) + "\n"


def export(
    lake: str | Path,
    target: str,
    policies: list[str] | tuple[str, ...] | None = None,
    all_known: bool = False,
    enforce: bool = False,
) -> str:
    """The text of one export: robots.txt groups or one server's blocking rules."""
    if target not in TARGETS:
        raise OptionError(f"export {target}: choose one of {', '.join(TARGETS)}")
    p = plan(lake, policies, all_known)
    return robots_txt(p) if target == "robots" else server_rules(p, target, enforce)


__all__ = [
    "DEFAULT_POLICY",
    "KINDS",
    "TARGETS",
    "Plan",
    "Policy",
    "decide",
    "export",
    "parse_policies",
    "plan",
    "robots_txt",
    "server_rules",
]
