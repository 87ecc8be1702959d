"""How simulated clients move through the site: a browser's visit (pages, then the flow's steps,
with their assets and analytics beacons) at a pace of its own, or a machine's flat run of requests.

A visit is described by who makes it (`Sessions`), where it goes (`Route`: pages, steps back, items
opened in tabs), how long it waits between pages (a `Pace`: a person reading, automation sleeping a
random while, or a steady period) and what its browser fetches besides the pages (`Browser`:
assets, cache, analytics beacons, an app's API calls). All are one entry per session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trafficlens.simulate.addresses import Addresses, take
from trafficlens.simulate.rows import GET, US, Rows, choice, expand, lognormal, per_row, rows, within
from trafficlens.simulate.site import ROLE_NAMES, R, Site, StatusMix

# The steps a visit ends with, after its browsing: a purchase, a sign-in, a sign-up...
FLOWS = {
    "browse": (),
    "cart": ("cart_add", "cart"),
    "checkout": ("cart_add", "cart", "checkout", "payment", "confirm"),
    "login": ("login_form", "login_post", "account"),
    "signup": ("signup_form", "signup_post", "account"),
    "agent_cart": ("cart_add", "cart", "checkout"),
    # A guest signing in at checkout to pay with a saved account.
    "signin_checkout": ("cart_add", "cart", "login_form", "login_post", "checkout", "payment", "confirm"),
}
FLOW_NAMES = tuple(FLOWS)
_FLOW_LEN = np.array([len(v) for v in FLOWS.values()], dtype=np.int64)
_FLOW_TAIL = np.full((len(FLOWS), max(_FLOW_LEN)), -1, dtype=np.int64)
for _i, _v in enumerate(FLOWS.values()):
    _FLOW_TAIL[_i, : len(_v)] = [R[x] for x in _v]
# Seconds before a request of this role when it follows another page: forms take time to fill in,
# redirects follow at once.
_ARRIVE = {
    R["login_post"]: 9.0,
    R["signup_post"]: 28.0,
    R["payment"]: 50.0,
    R["confirm"]: 1.2,
    R["account"]: 0.9,
    R["cart"]: 0.8,
}
# Images a page of this role shows (-1: a few, drawn per page).
_IMAGES = {R["product"]: 3, R["product_utm"]: 3, R["home"]: 6, R["listing"]: -1, R["listing_page"]: -1, R["search"]: -1}
# Pages listing items: read faster, and where items are opened in tabs.
_LISTS = np.zeros(len(ROLE_NAMES), dtype=bool)
_LISTS[[R["home"], R["listing"], R["listing_page"], R["search"]]] = True
_LONGEST_TAB_BURST = 5


@dataclass(frozen=True)
class Sessions:
    """Who makes each session and when it starts: one entry per session (or one `profile` for all)."""

    starts: np.ndarray  # microseconds
    ip: Addresses
    ua: np.ndarray
    profile: np.ndarray | int
    sess: np.ndarray

    def profile_at(self, idx: np.ndarray) -> np.ndarray | int:
        """The profile of the sessions at `idx`."""
        return self.profile[idx] if isinstance(self.profile, np.ndarray) else self.profile


@dataclass(frozen=True)
class ReadingPace:
    """A person's seconds between pages: lognormal (median, sigma), each a number or one per session."""

    median: np.ndarray | float
    sigma: np.ndarray | float


@dataclass(frozen=True)
class DwellPace:
    """A person's time on each page, Weibull (`shape`, `scale` seconds; `list_scale` on pages that
    list items), then `load` seconds for the next page to open: one value per session each."""

    shape: np.ndarray
    scale: np.ndarray
    list_scale: np.ndarray
    load: np.ndarray


@dataclass(frozen=True)
class SleepPace:
    """Automation waiting a random time between pages, as evasive bots do: uniform in [low, high], or
    where `expo`, an exponential wait of the same mean (a Poisson pace: irregular, seldom a long read)."""

    low: np.ndarray
    high: np.ndarray
    expo: np.ndarray


@dataclass(frozen=True)
class SteadyPace:
    """Automation driving a browser at its own pace: `period` seconds between pages, regular."""

    period: np.ndarray


Pace = ReadingPace | DwellPace | SleepPace | SteadyPace


