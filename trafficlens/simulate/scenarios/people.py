"""People: visitors browsing the site from search engines, social networks and bookmarks, and
visitors following a link from an AI assistant's answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.browse import Browser, ReadingPace, Route, Sessions, browse
from trafficlens.simulate.rows import US, Day, Rows, choice, diurnal, poisson
from trafficlens.simulate.site import REF, REFERERS, R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim


def _humans(sim: Sim, rng: np.random.Generator, day: Day, sid: int, n: int, ai: bool) -> Rows:
    """`n` visits by people: from search, social and bookmarks, or (`ai`) from AI assistants' answers."""
    starts = day.start_us + np.round(diurnal(rng, n) * US).astype(np.int64)
    six = rng.random(n) < 0.15
    v4, v6 = sim.residential.sample(rng, n), sim.residential6.sample(rng, n)
    ip = tuple(np.where(six, b, a) for a, b in zip(v4, v6))
    ua = choice(rng, n, sim.browser_ua, sim.browser_p)
    if not ai:
        kind = choice(rng, n, [0, 1, 2], [0.44, 0.12, 0.44])  # search engine, social, direct
        search_ref = choice(rng, n, [REF[r] for r in REFERERS[:8]], [26, 5, 5, 3, 5, 2, 0.7, 0.5])
        social_ref = choice(rng, n, [REF[r] for r in REFERERS[8:15]], [4, 3, 1.5, 1.5, 1.2, 1, 1])
        ref = np.where(kind == 0, search_ref, np.where(kind == 1, social_ref, -1))
        landing = np.where(
            kind == 2,
            choice(rng, n, [R["home"], R["product"], R["listing"]], [0.7, 0.15, 0.15]),
            choice(rng, n, [R["product"], R["listing"], R["home"]], [0.6, 0.27, 0.13]),
        )
        returning = (kind == 2) & (rng.random(n) < 0.6)
    else:
        # Links from AI assistants: ChatGPT tags them with utm_source (its apps send no referrer).
        src = choice(rng, n, [0, 1, 2, 3, 4, 5], [0.42, 0.16, 0.16, 0.1, 0.08, 0.08])
        refs = np.array(
            [
                REF["https://chatgpt.com/"],
                -1,
                REF["https://www.perplexity.ai/"],
                REF["https://gemini.google.com/"],
                REF["https://copilot.microsoft.com/"],
                REF["https://claude.ai/"],
            ]
        )
        ref = refs[src]
        landing = choice(rng, n, [R["product"], R["listing"], R["home"], R["search"]], [0.62, 0.18, 0.1, 0.1])
        landing = np.where((src <= 1) & (landing == R["product"]), R["product_utm"], landing)
        landing = np.where(src == 1, R["product_utm"], landing)
        returning = np.zeros(n, dtype=bool)
    bounce = rng.random(n) < (0.38 if not ai else 0.3)
    # Pages per visit follow the law of surfing (Huberman et al. 1998): an inverse Gaussian,
    # most visits a few pages, a long tail of engaged readers going on for dozens.
    nbrowse = np.where(bounce, 1, 1 + np.clip(np.round(rng.wald(3.3, 4.0, n)), 1, 120).astype(np.int64))
    flow = choice(
        rng, n, [0, 1, 2, 3, 4], [0.8, 0.09, 0.045, 0.05, 0.015] if not ai else [0.76, 0.12, 0.07, 0.04, 0.01]
    )
    flow = np.where(bounce, 0, flow)
    prof = sim.profile(sid, "human", "human", "none", automated=False, http2=True)
    # People read at their own pace, some steadily, some in fits and starts; now and then one
    # clicks the link to the page already open (the logo on the home page, a menu entry).
    think = (22.0 * np.exp(0.35 * rng.standard_normal(n)), rng.uniform(0.6, 1.3, n))
    # They go back to the list for its next item: the back button is a third of what people do
    # in a browser (Catledge & Pitkow 1995: 41%; Tauscher & Greenberg 1997: 30%; fewer since
    # tabs), about half of it answered from the browser's cache.
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    route = Route(landing, ref, nbrowse, flow, self_link=0.005, back=rng.beta(2.0, 5.0, n), back_cached=0.5)
    return browse(sim.site, rng, who, route, ReadingPace(*think), Browser(returning, beacons=rng.random(n) < 0.7))


def human_browsing(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    weekly = (1.0, 1.0, 0.98, 0.97, 0.95, 0.9, 1.06)[day.weekday]
    return [_humans(sim, rng, day, sid, poisson(rng, 145 * sim.scale * weekly, 1), ai=False)]


def human_ai_referral(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    return [_humans(sim, rng, day, sid, poisson(rng, 7 * sim.scale * day.growth, 1), ai=True)]
