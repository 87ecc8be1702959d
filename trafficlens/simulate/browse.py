"""How simulated clients move through the site: a browser's visit (pages, then the flow's steps,
with their assets and analytics beacons) at a pace of its own, or a machine's flat run of requests.

A visit is described by who makes it (`Sessions`), where it goes (`Route`), how long it waits
between pages (a `Pace`: a person reading, automation sleeping a random while, or a steady period)
and what its browser fetches besides the pages (`Browser`). All are one entry per session.
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


Pace = ReadingPace | SleepPace | SteadyPace


@dataclass(frozen=True)
class Route:
    """Where each visit goes: its landing page's role and referrer, the pages it browses (`roles` drawn
    with `role_p`; the second one of role `second` where given), then its flow's steps (a `FLOWS` index).

    `self_link` is the chance that a browsing step follows a link to the page it is on (a person
    rarely does; a bot picking a random link on the page does as often as the page links to itself).
    `back` is the chance that a browsing step goes back to the page two before (the list or results
    page, for its next item), `back_cached` the share of those the browser shows from its cache
    without asking the server: the next page then names the list as its referrer.
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
    back_cached: float = 0.0


@dataclass(frozen=True)
class Browser:
    """What each visit's browser fetches besides the pages: `returning` ones have css/js cached;
    `beacons` says which run the site's analytics script (blockers stop it), where the site has one."""

    returning: np.ndarray
    beacons: np.ndarray | None = None
    favicon: bool = True
    images: bool = True


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
    tail = pos >= nb
    role[tail] = _FLOW_TAIL[flow[owner][tail], (pos - nb)[tail]]
    # What goes in a cart was looked at just before.
    buys = (_FLOW_LEN[flow[owner]] > 0) & (pos == nb - 1) & (pos > 0)
    role[buys] = R["product"]
    role[pos == 0] = route.landing[owner[pos == 0]]
    skew = 2.0 if isinstance(pace, ReadingPace) else 1.0
    path = site.pick(rng, role, skew=skew)
    for _ in range(2):
        # A popular page drawn twice in a row is not a visit's next step: draw again.
        dup = (pos > 0) & (path == np.roll(path, 1)) & (role == np.roll(role, 1))
        if not dup.any():
            break
        path[dup] = site.pick(rng, role[dup], skew=skew)
    ret = (pos >= 2) & (pos < nb) & ~buys & (rng.random(n) < per_row(route.back, owner))
    ret &= ~np.roll(ret, 1)  # a step back follows a step forward
    if ret.any():
        src = np.where(ret, np.arange(n) - 2, np.arange(n))
        for _ in range(8):  # L P1 L P2 L: every return lands on the first L (pointer doubling)
            src = src[src]
        path, role = path[src], role[src]
    keep = ~(ret & (rng.random(n) < route.back_cached))
    p_self = per_row(route.self_link, owner)
    if p_self.any():
        again = (pos > 0) & (pos < nb) & ~buys & ~ret & (rng.random(n) < p_self)
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
    elif isinstance(pace, SleepPace):
        # The page's load time, then the sleep; forms and redirects still take their own time.
        low, high, expo = pace.low[owner], pace.high[owner], pace.expo[owner]
        gaps = np.where(expo, rng.exponential((low + high) / 2), rng.uniform(low, high)) + rng.uniform(0.2, 1.2, n)
        gaps = np.where(special[role], arrive[role] * rng.uniform(0.5, 1.5, n), gaps)
    else:
        gaps = pace.period[owner] * np.clip(1 + 0.15 * rng.standard_normal(n), 0.3, None)
    page_ts = starts[owner] + np.round(within(gaps, owner, pos) * US).astype(np.int64)
    ref_ext = np.where(pos == 0, route.landing_ref[owner], -1)
    prev = np.arange(n) - 1
    ref_path = np.where(pos == 0, -1, path[np.maximum(prev, 0)])
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
    # A page shown again from the browser's cache reaches no log, nor do its assets.
    pages = {c: v[keep] for c, v in pages.items()}

    # Assets of each HTML page that loaded: css/js (and the favicon) on the first page of a
    # visit, then images; a returning visitor's cache answers 304 for css/js.
    shown = site.r_html[role] & (st == 200) & (meth == GET)
    ok = shown & keep
    n_fixed = np.where(ok & (pos == 0), 4 + int(browser.favicon), 0)
    per = np.array([_IMAGES.get(r, 0) for r in range(len(ROLE_NAMES))])[role]
    n_img = np.where(per < 0, rng.integers(3, 8, n), per) if browser.images else np.zeros(n, dtype=np.int64)
    n_img = np.where(ok, n_img, 0)
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
    parts = [pages, assets]
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