@dataclass(frozen=True)
class Route:
    """Where each visit goes: its landing page's role and referrer, the pages it browses (`roles` drawn
    with `role_p`; the second one of role `second` where given), then its flow's steps (a `FLOWS` index).

    `self_link` is the chance that a browsing step follows a link to the page it is on (a person
    rarely does; a bot picking a random link on the page does as often as the page links to itself).
    `back` is the chance that a browsing step goes back to the page two before (the list or results
    page, for its next item), `back_cached` the share of those the browser shows from its cache
    without asking the server: the next page then names the list as its referrer.
    `tabs` is the chance that a page listing items opens several of them in tabs (1 + geometric
    of `tab_p` items, 2 to 5), `tab_gap` seconds apart, each naming the list as referrer; the page
    after them waits while they are read, and comes from the list's tab again (`tab_return`) or a
    link in the last one. `site_search` marks the visits whose second page is a site search.
    `fresh`: a step forward never lands on the page the one before came from (nor on a list
    whose items are open in tabs), which would read as a step back.
    """

    landing: np.ndarray
    landing_ref: np.ndarray
    nbrowse: np.ndarray
    flow: np.ndarray
    roles: Sequence[str] = ("listing", "product", "search", "home", "notfound")
    role_p: Sequence[float] = (0.33, 0.49, 0.12, 0.045, 0.015)
    second: str | None = None
    self_link: np.ndarray | float = 0.0
    back: np.ndarray | float = 0.0
    back_cached: np.ndarray | float = 0.0
    tabs: np.ndarray | None = None
    tab_p: np.ndarray | float = 0.5
    tab_gap: tuple[float, float] = (0.5, 5.0)
    tab_return: float = 0.5
    site_search: np.ndarray | None = None
    fresh: bool = False
    landing_path: np.ndarray | None = None  # a given landing page (a path index), for visits that follow a link


@dataclass(frozen=True)
class Browser:
    """What each visit's browser fetches besides the pages: `returning` ones revalidate css/js
    (304), `cached` ones hold them and ask nothing; `first_images` and `later_images` are the
    chances that the first page's images, and a later page's, are fetched (cached or lazy ones not); `beacons` says which run the site's analytics script
    (blockers stop it), where the site has one. `spa` visits see the site as a single-page app
    (so do all on a site laid out as one): one HTML load, then each screen's API calls (2 to 20,
    `api_calls` on average), a page opened in a new tab loading the document again."""

    returning: np.ndarray
    beacons: np.ndarray | None = None
    favicon: bool = True
    images: bool = True
    cached: np.ndarray | None = None
    first_images: np.ndarray | None = None
    later_images: np.ndarray | None = None
    spa: np.ndarray | None = None
    api_calls: np.ndarray | float = 4.0


def flat(
    site: Site,
    rng: np.random.Generator,
    who: Sessions,
    *,
    sizes: np.ndarray,
    roles: Sequence[str],
    role_p: Sequence[float],
    period: np.ndarray,
    jitter: float = 0.1,
    first: Sequence[tuple[int, str, float]] = (),
    status: StatusMix | None = None,
    skew: float = 1.0,
) -> Rows:
    """Sessions of requests with no assets at a machine's pace (`period` seconds per session).

    `first` = (position, role, chance): the request at that position is of that role, in that share
    of the sessions (robots.txt first, say).
    """
    owner, pos = expand(sizes)
    n = len(owner)
    role = choice(rng, n, [R[r] for r in roles], role_p).astype(np.int64)
    for at, r, prob in first:
        flag = rng.random(len(sizes)) < prob
        role[(pos == at) & flag[owner]] = R[r]
    path = site.pick(rng, role, skew)
    gaps = period[owner] * np.clip(1 + jitter * rng.standard_normal(n), 0.3, None)
    ts = who.starts[owner] + np.round(within(gaps, owner, pos) * US).astype(np.int64)
    return rows(
        n,
        ts=ts,
        ip=take(who.ip, owner),
        ua=who.ua[owner],
        path=path,
        resp=site.respond(rng, path, status=status),
        profile=who.profile_at(owner),
        sess=who.sess[owner],
    )


def _tab_bursts(
    rng: np.random.Generator, route: Route, role: np.ndarray, owner: np.ndarray, browsing: np.ndarray
) -> np.ndarray:
    """For each row, the row of the list page that opened it in a tab (-1: none). Openers are list
    pages; their items take the next rows (browsing steps of the same visit) and become products."""
    n = len(role)
    assert route.tabs is not None
    free = browsing & np.append(False, owner[1:] == owner[:-1])  # never a visit's first page
    cand = _LISTS[role] & browsing & (rng.random(n) < route.tabs[owner])
    k = np.minimum(rng.geometric(per_row(route.tab_p, owner)), _LONGEST_TAB_BURST - 1) + 1
    k = np.where(cand, k, 0)

    def cover(openers: np.ndarray) -> np.ndarray:
        par = np.full(n, -1, dtype=np.int64)
        at = np.flatnonzero(openers)
        for j in range(_LONGEST_TAB_BURST, 0, -1):  # nearest opener last: it wins
            idx = at + j
            ok = (idx < n) & (k[at] >= j)
            ok[ok] &= (owner[idx[ok]] == owner[at[ok]]) & free[idx[ok]]
            par[idx[ok]] = at[ok]
        return par

    openers = cand
    for _ in range(4):  # an opener inside an earlier burst is one of its items, not an opener
        openers = cand & (cover(openers) < 0)
    par = cover(openers)
    openers &= par < 0
    par = cover(openers)
    role[par >= 0] = R["product"]
    return par


