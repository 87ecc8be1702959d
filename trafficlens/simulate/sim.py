"""The simulation's state: the site, its visitors' user agents, address spaces and operators'
fleets, the label profiles; and one day of requests from every scenario in the registry.

Every random draw comes from a generator seeded with the run's seed: the site and the fleets from
one, each scenario of each day from its own (seed, day, scenario), people who come back on several
days from their own, so the same arguments give the same bytes and a scenario's output does not
depend on the others'. A run makes the families asked for (`families`); a scenario none of whose
families is asked for is not run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PURPOSES
from trafficlens.simulate.addresses import (
    AGENT_PREFIXES,
    BOTNET,
    CELLULAR,
    CLOUD,
    HOSTING_16,
    RESIDENTIAL,
    RESIDENTIAL6,
    RESIDENTIAL_W,
    Space,
)
from trafficlens.simulate.agents import AGENT_BROWSER_UAS, AGENTS, HEADLESS_UAS, SCANNER_UAS, STALE_UAS, browser_uas
from trafficlens.simulate.families import FAMILIES
from trafficlens.simulate.rows import COLS, DTYPES, GET, HEAD, US, Day, Profile, Rows, mask
from trafficlens.simulate.scenarios import FAMILY_OF, REGISTRY, SCENARIOS
from trafficlens.simulate.site import R, Site

AI_GROWTH = 2.5  # AI crawler, assistant and agent volume from the first day to the last


class Monitor(NamedTuple):
    """An uptime check: its vendor, period and phase (microseconds), the page's role and the method."""

    vendor: str
    period: int
    phase: int
    role: int
    method: int


