"""Incidents on the last day of a run, for the alerts (`trafficlens simulate --incidents`; off by
default, so every other output stays as it was): an AI crawler the site never saw, another whose
volume jumps eightfold, a wave of addresses claiming to be Googlebot, a credential-stuffing
campaign five times the usual size, most of GPTBot's crawling arriving from addresses its
operator has not yet published (its requests no longer verify), and Perplexity-User, a fetcher
that acts for a person's question, sweeping hundreds of pages in one visit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.addresses import take
from trafficlens.simulate.browse import Sessions, flat
from trafficlens.simulate.rows import DAY_US, US, Day, Rows, poisson, rows
from trafficlens.simulate.site import R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim

NEW_AGENT = ("AI2Bot", "AI2", "Mozilla/5.0 (compatible) AI2Bot (+https://www.allenai.org/crawler)")
SURGING = "Bytespider"  # its volume on the last day, eightfold
SURGE = 8.0
SPOOFED = "Googlebot"
MOVED = "GPTBot"  # from addresses outside its published ranges
SWEEPER = "Perplexity-User"  # a user-triggered fetcher sweeping the site


def incidents(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    if not sim.incidents or day.index != sim.days - 1 or sim.days < 4:
        return []
    from trafficlens.simulate.scenarios.declared import AI_CRAWLERS

    site = sim.site
    out = []
    crawl = ("product", "listing", "listing_page", "home")
    crawl_p = (0.65, 0.15, 0.15, 0.05)

    def visits(n: int, ip: tuple[np.ndarray, ...], ua: np.ndarray, prof: int, size: tuple[int, int]) -> Rows:
        starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
        who = Sessions(starts, ip, ua, np.full(n, prof, dtype=np.int16), day.sessions(sid, n))
        sizes = rng.integers(*size, n)
        return flat(site, rng, who, sizes=sizes, roles=crawl, role_p=crawl_p, period=rng.uniform(1.5, 6, n), jitter=0.1)

    # A crawler never seen before, from a cloud.
    name, operator, ua = NEW_AGENT
    prof = sim.profile(
        sid,
        "crawler",
        "ai_training",
        "declared",
        ai_driven=True,
        operator=operator,
        agent=name,
        family="bot:ai_crawler",
    )
    n = poisson(rng, 6, 3)
    out.append(visits(n, sim.cloud.sample(rng, n), np.full(n, sim.ua(ua)), prof, (20, 60)))
    # A known crawler, eight times its daily volume, from its own fleet.
    prof = sim.agent_profile(sid, SURGING, family="bot:ai_crawler")
    n = max(3, round(SURGE * AI_CRAWLERS[SURGING] * sim.scale * day.growth / 45))
    fleet = sim.fleet[SURGING]
    out.append(
        visits(n, take(fleet, rng.integers(0, len(fleet[0]), n)), np.full(n, sim.bot_ua[SURGING][0]), prof, (30, 60))
    )
    # Addresses never seen before claiming to be Googlebot, from hosting providers.
    prof = sim.profile(
        sid, "scraper", "unknown", "spoofed", agent=SPOOFED, threats=("spoofed_identity",), family="bot:spoofed_crawler"
    )
    n = 6
    out.append(visits(n, sim.hosting.sample(rng, n), np.full(n, sim.bot_ua[SPOOFED][0]), prof, (20, 50)))
    # GPTBot from addresses its operator has not published yet: its claims no longer verify.
    prof = sim.profile(
        sid,
        "crawler",
        "ai_training",
        "spoofed",
        ai_driven=True,
        agent=MOVED,
        threats=("spoofed_identity",),
        family="bot:spoofed_crawler",
    )
    n = max(3, round(3 * AI_CRAWLERS[MOVED] * sim.scale * day.growth / 45))  # most of its crawling
    out.append(visits(n, sim.cloud.sample(rng, n), np.full(n, sim.bot_ua[MOVED][0]), prof, (30, 60)))
    # A user-triggered fetcher sweeping like an indexer: its sitemap, then hundreds of items.
    prof = sim.agent_profile(sid, SWEEPER, family="bot:ai_crawler")
    n_items = int(rng.integers(200, 400))
    path = np.concatenate(
        [[site.off[R["sitemap"]]], site.off[R["product"]] + rng.integers(0, site.size[R["product"]], n_items)]
    )
    t0 = day.start_us + int(rng.random() * (DAY_US - 3 * 3600 * US))
    ts = t0 + np.round(np.cumsum(rng.uniform(0.8, 3.0, len(path))) * US).astype(np.int64)
    fleet = sim.fleet[SWEEPER]
    out.append(
        rows(
            len(path),
            ts=ts,
            ip=take(fleet, np.full(len(path), rng.integers(0, len(fleet[0])))),
            ua=sim.bot_ua[SWEEPER][0],
            path=path.astype(np.int32),
            resp=site.respond(rng, path.astype(np.int32)),
            profile=prof,
            sess=np.repeat(day.sessions(sid, 1), len(path)),
        )
    )
    # A credential-stuffing campaign five times the usual number of addresses, within two hours.
    prof = sim.profile(
        sid, "agent", "unknown", "undeclared", threats=("credential_stuffing",), family="bot:credential_stuffing"
    )
    n = max(15, round(5 * 55 * sim.scale))
    start = day.start_us + int(rng.random() * (DAY_US - 3 * 3600 * US))
    starts = start + np.round(rng.random(n) * 2 * 3600 * US).astype(np.int64)
    ua_i = rng.integers(0, len(sim.stale_ua), n)
    who = Sessions(
        starts, sim.botnet.sample(rng, n), sim.stale_ua[ua_i], np.full(n, prof, dtype=np.int16), day.sessions(sid, n)
    )
    out.append(
        flat(
            site,
            rng,
            who,
            sizes=rng.integers(2, 9, n),
            roles=("login_post",),
            role_p=(1.0,),
            period=rng.uniform(30, 75, n),
            jitter=0.3,
            status={R["login_post"]: ((401, 403, 429, 302), (0.82, 0.12, 0.03, 0.03))},
        )
    )
    # A run of chosen families makes only their incidents (each block is one profile's).
    return [b for b in out if sim.profiles[int(b["profile"][0])].family in sim.families]
