"""Declared agents, which say who they are: AI crawlers and assistants, search engines, SEO bots,
uptime monitors and HTTP tools, each from its operator's fleet (or a cloud or home address)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.addresses import take
from trafficlens.simulate.agents import AGENTS
from trafficlens.simulate.browse import Sessions, flat
from trafficlens.simulate.rows import DAY_US, US, Day, Rows, choice, diurnal, poisson, rows
from trafficlens.simulate.site import R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim

# Per day at scale 1, on the first day (AI agents then grow by AI_GROWTH over the period).
AI_CRAWLERS = {
    "GPTBot": 150,
    "ClaudeBot": 120,
    "meta-externalagent": 110,
    "Bytespider": 60,
    "Amazonbot": 40,
    "CCBot": 25,
    "OAI-SearchBot": 35,
    "Claude-SearchBot": 15,
    "PerplexityBot": 25,
}
AI_ASSISTANTS = {"ChatGPT-User": 45, "Perplexity-User": 15, "Claude-User": 8, "MistralAI-User": 3}  # questions
SEARCH_ENGINES = {"Googlebot": 320, "bingbot": 200, "YandexBot": 50, "DuckDuckBot": 30, "Applebot": 50}
SEO_BOTS = {"AhrefsBot": 160, "SemrushBot": 120, "MJ12bot": 50, "DotBot": 30}


def _crawl(
    sim: Sim,
    rng: np.random.Generator,
    day: Day,
    sid: int,
    name: str,
    total: float,
    *,
    burst: float,
    roles: Sequence[str],
    role_p: Sequence[float],
    period: tuple[float, float],
    robots_p: float,
    sitemap_p: float,
) -> Rows:
    """A declared crawler's visits: bursts at a steady pace from its fleet, robots.txt first."""
    burst = max(3.0, min(burst, total / 3))  # small volumes come in smaller visits, not fewer
    nb = poisson(rng, total / burst, 1)
    sizes = np.clip(rng.geometric(1.0 / burst, nb), 2, int(burst * 8))
    starts = day.start_us + np.round(rng.random(nb) * DAY_US).astype(np.int64)
    fleet = sim.fleet[name]
    ip = take(fleet, rng.integers(0, len(fleet[0]), nb))
    uas = sim.bot_ua[name]
    ua = uas[
        choice(rng, nb, np.arange(len(uas)), [0.75] + [0.25 / max(len(uas) - 1, 1)] * (len(uas) - 1))
        if len(uas) > 1
        else np.zeros(nb, dtype=np.int64)
    ]
    per = rng.uniform(*period, nb)
    who = Sessions(starts, ip, ua, sim.agent_profile(sid, name), day.sessions(sid, nb))
    return flat(
        sim.site,
        rng,
        who,
        sizes=sizes,
        roles=roles,
        role_p=role_p,
        period=per,
        jitter=0.1,
        first=((0, "robots", robots_p), (1, "sitemap", sitemap_p)),
    )


