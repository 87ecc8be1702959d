"""Thresholds of the behavioural threats, and the YAML file (`--threats FILE`) a site tunes them with."""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from trafficlens.errors import CatalogueError


@dataclass
class ThreatConfig:
    """Thresholds of the behavioural threats. Each default is what separates the attack from
    ordinary use by a wide margin; a site tunes them with `--threats FILE` (YAML, same names)."""

    window_minutes: int = 10
    # A person mistypes a password a few times; 10 failed logins in 10 minutes is a script.
    brute_force_failures: int = 10
    # Stuffing spreads over many addresses, each trying a few. A person opens the login page
    # (and its assets) before posting it; a client that only posts failing logins, twice or
    # more, is a script. Five such addresses within an hour make a campaign.
    stuffing_min_failures: int = 2
    stuffing_addresses: int = 5
    campaign_minutes: int = 60
    # Card testers try many cards: 5 payment attempts in a window, half declined.
    card_attempts: int = 5
    card_decline_share: float = 0.5
    # Nobody signs up 3 times in 10 minutes. A session that touches nothing but the sign-up
    # form (no page, no asset) is not a person finding it; nor is one that posts it unloaded or
    # within 15 s of its page (typing a name, an address and a password twice takes a person
    # longer at 40 words a minute; autofill is faster, hence only in a burst), loading no asset
    # and reading at most one page. 5 of them from 3+ addresses within an hour is a sign-up farm.
    signup_per_client: int = 3
    signup_burst: int = 5
    signup_burst_addresses: int = 3
    signup_typing_s: int = 15
    # Scanners: 8 distinct attack-rule paths, or 30 distinct paths answered 4xx mostly; a
    # script (a tool user agent, or none) needs only 3 distinct missing paths: it has no
    # stale links to follow.
    scan_rule_paths: int = 8
    scan_404_paths: int = 30
    scan_404_share: float = 0.7
    tool_404_paths: int = 3
    # Scraping: 200 product/search/listing/content/API pages at machine pace, with no assets, by a
    # browser user agent or an HTTP tool (declared crawlers crawl that way by nature); or a
    # network (IPv4 /16) of 10+ addresses sweeping 100+ of them with browser user agents, no
    # assets and no referrers (rotating proxies of one provider).
    # Where fewer than 60% of the site's browsers (of 3+ requests besides assets) load an asset,
    # the assets come from elsewhere (a CDN) and a browser needs 30 pages a minute (2 s a page).
    scrape_pages: int = 200
    scrape_rate_per_min: float = 10.0
    scrape_asset_norm: float = 0.6
    scrape_bare_rate_per_min: float = 30.0
    scrape_net_clients: int = 10
    scrape_net_pages: int = 100
    # The networks count only on a site whose log holds assets for its browsers: at least this
    # share of those of 3+ requests besides assets loaded one (a CDN site's log holds a handful in
    # a hundred thousand; a site serving its own, most of its visitors' even under a sweep).
    scrape_net_asset_norm: float = 0.02
    # A swarm: residential proxies give each request or few a new home address anywhere, so no
    # network holds many. In one 10-minute window, 20+ browsers arriving bare (content, no asset,
    # no referrer, from first request to last), 80%+ of the window's new clients and at odds of
    # being bare 4 times the site's (a site whose people land bare, behind a CDN, needs a window
    # nearer all bare), together fetching mostly different pages (70%+ of
    # their page requests to distinct paths): a newsletter or a shared link brings many people at
    # once too, but to the few pages it names, and on a site serving assets they load them.
    swarm_minutes: int = 10
    swarm_addresses: int = 20
    swarm_share: float = 0.8
    swarm_odds: float = 4.0
    swarm_spread: float = 0.7
    # One address cycling through 5+ user agents within an hour, fetching no assets, 90%+ of its
    # requests naming no referrer (a carrier's NAT carries as many people's browsers, following
    # links); or a sweeping network (above) whose addresses share a pool of 5+ user agents.
    rotation_user_agents: int = 5
    rotation_bare_share: float = 0.9
    # 300 requests in one minute from one client is a flood, not a visit.
    dos_per_minute: int = 300
    # Nobody submits a login form 5 times in one minute, whatever the server answers (some login
    # pages answer a failure with 200).
    login_posts_per_minute: int = 5
    # HTTP authentication (Basic, Digest): a person is asked once, mistypes once or twice; 5
    # refusals (401) in a window, answering most of what the client asked, is a password guesser.
    http_auth_failures: int = 5
    http_auth_failure_share: float = 0.8
    # Cache busting: one path asked for 20 times in a minute, each time with a different bare
    # token as its query (`/?8890121518`, no parameter name), makes every request miss the cache.
    cache_bypass_per_minute: int = 20
    # A probe rule (an admin panel, a product's endpoint) fires only where the site does not serve
    # the path. A path is served when 3 readers received it (2xx of 64+ bytes, or 304), it or the
    # part of it the rule matched (/kibana/ for /kibana/css/style.css): one or two may be a
    # scanner's luck on a catch-all page, three are the site's own readers. A reader sent no
    # exploit, asked for at most 2 probe targets and received some path no rule matches: a
    # scanner answered 200 by a catch-all page asks for many, a botnet's one-shot probe reads
    # nothing else. Empty answers do not count: catch-all handlers send them.
    served_min_readers: int = 3
    served_min_bytes: int = 64
    reader_max_probes: int = 2

    @classmethod
    def load(cls, path: str | Path | None) -> ThreatConfig:
        if not path:
            return cls()
        doc, where = read_yaml("--threats", path)
        return thresholds(cls, doc, "--threats", where, "scrape_pages: 300")


T = TypeVar("T")


def read_yaml(
    option: str, path: str | Path | None, shipped: str | None = None, error: type[Exception] = CatalogueError
) -> tuple[Any, str]:
    """The YAML document of `OPTION path`, or of the shipped catalogue file `shipped` when no path
    is given, and the file's name for messages; a file that cannot be read as YAML is one line."""
    where = str(path) if path else f"the shipped {shipped}"
    try:
        text = (
            Path(path).read_text(encoding="utf-8")
            if path
            else resources.files("trafficlens").joinpath(f"catalogues/{shipped}").read_text()
        )
        return yaml.safe_load(text) or {}, where
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        reason = e.strerror if isinstance(e, OSError) else " ".join(str(e).split())
        raise error(f"{option} {where}: cannot read it as YAML ({reason})") from None


def thresholds(
    cls: type[T], doc: Any, option: str, where: str, example: str, error: type[Exception] = CatalogueError
) -> T:
    """A dataclass of thresholds from `name: value` lines over its defaults: every name known,
    every value a number of its default's kind, 0 or more; anything else one line."""
    if not isinstance(doc, dict):
        raise error(f"{option} {where}: expected name: value lines, e.g. `{example}`")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    bad = sorted(str(k) for k in set(doc) - names)
    if bad:
        raise error(f"{option} {where}: unknown setting(s) {', '.join(bad)}; known: {', '.join(sorted(names))}")
    for name, value in doc.items():
        # A threshold is a number of the default's kind (bool is an int to Python, not here).
        kind = type(getattr(cls, name))
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value < 0:
            what = "a number" if kind is float else "a whole number"
            raise error(f"{option} {where}: {name} must be {what} of 0 or more (got {value!r})")
    return cls(**doc)
