"""The simulated scenarios, by family: people, declared agents, undeclared automation, attacks.

A scenario is a function `(sim, rng, day, sid) -> list of row blocks` building one day of its
requests, labelled with profiles it registers under its number `sid` (`sim.profile(sid, ...)`).
A new scenario goes in its family's module, at the end of `REGISTRY` and in `FAMILY_OF`: a
scenario's position seeds its random stream and numbers its sessions, so appending keeps every
other one's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.families import FAMILIES, HUMAN_FAMILIES
from trafficlens.simulate.rows import Day, Rows
from trafficlens.simulate.scenarios import attacks, automation, declared, incidents, people

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim

Scenario = Callable[["Sim", np.random.Generator, Day, int], list[Rows]]

REGISTRY: dict[str, Scenario] = {
    "human_browsing": people.human_browsing,
    "human_ai_referral": people.human_ai_referral,
    "ai_crawler": declared.ai_crawler,
    "ai_assistant": declared.ai_assistant,
    "search_engine": declared.search_engine,
    "seo_bot": declared.seo_bot,
    "monitor": declared.monitor,
    "http_tool": declared.http_tool,
    "stealth_scraper": automation.stealth_scraper,
    "agentic_browser": automation.agentic_browser,
    "headless_automation": automation.headless_automation,
    "spoofed_crawler": automation.spoofed_crawler,
    "vuln_scanner": attacks.vuln_scanner,
    "credential_stuffing": attacks.credential_stuffing,
    "card_testing": attacks.card_testing,
    "fake_signup": attacks.fake_signup,
    "paced_bot": automation.paced_bot,
    "paced_crawler": automation.paced_crawler,
    "proxy_scraper": automation.proxy_scraper,
    "ai_discovery": declared.ai_discovery,
    "incidents": incidents.incidents,
    "ai_fetch_visit": people.ai_fetch_visit,
}
SCENARIOS = tuple(REGISTRY)
# The families (families.FAMILIES) each scenario makes: people's browsing is one scenario of many
# families; every other scenario is one family.
FAMILY_OF: dict[str, tuple[str, ...]] = {
    "human_browsing": tuple(HUMAN_FAMILIES),
    "human_ai_referral": ("human:ai_referral",),
    "ai_crawler": ("bot:ai_crawler",),
    "ai_assistant": ("bot:ai_assistant",),
    "search_engine": ("bot:search_engine",),
    "seo_bot": ("bot:seo_bot",),
    "monitor": ("bot:monitor",),
    "http_tool": ("bot:http_tool",),
    "stealth_scraper": ("bot:stealth_scraper",),
    "agentic_browser": ("bot:agentic_browser",),
    "headless_automation": ("bot:headless_sweep",),
    "spoofed_crawler": ("bot:spoofed_crawler",),
    "vuln_scanner": ("bot:vuln_scanner",),
    "credential_stuffing": ("bot:credential_stuffing",),
    "card_testing": ("bot:card_testing",),
    "fake_signup": ("bot:fake_signup",),
    "paced_bot": ("bot:humanised_automation",),
    "paced_crawler": ("bot:paced_crawler",),
    "proxy_scraper": ("bot:stealth_scraper",),
    "ai_discovery": ("bot:ai_crawler",),
    "incidents": ("bot:ai_crawler", "bot:spoofed_crawler", "bot:credential_stuffing"),
    "ai_fetch_visit": ("bot:ai_assistant", "human:ai_referral"),
}
# Scenarios a run has only when asked for (`--incidents`).
OPT_IN = ("incidents",)
assert set(FAMILY_OF) == set(REGISTRY) and {f for v in FAMILY_OF.values() for f in v} == set(FAMILIES)
