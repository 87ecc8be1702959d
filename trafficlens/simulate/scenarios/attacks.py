"""Attacks: vulnerability scanners probing for files, admin pages, backdoors and injections;
credential stuffing, card testing and fake sign-ups from botnets and hosting addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trafficlens.simulate.browse import Sessions, flat
from trafficlens.simulate.rows import DAY_US, US, Day, Rows, choice, poisson
from trafficlens.simulate.site import R

if TYPE_CHECKING:
    from trafficlens.simulate.sim import Sim


def vuln_scanner(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    n = poisson(rng, 2 * sim.scale, day.least)
    tools = ("Nikto", "Nuclei", "sqlmap", "zgrab", "")
    tool = choice(rng, n, np.arange(5), [0.2, 0.3, 0.15, 0.15, 0.2])
    out = []
    for t in range(5):
        m = tool == t
        k = int(m.sum())
        if not k:
            continue
        name = tools[t]
        if name:
            uas = sim.scanner_ua[name]
            ua = uas[rng.integers(0, len(uas), k)]
            prof = sim.profile(
                sid,
                "crawler",
                "security_scanner",
                "declared",
                agent=name,
                threats=("vuln_scan", "bad_user_agent"),
                path_threats=True,
            )
        else:
            ua = sim.stale_ua[rng.integers(0, len(sim.stale_ua), k)]
            prof = sim.profile(
                sid, "crawler", "security_scanner", "undeclared", threats=("vuln_scan",), path_threats=True
            )
        probes = (
            "probe_sensitive",
            "probe_admin",
            "probe_backdoor",
            "probe_traversal",
            "probe_sqli",
            "probe_xss",
            "probe_generic",
            "home",
        )
        mix, sizes = {
            "Nikto": ((0.3, 0.2, 0.15, 0.1, 0.05, 0.05, 0.13, 0.02), rng.integers(60, 250, k)),
            "Nuclei": ((0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.18, 0.02), rng.integers(60, 250, k)),
            "sqlmap": ((0, 0, 0, 0, 0.95, 0, 0, 0.05), rng.integers(40, 150, k)),
            "zgrab": ((0.3, 0, 0, 0, 0, 0, 0, 0.7), rng.integers(1, 4, k)),
            "": ((0.3, 0.2, 0.1, 0.05, 0.15, 0.1, 0.08, 0.02), rng.integers(30, 120, k)),
        }[name]
        starts = day.start_us + np.round(rng.random(k) * DAY_US).astype(np.int64)
        who = Sessions(starts, sim.hosting.sample(rng, k), ua, prof, day.sessions(sid, k))
        out.append(
            flat(
                sim.site,
                rng,
                who,
                sizes=sizes,
                roles=probes,
                role_p=mix,
                period=rng.uniform(0.03, 0.4, k),
                jitter=0.3,
                first=((0, "home", 0.6),),
            )
        )
    return out


def credential_stuffing(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    prof = sim.profile(sid, "agent", "unknown", "undeclared", threats=("credential_stuffing",))
    n = poisson(rng, 55 * sim.scale, 3 * day.least)
    # Campaigns of a few hours; each botnet address tries a handful of logins, about one a minute.
    n_camp = max(1, round(n / 60))
    camp = rng.integers(0, n_camp, n)
    c_start = day.start_us + np.round(rng.random(n_camp) * DAY_US).astype(np.int64)
    c_len = rng.uniform(1, 4, n_camp) * 3600 * US
    starts = c_start[camp] + np.round(rng.random(n) * c_len[camp]).astype(np.int64)
    ua = choice(
        rng,
        n,
        np.concatenate([sim.stale_ua, sim.browser_ua]),
        np.concatenate([np.full(len(sim.stale_ua), 0.5 / len(sim.stale_ua)), sim.browser_p * 0.5]),
    )
    sizes = rng.integers(1, 9, n)
    who = Sessions(starts, sim.botnet.sample(rng, n), ua, prof, day.sessions(sid, n))
    return [
        flat(
            sim.site,
            rng,
            who,
            sizes=sizes,
            roles=("login_post",),
            role_p=(1.0,),
            period=rng.uniform(30, 75, n),
            jitter=0.3,
            status={R["login_post"]: ((401, 403, 429, 302), (0.82, 0.12, 0.03, 0.03))},
        )
    ]


def card_testing(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    prof = sim.profile(sid, "agent", "unknown", "undeclared", threats=("card_testing",))
    n = poisson(rng, 2.5 * sim.scale, day.least)
    # A small cart, then card after card on the payment endpoint, mostly declined.
    n_attack = max(1, round(n / 2.5))
    attack = rng.integers(0, n_attack, n)
    t_attack = day.start_us + np.round(rng.random(n_attack) * DAY_US).astype(np.int64)
    starts = t_attack[attack] + np.round(rng.random(n) * 600 * US).astype(np.int64)
    hosted = rng.random(n) < 0.5
    ip = tuple(np.where(hosted, a, b) for a, b in zip(sim.hosting.sample(rng, n), sim.residential.sample(rng, n)))
    sizes = rng.integers(10, 40, n)
    who = Sessions(starts, ip, sim.stale_ua[rng.integers(0, len(sim.stale_ua), n)], prof, day.sessions(sid, n))
    return [
        flat(
            sim.site,
            rng,
            who,
            sizes=sizes,
            roles=("payment",),
            role_p=(1.0,),
            period=rng.uniform(4, 20, n),
            jitter=0.25,
            first=((0, "cart_add", 1.0), (1, "checkout", 1.0)),
            status={R["payment"]: ((402, 200, 429), (0.9, 0.05, 0.05))},
        )
    ]


def fake_signup(sim: Sim, rng: np.random.Generator, day: Day, sid: int) -> list[Rows]:
    prof = sim.profile(sid, "agent", "unknown", "undeclared", threats=("fake_signup",))
    n = poisson(rng, 45 * sim.scale, 3 * day.least)
    # Bursts of fresh addresses, each signing up once or twice within minutes.
    n_burst = max(1, round(n / 45))
    burst = rng.integers(0, n_burst, n)
    b_start = day.start_us + np.round(rng.random(n_burst) * DAY_US).astype(np.int64)
    starts = b_start[burst] + np.round(rng.random(n) * rng.uniform(300, 1800, n_burst)[burst] * US).astype(np.int64)
    hosted = rng.random(n) < 0.3
    ip = tuple(np.where(hosted, a, b) for a, b in zip(sim.hosting.sample(rng, n), sim.botnet.sample(rng, n)))
    ua = choice(rng, n, sim.browser_ua, sim.browser_p)
    sizes = choice(rng, n, [1, 2, 3], [0.55, 0.35, 0.1])
    who = Sessions(starts, ip, ua, prof, day.sessions(sid, n))
    return [
        flat(
            sim.site,
            rng,
            who,
            sizes=sizes,
            roles=("signup_post",),
            role_p=(1.0,),
            period=rng.uniform(2, 15, n),
            jitter=0.3,
            first=((0, "signup_form", 0.4),),
            status={R["signup_post"]: ((302, 422, 429), (0.75, 0.15, 0.1))},
        )
    ]