class Sim:
    """The site, its visitors and their labels; generates one day of requests at a time."""

    def __init__(
        self,
        *,
        seed: int,
        scale: float,
        days: int,
        site_kind: str,
        start: dt.date,
        site: str,
        layout: str = "origin",
        families: Sequence[str] = FAMILIES,
        incidents: bool = False,
    ) -> None:
        self.seed, self.scale, self.days, self.start, self.host = seed, scale, days, start, site
        self.incidents = incidents  # the opt-in scenario's last-day incidents (scenarios/incidents.py)
        self.families = frozenset(families)
        rng = np.random.default_rng([seed, 7_000_001])
        # The site's own analytics script, if it has one, posts a beacon when a page opens and then
        # every few seconds while it stays open (engagement time, scroll or mouse tracking), so
        # the requests of a browser that runs scripts never pause for long, while a person reads.
        # Consecutive seeds cycle through the choices (none, 2 s, 5 s, 15 s).
        self.site = Site(site_kind, rng, start, beacon_period=(None, 2.0, 5.0, 15.0)[seed % 4], layout=layout)
        # Clients that last several days (returning people, offices), built on first use.
        self.populations: dict[str, Any] = {}

        # User agents: one pool, rows hold indexes.
        self.uas: list[str] = []
        self._ua_index: dict[str, int] = {}
        browsers = browser_uas()
        self.browser_ua = np.array([self.ua(u) for u, _ in browsers])
        self.browser_p = np.array([w for _, w in browsers]) / sum(w for _, w in browsers)
        # Phones (and tablets) apart from desktops: families differ by device.
        mobile = np.array(["Mobile" in u or "Android" in u for u, _ in browsers])
        self.phone_ua, self.desktop_ua = self.browser_ua[mobile], self.browser_ua[~mobile]
        self.phone_p = self.browser_p[mobile] / self.browser_p[mobile].sum()
        self.desktop_p = self.browser_p[~mobile] / self.browser_p[~mobile].sum()
        self.stale_ua = np.array([self.ua(u) for u in STALE_UAS])
        self.agent_ua = np.array([self.ua(u) for u in AGENT_BROWSER_UAS])
        self.headless_ua = {k: np.array([self.ua(u) for u in v]) for k, v in HEADLESS_UAS.items()}
        self.bot_ua = {name: np.array([self.ua(u) for u in a.uas]) for name, a in AGENTS.items()}
        if incidents:  # the user agents the output knows are those made here, before any day
            from trafficlens.simulate.scenarios.incidents import NEW_AGENT

            self.ua(NEW_AGENT[2])
        self.scanner_ua = {k: np.array([self.ua(u) for u in v]) for k, v in SCANNER_UAS.items()}

        # Addresses.
        self.residential = Space(RESIDENTIAL, RESIDENTIAL_W)
        self.residential6 = Space(RESIDENTIAL6)
        self.botnet = Space(BOTNET)
        self.hosting = Space(HOSTING_16)
        self.cloud = Space(CLOUD)
        self.cellular = Space(CELLULAR)
        self.agent_space = {name: Space(p) for name, (_, p) in AGENT_PREFIXES.items()}
        fleet = {
            "Googlebot": 60,
            "bingbot": 40,
            "GPTBot": 40,
            "ClaudeBot": 30,
            "meta-externalagent": 30,
            "Bytespider": 40,
            "ChatGPT-User": 60,
            "Perplexity-User": 12,
            "Claude-User": 20,
            "Amazonbot": 16,
        }
        # Each operator's fleet: a fixed set of machines, reused day after day.
        self.fleet = {name: sp.sample(rng, fleet.get(name, 8)) for name, sp in self.agent_space.items()}

        # Labels.
        self.profiles: list[Profile] = []
        self._profile_index: dict[Profile, int] = {}

        # Monitors keep their schedule across days; a larger site has a few more, not many more.
        n_mon = max(1, round(2 * scale**0.5))
        self.monitors: list[Monitor] = []
        for i in range(n_mon):
            vendor = ("UptimeRobot", "Pingdom")[i % 2]
            period = int(rng.choice([60, 120, 180, 300])) if i else 300
            self.monitors.append(
                Monitor(
                    vendor,
                    period * US,
                    int(rng.integers(0, period * US)),
                    R["home"] if rng.random() < 0.5 else R["health"],
                    HEAD if vendor == "UptimeRobot" else GET,
                )
            )

    # -- registries -------------------------------------------------------------------------

    def ua(self, s: str) -> int:
        """The index of a user agent in the pool (added on first use)."""
        if s not in self._ua_index:
            assert '"' not in s and "\\" not in s, s
            self._ua_index[s] = len(self.uas)
            self.uas.append(s)
        return self._ua_index[s]

    def profile(
        self,
        sid: int,
        actor_class: str,
        purpose: str,
        identity: str,
        *,
        automated: bool = True,
        ai_driven: bool = False,
        operator: str | None = None,
        agent: str | None = None,
        threats: Sequence[str] = (),
        path_threats: bool = False,
        http2: bool = False,
        family: str | None = None,
    ) -> int:
        """The index of scenario `sid`'s clients with these labels (added on first use); `family`
        defaults to the scenario's own."""
        assert actor_class in ACTOR_CLASSES and purpose in PURPOSES and identity in IDENTITIES, (actor_class, purpose)
        if family is None:
            (family,) = FAMILY_OF[SCENARIOS[sid]]
        assert family in FAMILY_OF[SCENARIOS[sid]], family
        p = Profile(
            SCENARIOS[sid],
            actor_class,
            automated,
            ai_driven,
            purpose,
            operator,
            agent,
            identity,
            mask(*threats),
            path_threats,
            http2,
            family,
        )
        if p not in self._profile_index:
            self._profile_index[p] = len(self.profiles)
            self.profiles.append(p)
        return self._profile_index[p]

    def agent_profile(self, sid: int, name: str, family: str | None = None) -> int:
        """The profile of a declared agent: `verified` where its operator publishes its ranges."""
        a = AGENTS[name]
        published = bool(AGENT_PREFIXES.get(name, ("",))[0])
        return self.profile(
            sid,
            a.actor_class,
            a.purpose,
            "verified" if published else "declared",
            ai_driven=a.ai_driven,
            operator=a.operator,
            agent=a.name,
            family=family,
        )

    # -- one day ------------------------------------------------------------------------------

    def frame(self, parts: list[Rows]) -> pl.DataFrame:
        """Scenario rows -> one frame, threats completed from the paths where the profile says so."""
        parts = [p for p in parts if len(p["ts"])]
        if not parts:
            return pl.DataFrame(schema=DTYPES)
        cols = {c: np.concatenate([p[c] for p in parts]) for c in COLS if c != "threats"}
        if self.site.layout == "cdn":
            # The CDN answers every asset request, whoever sends it: none reaches the origin's log.
            served = ~self.site.r_asset[self.site.role[cols["path"]]]
            cols = {c: v[served] for c, v in cols.items()}
        base = np.array([p.threats for p in self.profiles], dtype=np.int32)
        by_path = np.array([p.path_threats for p in self.profiles])
        prof = cols["profile"].astype(np.int64)
        cols["threats"] = base[prof] | np.where(by_path[prof], self.site.threat[cols["path"]], 0)
        return pl.DataFrame({c: pl.Series(c, cols[c], dtype=DTYPES[c]) for c in COLS})

    def day_frame(self, d: int) -> pl.DataFrame:
        """Every scenario's requests of day `d`, unsorted."""
        start = self.start + dt.timedelta(days=d)
        day = Day(
            d,
            int(np.datetime64(start, "us").astype(np.int64)),
            AI_GROWTH ** (d / max(self.days - 1, 1)),
            start.weekday(),
        )
        frames = []
        for sid, (name, scenario) in enumerate(REGISTRY.items()):
            if self.families.isdisjoint(FAMILY_OF[name]):
                continue
            rng = np.random.default_rng([self.seed, d, sid])
            frames.append(self.frame(scenario(self, rng, day, sid)))
        return pl.concat(frames)