def _screens(site: Site, rng: np.random.Generator, pages: Rows, screen: np.ndarray, calls_mean: np.ndarray) -> Rows:
    """The API calls an app makes for each screen (rows of `pages` where `screen`): the screen's
    item or list first, then prices of the items it shows; the screen's address as referrer."""
    at = np.flatnonzero(screen)
    calls = np.clip(rng.poisson(calls_mean[at]), 2, 20)
    c_owner, c_pos = expand(calls)
    m = len(c_owner)
    row = at[c_owner]
    path = pages["path"][row].astype(np.int64)
    prod = site.product_index(path)
    n_items = site.size[R["api_item"]]
    item = site.off[R["api_item"]] + np.where(
        (c_pos == 0) & (prod >= 0), prod % n_items, np.floor(rng.random(m) ** 2.0 * n_items).astype(np.int64)
    )
    listing = site.pick(rng, np.full(m, R["api_list"]))
    api = np.where((c_pos == 0) & (prod < 0), listing, item)
    gap = 0.02 + rng.exponential(0.08, m)
    ts = pages["ts"][row] + np.round((0.1 + within(gap, c_owner, c_pos)) * US).astype(np.int64)
    return rows(
        m,
        ts=ts,
        ip=(pages["ip_hi"][row], pages["ip_lo"][row], pages["ip6"][row]),
        ua=pages["ua"][row],
        path=api,
        resp=site.respond(rng, api),
        profile=pages["profile"][row],
        sess=pages["sess"][row],
        ref_path=path,
    )


