"""Undeclared automation: scrapers rotating addresses and user agents (from hosting blocks or a
residential proxy network), AI agents driving a browser, headless browsers, bots pacing their pages
to pass for visitors, crawlers keeping a polite randomised delay, and crawlers spoofing a search
engine's or an AI operator's user agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.addresses import HOSTING_16, Space, take
from trafficlens.simulate.browse import (
    FLOW_NAMES,
    Browser,
    ReadingPace,
    Route,
    Sessions,
    SleepPace,
    SteadyPace,
    browse,
    flat,
)
from trafficlens.simulate.rows import DAY_US, US, Day, Rows, choice, diurnal, poisson, rows
from trafficlens.simulate.site import R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim


def stealth_scraper(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    prof = sim.profile(sid, "scraper", "unknown", "undeclared", threats=("abusive_scraping", "ua_rotation"))
    out = []
    for _ in range(poisson(rng, 0.8 * sim.scale, day.least)):
        # One sweep: one hosting /16, a pool of its addresses and of browser user agents, each
        # request from any of them; product pages in catalogue order, or the price API.
        n = int(rng.integers(250, 650))
        block = Space([HOSTING_16[rng.integers(0, len(HOSTING_16))]])
        pool = block.sample(rng, int(rng.integers(30, 150)))
        uas = rng.choice(np.concatenate([sim.stale_ua, sim.browser_ua[:8]]), int(rng.integers(4, 9)), replace=False)
        api = rng.random() < 0.4
        first = int(rng.integers(0, sim.site.n_products))
        idx = (first + np.arange(n)) % sim.site.n_products
        path = (sim.site.off[R["api_item"] if api else R["product"]] + idx).astype(np.int32)
        gaps = rng.uniform(0.3, 1.2) * np.clip(1 + 0.05 * rng.standard_normal(n), 0.5, None)
        t0 = day.start_us + int(rng.random() * DAY_US)
        ts = t0 + np.round(np.cumsum(np.concatenate([[0.0], gaps[1:]])) * US).astype(np.int64)
        ip = take(pool, rng.integers(0, len(pool[0]), n))
        out.append(
            rows(
                n,
                ts=ts,
                ip=ip,
                ua=uas[rng.integers(0, len(uas), n)],
                path=path,
                resp=sim.site.respond(rng, path),
                profile=prof,
                sess=np.repeat(day.sessions(sid, 1), n),
            )
        )
    return out


def agentic_browser(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    n = poisson(rng, 6 * sim.scale * day.growth, 1)
    openai = rng.random(n) < 0.3
    fleet = sim.fleet["ChatGPT agent"]
    ip = tuple(
        np.where(openai, a, b) for a, b in zip(take(fleet, rng.integers(0, len(fleet[0]), n)), sim.cloud.sample(rng, n))
    )
    p_openai = sim.profile(
        sid, "agent", "ai_agent", "undeclared", ai_driven=True, operator="OpenAI", agent="ChatGPT agent", http2=True
    )
    p_other = sim.profile(sid, "agent", "ai_agent", "undeclared", ai_driven=True, http2=True)
    prof = np.where(openai, p_openai, p_other).astype(np.int16)
    starts = day.start_us + np.round(diurnal(rng, n) * US).astype(np.int64)
    ua = sim.agent_ua[rng.integers(0, len(sim.agent_ua), n)]
    landing = np.where(rng.random(n) < 0.6, R["home"], R["search"])
    flow = choice(rng, n, [FLOW_NAMES.index(f) for f in ("checkout", "agent_cart", "browse")], [0.45, 0.35, 0.2])
    # Search, then the product pages it compares (back to the results between some), then the
    # purchase; a steady few seconds apart.
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    # Drawn in this order (pages, pace, steps back), which fixes what a seed gives.
    nbrowse = rng.integers(2, 6, n)
    pace = SteadyPace(rng.uniform(0.8, 3.5, n))
    route = Route(
        landing,
        np.full(n, -1),
        nbrowse,
        flow,
        roles=("product",),
        role_p=(1.0,),
        second="search",
        back=rng.uniform(0.0, 0.4, n),
        back_cached=0.3,
    )
    browser = Browser(returning=np.zeros(n, dtype=bool), beacons=np.ones(n, dtype=bool))
    return [browse(sim.site, rng, who, route, pace, browser)]


def headless_automation(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    n = poisson(rng, 2 * sim.scale, day.least)
    kind = choice(rng, n, [0, 1, 2], [0.45, 0.15, 0.4])
    names = ("HeadlessChrome", "PhantomJS", "")
    profs = np.array(
        [
            sim.profile(sid, "agent", "tool", "declared" if k else "undeclared", agent=k or None, http2=True)
            for k in names
        ],
        dtype=np.int16,
    )
    ua = np.array([sim.headless_ua[k][rng.integers(0, len(sim.headless_ua[k]))] for k in names])[kind]
    starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
    # Listing pages and the products on them, css/js rendered, images and favicon never asked for.
    who = Sessions(starts, sim.cloud.sample(rng, n), ua, profs[kind], day.sessions(sid, n))
    route = Route(
        np.full(n, R["listing"]),
        np.full(n, -1),
        rng.integers(25, 120, n),
        np.zeros(n, dtype=np.int64),
        roles=("listing_page", "product", "listing"),
        role_p=(0.5, 0.42, 0.08),
    )
    pace = SteadyPace(rng.uniform(1.0, 3.0, n))
    browser = Browser(returning=np.zeros(n, dtype=bool), beacons=np.ones(n, dtype=bool), favicon=False, images=False)
    return [browse(sim.site, rng, who, route, pace, browser)]


def paced_bot(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    # Browser automation that passes for a visitor: a real browser (assets, favicon, scripts),
    # residential proxy or cloud addresses, and a random link of each page, now and then the
    # page's own or the one back. Most sleep a random few seconds to half a minute between
    # pages, four in ten of them Poisson-like (an exponential wait: as irregular as a person,
    # seldom a long read); a third copy a person's reading times too, and only their link
    # choice shows.
    # About one browser-looking visit in eight: bot reports count such evasive automation in
    # the tens of percent of all bad-bot traffic.
    n = poisson(rng, 20 * sim.scale, day.least)
    prof = sim.profile(sid, "scraper", "unknown", "undeclared", http2=True)
    resi = rng.random(n) < 0.6
    ip = tuple(np.where(resi, a, b) for a, b in zip(sim.residential.sample(rng, n), sim.cloud.sample(rng, n)))
    ua = choice(rng, n, sim.browser_ua, sim.browser_p)
    starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
    landing = choice(rng, n, [R["home"], R["listing"], R["product"]], [0.5, 0.25, 0.25])
    low = rng.uniform(0.5, 10.0, n)
    high = low + rng.uniform(3.0, 35.0, n)
    nbrowse = rng.integers(6, 30, n)
    self_link = rng.uniform(0.03, 0.15, n)
    back = rng.uniform(0.0, 0.15, n)  # the random link is now and then the one back
    mimic = rng.random(n) < 0.35
    think = (22.0 * np.exp(0.35 * rng.standard_normal(n)), rng.uniform(0.6, 1.3, n))
    sess = day.sessions(sid, n)
    expo = rng.random(n) < 0.4
    out = []
    for m in (~mimic, mimic):
        if not m.any():
            continue
        k = int(m.sum())
        who = Sessions(starts[m], tuple(a[m] for a in ip), ua[m], prof, sess[m])
        route = Route(
            landing[m], np.full(k, -1), nbrowse[m], np.zeros(k, dtype=np.int64), self_link=self_link[m], back=back[m]
        )
        pace = ReadingPace(think[0][m], think[1][m]) if m is mimic else SleepPace(low[m], high[m], expo[m])
        browser = Browser(returning=np.zeros(k, dtype=bool), beacons=np.ones(k, dtype=bool))
        out.append(browse(sim.site, rng, who, route, pace, browser))
    return out


def spoofed_crawler(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    n = poisson(rng, 3 * sim.scale, day.least)
    claims = ("Googlebot", "GPTBot", "bingbot")
    claim = choice(rng, n, np.arange(3), [0.5, 0.25, 0.25])
    probe = rng.random(n) < 0.4
    hosted = rng.random(n) < 0.65
    ip = tuple(np.where(hosted, a, b) for a, b in zip(sim.hosting.sample(rng, n), sim.residential.sample(rng, n)))
    ua = np.array([sim.bot_ua[c][0] for c in claims])[claim]
    scrape_p = [
        sim.profile(sid, "scraper", "unknown", "spoofed", agent=c, threats=("spoofed_identity",)) for c in claims
    ]
    probe_p = [
        sim.profile(
            sid,
            "crawler",
            "security_scanner",
            "spoofed",
            agent=c,
            threats=("spoofed_identity", "vuln_scan"),
            path_threats=True,
        )
        for c in claims
    ]
    starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
    out = []
    for mode in (False, True):
        m = probe == mode
        k = int(m.sum())
        if not k:
            continue
        prof = np.where(mode, np.array(probe_p), np.array(scrape_p))[claim[m]].astype(np.int16)
        roles: tuple[str, ...]
        role_p: tuple[float, ...]
        if mode:
            roles = ("probe_sensitive", "probe_admin", "probe_backdoor", "probe_generic", "home", "product")
            role_p, period = (0.35, 0.25, 0.1, 0.15, 0.05, 0.1), rng.uniform(0.1, 0.8, k)
        else:
            roles, role_p, period = ("product", "listing_page", "api_item"), (0.7, 0.15, 0.15), rng.uniform(0.3, 1.5, k)
        sizes = rng.integers(20, 70, k)
        who = Sessions(starts[m], take(ip, np.flatnonzero(m)), ua[m], prof, day.sessions(sid, k))
        out.append(flat(sim.site, rng, who, sizes=sizes, roles=roles, role_p=role_p, period=period, jitter=0.15))
    return out


def paced_crawler(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    # A crawler behind a browser's user agent (46% of bad bots pose as Chrome [Imp]) keeping a
    # polite delay, randomised 0.5-1.5x as Scrapy does by default [Scrapy]: lists and the items on
    # them for hours, robots.txt first half the time, never an asset [DG12].
    n = poisson(rng, 1.5 * sim.scale, day.least)
    prof = sim.profile(sid, "crawler", "unknown", "undeclared")
    hosted = rng.random(n) < 0.5
    ip = tuple(np.where(hosted, a, b) for a, b in zip(sim.hosting.sample(rng, n), sim.cloud.sample(rng, n)))
    pool = np.concatenate([sim.stale_ua, sim.desktop_ua])
    ua = pool[rng.integers(0, len(pool), n)]
    starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    return [
        flat(
            sim.site,
            rng,
            who,
            sizes=rng.integers(150, 600, n),
            roles=("listing", "listing_page", "product"),
            role_p=(0.08, 0.3, 0.62),
            period=rng.uniform(2.0, 20.0, n),  # DOWNLOAD_DELAY
            jitter=0.29,  # the spread of a uniform 0.5-1.5x
            first=((0, "robots", 0.5),),
        )
    ]


def proxy_scraper(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    # A sweep through a residential proxy network (21% of bad bots in 2024 [Imp]): a new home
    # address every 1-10 requests ("sticky" sessions), each with a current browser's user agent,
    # items in random order at a few requests a second in all, no assets [DG12].
    prof = sim.profile(sid, "scraper", "unknown", "undeclared", threats=("abusive_scraping",))
    out = []
    for _ in range(poisson(rng, 0.6 * sim.scale, day.least)):
        n = int(rng.integers(300, 1200))
        sticky = int(rng.integers(1, 11))
        k = -(-n // sticky)
        which = np.arange(n) // sticky
        ip = take(sim.residential.sample(rng, k), which)
        ua = choice(rng, k, sim.browser_ua, sim.browser_p)[which]
        api = rng.random() < 0.3
        items = rng.integers(0, sim.site.n_products, n)
        path = (sim.site.off[R["api_item"] if api else R["product"]] + items).astype(np.int32)
        gaps = rng.exponential(rng.uniform(0.3, 3.0), n)
        t0 = day.start_us + int(rng.random() * DAY_US)
        ts = t0 + np.round(np.cumsum(np.concatenate([[0.0], gaps[1:]])) * US).astype(np.int64)
        out.append(
            rows(
                n,
                ts=ts,
                ip=ip,
                ua=ua,
                path=path,
                resp=sim.site.respond(rng, path),
                profile=prof,
                sess=np.repeat(day.sessions(sid, 1), n),
            )
        )
    return out
