"""Threats: attack patterns per request, and behavioural threats per client and client group.

Per request (DESIGN.md layer 4, `rules`): the rules of catalogues/attack_rules.yml over the request
target (URL-decoded twice, lower-cased), its path, the raw request line, the method and the user
agent. They run once per distinct value, before the buckets, behind one combined regex that lets
the benign majority through in a single pass; each bucket joins its requests to the matches. A
probe rule (a path a site may have) fires only where the site does not serve the path (`served`);
payloads and exposures fire on their own. Each request keeps what it matched itself
(`request_findings`) apart from its client's verdict.

Per client and group, in time windows (`behavioural`, one builder per threat, thresholds in
`config`; each client's rows computed bucket by bucket, the groups over them): vulnerability
scanning, credential stuffing and brute force, card testing, fake sign-ups, abusive scraping,
user-agent rotation, floods; and robots.txt violations (`robots`) when the site's robots.txt is
given. Login, sign-up and payment endpoints come from the page-type rules. Every threat carries a
reason that says what crossed which threshold.
"""

from __future__ import annotations

from trafficlens.classify.threats.behavioural import (
    BEHAVIOURAL_THREATS,
    Inputs,
    ThreatSQL,
    behavioural_sql,
    client_rows_sql,
    client_threats,
)
from trafficlens.classify.threats.config import ThreatConfig
from trafficlens.classify.threats.robots import (
    REQUEST_ROBOTS,
    REQUEST_ROBOTS_COLUMNS,
    RobotsSource,
    RobotsVersion,
    judge_robots,
    load_robots,
    parse_robots,
    robots_tokens,
    robots_violations,
    write_robots_versions,
)
from trafficlens.classify.threats.rules import (
    AttackRule,
    attack_fields,
    attack_rows_sql,
    attack_tables,
    attack_values,
    field_hits_sql,
    field_sql,
    load_attack_rules,
    request_attacks,
    request_findings,
    request_threat_summary,
    rules_path,
)

__all__ = [
    "BEHAVIOURAL_THREATS",
    "AttackRule",
    "attack_fields",
    "attack_rows_sql",
    "attack_tables",
    "attack_values",
    "Inputs",
    "ThreatConfig",
    "ThreatSQL",
    "behavioural_sql",
    "client_rows_sql",
    "client_threats",
    "field_hits_sql",
    "field_sql",
    "load_attack_rules",
    "REQUEST_ROBOTS",
    "REQUEST_ROBOTS_COLUMNS",
    "RobotsSource",
    "RobotsVersion",
    "judge_robots",
    "load_robots",
    "parse_robots",
    "request_attacks",
    "request_findings",
    "request_threat_summary",
    "robots_tokens",
    "robots_violations",
    "write_robots_versions",
    "rules_path",
]