def browse(
    site: Site,
    rng: np.random.Generator,
    who: Sessions,
    route: Route,
    pace: Pace,
    browser: Browser,
    status: StatusMix | None = None,
) -> Rows:
    """Browser visits: pages (landing, browsing, then the flow's steps) with their assets."""
    starts, ip, ua, sess = who.starts, who.ip, who.ua, who.sess
    nbrowse, flow = route.nbrowse, route.flow
    npages = nbrowse + _FLOW_LEN[flow]
    owner, pos = expand(npages)
    n = len(owner)
    nb = nbrowse[owner]
    role = choice(rng, n, [R[r] for r in route.roles], route.role_p).astype(np.int64)
    if route.second is not None:
        role[pos == 1] = R[route.second]
    if route.site_search is not None:
        role[(pos == 1) & (pos < nb) & route.site_search[owner]] = R["search"]
    tail = pos >= nb
    role[tail] = _FLOW_TAIL[flow[owner][tail], (pos - nb)[tail]]
    # What goes in a cart was looked at just before.
    buys = (_FLOW_LEN[flow[owner]] > 0) & (pos == nb - 1) & (pos > 0)
    role[buys] = R["product"]
    role[pos == 0] = route.landing[owner[pos == 0]]
    parent = np.full(n, -1, dtype=np.int64)
    if route.tabs is not None:
        parent = _tab_bursts(rng, route, role, owner, (pos < nb) & ~buys)
    child = parent >= 0
    before = np.roll(parent, 1)  # the list whose item the page before is
    after = ~child & (before >= 0) & (pos > 0)
    # The page each page's link is on: the page before, or the list of the items open in tabs.
    from_list = after & (rng.random(n) < route.tab_return) if child.any() else after
    on = np.where(child, parent, np.where(from_list, before, np.arange(n) - 1))
    avoid = np.where(after, before, np.roll(on, 1))
    skew = 2.0 if isinstance(pace, (ReadingPace, DwellPace)) else 1.0
    path = site.pick(rng, role, skew=skew)
    if route.landing_path is not None:
        path[pos == 0] = route.landing_path[owner[pos == 0]]
    for _ in range(3 if route.fresh else 2):
        # A popular page drawn twice in a row is not a visit's next step: draw again.
        dup = (pos > 0) & (path == np.roll(path, 1)) & (role == np.roll(role, 1))
        if route.fresh:
            dup |= (pos > 1) & (path == path[np.maximum(avoid, 0)])
            role[dup & (site.size[role] == 1)] = R["listing"]  # the home page: another link
        if not dup.any():
            break
        path[dup] = site.pick(rng, role[dup], skew=skew)
    ret = (pos >= 2) & (pos < nb) & ~buys & (rng.random(n) < per_row(route.back, owner))
    if child.any():
        # Tabs are closed, not gone back from: no step back into, out of or right after a burst.
        burst = child | np.isin(np.arange(n), parent[child])
        ret &= ~burst & ~np.roll(burst, 1) & ~np.roll(burst, 2)
    ret &= ~np.roll(ret, 1)  # a step back follows a step forward
    if ret.any():
        src = np.where(ret, np.arange(n) - 2, np.arange(n))
        for _ in range(8):  # L P1 L P2 L: every return lands on the first L (pointer doubling)
            src = src[src]
        path, role = path[src], role[src]
    keep = ~(ret & (rng.random(n) < per_row(route.back_cached, owner)))
    p_self = per_row(route.self_link, owner)
    if p_self.any():
        again = (pos > 0) & (pos < nb) & ~buys & ~ret & ~child & (rng.random(n) < p_self)
        # The page again: carry the previous step's page forward (runs of repeats included).
        src = np.maximum.accumulate(np.where(again, 0, np.arange(n)))
        path, role = path[src], role[src]
    special = np.zeros(len(ROLE_NAMES), dtype=bool)
    special[list(_ARRIVE)] = True
    arrive = np.array([_ARRIVE.get(r, 0.0) for r in range(len(ROLE_NAMES))])
    if isinstance(pace, ReadingPace):
        t_med = np.broadcast_to(np.asarray(pace.median, dtype=float), nbrowse.shape)[owner]
        t_sig = np.broadcast_to(np.asarray(pace.sigma, dtype=float), nbrowse.shape)[owner]
        sp = special[role]
        gaps = np.clip(lognormal(rng, np.where(sp, arrive[role], t_med), np.where(sp, 0.5, t_sig), n), 0.4, 1800)
    elif isinstance(pace, DwellPace):
        # Time on the page before, by what that page is, then the next page's load.
        prev_role = np.roll(role, 1)
        scale = np.where(_LISTS[prev_role], pace.list_scale[owner], pace.scale[owner])
        dwell = scale * rng.weibull(pace.shape[owner]) + pace.load[owner]
        form = lognormal(rng, arrive[role], 0.5, n)
        gaps = np.clip(np.where(special[role], form, dwell), 0.4, 1800)
    elif isinstance(pace, SleepPace):
        # The page's load time, then the sleep; forms and redirects still take their own time.
        low, high, expo = pace.low[owner], pace.high[owner], pace.expo[owner]
        gaps = np.where(expo, rng.exponential((low + high) / 2), rng.uniform(low, high)) + rng.uniform(0.2, 1.2, n)
        gaps = np.where(special[role], arrive[role] * rng.uniform(0.5, 1.5, n), gaps)
    else:
        gaps = pace.period[owner] * np.clip(1 + 0.15 * rng.standard_normal(n), 0.3, None)
    prev = np.arange(n) - 1
    ref_path = np.where(pos == 0, -1, path[np.maximum(prev, 0)])
    if child.any():
        # Items open seconds apart, each from the list; the page after them waits while they are
        # read, and comes from the list's tab again or from the last item.
        read_time = np.append(gaps[1:], 0.0)  # time on each page: the gap before the next
        later = child & (before == parent)
        read = np.bincount(parent[child], weights=read_time[child], minlength=n)
        gaps = np.where(later, rng.uniform(*route.tab_gap, n), gaps)
        gaps = np.where(after, np.clip(read[np.maximum(before, 0)], 0.4, 1800), gaps)
        ref_path = np.where(child, path[np.maximum(parent, 0)], ref_path)
        ref_path = np.where(from_list, path[np.maximum(before, 0)], ref_path)
    page_ts = starts[owner] + np.round(within(gaps, owner, pos) * US).astype(np.int64)
    ref_ext = np.where(pos == 0, route.landing_ref[owner], -1)
    meth, st, by, rt = site.respond(rng, path, status=status)
    pages = rows(
        n,
        ts=page_ts,
        ip=take(ip, owner),
        ua=ua[owner],
        path=path,
        resp=(meth, st, by, rt),
        profile=who.profile_at(owner),
        sess=sess[owner],
        ref_ext=ref_ext,
        ref_path=ref_path,
    )
    shown = site.r_html[role] & (st == 200) & (meth == GET)
    # A page shown again from the browser's cache reaches no log, nor do its assets.
    logged = keep
    screens: Rows | None = None
    spa = np.ones(len(nbrowse), dtype=bool) if site.layout == "spa" else browser.spa
    if spa is not None and spa.any():
        # An app loads its document once; a tab opened on it loads the document again.
        screen = spa[owner] & shown & (pos > 0) & ~child & keep
        if screen.any():
            calls = np.broadcast_to(np.asarray(browser.api_calls, dtype=float), nbrowse.shape)[owner]
            screens = _screens(site, rng, pages, screen, calls)
            logged = keep & ~screen
    pages = {c: v[logged] for c, v in pages.items()}

    # Assets of each HTML page that loaded: css/js (and the favicon) on the first page of a
    # visit, then images; a returning visitor's cache answers 304 for css/js.
    ok = shown & keep
    first_assets = ok & (pos == 0)
    if browser.cached is not None:
        first_assets &= ~browser.cached[owner]
    n_fixed = np.where(first_assets, 4 + int(browser.favicon), 0)
    per = np.array([_IMAGES.get(r, 0) for r in range(len(ROLE_NAMES))])[role]
    n_img = np.where(per < 0, rng.integers(3, 8, n), per) if browser.images else np.zeros(n, dtype=np.int64)
    n_img = np.where(ok, n_img, 0)
    if browser.first_images is not None and browser.later_images is not None:
        fetched = np.where(pos > 0, browser.later_images[owner], browser.first_images[owner])
        n_img = np.where(rng.random(n) < fetched, n_img, 0)
    a_owner, a_pos = expand(n_fixed + n_img)
    m = len(a_owner)
    fixed = a_pos < n_fixed[a_owner]
    fixed_paths = np.array(
        [site.off[R["css"]], site.off[R["css"]] + 1, site.off[R["js"]], site.off[R["js"]] + 1, site.off[R["favicon"]]]
    )
    a_path = np.empty(m, dtype=np.int64)
    a_path[fixed] = fixed_paths[a_pos[fixed]]
    img = ~fixed
    k = (a_pos - n_fixed[a_owner])[img]
    prod = site.product_index(path[a_owner][img])
    rand_prod = np.floor(rng.random(int(img.sum())) ** 2.0 * site.n_products).astype(np.int64)
    is_home = role[a_owner][img] == R["home"]
    img_path = site.off[R["img_product"]] + np.where(prod >= 0, prod * 3 + k % 3, rand_prod * 3)
    banner = site.off[R["img_banner"]] + (k % site.size[R["img_banner"]])
    a_path[img] = np.where(is_home & (k < 3), banner, img_path)
    a_gap = 0.015 + rng.exponential(0.12, m)
    a_ts = page_ts[a_owner] + np.round((0.05 + within(a_gap, a_owner, a_pos)) * US).astype(np.int64)
    am, ast, aby, art = site.respond(rng, a_path)
    cached = browser.returning[owner][a_owner] & fixed & (a_pos < 4)
    ast = np.where(cached, 304, ast).astype(np.int16)
    aby = np.where(cached, 0, aby).astype(np.int32)
    so = owner[a_owner]
    assets = rows(
        m,
        ts=a_ts,
        ip=take(ip, so),
        ua=ua[so],
        path=a_path,
        resp=(am, ast, aby, art),
        profile=who.profile_at(so),
        sess=sess[so],
        ref_path=path[a_owner],
    )
    parts = [pages, assets] if screens is None else [pages, screens, assets]
    period = site.beacon_period
    if browser.beacons is not None and period is not None:
        # Beacons from each page until the next one opens (the last page: a while longer).
        last = np.append(owner[1:] != owner[:-1], True)
        stay = np.where(last, rng.uniform(5.0, 90.0, n) * US, np.roll(page_ts, -1) - page_ts) / US
        nb_ = np.where(
            shown & browser.beacons[owner], np.minimum(np.floor(np.maximum(stay - 0.5, 0) / period), 15) + 1, 0
        )
        b_owner, b_pos = expand(nb_.astype(np.int64))
        k = len(b_owner)
        b_path = np.full(k, site.off[R["beacon"]], dtype=np.int32)
        b_ts = page_ts[b_owner] + np.round((0.5 + b_pos * period + rng.uniform(0, 0.3, k)) * US).astype(np.int64)
        bo = owner[b_owner]
        parts.append(
            rows(
                k,
                ts=b_ts,
                ip=take(ip, bo),
                ua=ua[bo],
                path=b_path,
                resp=site.respond(rng, b_path),
                profile=who.profile_at(bo),
                sess=sess[bo],
                ref_path=path[b_owner],
            )
        )
    return {c: np.concatenate([part[c] for part in parts]) for c in pages}