def ai_crawler(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    out = []
    for name, daily in AI_CRAWLERS.items():
        search = AGENTS[name].purpose == "ai_search"
        out.append(
            _crawl(
                sim,
                rng,
                day,
                sid,
                name,
                daily * sim.scale * day.growth,
                burst=25 if search else 45,
                roles=("product", "listing", "listing_page", "home", "feed", "notfound"),
                role_p=(0.62, 0.14, 0.12, 0.03, 0.03, 0.03) if not search else (0.7, 0.15, 0.05, 0.05, 0.03, 0.02),
                period=(1.5, 6.0) if not search else (2.0, 8.0),
                robots_p=0.7,
                sitemap_p=0.25,
            )
        )
    return out


def ai_assistant(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    out = []
    for name, daily in AI_ASSISTANTS.items():
        nq = poisson(rng, daily * sim.scale * day.growth, 1)
        # People ask in the daytime; one question fetches 1-3 pages at once.
        starts = day.start_us + np.round(diurnal(rng, nq) * US).astype(np.int64)
        sizes = choice(rng, nq, [1, 2, 3], [0.55, 0.3, 0.15])
        fleet = sim.fleet[name]
        ip = take(fleet, rng.integers(0, len(fleet[0]), nq))
        ua = np.full(nq, sim.bot_ua[name][0])
        who = Sessions(starts, ip, ua, sim.agent_profile(sid, name), day.sessions(sid, nq))
        out.append(
            flat(
                sim.site,
                rng,
                who,
                sizes=sizes,
                roles=("product", "listing", "search", "home"),
                role_p=(0.6, 0.15, 0.15, 0.1),
                period=rng.uniform(0.05, 0.6, nq),
                jitter=0.5,
                skew=2.0,
            )
        )
    return out


def search_engine(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    out = []
    for name, daily in SEARCH_ENGINES.items():
        # Google and Bing render pages, so they fetch some css and js too.
        render = 0.08 if name in ("Googlebot", "bingbot") else 0.0
        out.append(
            _crawl(
                sim,
                rng,
                day,
                sid,
                name,
                daily * sim.scale,
                burst=30,
                roles=("product", "listing", "listing_page", "home", "feed", "notfound", "css", "js"),
                role_p=(0.6, 0.14, 0.08, 0.03, 0.02, 0.03, render / 2, render / 2),
                period=(2.0, 12.0),
                robots_p=0.25,
                sitemap_p=0.15,
            )
        )
    return out


def seo_bot(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    return [
        _crawl(
            sim,
            rng,
            day,
            sid,
            name,
            daily * sim.scale,
            burst=60,
            roles=("product", "listing", "listing_page", "home", "notfound"),
            role_p=(0.58, 0.15, 0.14, 0.03, 0.1),
            period=(0.8, 4.0),
            robots_p=0.8,
            sitemap_p=0.1,
        )
        for name, daily in SEO_BOTS.items()
    ]


def monitor(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    out = []
    t0 = int(np.datetime64(sim.start, "us").astype(np.int64))
    for vendor, period, phase, role, method in sim.monitors:
        first = -(-(day.start_us - t0 - phase) // period)
        k = np.arange(first, (day.start_us + DAY_US - t0 - phase + period - 1) // period, dtype=np.int64)
        ts = t0 + phase + k * period  # exactly periodic, across days
        ts = ts[(ts >= day.start_us) & (ts < day.start_us + DAY_US)]
        n = len(ts)
        fleet = sim.fleet[vendor]
        ip = take(fleet, rng.integers(0, len(fleet[0]), n))  # checks come from several locations
        path = np.full(n, sim.site.off[role], dtype=np.int32)
        out.append(
            rows(
                n,
                ts=ts,
                ip=ip,
                ua=sim.bot_ua[vendor][0],
                path=path,
                resp=sim.site.respond(rng, path, method=method),
                profile=sim.agent_profile(sid, vendor),
                sess=np.repeat(day.sessions(sid, 1), n),
            )
        )
    return out


def http_tool(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    n = poisson(rng, 12 * sim.scale, day.least)
    tools = ("curl", "python-requests", "Go-http-client", "Wget")
    which = choice(rng, n, np.arange(4), [0.4, 0.3, 0.2, 0.1])
    prof = np.array([sim.agent_profile(sid, t) for t in tools], dtype=np.int16)[which]
    ua = np.array([sim.bot_ua[t][rng.integers(0, len(sim.bot_ua[t]))] for t in tools])[which]
    hosted = rng.random(n) < 0.7
    ip = tuple(np.where(hosted, a, b) for a, b in zip(sim.cloud.sample(rng, n), sim.residential.sample(rng, n)))
    starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
    sizes = choice(rng, n, [1, 2, 3, 4, 6], [0.45, 0.2, 0.15, 0.1, 0.1])
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    return [
        flat(
            sim.site,
            rng,
            who,
            sizes=sizes,
            roles=("home", "robots", "feed", "api_list", "product", "sitemap"),
            role_p=(0.3, 0.1, 0.15, 0.15, 0.2, 0.1),
            period=rng.uniform(0.2, 6.0, n),
            jitter=0.6,
        )
    ]


# Visits a day, at scale 1, in which an AI agent reads what a site offers language models
# (llms.txt, its Markdown copies of pages). Assumed, not measured: published counts of llms.txt
# fetches are few and vary by operator, so most agents here never read it.
AI_DISCOVERY = {"ClaudeBot": 0.6, "GPTBot": 0.3, "PerplexityBot": 0.5, "OAI-SearchBot": 0.2, "ChatGPT-User": 0.3}


def ai_discovery(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    """An AI agent's walk through a site's discovery files: robots.txt (mostly), a sitemap (often),
    /llms.txt, /llms-full.txt (sometimes), then Markdown copies of items, now and then the page
    itself; a few seconds apart, from one of its operator's addresses."""
    out = []
    site = sim.site
    sitemaps = site.off[R["sitemap"]] + np.arange(site.size[R["sitemap"]])
    # At least one walk in a run, on its last day (the first day is the baseline of AI growth).
    least = int(day.index == sim.days - 1)
    for k, (name, daily) in enumerate(AI_DISCOVERY.items()):
        for _ in range(poisson(rng, daily * sim.scale * day.growth, least if k == 0 else 0)):
            steps: list[int] = []
            if rng.random() < 0.9:
                steps.append(site.off[R["robots"]])
            if rng.random() < 0.6:
                steps.append(int(sitemaps[0]))
            steps.append(site.off[R["llms"]])
            if rng.random() < 0.4:
                steps.append(site.off[R["llms"]] + 1)
            items = rng.integers(0, site.size[R["markdown"]], int(rng.geometric(1 / 6)))
            for i in items:
                steps.append(int(site.off[R["markdown"]] + i))
                if rng.random() < 0.3:  # the page the copy stands for
                    steps.append(int(site.off[R["product"]] + i))
            n = len(steps)
            path = np.array(steps, dtype=np.int32)
            t0 = day.start_us + int(rng.random() * DAY_US)
            ts = t0 + np.round(np.cumsum(rng.uniform(0.5, 4.0, n)) * US).astype(np.int64)
            fleet = sim.fleet[name]
            ip = take(fleet, np.full(n, rng.integers(0, len(fleet[0]))))
            out.append(
                rows(
                    n,
                    ts=ts,
                    ip=ip,
                    ua=sim.bot_ua[name][0],
                    path=path,
                    resp=site.respond(rng, path),
                    profile=sim.agent_profile(sid, name),
                    sess=np.repeat(day.sessions(sid, 1), n),
                )
            )
    return out
