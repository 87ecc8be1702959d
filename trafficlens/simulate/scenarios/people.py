"""People: visitors of every family in `families.HUMAN_FAMILIES` browsing the site, and visitors
following a link from an AI assistant's answer.

Each visit draws its person's traits from the family's ranges (`traits`), so families overlap as
people do; a returning person draws them once and keeps them (and a browser, and mostly an
address) over several visits; people behind one address (an office's proxy, a carrier's NAT)
share it with others the same day.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.addresses import Addresses, take
from trafficlens.simulate.browse import FLOW_NAMES, FLOWS, Browser, DwellPace, ReadingPace, Route, Sessions, browse
from trafficlens.simulate.families import (
    API_CALLS,
    BACK_CACHED,
    BEACONS,
    CART,
    HUMAN_FAMILIES,
    IPV6,
    LOAD,
    LOGIN,
    OFFICE_HOURS,
    PHONE_BUY,
    PHONE_SCALE,
    PURCHASE_OF_CART,
    RETURNING,
    REVALIDATE,
    SHARED,
    SIGNUP,
    SOCIAL,
    SOCIAL_NO_REF,
    TAB_GAP,
    TAB_ITEMS_P,
    WALD_SHAPE,
    Family,
    draw,
)
from trafficlens.simulate.rows import US, Day, Rows, choice, diurnal, poisson, rows, working_hours
from trafficlens.simulate.site import REF, REFERERS, ROLES, R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim

# People's visits a day at scale 1, all families together: about half the requests, beside the
# automated half (49.6-53% of requests in 2023-2025 [Imp]).
PEOPLE = 340
WEEKLY = (1.0, 1.0, 0.98, 0.97, 0.95, 0.9, 1.06)  # Monday to Sunday
_FLOW = {name: i for i, name in enumerate(FLOW_NAMES)}


@dataclass(frozen=True)
class Traits:
    """A person's values drawn from a family's ranges: one entry per visit."""

    shape: np.ndarray  # dwell: Weibull shape, scale (content, lists; seconds), page load
    scale: np.ndarray
    list_scale: np.ndarray
    load: np.ndarray
    one_page: np.ndarray  # pages per visit: one-page share, mean, inverse Gaussian shape
    pages: np.ndarray
    wald_shape: np.ndarray
    back: np.ndarray  # navigation: steps back, of them from the cache; tabs, items per burst
    back_cached: np.ndarray
    tabs: np.ndarray
    tab_p: np.ndarray
    search: np.ndarray  # entries: from a search engine, from social networks (without referrer)
    social: np.ndarray
    social_no_ref: np.ndarray
    site_search: np.ndarray
    empty_cache: np.ndarray  # assets
    first_images: np.ndarray
    later_images: np.ndarray
    api_calls: np.ndarray
    cart: np.ndarray  # of all visits: adding to cart, buying, signing in
    buy: np.ndarray
    login: np.ndarray

    def at(self, idx: np.ndarray) -> Traits:
        return Traits(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def traits(rng: np.random.Generator, fam: Family, phone: np.ndarray) -> Traits:
    """Each person's values drawn from the family's ranges; phones read faster and buy less."""
    n = len(phone)
    faster = np.where(phone, draw(rng, PHONE_SCALE, n), 1.0)
    cart = draw(rng, CART, n) * np.where(phone, draw(rng, PHONE_BUY, n), 1.0)
    return Traits(
        shape=draw(rng, fam.shape, n),
        scale=draw(rng, fam.scale, n) * faster,
        list_scale=draw(rng, fam.list_scale, n) * faster,
        load=draw(rng, LOAD, n),
        one_page=draw(rng, fam.one_page, n),
        pages=np.where(phone, draw(rng, fam.phone_pages, n), draw(rng, fam.pages, n)),
        wald_shape=draw(rng, WALD_SHAPE, n),
        back=draw(rng, fam.back, n),
        back_cached=draw(rng, BACK_CACHED, n),
        tabs=draw(rng, fam.tabs, n),
        tab_p=draw(rng, TAB_ITEMS_P, n),
        search=draw(rng, fam.search_entry, n),
        social=draw(rng, SOCIAL, n),
        social_no_ref=draw(rng, SOCIAL_NO_REF, n),
        site_search=draw(rng, fam.site_search, n),
        empty_cache=draw(rng, fam.empty_cache, n),
        first_images=draw(rng, fam.first_images, n),
        later_images=draw(rng, fam.later_images, n),
        api_calls=draw(rng, API_CALLS, n),
        cart=cart,
        buy=cart * draw(rng, PURCHASE_OF_CART, n),
        login=draw(rng, LOGIN, n),
    )


@dataclass(frozen=True)
class People:
    """Who makes each visit: when it starts (microseconds), from where, with which browser."""

    starts: np.ndarray
    ip: Addresses
    ua: np.ndarray
    phone: np.ndarray


def _browsers(sim: Sim, rng: np.random.Generator, phone: np.ndarray) -> np.ndarray:
    n = len(phone)
    return np.where(phone, choice(rng, n, sim.phone_ua, sim.phone_p), choice(rng, n, sim.desktop_ua, sim.desktop_p))


def _start_secs(rng: np.random.Generator, phone: np.ndarray) -> np.ndarray:
    """Seconds into the day: desktops mostly in working hours [Mon16], phones all day long."""
    n = len(phone)
    at_work = ~phone & (rng.random(n) < rng.uniform(*OFFICE_HOURS))
    return np.where(at_work, working_hours(rng, n), diurnal(rng, n))


def _anyone(sim: Sim, rng: np.random.Generator, day: Day, fam: Family, n: int) -> People:
    """People on their own home or phone address, IPv6 for many [APN26, Gv6]."""
    phone = rng.random(n) < fam.phone
    ua = _browsers(sim, rng, phone)
    six = rng.random(n) < rng.uniform(*IPV6)
    v4, v6 = sim.residential.sample(rng, n), sim.residential6.sample(rng, n)
    ip = tuple(np.where(six, b, a) for a, b in zip(v4, v6))
    starts = day.start_us + np.round(_start_secs(rng, phone) * US).astype(np.int64)
    return People(starts, ip, ua, phone)


def _offices(sim: Sim) -> tuple[Addresses, np.ndarray, np.ndarray]:
    """The offices whose staff visit the site, all week: address, size (weight) and the browser
    build the office manages (-1: each person's own)."""
    if "offices" not in sim.populations:
        rng = np.random.default_rng([sim.seed, 7_000_003])
        k = max(1, round(SHARED.offices_per_scale * sim.scale))
        ip = sim.residential.sample(rng, k)
        weight = rng.pareto(rng.uniform(*SHARED.office_size), k) + 1.0
        managed = rng.random(k) < SHARED.managed_ua
        ua = np.where(managed, choice(rng, k, sim.desktop_ua, sim.desktop_p), -1)
        sim.populations["offices"] = (ip, weight, ua)
    out: tuple[Addresses, np.ndarray, np.ndarray] = sim.populations["offices"]
    return out


def _office(sim: Sim, rng: np.random.Generator, day: Day, fam: Family, n: int) -> People:
    """Colleagues behind their office's proxy, in working hours, visits overlapping."""
    ip, weight, managed = _offices(sim)
    which = choice(rng, n, np.arange(len(weight)), weight)
    phone = rng.random(n) < fam.phone
    own = _browsers(sim, rng, phone)
    ua = np.where((managed[which] >= 0) & ~phone, managed[which], own)
    starts = day.start_us + np.round(working_hours(rng, n) * US).astype(np.int64)
    return People(starts, take(ip, which), ua, phone)


def _nat(sim: Sim, rng: np.random.Generator, day: Day, fam: Family, n: int) -> People:
    """Phones behind a carrier's NAT: a few of each shared address's users visit the site."""
    lo, hi = SHARED.nat_visitors
    per = rng.integers(lo, hi + 1, max(n, 1))
    k = int(np.searchsorted(np.cumsum(per), n)) + 1
    which = np.repeat(np.arange(k), per[:k])[:n]
    phone = np.ones(n, dtype=bool)
    starts = day.start_us + np.round(diurnal(rng, n) * US).astype(np.int64)
    return People(starts, take(sim.cellular.sample(rng, k), which), _browsers(sim, rng, phone), phone)


def _visits(
    sim: Sim,
    rng: np.random.Generator,
    day: Day,
    sid: int,
    fam: Family,
    who: People,
    t: Traits,
    *,
    nbrowse: np.ndarray | None = None,
    flow: np.ndarray | None = None,
    empty: np.ndarray | None = None,
) -> list[Rows]:
    """One visit per entry of `who`, by people of `t`'s traits; `nbrowse` and `flow` where given
    and positive, and `empty` (cache) where given, replace the drawn ones."""
    n = len(who.starts)
    if not n:
        return []
    # Where they come from: a search engine (origin-only referrer), a social network (apps send
    # none), or typed and bookmarked.
    u = rng.random(n)
    kind = np.where(u < t.search, 0, np.where(u < t.search + t.social, 1, 2))
    search_ref = choice(rng, n, [REF[r] for r in REFERERS[:8]], [26, 5, 5, 3, 5, 2, 0.7, 0.5])
    social_ref = choice(rng, n, [REF[r] for r in REFERERS[8:15]], [4, 3, 1.5, 1.5, 1.2, 1, 1])
    social_ref = np.where(rng.random(n) < t.social_no_ref, -1, social_ref)
    ref = np.where(kind == 0, search_ref, np.where(kind == 1, social_ref, -1))
    deep = choice(rng, n, [R["product"], R["listing"]], [0.69, 0.31])
    deep = np.where(rng.random(n) < fam.deep_landing, deep, R["home"])
    typed = choice(rng, n, [R["home"], R["product"], R["listing"]], [0.7, 0.15, 0.15])
    landing = np.where(kind == 2, typed, deep)
    # Pages: one, or an inverse Gaussian's long tail [Hub98] around the person's mean.
    bounce = rng.random(n) < t.one_page
    rest = np.maximum(1.0 - t.one_page, 0.05)
    longer = np.maximum((t.pages - t.one_page) / rest - 2.0, 0.2)
    more = np.round(rng.wald(longer, t.wald_shape)).astype(np.int64)
    nb = np.where(bounce, 1, np.clip(2 + more, 2, fam.max_pages))
    if nbrowse is not None:
        nb = np.where(nbrowse > 0, nbrowse, nb)
    # How it ends: rates are of all visits, none of them one-page ones.
    u = rng.random(n) * rest
    drawn = np.select(
        [u < t.buy, u < t.cart, u < t.cart + t.login, u < t.cart + t.login + SIGNUP],
        [_FLOW["checkout"], _FLOW["cart"], _FLOW["login"], _FLOW["signup"]],
        _FLOW["browse"],
    )
    drawn = np.where((nb > 1) & fam.flows, drawn, _FLOW["browse"])
    flows = drawn if flow is None else np.where(flow >= 0, flow, drawn)
    site_search = rng.random(n) < t.site_search
    prof = sim.profile(sid, "human", "human", "none", automated=False, http2=True, family=fam.name)
    route = Route(
        landing,
        ref,
        nb,
        flows,
        self_link=0.005,
        back=t.back,
        back_cached=t.back_cached,
        tabs=t.tabs,
        tab_p=t.tab_p,
        tab_gap=TAB_GAP,
        site_search=site_search,
        fresh=True,
    )
    cold = rng.random(n) < t.empty_cache if empty is None else empty
    revalidate = rng.random(n) < REVALIDATE
    browser = Browser(
        returning=~cold & revalidate,
        cached=~cold & ~revalidate,
        first_images=t.first_images,
        later_images=t.later_images,
        beacons=rng.random(n) < BEACONS,
        spa=np.full(n, fam.spa),
        api_calls=t.api_calls,
    )
    sessions = Sessions(who.starts, who.ip, who.ua, prof, day.sessions(sid, n))
    return [browse(sim.site, rng, sessions, route, DwellPace(t.shape, t.scale, t.list_scale, t.load), browser)]


@dataclass(frozen=True)
class Shoppers:
    """Returning shoppers' visits over the run, in order: whose, which day and when."""

    day: np.ndarray
    secs: np.ndarray
    ip: Addresses
    ua: np.ndarray
    phone: np.ndarray
    traits: Traits
    nbrowse: np.ndarray  # 0: drawn from the traits
    flow: np.ndarray
    first: np.ndarray


def _shoppers(sim: Sim, fam: Family, daily: float) -> Shoppers:
    """Returning shoppers: 2-5 visits each on days of their own, the last a purchase after
    signing in; one browser each, and mostly one address."""
    if "shoppers" in sim.populations:
        out: Shoppers = sim.populations["shoppers"]
        return out
    rng = np.random.default_rng([sim.seed, 7_000_002])
    lo, hi = RETURNING.visits
    days = sim.days
    n = max(1, int(rng.poisson(daily * days / ((lo + hi) / 2))))
    k = rng.integers(lo, hi + 1, n)
    k[0] = max(k[0], 2)
    phone = rng.random(n) < fam.phone
    ua = _browsers(sim, rng, phone)
    person_traits = traits(rng, fam, phone)
    six = rng.random(n) < rng.uniform(*IPV6)
    home4, home6 = sim.residential.sample(rng, n), sim.residential6.sample(rng, n)
    stable = rng.random(n) < draw(rng, RETURNING.stable_ip, n)
    login = draw(rng, RETURNING.earlier_login, n)
    cart = draw(rng, RETURNING.earlier_cart, n)
    # Visit days: distinct where the run is long enough.
    order = np.argsort(rng.random((n, days)), axis=1)
    who, j = np.repeat(np.arange(n), k), np.concatenate([np.arange(x) for x in k])
    day = order[who, j % days]
    secs = _start_secs(rng, phone[who])
    sort = np.lexsort((secs, day, who))
    who, day, secs = who[sort], day[sort], secs[sort]
    first = np.append(True, who[1:] != who[:-1])
    last = np.append(who[1:] != who[:-1], True)
    m = len(who)
    # Addresses: the home IPv4 kept, or a new one now and then; IPv6 a new temporary address
    # each day under the home prefix [RFC8981].
    roam = sim.residential.sample(rng, m)
    v4 = tuple(np.where(stable[who], h[who], r) for h, r in zip(home4, roam))
    daily_id = rng.integers(0, 2**62, (n, days), dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    v6 = (home6[0][who], daily_id[who, day], home6[2][who])
    ip = tuple(np.where(six[who], b, a) for a, b in zip(v4, v6))
    # The purchase: 10-30 page views in all, the flow's pages among them; earlier visits look,
    # sign in, leave a cart.
    steps = sum(ROLES[step].html for step in FLOWS["signin_checkout"])
    total = rng.integers(RETURNING.purchase_pages[0], RETURNING.purchase_pages[1] + 1, m)
    nbrowse = np.where(last, np.maximum(total - steps, 2), 0)
    u = rng.random(m)
    earlier = np.where(
        u < login[who], _FLOW["login"], np.where(u < login[who] + cart[who], _FLOW["cart"], _FLOW["browse"])
    )
    flow = np.where(last, _FLOW["signin_checkout"], earlier)
    shoppers = Shoppers(day, secs, ip, ua[who], phone[who], person_traits.at(who), nbrowse, flow, first)
    sim.populations["shoppers"] = shoppers
    return shoppers


def _returning(sim: Sim, rng: np.random.Generator, day: Day, sid: int, fam: Family, daily: float) -> list[Rows]:
    s = _shoppers(sim, fam, daily)
    at = np.flatnonzero(s.day == day.index)
    who = People(day.start_us + np.round(s.secs[at] * US).astype(np.int64), take(s.ip, at), s.ua[at], s.phone[at])
    t = s.traits.at(at)
    # A first visit's cache is as anyone's; later ones find the site's css and js cached.
    empty = np.where(s.first[at], rng.random(len(at)) < t.empty_cache, False)
    return _visits(sim, rng, day, sid, fam, who, t, nbrowse=s.nbrowse[at], flow=s.flow[at], empty=empty)


_WHO = {"anyone": _anyone, "office": _office, "nat": _nat}


def human_browsing(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    # The families asked for share all people's visits, in their default proportions; each draws
    # from a stream of its own, whichever others run beside it.
    chosen = [(i, f) for i, f in enumerate(HUMAN_FAMILIES.values()) if f.name in sim.families]
    per_share = PEOPLE * sim.scale / sum(f.share for _, f in chosen)
    out: list[Rows] = []
    for i, fam in chosen:
        rng = np.random.default_rng([sim.seed, day.index, sid, 1 + i])
        mean = per_share * fam.share
        if fam.who == "returning":
            out += _returning(sim, rng, day, sid, fam, mean)
            continue
        n = poisson(rng, mean * WEEKLY[day.weekday], day.least)
        who = _WHO[fam.who](sim, rng, day, fam, n)
        out += _visits(sim, rng, day, sid, fam, who, traits(rng, fam, who.phone))
    return out


def human_ai_referral(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    """Visits following a link in an AI assistant's answer: ChatGPT tags them with utm_source
    (its apps send no referrer)."""
    n = poisson(rng, 7 * sim.scale * day.growth, 1)
    starts = day.start_us + np.round(diurnal(rng, n) * US).astype(np.int64)
    six = rng.random(n) < 0.15
    v4, v6 = sim.residential.sample(rng, n), sim.residential6.sample(rng, n)
    ip = tuple(np.where(six, b, a) for a, b in zip(v4, v6))
    ua = choice(rng, n, sim.browser_ua, sim.browser_p)
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
    bounce = rng.random(n) < 0.3
    # Pages per visit follow the law of surfing (Huberman et al. 1998): an inverse Gaussian,
    # most visits a few pages, a long tail of engaged readers going on for dozens.
    nbrowse = np.where(bounce, 1, 1 + np.clip(np.round(rng.wald(3.3, 4.0, n)), 1, 120).astype(np.int64))
    flow = choice(rng, n, [0, 1, 2, 3, 4], [0.76, 0.12, 0.07, 0.04, 0.01])
    flow = np.where(bounce, 0, flow)
    prof = sim.profile(sid, "human", "human", "none", automated=False, http2=True)
    # People read at their own pace, some steadily, some in fits and starts; now and then one
    # clicks the link to the page already open (the logo on the home page, a menu entry).
    think = (22.0 * np.exp(0.35 * rng.standard_normal(n)), rng.uniform(0.6, 1.3, n))
    # They go back to the list for its next item, about half of it answered from the cache.
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    route = Route(landing, ref, nbrowse, flow, self_link=0.005, back=rng.beta(2.0, 5.0, n), back_cached=0.5)
    return [browse(sim.site, rng, who, route, ReadingPace(*think), Browser(returning, beacons=rng.random(n) < 0.7))]


# User-triggered fetches whose answer a person then follows: the assistant fetches the pages it
# cites while answering, the person clicks one of them seconds to minutes later. Assistants'
# apps and several of their web clients send no referrer and no utm_source for such clicks, so
# only the fetch before the landing connects them (trafficlens's inferred AI referrals). Assumed
# shares: a third of the answers citing the site get a click.
FETCH_VISITS = {"ChatGPT-User": 9.0, "Perplexity-User": 4.0, "Claude-User": 2.0}


def ai_fetch_visit(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    """An assistant's fetch of one to three pages, then, after 3-300 s (log-uniform), a person
    landing on one of them with no referrer and browsing on."""
    out = []
    for name, daily in FETCH_VISITS.items():
        n = poisson(rng, daily * sim.scale * day.growth, 1 if day.index == 0 and name == "ChatGPT-User" else 0)
        if not n:
            continue
        starts = day.start_us + np.round(diurnal(rng, n) * US).astype(np.int64)
        k = choice(rng, n, [1, 2, 3], [0.5, 0.3, 0.2])
        owner = np.repeat(np.arange(n), k)
        items = rng.integers(0, sim.site.size[R["product"]], len(owner))
        path = (sim.site.off[R["product"]] + items).astype(np.int32)
        ts = starts[owner] + np.round(rng.uniform(0.1, 1.5, len(owner)) * US).astype(np.int64)
        fleet = sim.fleet[name]
        ip = take(fleet, rng.integers(0, len(fleet[0]), n)[owner])
        fetch = rows(
            len(owner),
            ts=ts,
            ip=ip,
            ua=sim.bot_ua[name][0],
            path=path,
            resp=sim.site.respond(rng, path),
            profile=sim.agent_profile(sid, name, family="bot:ai_assistant"),
            sess=day.sessions(sid, n)[owner],
        )
        # A run of chosen families makes only its part (the draws stay the same either way).
        if "bot:ai_assistant" in sim.families:
            out.append(fetch)
        # The person's click: one of the cited pages, after a while, from a home or phone line.
        first = np.searchsorted(owner, np.arange(n))
        pick = first + (rng.random(n) * k).astype(np.int64)
        delay = np.exp(rng.uniform(np.log(3.0), np.log(300.0), n))
        p_starts = starts + np.round((1.5 + delay) * US).astype(np.int64)
        six = rng.random(n) < 0.15
        v4, v6 = sim.residential.sample(rng, n), sim.residential6.sample(rng, n)
        p_ip = tuple(np.where(six, b, a) for a, b in zip(v4, v6))
        ua = choice(rng, n, sim.browser_ua, sim.browser_p)
        bounce = rng.random(n) < 0.35
        nbrowse = np.where(bounce, 1, 1 + np.clip(np.round(rng.wald(3.3, 4.0, n)), 1, 60).astype(np.int64))
        flow = np.where(bounce, 0, choice(rng, n, [0, 1, 2], [0.85, 0.1, 0.05]))
        prof = sim.profile(sid, "human", "human", "none", automated=False, http2=True, family="human:ai_referral")
        think = (22.0 * np.exp(0.35 * rng.standard_normal(n)), rng.uniform(0.6, 1.3, n))
        who = Sessions(p_starts, p_ip, ua, prof, day.sessions(sid, n))
        route = Route(
            np.full(n, R["product"]),
            np.full(n, -1),
            nbrowse,
            flow,
            self_link=0.005,
            back=rng.beta(2.0, 5.0, n),
            back_cached=0.5,
            landing_path=path[pick],
        )
        visit = browse(
            sim.site,
            rng,
            who,
            route,
            ReadingPace(*think),
            Browser(np.zeros(n, dtype=bool), beacons=rng.random(n) < 0.7),
        )
        if "human:ai_referral" in sim.families:
            out.append(visit)
    return out
