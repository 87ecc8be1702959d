"""Labelled synthetic traffic: an access log in a common format, and the truth for every line.

`simulate()` writes a site's log for a number of days (humans, AI crawlers and assistants, search
engines, SEO bots, monitors, tools, scrapers, agentic browsers, headless automation, spoofed
crawlers, vulnerability scanners, credential stuffing, card testing, fake sign-ups, and browser
bots that sleep a random while between pages to pass for visitors) and, beside
it, `<log>.truth.parquet`: one row per log line with the labels a perfect classifier would give
(DESIGN.md, "Label vocabulary"). It can also write the IP range files that the declared bots'
addresses were drawn from, in the operators' own JSON shape, so verification can be tested offline.

How the labels are meant:
- `identity`: declared agents whose operator publishes ranges come from those ranges (`verified`);
  other declared agents and tools are `declared`; a known agent's user agent from elsewhere is
  `spoofed`; automation behind a browser user agent is `undeclared`; humans are `none`.
- `agent` is the agent the user agent names (for a spoofed client, the agent it claims, with no
  operator); agentic browsers run from OpenAI's addresses are "ChatGPT agent" with operator OpenAI.
- `session` is the true visit (a human's visit, a crawl burst, a scraping sweep, an attacker's run).
- `user_agent` is the one the client sent. W3C logs write spaces as `+`, so a user agent holding a
  literal `+` reads back with a space there; compare on `line_no`, not on the user agent.

Generation is vectorised: each scenario builds its requests for a day as numpy arrays (per-session
attributes expanded to requests with `np.repeat` and cumulative sums), and lines are rendered with
polars string expressions in slices, one day at a time, so memory stays bounded at any volume.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import ipaddress
import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from trafficlens.progress import Progress
from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PURPOSES, THREATS

__all__ = ["FORMATS", "SCENARIOS", "SITE_KINDS", "TRUTH_SCHEMA", "SimulateSummary", "simulate"]

FORMATS = ("combined", "common", "vhost_combined", "nginx_json", "w3c", "alb")
SITE_KINDS = ("shop", "media", "travel")
SCENARIOS = (
    "human_browsing", "human_ai_referral", "ai_crawler", "ai_assistant", "search_engine", "seo_bot",
    "monitor", "http_tool", "stealth_scraper", "agentic_browser", "headless_automation",
    "spoofed_crawler", "vuln_scanner", "credential_stuffing", "card_testing", "fake_signup", "paced_bot",
)
DEFAULT_START = dt.date(2025, 10, 6)  # fixed, so a seed alone fixes the output
AI_GROWTH = 2.5  # AI crawler, assistant and agent volume from the first day to the last
SLICE_ROWS = 100_000  # rows rendered at once: bounds the memory of the line strings

TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "ts": pl.Datetime("us", "UTC"),
    "client_ip": pl.String(),
    "user_agent": pl.String(),
    "actor_class": pl.String(),
    "automated": pl.Boolean(),
    "ai_driven": pl.Boolean(),
    "purpose": pl.String(),
    "operator": pl.String(),
    "agent": pl.String(),
    "identity": pl.String(),
    "malicious": pl.Boolean(),
    "threats": pl.List(pl.String()),
    "scenario": pl.String(),
    "session": pl.String(),
    "method": pl.String(),
    "path": pl.String(),
    "status": pl.Int32(),
}

US = 1_000_000
DAY_US = 86_400 * US
METHODS = ("GET", "POST", "HEAD")
GET, POST, HEAD = 0, 1, 2
_BIT = {t: 1 << i for i, t in enumerate(THREATS)}


def _mask(*names: str) -> int:
    out = 0
    for n in names:
        out |= _BIT[n]
    return out


# ---------------------------------------------------------------------------------------------
# Address spaces
# ---------------------------------------------------------------------------------------------


class _Space:
    """Prefixes to draw addresses from (IPv4 and IPv6), each address as (hi, lo, is6)."""

    def __init__(self, prefixes: Sequence[str], weights: Sequence[float] | None = None) -> None:
        nets = [ipaddress.ip_network(p) for p in prefixes]
        self.is6 = np.array([n.version == 6 for n in nets])
        base = [int(n.network_address) for n in nets]
        self.hi = np.array([(b >> 64) if n.version == 6 else 0 for b, n in zip(base, nets)], dtype=np.uint64)
        self.lo = np.array([b & (2**64 - 1) for b in base], dtype=np.uint64)
        self.bits = np.array([n.max_prefixlen - n.prefixlen for n in nets], dtype=np.int64)
        w = np.ones(len(nets)) if weights is None else np.asarray(weights, dtype=float)
        self.p = w / w.sum()

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = rng.choice(len(self.p), size=n, p=self.p)
        bits, six = self.bits[k], self.is6[k]
        hi, lo = self.hi[k].copy(), self.lo[k].copy()
        # IPv4 and IPv6 prefixes longer than /64: random host bits in the low word.
        low_bits = np.where(six, np.minimum(bits, 64), bits)
        size = np.exp2(np.minimum(low_bits, 52))
        host = np.floor(rng.random(n) * size).astype(np.uint64)
        v4big = ~six & (bits >= 8)
        last = host & np.uint64(0xFF)
        host = np.where(v4big & (last == 0), host + np.uint64(1), host)  # no .0 or .255 hosts
        host = np.where(v4big & (last == 255), host - np.uint64(1), host)
        wide6 = six & (bits >= 64)
        lo = np.where(wide6, rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1),
                      lo + host)
        hi_bits = np.clip(bits - 64, 0, 52)
        hi = np.where(wide6, hi + np.floor(rng.random(n) * np.exp2(hi_bits)).astype(np.uint64), hi)
        return hi, lo, six


def _take(addrs: tuple[np.ndarray, np.ndarray, np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, ...]:
    return addrs[0][idx], addrs[1][idx], addrs[2][idx]


# Ranges the operators publish (their own file names); prefixes they publish where known, else
# plausible ones inside the operator's network. Each agent draws from its own prefixes.
_AGENT_PREFIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "GPTBot": ("gptbot.json", ("20.171.206.0/24", "20.171.207.0/24", "52.230.152.0/24", "4.227.36.0/25",
                               "20.125.66.80/28")),
    "OAI-SearchBot": ("searchbot.json", ("20.42.10.176/28", "172.203.190.128/28", "104.210.140.128/28",
                                         "51.8.102.0/24")),
    "ChatGPT-User": ("chatgpt-user.json", ("23.98.142.176/28", "40.84.180.224/28", "13.65.240.240/28",
                                           "20.97.189.96/28", "20.161.75.208/28", "52.225.75.208/28",
                                           "52.156.77.144/28", "40.84.221.208/28")),
    "ChatGPT agent": ("chatgpt-user.json", ("172.183.222.128/28", "51.8.155.64/28")),
    "ClaudeBot": ("bots.json", ("216.73.216.0/23",)),
    "Claude-SearchBot": ("bots.json", ("216.73.218.0/24",)),
    "Claude-User": ("bots.json", ("160.79.104.0/23",)),
    "PerplexityBot": ("perplexitybot.json", ("107.20.236.150/32", "3.224.62.45/32", "18.210.92.235/32",
                                             "3.222.232.239/32", "3.211.124.183/32", "3.231.139.107/32",
                                             "18.97.1.228/30", "18.97.9.96/29")),
    "Perplexity-User": ("perplexity-user.json", ("44.208.221.197/32", "34.193.163.52/32", "18.97.21.0/30",
                                                 "18.97.43.80/29")),
    "MistralAI-User": ("mistralai-user-ips.json", ("51.159.112.0/25",)),
    "CCBot": ("ccbot.json", ("18.97.9.168/29", "18.97.14.80/29", "18.97.14.88/30", "98.85.178.216/32")),
    "Googlebot": ("common-crawlers.json", tuple(f"66.249.{b}.0/27" for b in range(64, 80))
                  + ("66.249.66.160/27", "66.249.66.192/27", "66.249.68.32/27")),
    "bingbot": ("bingbot.json", ("157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24", "52.167.144.0/24",
                                 "13.66.139.0/24")),
    "Applebot": ("applebot.json", ("17.241.208.160/27", "17.241.193.160/27", "17.241.219.0/24",
                                   "17.22.237.0/24")),
    "DuckDuckBot": ("duckduckbot.json", ("20.191.45.212/32", "40.88.21.235/32", "40.76.173.151/32",
                                         "40.76.163.7/32", "20.185.79.47/32", "52.142.26.175/32",
                                         "20.185.79.15/32", "52.142.24.149/32", "40.76.162.208/32",
                                         "40.76.163.23/32", "40.76.162.191/32", "40.76.162.247/32")),
    # No published ranges: these agents are `declared`.
    "Bytespider": ("", ("47.128.16.0/20", "47.128.96.0/20")),
    "meta-externalagent": ("", ("57.141.0.0/24", "57.141.2.0/24", "57.141.4.0/24")),
    "Amazonbot": ("", ("52.70.240.0/24", "3.224.220.0/24")),
    "YandexBot": ("", ("5.255.231.0/24", "213.180.203.0/24", "87.250.224.0/24")),
    "AhrefsBot": ("", ("54.36.148.0/23", "51.222.253.0/24")),
    "SemrushBot": ("", ("185.191.171.0/24", "85.208.96.0/24")),
    "MJ12bot": ("", ("144.76.118.0/24", "5.9.143.0/24")),
    "DotBot": ("", ("216.244.66.0/24",)),
    "UptimeRobot": ("", ("69.162.124.224/28", "63.143.42.240/28", "216.144.250.150/32", "208.115.199.16/28")),
    "Pingdom": ("", ("5.172.196.188/32", "185.180.12.64/28", "178.255.152.0/28", "94.75.211.64/28")),
}
# Prefixes that are in the published files without the simulator drawing from them.
_EXTRA_PUBLISHED: dict[str, tuple[str, ...]] = {
    "common-crawlers.json": ("2001:4860:4801:10::/64", "2001:4860:4801:12::/64", "2001:4860:4801:2::/64"),
    "bingbot.json": ("40.77.188.0/22",),
}

# Hosting providers (datacentre addresses) and residential networks, none inside any range above.
_HOSTING_16 = (
    "159.89.0.0/16", "167.99.0.0/16", "134.209.0.0/16", "64.227.0.0/16", "143.198.0.0/16",  # DigitalOcean
    "95.216.0.0/16", "65.108.0.0/16", "88.198.0.0/16", "49.12.0.0/16",  # Hetzner
    "51.68.0.0/16", "51.77.0.0/16", "141.94.0.0/16",  # OVH
    "45.32.0.0/16", "149.28.0.0/16",  # Vultr
    "172.104.0.0/16", "172.105.0.0/16",  # Linode
    "47.74.0.0/16", "43.128.0.0/16",  # Alibaba, Tencent
)
_CLOUD = ("3.80.0.0/12", "54.160.0.0/12", "34.16.0.0/12", "35.192.0.0/12", "4.150.0.0/15", "40.112.0.0/14")
_RESIDENTIAL = (
    "73.0.0.0/8", "24.0.0.0/12", "98.192.0.0/10", "71.160.0.0/11", "99.0.0.0/10", "172.56.0.0/13",  # US
    "79.192.0.0/10", "87.128.0.0/10", "91.0.0.0/10",  # Deutsche Telekom
    "90.0.0.0/9", "86.128.0.0/11", "82.0.0.0/14", "2.96.0.0/13",  # Orange, BT, Virgin, Sky
    "83.32.0.0/11", "93.32.0.0/12", "62.98.0.0/15",  # Telefonica, Fastweb, Wind
)
_RESIDENTIAL_W = (10, 4, 6, 4, 4, 3, 4, 3, 3, 5, 3, 2, 2, 2, 2, 1)
_RESIDENTIAL6 = ("2601::/20", "2a01:cb00::/24", "2003::/19", "2607:fb90::/32", "2a02:c7c::/32")
_BOTNET = _RESIDENTIAL + ("177.0.0.0/10", "189.0.0.0/11", "49.32.0.0/11", "113.160.0.0/11", "36.64.0.0/11",
                          "41.96.0.0/12", "186.0.0.0/11", "14.160.0.0/11")

# ---------------------------------------------------------------------------------------------
# User agents
# ---------------------------------------------------------------------------------------------


def _browser_uas() -> list[tuple[str, float]]:
    """About fifty current browsers with a rough 2025 share (mobile a little over half)."""
    win, mac, lin = "Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64"
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    out: list[tuple[str, float]] = []
    for v, w in (("141", 14), ("140", 6), ("139", 2), ("138", 1), ("137", 0.5)):
        out.append((f"Mozilla/5.0 ({win}) {webkit} Chrome/{v}.0.0.0 Safari/537.36", w))
    for v, w in (("141", 5), ("140", 2), ("139", 0.7)):
        out.append((f"Mozilla/5.0 ({mac}) {webkit} Chrome/{v}.0.0.0 Safari/537.36", w))
    out.append((f"Mozilla/5.0 ({lin}) {webkit} Chrome/141.0.0.0 Safari/537.36", 1))
    for v, w in (("141", 4), ("140", 1.5), ("139", 0.5)):
        out.append((f"Mozilla/5.0 ({win}) {webkit} Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0", w))
    out.append((f"Mozilla/5.0 ({win}) {webkit} Chrome/140.0.0.0 Safari/537.36 OPR/124.0.0.0", 0.6))
    for v, w in (("144", 2), ("143", 1), ("140", 0.4)):
        out.append((f"Mozilla/5.0 ({win}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", w))
    out.append(("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:144.0) Gecko/20100101 Firefox/144.0", 0.6))
    out.append(("Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0", 0.5))
    out.append(("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:143.0) Gecko/20100101 Firefox/143.0", 0.3))
    for v, w in (("26.0", 3), ("18.6", 2), ("18.5", 0.7), ("17.6", 0.4)):
        out.append((f"Mozilla/5.0 ({mac}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15", w))
    for os_, v, w in (("18_6", "26.0", 10), ("18_6", "18.6", 8), ("18_5", "18.5", 3), ("18_3", "18.3", 1.2),
                      ("17_6", "17.6", 1.5)):
        out.append((f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_} like Mac OS X) AppleWebKit/605.1.15 "
                    f"(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1", w))
    for os_, v, w in (("18_6", "26.0", 1), ("18_6", "18.6", 1.2), ("17_7", "17.6", 0.4)):
        out.append((f"Mozilla/5.0 (iPad; CPU OS {os_} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    f"Version/{v} Mobile/15E148 Safari/604.1", w))
    for v, w in (("141.0.7390.96", 2), ("140.0.7339.122", 0.8)):
        out.append((f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    f"CriOS/{v} Mobile/15E148 Safari/604.1", w))
    out.append(("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "FxiOS/144.0 Mobile/15E148 Safari/605.1.15", 0.3))
    out.append(("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Mobile/15E148 Instagram 401.0.0.48.79 (iPhone16,2; iOS 18_6; en_GB; en-GB; scale=3.00; 1290x2796; "
                "812390145)", 1.2))
    for v, w in (("141", 14), ("140", 5), ("139", 2), ("138", 0.8)):
        out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/{v}.0.0.0 Mobile Safari/537.36", w))
    for sv, cv, w in (("28.0", "130", 3), ("27.0", "125", 1)):
        out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} SamsungBrowser/{sv} Chrome/{cv}.0.0.0 "
                    "Mobile Safari/537.36", w))
    out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/141.0.0.0 Mobile Safari/537.36 EdgA/141.0.0.0",
                0.4))
    out.append(("Mozilla/5.0 (Android 15; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0", 0.4))
    out.append(("Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Version/4.0 Chrome/141.0.7390.70 Mobile Safari/537.36 "
                "[FB_IAB/FB4A;FBAV/525.0.0.52.109;]", 1.0))
    out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/141.0.0.0 Safari/537.36", 0.6))  # tablet
    return out


# Slightly stale desktop browsers: what scraping and attack kits ship with.
_STALE_UAS = tuple(
    [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
     for v in (114, 116, 119, 120, 122, 124, 126, 128, 131)]
    + [f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
       "Safari/537.36" for v in (118, 125, 130)]
    + ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
       "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
       "Safari/605.1.15",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Version/17.4 Mobile/15E148 Safari/604.1",
       "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
       "Safari/537.36"]
)
_AGENT_BROWSER_UAS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
)
_HEADLESS_UAS = {
    "HeadlessChrome": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/139.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 "
        "Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/141.0.0.0 "
        "Safari/537.36",
    ),
    "PhantomJS": ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
                  "Safari/538.1",),
    "": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36",
         "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"),
}


@dataclass(frozen=True)
class _Agent:
    """A declared agent: its labels and the user agents it sends (as documented by its operator)."""

    name: str
    operator: str | None
    actor_class: str
    purpose: str
    ai_driven: bool
    uas: tuple[str, ...]


def _moz(token: str) -> str:
    return f"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; {token})"


_AGENTS: dict[str, _Agent] = {a.name: a for a in (
    # AI training and AI search crawlers
    _Agent("GPTBot", "OpenAI", "crawler", "ai_training", True,
           (_moz("GPTBot/1.2; +https://openai.com/gptbot"), _moz("GPTBot/1.1; +https://openai.com/gptbot"))),
    _Agent("ClaudeBot", "Anthropic", "crawler", "ai_training", True, (_moz("ClaudeBot/1.0; +claudebot@anthropic.com"),)),
    _Agent("CCBot", "Common Crawl", "crawler", "ai_training", True, ("CCBot/2.0 (https://commoncrawl.org/faq/)",)),
    _Agent("Bytespider", "ByteDance", "crawler", "ai_training", True,
           ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
            "(compatible; Bytespider; spider-feedback@bytedance.com)",)),
    _Agent("meta-externalagent", "Meta", "crawler", "ai_training", True,
           ("meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",)),
    _Agent("Amazonbot", "Amazon", "crawler", "ai_training", True,
           ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/600.2.5 (KHTML, like Gecko) Version/8.0.2 "
            "Safari/600.2.5 (Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",)),
    _Agent("OAI-SearchBot", "OpenAI", "crawler", "ai_search", True,
           ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.3; "
            "+https://openai.com/searchbot",)),
    _Agent("Claude-SearchBot", "Anthropic", "crawler", "ai_search", True,
           (_moz("Claude-SearchBot/1.0; +searchbot@anthropic.com"),)),
    _Agent("PerplexityBot", "Perplexity", "crawler", "ai_search", True,
           (_moz("PerplexityBot/1.0; +https://perplexity.ai/perplexitybot"),)),
    # AI assistants fetching for a user
    _Agent("ChatGPT-User", "OpenAI", "scraper", "ai_assistant", True,
           ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",)),
    _Agent("Claude-User", "Anthropic", "scraper", "ai_assistant", True,
           (_moz("Claude-User/1.0; +Claude-User@anthropic.com"),)),
    _Agent("Perplexity-User", "Perplexity", "scraper", "ai_assistant", True,
           (_moz("Perplexity-User/1.0; +https://perplexity.ai/perplexity-user"),)),
    _Agent("MistralAI-User", "Mistral AI", "scraper", "ai_assistant", True,
           (_moz("MistralAI-User/1.0; +https://docs.mistral.ai/robots"),)),
    # Search engines
    _Agent("Googlebot", "Google", "crawler", "search_engine", False,
           ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/141.0.7390.122 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html) Chrome/141.0.7390.122 Safari/537.36",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")),
    _Agent("bingbot", "Microsoft", "crawler", "search_engine", False,
           ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
            "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")),
    _Agent("YandexBot", "Yandex", "crawler", "search_engine", False,
           ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",)),
    _Agent("DuckDuckBot", "DuckDuckGo", "crawler", "search_engine", False,
           ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",)),
    _Agent("Applebot", "Apple", "crawler", "search_engine", False,
           ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 "
            "Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",)),
    # SEO
    _Agent("AhrefsBot", "Ahrefs", "crawler", "seo", False,
           ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",)),
    _Agent("SemrushBot", "Semrush", "crawler", "seo", False,
           ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",)),
    _Agent("MJ12bot", "Majestic", "crawler", "seo", False,
           ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",)),
    _Agent("DotBot", "Moz", "crawler", "seo", False,
           ("Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",)),
    # Monitors
    _Agent("UptimeRobot", "UptimeRobot", "scraper", "monitoring", False,
           ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",)),
    _Agent("Pingdom", "Pingdom (SolarWinds)", "scraper", "monitoring", False,
           ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",)),
    # HTTP tools: the tool is known, who runs it is not.
    _Agent("curl", None, "scraper", "tool", False, ("curl/8.5.0", "curl/7.88.1", "curl/8.11.1")),
    _Agent("python-requests", None, "scraper", "tool", False, ("python-requests/2.32.3", "python-requests/2.31.0")),
    _Agent("Go-http-client", None, "scraper", "tool", False, ("Go-http-client/1.1", "Go-http-client/2.0")),
    _Agent("Wget", None, "scraper", "tool", False, ("Wget/1.21.4", "Wget/1.24.5")),
)}
# Per day at scale 1, on the first day (AI agents then grow by AI_GROWTH over the period).
_AI_CRAWLERS = {"GPTBot": 150, "ClaudeBot": 120, "meta-externalagent": 110, "Bytespider": 60, "Amazonbot": 40,
                "CCBot": 25, "OAI-SearchBot": 35, "Claude-SearchBot": 15, "PerplexityBot": 25}
_AI_ASSISTANTS = {"ChatGPT-User": 45, "Perplexity-User": 15, "Claude-User": 8, "MistralAI-User": 3}  # questions
_SEARCH_ENGINES = {"Googlebot": 320, "bingbot": 200, "YandexBot": 50, "DuckDuckBot": 30, "Applebot": 50}
_SEO_BOTS = {"AhrefsBot": 160, "SemrushBot": 120, "MJ12bot": 50, "DotBot": 30}
_SCANNER_UAS = {
    "sqlmap": ("sqlmap/1.9.8#stable (https://sqlmap.org)", "sqlmap/1.8.11#stable (https://sqlmap.org)"),
    "Nikto": ("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)",
              "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:007234)"),
    "Nuclei": ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",),
    "zgrab": ("Mozilla/5.0 zgrab/0.x",),
}

# ---------------------------------------------------------------------------------------------
# The site: paths by role, with their responses
# ---------------------------------------------------------------------------------------------

# role: (method, [(status, p), ...], bytes median, bytes sigma, request time ms median, sigma, html page)
_ROLES: dict[str, tuple[int, tuple[tuple[int, float], ...], float, float, float, float, bool]] = {
    "home": (GET, ((200, 1.0),), 48_000, 0.15, 110, 0.5, True),
    "listing": (GET, ((200, 1.0),), 62_000, 0.3, 170, 0.5, True),
    "listing_page": (GET, ((200, 1.0),), 58_000, 0.3, 190, 0.5, True),
    "product": (GET, ((200, 0.995), (301, 0.005)), 55_000, 0.35, 140, 0.5, True),
    "product_utm": (GET, ((200, 1.0),), 55_000, 0.35, 140, 0.5, True),
    "search": (GET, ((200, 1.0),), 41_000, 0.4, 260, 0.6, True),
    "cart": (GET, ((200, 1.0),), 21_000, 0.3, 90, 0.4, True),
    "cart_add": (POST, ((200, 0.97), (409, 0.03)), 420, 0.3, 60, 0.4, False),
    "checkout": (GET, ((200, 1.0),), 30_000, 0.2, 150, 0.4, True),
    "payment": (POST, ((200, 0.96), (402, 0.04)), 640, 0.2, 900, 0.5, False),
    "confirm": (GET, ((200, 1.0),), 18_000, 0.2, 120, 0.4, True),
    "login_form": (GET, ((200, 1.0),), 14_000, 0.1, 60, 0.4, True),
    "login_post": (POST, ((302, 0.9), (401, 0.1)), 0, 0.0, 240, 0.3, False),
    "signup_form": (GET, ((200, 1.0),), 15_500, 0.1, 60, 0.4, True),
    "signup_post": (POST, ((302, 0.93), (422, 0.07)), 0, 0.0, 310, 0.3, False),
    "account": (GET, ((200, 1.0),), 25_000, 0.3, 130, 0.4, True),
    "api_list": (GET, ((200, 1.0),), 18_000, 0.3, 45, 0.5, False),
    "api_item": (GET, ((200, 0.98), (404, 0.02)), 360, 0.2, 12, 0.5, False),
    "robots": (GET, ((200, 1.0),), 410, 0.0, 2, 0.3, False),
    "sitemap": (GET, ((200, 1.0),), 120_000, 0.5, 30, 0.5, False),
    "feed": (GET, ((200, 0.9), (304, 0.1)), 36_000, 0.2, 25, 0.5, False),
    "health": (GET, ((200, 1.0),), 21, 0.0, 2, 0.4, False),
    "notfound": (GET, ((404, 1.0),), 0, 0.0, 15, 0.5, False),
    "css": (GET, ((200, 1.0),), 36_000, 0.4, 2, 0.6, False),
    "js": (GET, ((200, 1.0),), 140_000, 0.5, 3, 0.6, False),
    "img_product": (GET, ((200, 1.0),), 48_000, 0.6, 3, 0.6, False),
    "img_banner": (GET, ((200, 1.0),), 160_000, 0.3, 4, 0.6, False),
    "favicon": (GET, ((200, 1.0),), 5_430, 0.0, 1, 0.4, False),
    "probe_sensitive": (GET, ((404, 0.9), (403, 0.1)), 0, 0.0, 6, 0.5, False),
    "probe_admin": (GET, ((404, 0.85), (403, 0.15)), 0, 0.0, 6, 0.5, False),
    "probe_backdoor": (GET, ((404, 1.0),), 0, 0.0, 6, 0.5, False),
    "probe_traversal": (GET, ((400, 0.5), (404, 0.4), (403, 0.1)), 0, 0.0, 4, 0.5, False),
    "probe_sqli": (GET, ((200, 0.35), (400, 0.35), (403, 0.2), (500, 0.1)), 0, 0.0, 60, 0.8, False),
    "probe_xss": (GET, ((200, 0.5), (400, 0.3), (403, 0.2)), 0, 0.0, 40, 0.6, False),
    "probe_generic": (GET, ((404, 0.95), (405, 0.05)), 0, 0.0, 6, 0.5, False),
    "beacon": (POST, ((204, 1.0),), 0, 0.0, 3, 0.4, False),
}
ROLE_NAMES = tuple(_ROLES)
R = {name: i for i, name in enumerate(ROLE_NAMES)}
# Response bodies of non-2xx answers (the page's own size does not apply).
_STATUS_BYTES = {301: 230, 302: 0, 304: 0, 400: 340, 401: 420, 402: 380, 403: 310, 404: 1_250, 405: 300,
                 409: 260, 422: 510, 429: 160, 500: 620, 503: 590}

_PROBES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "probe_sensitive": [(p, ("sensitive_file",)) for p in (
        "/.env", "/.env.production", "/.env.bak", "/.git/config", "/.git/HEAD", "/.svn/entries", "/.aws/credentials",
        "/config.php.bak", "/wp-config.php.bak", "/backup.sql", "/db.sql", "/dump.sql.gz", "/.DS_Store",
        "/.htpasswd", "/.ssh/id_rsa", "/config.json", "/docker-compose.yml", "/.npmrc", "/server-status",
        "/actuator/env", "/phpinfo.php", "/info.php", "/storage/logs/laravel.log", "/.vscode/sftp.json")],
    "probe_admin": [(p, ("admin_probe",)) for p in (
        "/wp-login.php", "/wp-admin/", "/phpmyadmin/", "/pma/", "/admin/", "/administrator/", "/admin/login.php",
        "/manager/html", "/adminer.php", "/user/login", "/cpanel", "/webadmin/", "/solr/admin/", "/jenkins/login",
        "/grafana/login", "/xmlrpc.php")],
    "probe_backdoor": [(p, ("backdoor",)) for p in (
        "/shell.php", "/wso.php", "/c99.php", "/r57.php", "/cmd.php?cmd=id", "/alfa.php", "/wp-content/uploads/up.php",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/luci/;stok=/locale", "/bin/sh",
        "/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php")],
    "probe_traversal": [(p, ("path_traversal",)) for p in (
        "/..%2f..%2f..%2f..%2fetc/passwd", "/static/../../../../etc/passwd", "/download?file=../../../../etc/passwd",
        "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd", "/img/..%252f..%252f..%252fetc%252fpasswd",
        "/index.php?page=....//....//....//etc/passwd", "/api/files?path=..%5c..%5c..%5cwindows%5cwin.ini")],
    "probe_sqli": [(p, ("sqli",)) for p in (
        "/search?q=1%27%20OR%20%271%27%3D%271", "/search?q=shoes%27%20UNION%20SELECT%20NULL,NULL,NULL--",
        "/p/item?id=1%20AND%201=1", "/p/item?id=1%27%20AND%20SLEEP(5)--%20-", "/api/products?page=1%20OR%201=1",
        "/api/products?page=(SELECT%20CHAR(113)%7C%7CCHAR(106))", "/login?user=admin%27--",
        "/search?q=1%3BWAITFOR%20DELAY%20%270:0:5%27--", "/c/shoes?sort=price%20ASC%2C(SELECT%201%20FROM%20pg_sleep(5))",
        "/api/price/1%20UNION%20ALL%20SELECT%20username,password%20FROM%20users--",
        "/search?q=%27%20AND%20EXTRACTVALUE(1,CONCAT(0x7e,VERSION()))--")],
    "probe_xss": [(p, ("xss",)) for p in (
        "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "/search?q=%22%3E%3Csvg/onload=alert(document.domain)%3E",
        "/search?q=%3Cimg%20src=x%20onerror=alert(1)%3E", "/p/item?ref=javascript:alert(1)",
        "/search?q=%27%3E%3Ciframe%20src=javascript:alert(1)%3E", "/login?next=%3Cscript%3Efetch(1)%3C/script%3E")],
    "probe_generic": [(p, ("vuln_scan",)) for p in (
        "/cgi-bin/test.cgi", "/api/v1/pods", "/.well-known/security.txt", "/owa/auth/logon.aspx",
        "/remote/login", "/boaform/admin/formLogin", "/HNAP1/", "/sdk", "/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application",
        "/geoserver/web/", "/vpn/index.html", "/global-protect/login.esp", "/console/", "/druid/index.html",
        "/struts2-showcase/", "/level/15/exec/-/sh/run/CR", "/mifs/.;/services/LogService")],
}


class _Site:
    """Every path the simulated site answers, grouped in contiguous blocks by role."""

    def __init__(self, kind: str, rng: np.random.Generator, start: dt.date) -> None:
        self.kind = kind
        paths: list[str] = []
        roles: list[int] = []
        threats: list[int] = []
        self.off = np.zeros(len(ROLE_NAMES), dtype=np.int64)
        self.size = np.zeros(len(ROLE_NAMES), dtype=np.int64)

        def add(role: str, items: Sequence[str], marks: Sequence[int] | None = None) -> None:
            assert self.size[R[role]] == 0 and items, role
            self.off[R[role]] = len(paths)
            self.size[R[role]] = len(items)
            paths.extend(items)
            roles.extend([R[role]] * len(items))
            threats.extend(marks if marks is not None else [0] * len(items))

        b = _blocks(kind, rng, start)
        self.n_products = len(b["product"])
        # Blocks aligned with products (same index): their images and their item API.
        b["product_utm"] = [p + ("&" if "?" in p else "?") + "utm_source=chatgpt.com" for p in b["product"]]
        for role in ROLE_NAMES:
            if role.startswith("probe_"):
                add(role, [p for p, _ in _PROBES[role]], [_mask(*t) for _, t in _PROBES[role]])
            else:
                add(role, b[role])
        for p in paths:
            # The formats carry these values unquoted or inside quotes without escaping.
            assert " " not in p and '"' not in p and "\\" not in p, p
        self.paths = pl.Series("path", paths, dtype=pl.String)
        self.role = np.array(roles, dtype=np.int16)
        self.threat = np.array(threats, dtype=np.int32)
        self.stem = self.paths.str.splitn("?", 2).struct.field("field_0")

    def pick(self, rng: np.random.Generator, role: np.ndarray, skew: float = 1.0) -> np.ndarray:
        """A path of each row's role; skew > 1 favours the first entries (popular pages)."""
        u = rng.random(len(role))
        if skew != 1.0:
            u = u**skew
        return (self.off[role] + np.floor(u * self.size[role]).astype(np.int64)).astype(np.int32)

    def product_index(self, path: np.ndarray) -> np.ndarray:
        """Index of the product a product (or utm product) path shows, -1 for other paths."""
        role = self.role[path]
        return np.where(role == R["product"], path - self.off[R["product"]],
                        np.where(role == R["product_utm"], path - self.off[R["product_utm"]], -1))


_WORDS = {
    "adj": ("classic", "slim", "relaxed", "organic", "merino", "waterproof", "lightweight", "vintage", "everyday",
            "premium", "recycled", "linen", "leather", "canvas", "quilted", "ribbed", "oversized", "cropped",
            "chunky", "packable", "tailored", "stretch", "heritage", "urban"),
    "color": ("black", "white", "navy", "grey", "olive", "sand", "red", "burgundy", "forest-green", "sky-blue",
              "camel", "charcoal", "cream", "rust"),
    "noun": ("sneakers", "boots", "sandals", "loafers", "jacket", "parka", "coat", "hoodie", "sweater", "cardigan",
             "t-shirt", "shirt", "blouse", "jeans", "chinos", "shorts", "dress", "skirt", "backpack", "tote-bag",
             "wallet", "belt", "beanie", "cap", "scarf", "gloves", "socks", "watch", "sunglasses", "necklace",
             "mug", "candle", "blanket", "duvet-cover", "water-bottle"),
    "topic": ("election", "budget", "climate", "energy", "housing", "inflation", "football", "tennis", "ai",
              "chips", "vaccine", "heatwave", "museum", "festival", "startup", "rates", "transport", "schools",
              "trade", "wildlife", "space", "ocean", "court", "strike", "film", "album", "recipe", "travel"),
    "verb": ("rises", "falls", "returns", "faces", "wins", "loses", "plans", "warns", "reveals", "backs",
             "delays", "boosts", "cuts", "tests", "opens", "closes"),
    "city": ("paris", "london", "rome", "barcelona", "lisbon", "amsterdam", "berlin", "vienna", "prague",
             "new-york", "tokyo", "dubai", "athens", "madrid", "milan", "nice", "porto", "seville", "dublin",
             "copenhagen", "istanbul", "marrakech", "bangkok", "singapore"),
    "airport": ("LHR", "LGW", "CDG", "FCO", "BCN", "LIS", "AMS", "BER", "VIE", "PRG", "JFK", "HND", "DXB",
                "ATH", "MAD", "MXP", "NCE", "OPO", "SVQ", "DUB", "CPH", "IST", "RAK", "BKK", "SIN"),
    "hotel": ("grand", "boutique", "city", "harbour", "garden", "old-town", "riverside", "palace", "central",
              "park", "station", "royal"),
}


def _blocks(kind: str, rng: np.random.Generator, start: dt.date) -> dict[str, list[str]]:
    """Path lists for every non-probe role of a site kind."""
    w = _WORDS

    def words(key: str, n: int) -> np.ndarray:
        return np.array(w[key])[rng.integers(0, len(w[key]), n)]

    b: dict[str, list[str]] = {}
    n_img = 3
    if kind == "shop":
        cats = ["shoes", "sneakers", "boots", "sandals", "jackets", "coats", "t-shirts", "shirts", "jeans",
                "trousers", "dresses", "skirts", "knitwear", "hoodies", "sportswear", "swimwear", "bags",
                "backpacks", "wallets", "belts", "hats", "scarves", "gloves", "socks", "watches", "sunglasses",
                "jewellery", "home", "kitchen", "gifts"]
        n = 2400
        ids = 10_000 + np.arange(n) * 7 + rng.integers(0, 7, n)
        names = [f"{a}-{c}-{o}" for a, c, o in zip(words("adj", n), words("color", n), words("noun", n))]
        b["home"] = ["/"]
        b["listing"] = [f"/c/{c}" for c in cats]
        b["listing_page"] = [f"/c/{c}?page={p}" for c in cats for p in range(2, 9)] + [
            f"/c/{c}?sort={s}" for c in cats for s in ("price-asc", "price-desc", "newest")]
        b["product"] = [f"/p/{nm}-{i}" for nm, i in zip(names, ids)]
        terms = sorted({f"{c}+{o}" for c, o in zip(words("color", 400), words("noun", 400))})
        b["search"] = [f"/search?q={t}" for t in terms] + [f"/search?q={t}&page=2" for t in terms[:40]]
        b["cart"], b["cart_add"] = ["/cart"], ["/cart/add"]
        b["checkout"], b["payment"], b["confirm"] = ["/checkout"], ["/checkout/payment"], ["/checkout/confirmation"]
        b["api_list"] = [f"/api/products?page={p}" for p in range(1, 151)]
        b["api_item"] = [f"/api/price/{i}" for i in ids]
        b["img_product"] = [f"/img/p/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)]
        b["img_banner"] = [f"/img/banners/{s}.jpg" for s in ("autumn-sale", "new-in", "free-delivery", "gift-guide",
                                                              "outerwear", "members")]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-categories.xml"] + [f"/sitemap-products-{k}.xml" for k in range(1, 6)]
        b["feed"] = ["/feed.xml"]
        b["account"] = ["/account", "/account/orders", "/account/wishlist", "/account/addresses"]
        gone = 90_000 + np.arange(200) * 3
        b["notfound"] = [f"/p/{nm}-{i}" for nm, i in zip(names[:200], gone)] + [
            "/promo/summer-2023", "/old-collection/", "/c/outlet-2022", "/blog/", "/index.php", "/shop/"]
    elif kind == "media":
        sections = ["news", "politics", "business", "technology", "science", "health", "sport", "culture",
                    "travel", "opinion", "world", "climate", "money", "style", "food", "books", "film", "music"]
        n = 3000
        sec = np.array(sections)[rng.integers(0, len(sections), n)]
        ids = 250_000 + np.arange(n) * 11 + rng.integers(0, 11, n)
        days_back = rng.integers(0, 400, n)
        slugs = [f"{t}-{v}-{t2}-{k}" for t, v, t2, k in zip(words("topic", n), words("verb", n), words("topic", n),
                                                             words("noun", n))]
        when = [start - dt.timedelta(days=int(d)) for d in days_back]
        b["home"] = ["/"]
        b["listing"] = [f"/{s}/" for s in sections]
        b["listing_page"] = [f"/{s}/?page={p}" for s in sections for p in range(2, 11)]
        b["product"] = [f"/{s}/{d.year}/{d.month:02d}/{sl}-{i}" for s, d, sl, i in zip(sec, when, slugs, ids)]
        terms = sorted({f"{t}+{v}" for t, v in zip(words("topic", 300), words("verb", 300))})
        b["search"] = [f"/search?q={t}" for t in terms]
        b["cart"], b["cart_add"] = ["/subscribe"], ["/subscribe/plan"]
        b["checkout"], b["payment"], b["confirm"] = ["/subscribe/checkout"], ["/subscribe/payment"], ["/subscribe/welcome"]
        b["api_list"] = [f"/api/articles?section={s}&page={p}" for s in sections for p in range(1, 6)]
        b["api_item"] = [f"/api/articles/{i}/comments" for i in ids]
        b["img_product"] = [f"/img/articles/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)]
        b["img_banner"] = [f"/img/promo/{s}.jpg" for s in ("subscribe", "newsletter", "podcast", "app")]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-news.xml"] + [f"/sitemap-articles-{k}.xml" for k in range(1, 9)]
        b["feed"] = ["/feed.xml"] + [f"/rss/{s}.xml" for s in sections]
        b["account"] = ["/account", "/account/subscription", "/account/newsletters", "/account/saved"]
        b["notfound"] = [f"/{s}/2019/{m:02d}/{sl}" for s, m, sl in zip(sec[:200], rng.integers(1, 13, 200), slugs[:200])] + [
            "/amp/", "/liveblog/", "/wp-json/", "/index.php"]
    elif kind == "travel":
        n_h, n_o = 1500, 700
        cities_h = words("city", n_h)
        ids = 40_000 + np.arange(n_h + n_o) * 5 + rng.integers(0, 5, n_h + n_o)
        hotels = [f"/hotels/{c}/{a}-{h}-hotel-{i}" for c, a, h, i in zip(
            cities_h, words("adj", n_h), words("hotel", n_h), ids[:n_h])]
        offers = [f"/offers/{c}-{k}-nights-{i}" for c, k, i in zip(words("city", n_o), rng.integers(2, 15, n_o), ids[n_h:])]
        b["home"] = ["/"]
        b["listing"] = [f"/destinations/{c}" for c in w["city"]] + ["/deals", "/last-minute", "/city-breaks"]
        b["listing_page"] = [f"/deals?page={p}" for p in range(2, 30)] + [f"/destinations/{c}?tab=hotels" for c in w["city"]]
        b["product"] = hotels + offers
        dep = [start + dt.timedelta(days=int(x)) for x in rng.integers(3, 120, 400)]
        a1, a2 = rng.integers(0, len(w["airport"]), 400), rng.integers(0, len(w["airport"]), 400)
        a2 = np.where(a2 == a1, (a2 + 1) % len(w["airport"]), a2)
        ap = np.array(w["airport"])
        flights = [f"/flights/search?from={ap[x]}&to={ap[y]}&depart={d.isoformat()}&return="
                   f"{(d + dt.timedelta(days=int(k))).isoformat()}&adults={ad}"
                   for x, y, d, k, ad in zip(a1, a2, dep, rng.integers(2, 15, 400), rng.integers(1, 5, 400))]
        stays = [f"/hotels/search?city={c}&checkin={d.isoformat()}&nights={k}&guests={g}"
                 for c, d, k, g in zip(words("city", 300), dep[:300], rng.integers(1, 10, 300), rng.integers(1, 5, 300))]
        b["search"] = flights + stays
        b["cart"], b["cart_add"] = ["/booking"], ["/booking/hold"]
        b["checkout"], b["payment"], b["confirm"] = ["/booking/checkout"], ["/booking/payment"], ["/booking/confirmation"]
        b["api_list"] = [f"/api/fares?route={ap[x]}-{ap[y]}&month=2025-{m:02d}" for x, y, m in zip(
            a1[:200], a2[:200], rng.integers(10, 13, 200))]
        b["api_item"] = [f"/api/availability/{i}" for i in ids]
        b["img_product"] = [f"/img/stays/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)]
        b["img_banner"] = [f"/img/hero/{c}.jpg" for c in w["city"][:8]]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-destinations.xml"] + [f"/sitemap-hotels-{k}.xml" for k in range(1, 6)]
        b["feed"] = ["/deals/feed.xml"]
        b["account"] = ["/account", "/account/trips", "/account/travellers", "/account/payment-methods"]
        b["notfound"] = [f"/hotels/{c}/{h}-hotel-{i}" for c, h, i in zip(
            words("city", 200), words("hotel", 200), 90_000 + np.arange(200))] + ["/summer-2023", "/cruises/", "/index.php"]
    else:
        raise ValueError(f"unknown site kind {kind!r}; choose one of {', '.join(SITE_KINDS)}")
    b["login_form"] = b["login_post"] = ["/login"]
    b["signup_form"] = b["signup_post"] = ["/signup"]
    b["robots"], b["health"], b["favicon"] = ["/robots.txt"], ["/health"], ["/favicon.ico"]
    b["css"] = ["/static/css/main.3f9a1c.css", "/static/css/vendor.8b2e4d.css"]
    b["js"] = ["/static/js/app.5c7d2e.js", "/static/js/vendor.1a9f3b.js", "/static/js/analytics.77c0e1.js"]
    b["beacon"] = ["/api/collect"]
    return b


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    scenario: str
    actor_class: str
    automated: bool
    ai_driven: bool
    purpose: str
    operator: str | None
    agent: str | None
    identity: str
    threats: int = 0
    path_threats: bool = False  # add the threats of the paths it requests (scanners)
    http2: bool = False


# ---------------------------------------------------------------------------------------------
# Vectorised building blocks
# ---------------------------------------------------------------------------------------------


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner index and position within the owner for `counts[i]` rows per owner."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def _per_row(value: np.ndarray | float, owner: np.ndarray) -> np.ndarray:
    """A per-owner array (or one number for all) as one value per row."""
    return value[owner] if isinstance(value, np.ndarray) else np.full(len(owner), float(value))


def _within(gaps: np.ndarray, owner: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Offsets from each owner's first row, given the gap before every row (the first's is ignored)."""
    c = np.cumsum(np.where(pos == 0, 0.0, gaps))
    first = np.flatnonzero(pos == 0)
    return c - c[first][np.searchsorted(first, np.arange(len(pos)), side="right") - 1]


def _choice(rng: np.random.Generator, n: int, values: Sequence[int] | np.ndarray, p: Sequence[float]) -> np.ndarray:
    cp = np.cumsum(np.asarray(p, dtype=float))
    cp /= cp[-1]
    idx = np.minimum(np.searchsorted(cp, rng.random(n), side="right"), len(cp) - 1)
    return np.asarray(values)[idx]


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


_DIURNAL_MIN = np.arange(1440) / 60.0
# Traffic of a European/US audience in UTC: lowest around 04:00, highest mid to late afternoon.
_DIURNAL = 0.12 + (0.5 - 0.5 * np.cos(2 * np.pi * (_DIURNAL_MIN - 4) / 24)) ** 1.3
_DIURNAL_CDF = np.cumsum(_DIURNAL) / _DIURNAL.sum()


def _diurnal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into a day, following the human day/night cycle."""
    minute = np.minimum(np.searchsorted(_DIURNAL_CDF, rng.random(n), side="right"), 1439)
    return (minute + rng.random(n)) * 60.0


def _poisson(rng: np.random.Generator, mean: float, minimum: int = 0) -> int:
    return max(minimum, int(rng.poisson(max(mean, 0.0))))


@dataclass
class _Day:
    index: int
    start_us: int
    growth: float  # AI volume multiplier of this day
    weekday: int
    counters: dict[int, int] = field(default_factory=dict)

    @property
    def least(self) -> int:
        """Occasional scenarios are certain on the first day, so every run has each of them."""
        return 1 if self.index == 0 else 0

    def sessions(self, sid: int, n: int) -> np.ndarray:
        """Fresh true-session ids for scenario `sid`: scenario, day and a running number."""
        base = self.counters.get(sid, 0)
        self.counters[sid] = base + n
        return (np.int64(sid) << 48) | (np.int64(self.index) << 36) | (base + np.arange(n, dtype=np.int64))


_COLS = ("ts", "ip_hi", "ip_lo", "ip6", "ua", "method", "path", "status", "bytes", "rt", "ref_ext", "ref_path",
         "profile", "threats", "sess")
_DTYPES = {"ts": pl.Int64, "ip_hi": pl.UInt64, "ip_lo": pl.UInt64, "ip6": pl.Boolean, "ua": pl.Int32,
           "method": pl.Int8, "path": pl.Int32, "status": pl.Int16, "bytes": pl.Int32, "rt": pl.Int32,
           "ref_ext": pl.Int16, "ref_path": pl.Int32, "profile": pl.Int16, "threats": pl.Int32, "sess": pl.Int64}

# External referrers: search engines, social networks, AI assistants.
_REFERERS = (
    "https://www.google.com/", "https://www.google.co.uk/", "https://www.google.de/", "https://www.google.fr/",
    "https://www.bing.com/", "https://duckduckgo.com/", "https://search.yahoo.com/", "https://www.ecosia.org/",
    "https://l.facebook.com/", "https://www.instagram.com/", "https://t.co/", "https://www.reddit.com/",
    "https://www.pinterest.com/", "android-app://com.google.android.gm/", "https://news.google.com/",
    "https://chatgpt.com/", "https://www.perplexity.ai/", "https://claude.ai/", "https://gemini.google.com/",
    "https://copilot.microsoft.com/",
)
_REF = {r: i for i, r in enumerate(_REFERERS)}
_FLOWS = {
    "browse": (),
    "cart": ("cart_add", "cart"),
    "checkout": ("cart_add", "cart", "checkout", "payment", "confirm"),
    "login": ("login_form", "login_post", "account"),
    "signup": ("signup_form", "signup_post", "account"),
    "agent_cart": ("cart_add", "cart", "checkout"),
}
FLOW_NAMES = tuple(_FLOWS)
_FLOW_LEN = np.array([len(v) for v in _FLOWS.values()], dtype=np.int64)
_FLOW_TAIL = np.full((len(_FLOWS), max(_FLOW_LEN)), -1, dtype=np.int64)
for _i, _v in enumerate(_FLOWS.values()):
    _FLOW_TAIL[_i, : len(_v)] = [R[x] for x in _v]
# Seconds before a request of this role when it follows another page: forms take time to fill in,
# redirects follow at once.
_ARRIVE = {R["login_post"]: 9.0, R["signup_post"]: 28.0, R["payment"]: 50.0, R["confirm"]: 1.2,
           R["account"]: 0.9, R["cart"]: 0.8}
_IMAGES = {R["product"]: 3, R["product_utm"]: 3, R["home"]: 6, R["listing"]: -1, R["listing_page"]: -1,
           R["search"]: -1}


class _Sim:
    """The site, its visitors and their labels; generates one day of requests at a time."""

    def __init__(self, *, seed: int, scale: float, days: int, site_kind: str, start: dt.date, site: str) -> None:
        self.seed, self.scale, self.days, self.start, self.host = seed, scale, days, start, site
        rng = np.random.default_rng([seed, 7_000_001])
        self.site = _Site(site_kind, rng, start)
        roles = [_ROLES[n] for n in ROLE_NAMES]
        self.r_method = np.array([r[0] for r in roles], dtype=np.int8)
        k = max(len(r[1]) for r in roles)
        self.r_status = np.array([[s for s, _ in r[1]] + [r[1][-1][0]] * (k - len(r[1])) for r in roles])
        self.r_status_p = np.array([[p for _, p in r[1]] + [0.0] * (k - len(r[1])) for r in roles])
        self.r_bytes = np.array([r[2] for r in roles], dtype=float)
        self.r_bsig = np.array([r[3] for r in roles])
        self.r_rt = np.array([r[4] for r in roles], dtype=float)
        self.r_rsig = np.array([r[5] for r in roles])
        self.r_html = np.array([r[6] for r in roles])
        self.status_bytes = np.full(600, -1.0)
        for s, v in _STATUS_BYTES.items():
            self.status_bytes[s] = v

        # The site's own analytics script, if it has one, posts a beacon when a page opens and then
        # every few seconds while it stays open (engagement time, scroll or mouse tracking), so
        # the requests of a browser that runs scripts never pause for long, while a person reads.
        # Consecutive seeds cycle through the choices (none, 2 s, 5 s, 15 s).
        self.beacon_period = (None, 2.0, 5.0, 15.0)[seed % 4]

        # User agents: one pool, rows hold indexes.
        self.uas: list[str] = []
        self._ua_index: dict[str, int] = {}
        browsers = _browser_uas()
        self.browser_ua = np.array([self.ua(u) for u, _ in browsers])
        self.browser_p = np.array([w for _, w in browsers]) / sum(w for _, w in browsers)
        self.stale_ua = np.array([self.ua(u) for u in _STALE_UAS])
        self.agent_ua = np.array([self.ua(u) for u in _AGENT_BROWSER_UAS])
        self.headless_ua = {k: np.array([self.ua(u) for u in v]) for k, v in _HEADLESS_UAS.items()}
        self.bot_ua = {name: np.array([self.ua(u) for u in a.uas]) for name, a in _AGENTS.items()}
        self.scanner_ua = {k: np.array([self.ua(u) for u in v]) for k, v in _SCANNER_UAS.items()}

        # Addresses.
        self.residential = _Space(_RESIDENTIAL, _RESIDENTIAL_W)
        self.residential6 = _Space(_RESIDENTIAL6)
        self.botnet = _Space(_BOTNET)
        self.hosting = _Space(_HOSTING_16)
        self.cloud = _Space(_CLOUD)
        self.agent_space = {name: _Space(p) for name, (_, p) in _AGENT_PREFIXES.items()}
        fleet = {"Googlebot": 60, "bingbot": 40, "GPTBot": 40, "ClaudeBot": 30, "meta-externalagent": 30,
                 "Bytespider": 40, "ChatGPT-User": 60, "Perplexity-User": 12, "Claude-User": 20, "Amazonbot": 16}
        # Each operator's fleet: a fixed set of machines, reused day after day.
        self.fleet = {name: sp.sample(rng, fleet.get(name, 8)) for name, sp in self.agent_space.items()}

        # Labels.
        self.profiles: list[_Profile] = []
        self._profile_index: dict[_Profile, int] = {}

        # Monitors keep their schedule across days; a larger site has a few more, not many more.
        n_mon = max(1, round(2 * scale**0.5))
        self.monitors = []
        for i in range(n_mon):
            vendor = ("UptimeRobot", "Pingdom")[i % 2]
            period = int(rng.choice([60, 120, 180, 300])) if i else 300
            self.monitors.append((vendor, period * US, int(rng.integers(0, period * US)),
                                  R["home"] if rng.random() < 0.5 else R["health"], HEAD if vendor == "UptimeRobot" else GET))

    # -- registries -------------------------------------------------------------------------

    def ua(self, s: str) -> int:
        if s not in self._ua_index:
            assert '"' not in s and "\\" not in s, s
            self._ua_index[s] = len(self.uas)
            self.uas.append(s)
        return self._ua_index[s]

    def profile(self, scenario: str, actor_class: str, purpose: str, identity: str, *, automated: bool = True,
                ai_driven: bool = False, operator: str | None = None, agent: str | None = None,
                threats: Sequence[str] = (), path_threats: bool = False, http2: bool = False) -> int:
        assert actor_class in ACTOR_CLASSES and purpose in PURPOSES and identity in IDENTITIES, (actor_class, purpose)
        p = _Profile(scenario, actor_class, automated, ai_driven, purpose, operator, agent, identity,
                     _mask(*threats), path_threats, http2)
        if p not in self._profile_index:
            self._profile_index[p] = len(self.profiles)
            self.profiles.append(p)
        return self._profile_index[p]

    def agent_profile(self, scenario: str, name: str) -> int:
        a = _AGENTS[name]
        published = bool(_AGENT_PREFIXES.get(name, ("",))[0])
        return self.profile(scenario, a.actor_class, a.purpose, "verified" if published else "declared",
                            ai_driven=a.ai_driven, operator=a.operator, agent=a.name)

    # -- responses ----------------------------------------------------------------------------

    def respond(self, rng: np.random.Generator, path: np.ndarray, *, method: np.ndarray | int | None = None,
                status: dict[int, tuple[Sequence[int], Sequence[float]]] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Method, status, bytes and request time (ms) for each request, plausible per path."""
        n = len(path)
        role = self.site.role[path].astype(np.int64)
        meth = self.r_method[role] if method is None else np.broadcast_to(np.asarray(method, dtype=np.int8), (n,))
        cp = np.cumsum(self.r_status_p[role], axis=1)
        col = np.minimum((rng.random(n)[:, None] >= cp).sum(axis=1), cp.shape[1] - 1)
        st = self.r_status[role, col]
        for r, (codes, probs) in (status or {}).items():
            m = role == r
            if m.any():
                st[m] = _choice(rng, int(m.sum()), codes, probs)
        # A rare server error on dynamic pages.
        st = np.where(self.r_html[role] & (rng.random(n) < 0.0012), 503, st)
        size = _lognormal(rng, self.r_bytes[role], self.r_bsig[role], n)
        fixed = self.status_bytes[st]
        size = np.where(fixed >= 0, fixed * np.where(st == 404, np.where(self.r_html[role] | (role == R["notfound"]),
                                                                         1.0, 0.15), 1.0), size)
        size = np.where((meth == HEAD) | (st == 304) | (st == 204), 0, size)
        rt = _lognormal(rng, self.r_rt[role], self.r_rsig[role], n)
        auth = (role == R["login_post"]) | (role == R["signup_post"]) | (role == R["payment"])
        rt = np.where((st >= 300) & ~auth, np.minimum(rt, 8.0 + 10 * rng.random(n)), rt)
        return meth.astype(np.int8), st.astype(np.int16), np.round(size).astype(np.int32), np.round(rt).astype(np.int32)

    # -- rows ---------------------------------------------------------------------------------

    def frame(self, parts: list[dict[str, np.ndarray]]) -> pl.DataFrame:
        """Scenario rows -> one frame, threats completed from the paths where the profile says so."""
        parts = [p for p in parts if len(p["ts"])]
        if not parts:
            return pl.DataFrame(schema=_DTYPES)
        cols = {c: np.concatenate([p[c] for p in parts]) for c in _COLS if c != "threats"}
        base = np.array([p.threats for p in self.profiles], dtype=np.int32)
        by_path = np.array([p.path_threats for p in self.profiles])
        prof = cols["profile"].astype(np.int64)
        cols["threats"] = base[prof] | np.where(by_path[prof], self.site.threat[cols["path"]], 0)
        return pl.DataFrame({c: pl.Series(c, cols[c], dtype=_DTYPES[c]) for c in _COLS})

    @staticmethod
    def rows(n: int, *, ts: np.ndarray, ip: tuple[np.ndarray, ...], ua: np.ndarray | int, path: np.ndarray,
             resp: tuple[np.ndarray, ...], profile: np.ndarray | int, sess: np.ndarray,
             ref_ext: np.ndarray | int = -1, ref_path: np.ndarray | int = -1) -> dict[str, np.ndarray]:
        full = lambda v, dtype: np.broadcast_to(np.asarray(v, dtype=dtype), (n,))  # noqa: E731
        return {
            "ts": ts.astype(np.int64), "ip_hi": ip[0], "ip_lo": ip[1], "ip6": ip[2], "ua": full(ua, np.int32),
            "method": resp[0], "path": path.astype(np.int32), "status": resp[1], "bytes": resp[2], "rt": resp[3],
            "ref_ext": full(ref_ext, np.int16), "ref_path": full(ref_path, np.int32),
            "profile": full(profile, np.int16), "sess": sess,
        }

    def flat(self, rng: np.random.Generator, *, starts: np.ndarray, sizes: np.ndarray, ip: tuple[np.ndarray, ...],
             ua: np.ndarray, profile: np.ndarray | int, sess: np.ndarray, roles: Sequence[str], role_p: Sequence[float],
             period: np.ndarray, jitter: float = 0.1, first: Sequence[tuple[int, str, float]] = (),
             status: dict[int, tuple[Sequence[int], Sequence[float]]] | None = None, method: int | None = None,
             skew: float = 1.0, ref_ext: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Sessions of requests with no assets at a machine's pace (`period` seconds per session)."""
        owner, pos = _expand(sizes)
        n = len(owner)
        role = _choice(rng, n, [R[r] for r in roles], role_p).astype(np.int64)
        for at, r, prob in first:
            flag = rng.random(len(sizes)) < prob
            role[(pos == at) & flag[owner]] = R[r]
        path = self.site.pick(rng, role, skew)
        gaps = period[owner] * np.clip(1 + jitter * rng.standard_normal(n), 0.3, None)
        ts = starts[owner] + np.round(_within(gaps, owner, pos) * US).astype(np.int64)
        prof = profile[owner] if isinstance(profile, np.ndarray) else profile
        return self.rows(n, ts=ts, ip=_take(ip, owner), ua=ua[owner], path=path,
                         resp=self.respond(rng, path, method=method, status=status), profile=prof, sess=sess[owner],
                         ref_ext=-1 if ref_ext is None else ref_ext[owner])

    def browse(self, rng: np.random.Generator, *, starts: np.ndarray, ip: tuple[np.ndarray, ...], ua: np.ndarray,
               profile: np.ndarray | int, sess: np.ndarray, landing: np.ndarray, landing_ref: np.ndarray,
               nbrowse: np.ndarray, flow: np.ndarray, returning: np.ndarray,
               think: tuple[np.ndarray | float, np.ndarray | float] | None,
               period: np.ndarray | None = None, sleep: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               self_link: np.ndarray | float = 0.0, back: np.ndarray | float = 0.0, back_cached: float = 0.0,
               beacons: np.ndarray | None = None, favicon: bool = True, images: bool = True,
               browse_roles: Sequence[str] = ("listing", "product", "search", "home", "notfound"),
               browse_p: Sequence[float] = (0.33, 0.49, 0.12, 0.045, 0.015), second: str | None = None,
               status: dict[int, tuple[Sequence[int], Sequence[float]]] | None = None) -> dict[str, np.ndarray]:
        """Browser visits: pages (landing, browsing, then the flow's steps) with their assets.

        `think` = (median, sigma) of a person's seconds between pages (each a number or one per
        session); else `sleep` = (low, high, expo) per session, automation waiting a random time
        between pages as evasive bots do: uniform in [low, high], or where `expo`, an exponential
        wait of the same mean (a Poisson pace: irregular, seldom a long read); else `period` per
        session (seconds, regular) for automation driving a browser at its own pace. `self_link`
        is the chance that a browsing step follows a link to the page it is on (a person rarely does; a bot picking a random
        link on the page does as often as the page links to itself). `back` is the chance that a
        browsing step goes back to the page two before (the list or results page, for its next
        item), `back_cached` the share of those the browser shows from its cache without asking
        the server: the next page then names the list as its referrer. `beacons` says which
        sessions run the site's analytics script (blockers stop it), where the site has one.
        """
        site = self.site
        npages = nbrowse + _FLOW_LEN[flow]
        owner, pos = _expand(npages)
        n = len(owner)
        nb = nbrowse[owner]
        role = _choice(rng, n, [R[r] for r in browse_roles], browse_p).astype(np.int64)
        if second is not None:
            role[pos == 1] = R[second]
        tail = pos >= nb
        role[tail] = _FLOW_TAIL[flow[owner][tail], (pos - nb)[tail]]
        # What goes in a cart was looked at just before.
        buys = (_FLOW_LEN[flow[owner]] > 0) & (pos == nb - 1) & (pos > 0)
        role[buys] = R["product"]
        role[pos == 0] = landing[owner[pos == 0]]
        skew = 1.0 if think is None else 2.0
        path = site.pick(rng, role, skew=skew)
        for _ in range(2):
            # A popular page drawn twice in a row is not a visit's next step: draw again.
            dup = (pos > 0) & (path == np.roll(path, 1)) & (role == np.roll(role, 1))
            if not dup.any():
                break
            path[dup] = site.pick(rng, role[dup], skew=skew)
        ret = (pos >= 2) & (pos < nb) & ~buys & (rng.random(n) < _per_row(back, owner))
        ret &= ~np.roll(ret, 1)  # a step back follows a step forward
        if ret.any():
            src = np.where(ret, np.arange(n) - 2, np.arange(n))
            for _ in range(8):  # L P1 L P2 L: every return lands on the first L (pointer doubling)
                src = src[src]
            path, role = path[src], role[src]
        keep = ~(ret & (rng.random(n) < back_cached))
        p_self = _per_row(self_link, owner)
        if p_self.any():
            again = (pos > 0) & (pos < nb) & ~buys & ~ret & (rng.random(n) < p_self)
            # The page again: carry the previous step's page forward (runs of repeats included).
            src = np.maximum.accumulate(np.where(again, 0, np.arange(n)))
            path, role = path[src], role[src]
        special = np.zeros(len(ROLE_NAMES), dtype=bool)
        special[list(_ARRIVE)] = True
        arrive = np.array([_ARRIVE.get(r, 0.0) for r in range(len(ROLE_NAMES))])
        if think is not None:
            t_med = np.broadcast_to(np.asarray(think[0], dtype=float), nbrowse.shape)[owner]
            t_sig = np.broadcast_to(np.asarray(think[1], dtype=float), nbrowse.shape)[owner]
            sp = special[role]
            gaps = np.clip(_lognormal(rng, np.where(sp, arrive[role], t_med), np.where(sp, 0.5, t_sig), n), 0.4, 1800)
        elif sleep is not None:
            # The page's load time, then the sleep; forms and redirects still take their own time.
            low, high, expo = (a[owner] for a in sleep)
            gaps = np.where(expo, rng.exponential((low + high) / 2), rng.uniform(low, high)) + rng.uniform(0.2, 1.2, n)
            gaps = np.where(special[role], arrive[role] * rng.uniform(0.5, 1.5, n), gaps)
        else:
            assert period is not None
            gaps = period[owner] * np.clip(1 + 0.15 * rng.standard_normal(n), 0.3, None)
        page_ts = starts[owner] + np.round(_within(gaps, owner, pos) * US).astype(np.int64)
        ref_ext = np.where(pos == 0, landing_ref[owner], -1)
        prev = np.arange(n) - 1
        ref_path = np.where(pos == 0, -1, path[np.maximum(prev, 0)])
        meth, st, by, rt = self.respond(rng, path, status=status)
        pages = self.rows(n, ts=page_ts, ip=_take(ip, owner), ua=ua[owner], path=path, resp=(meth, st, by, rt),
                          profile=profile[owner] if isinstance(profile, np.ndarray) else profile, sess=sess[owner],
                          ref_ext=ref_ext, ref_path=ref_path)
        # A page shown again from the browser's cache reaches no log, nor do its assets.
        pages = {c: v[keep] for c, v in pages.items()}

        # Assets of each HTML page that loaded: css/js (and the favicon) on the first page of a
        # visit, then images; a returning visitor's cache answers 304 for css/js.
        shown = self.r_html[role] & (st == 200) & (meth == GET)
        ok = shown & keep
        n_fixed = np.where(ok & (pos == 0), 4 + int(favicon), 0)
        per = np.array([_IMAGES.get(r, 0) for r in range(len(ROLE_NAMES))])[role]
        n_img = np.where(per < 0, rng.integers(3, 8, n), per) if images else np.zeros(n, dtype=np.int64)
        n_img = np.where(ok, n_img, 0)
        a_owner, a_pos = _expand(n_fixed + n_img)
        m = len(a_owner)
        fixed = a_pos < n_fixed[a_owner]
        fixed_paths = np.array([site.off[R["css"]], site.off[R["css"]] + 1, site.off[R["js"]],
                                site.off[R["js"]] + 1, site.off[R["favicon"]]])
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
        a_ts = page_ts[a_owner] + np.round((0.05 + _within(a_gap, a_owner, a_pos)) * US).astype(np.int64)
        am, ast, aby, art = self.respond(rng, a_path)
        cached = returning[owner][a_owner] & fixed & (a_pos < 4)
        ast = np.where(cached, 304, ast).astype(np.int16)
        aby = np.where(cached, 0, aby).astype(np.int32)
        so = owner[a_owner]
        assets = self.rows(m, ts=a_ts, ip=_take(ip, so), ua=ua[so], path=a_path, resp=(am, ast, aby, art),
                           profile=profile[so] if isinstance(profile, np.ndarray) else profile, sess=sess[so],
                           ref_path=path[a_owner])
        parts = [pages, assets]
        period = self.beacon_period
        if beacons is not None and period is not None:
            # Beacons from each page until the next one opens (the last page: a while longer).
            last = np.append(owner[1:] != owner[:-1], True)
            stay = np.where(last, rng.uniform(5.0, 90.0, n) * US, np.roll(page_ts, -1) - page_ts) / US
            nb_ = np.where(shown & beacons[owner], np.minimum(np.floor(np.maximum(stay - 0.5, 0) / period), 15) + 1, 0)
            b_owner, b_pos = _expand(nb_.astype(np.int64))
            k = len(b_owner)
            b_path = np.full(k, site.off[R["beacon"]], dtype=np.int32)
            b_ts = page_ts[b_owner] + np.round((0.5 + b_pos * period + rng.uniform(0, 0.3, k)) * US).astype(np.int64)
            bo = owner[b_owner]
            parts.append(self.rows(k, ts=b_ts, ip=_take(ip, bo), ua=ua[bo], path=b_path, resp=self.respond(rng, b_path),
                                   profile=profile[bo] if isinstance(profile, np.ndarray) else profile, sess=sess[bo],
                                   ref_path=path[b_owner]))
        return {c: np.concatenate([part[c] for part in parts]) for c in pages}

    # -- scenarios ----------------------------------------------------------------------------

    def _humans(self, rng: np.random.Generator, day: _Day, sid: int, n: int, ai: bool) -> dict[str, np.ndarray]:
        starts = day.start_us + np.round(_diurnal(rng, n) * US).astype(np.int64)
        six = rng.random(n) < 0.15
        v4, v6 = self.residential.sample(rng, n), self.residential6.sample(rng, n)
        ip = tuple(np.where(six, b, a) for a, b in zip(v4, v6))
        ua = _choice(rng, n, self.browser_ua, self.browser_p)
        if not ai:
            kind = _choice(rng, n, [0, 1, 2], [0.44, 0.12, 0.44])  # search engine, social, direct
            search_ref = _choice(rng, n, [_REF[r] for r in _REFERERS[:8]], [26, 5, 5, 3, 5, 2, 0.7, 0.5])
            social_ref = _choice(rng, n, [_REF[r] for r in _REFERERS[8:15]], [4, 3, 1.5, 1.5, 1.2, 1, 1])
            ref = np.where(kind == 0, search_ref, np.where(kind == 1, social_ref, -1))
            landing = np.where(
                kind == 2, _choice(rng, n, [R["home"], R["product"], R["listing"]], [0.7, 0.15, 0.15]),
                _choice(rng, n, [R["product"], R["listing"], R["home"]], [0.6, 0.27, 0.13]))
            returning = (kind == 2) & (rng.random(n) < 0.6)
        else:
            # Links from AI assistants: ChatGPT tags them with utm_source (its apps send no referrer).
            src = _choice(rng, n, [0, 1, 2, 3, 4, 5], [0.42, 0.16, 0.16, 0.1, 0.08, 0.08])
            refs = np.array([_REF["https://chatgpt.com/"], -1, _REF["https://www.perplexity.ai/"],
                             _REF["https://gemini.google.com/"], _REF["https://copilot.microsoft.com/"],
                             _REF["https://claude.ai/"]])
            ref = refs[src]
            landing = _choice(rng, n, [R["product"], R["listing"], R["home"], R["search"]], [0.62, 0.18, 0.1, 0.1])
            landing = np.where((src <= 1) & (landing == R["product"]), R["product_utm"], landing)
            landing = np.where(src == 1, R["product_utm"], landing)
            returning = np.zeros(n, dtype=bool)
        bounce = rng.random(n) < (0.38 if not ai else 0.3)
        # Pages per visit follow the law of surfing (Huberman et al. 1998): an inverse Gaussian,
        # most visits a few pages, a long tail of engaged readers going on for dozens.
        nbrowse = np.where(bounce, 1, 1 + np.clip(np.round(rng.wald(3.3, 4.0, n)), 1, 120).astype(np.int64))
        flow = _choice(rng, n, [0, 1, 2, 3, 4], [0.8, 0.09, 0.045, 0.05, 0.015] if not ai
                       else [0.76, 0.12, 0.07, 0.04, 0.01])
        flow = np.where(bounce, 0, flow)
        prof = self.profile(SCENARIOS[sid], "human", "human", "none", automated=False, http2=True)
        # People read at their own pace, some steadily, some in fits and starts; now and then one
        # clicks the link to the page already open (the logo on the home page, a menu entry).
        think = (22.0 * np.exp(0.35 * rng.standard_normal(n)), rng.uniform(0.6, 1.3, n))
        # They go back to the list for its next item: the back button is a third of what people do
        # in a browser (Catledge & Pitkow 1995: 41%; Tauscher & Greenberg 1997: 30%; fewer since
        # tabs), about half of it answered from the browser's cache.
        return self.browse(rng, starts=starts, ip=ip, ua=ua, profile=prof, sess=day.sessions(sid, n), landing=landing,
                           landing_ref=ref, nbrowse=nbrowse, flow=flow, returning=returning, think=think,
                           self_link=0.005, back=rng.beta(2.0, 5.0, n), back_cached=0.5, beacons=rng.random(n) < 0.7)

    def human_browsing(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        weekly = (1.0, 1.0, 0.98, 0.97, 0.95, 0.9, 1.06)[day.weekday]
        return [self._humans(rng, day, sid, _poisson(rng, 145 * self.scale * weekly, 1), ai=False)]

    def human_ai_referral(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        return [self._humans(rng, day, sid, _poisson(rng, 7 * self.scale * day.growth, 1), ai=True)]

    def _crawl(self, rng: np.random.Generator, day: _Day, sid: int, name: str, total: float, *, burst: float,
               roles: Sequence[str], role_p: Sequence[float], period: tuple[float, float], robots_p: float,
               sitemap_p: float) -> dict[str, np.ndarray]:
        """A declared crawler's visits: bursts at a steady pace from its fleet, robots.txt first."""
        burst = max(3.0, min(burst, total / 3))  # small volumes come in smaller visits, not fewer
        nb = _poisson(rng, total / burst, 1)
        sizes = np.clip(rng.geometric(1.0 / burst, nb), 2, int(burst * 8))
        starts = day.start_us + np.round(rng.random(nb) * DAY_US).astype(np.int64)
        fleet = self.fleet[name]
        ip = _take(fleet, rng.integers(0, len(fleet[0]), nb))
        uas = self.bot_ua[name]
        ua = uas[_choice(rng, nb, np.arange(len(uas)), [0.75] + [0.25 / max(len(uas) - 1, 1)] * (len(uas) - 1))
                 if len(uas) > 1 else np.zeros(nb, dtype=np.int64)]
        per = rng.uniform(*period, nb)
        return self.flat(rng, starts=starts, sizes=sizes, ip=ip, ua=ua, profile=self.agent_profile(SCENARIOS[sid], name),
                         sess=day.sessions(sid, nb), roles=roles, role_p=role_p, period=per, jitter=0.1,
                         first=((0, "robots", robots_p), (1, "sitemap", sitemap_p)))

    def ai_crawler(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        out = []
        for name, daily in _AI_CRAWLERS.items():
            search = _AGENTS[name].purpose == "ai_search"
            out.append(self._crawl(
                rng, day, sid, name, daily * self.scale * day.growth, burst=25 if search else 45,
                roles=("product", "listing", "listing_page", "home", "feed", "notfound"),
                role_p=(0.62, 0.14, 0.12, 0.03, 0.03, 0.03) if not search else (0.7, 0.15, 0.05, 0.05, 0.03, 0.02),
                period=(1.5, 6.0) if not search else (2.0, 8.0), robots_p=0.7, sitemap_p=0.25))
        return out

    def ai_assistant(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        out = []
        for name, daily in _AI_ASSISTANTS.items():
            nq = _poisson(rng, daily * self.scale * day.growth, 1)
            # People ask in the daytime; one question fetches 1-3 pages at once.
            starts = day.start_us + np.round(_diurnal(rng, nq) * US).astype(np.int64)
            sizes = _choice(rng, nq, [1, 2, 3], [0.55, 0.3, 0.15])
            fleet = self.fleet[name]
            ip = _take(fleet, rng.integers(0, len(fleet[0]), nq))
            ua = np.full(nq, self.bot_ua[name][0])
            out.append(self.flat(rng, starts=starts, sizes=sizes, ip=ip, ua=ua,
                                 profile=self.agent_profile(SCENARIOS[sid], name), sess=day.sessions(sid, nq),
                                 roles=("product", "listing", "search", "home"), role_p=(0.6, 0.15, 0.15, 0.1),
                                 period=rng.uniform(0.05, 0.6, nq), jitter=0.5, skew=2.0))
        return out

    def search_engine(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        out = []
        for name, daily in _SEARCH_ENGINES.items():
            # Google and Bing render pages, so they fetch some css and js too.
            render = 0.08 if name in ("Googlebot", "bingbot") else 0.0
            out.append(self._crawl(
                rng, day, sid, name, daily * self.scale, burst=30,
                roles=("product", "listing", "listing_page", "home", "feed", "notfound", "css", "js"),
                role_p=(0.6, 0.14, 0.08, 0.03, 0.02, 0.03, render / 2, render / 2),
                period=(2.0, 12.0), robots_p=0.25, sitemap_p=0.15))
        return out

    def seo_bot(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        return [self._crawl(rng, day, sid, name, daily * self.scale, burst=60,
                            roles=("product", "listing", "listing_page", "home", "notfound"),
                            role_p=(0.58, 0.15, 0.14, 0.03, 0.1), period=(0.8, 4.0), robots_p=0.8, sitemap_p=0.1)
                for name, daily in _SEO_BOTS.items()]

    def monitor(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        out = []
        t0 = int(np.datetime64(self.start, "us").astype(np.int64))
        for vendor, period, phase, role, method in self.monitors:
            first = -(-(day.start_us - t0 - phase) // period)
            k = np.arange(first, (day.start_us + DAY_US - t0 - phase + period - 1) // period, dtype=np.int64)
            ts = t0 + phase + k * period  # exactly periodic, across days
            ts = ts[(ts >= day.start_us) & (ts < day.start_us + DAY_US)]
            n = len(ts)
            fleet = self.fleet[vendor]
            ip = _take(fleet, rng.integers(0, len(fleet[0]), n))  # checks come from several locations
            path = np.full(n, self.site.off[role], dtype=np.int32)
            out.append(self.rows(n, ts=ts, ip=ip, ua=self.bot_ua[vendor][0], path=path,
                                 resp=self.respond(rng, path, method=method),
                                 profile=self.agent_profile(SCENARIOS[sid], vendor),
                                 sess=np.repeat(day.sessions(sid, 1), n)))
        return out

    def http_tool(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        n = _poisson(rng, 12 * self.scale, day.least)
        tools = ("curl", "python-requests", "Go-http-client", "Wget")
        which = _choice(rng, n, np.arange(4), [0.4, 0.3, 0.2, 0.1])
        prof = np.array([self.agent_profile(SCENARIOS[sid], t) for t in tools], dtype=np.int16)[which]
        ua = np.array([self.bot_ua[t][rng.integers(0, len(self.bot_ua[t]))] for t in tools])[which]
        hosted = rng.random(n) < 0.7
        ip = tuple(np.where(hosted, a, b) for a, b in zip(self.cloud.sample(rng, n), self.residential.sample(rng, n)))
        starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
        sizes = _choice(rng, n, [1, 2, 3, 4, 6], [0.45, 0.2, 0.15, 0.1, 0.1])
        return [self.flat(rng, starts=starts, sizes=sizes, ip=ip, ua=ua, profile=prof, sess=day.sessions(sid, n),
                          roles=("home", "robots", "feed", "api_list", "product", "sitemap"),
                          role_p=(0.3, 0.1, 0.15, 0.15, 0.2, 0.1), period=rng.uniform(0.2, 6.0, n), jitter=0.6)]

    def stealth_scraper(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        prof = self.profile(SCENARIOS[sid], "scraper", "unknown", "undeclared",
                            threats=("abusive_scraping", "ua_rotation"))
        out = []
        for _ in range(_poisson(rng, 0.8 * self.scale, day.least)):
            # One sweep: one hosting /16, a pool of its addresses and of browser user agents, each
            # request from any of them; product pages in catalogue order, or the price API.
            n = int(rng.integers(250, 650))
            block = _Space([_HOSTING_16[rng.integers(0, len(_HOSTING_16))]])
            pool = block.sample(rng, int(rng.integers(30, 150)))
            uas = rng.choice(np.concatenate([self.stale_ua, self.browser_ua[:8]]), int(rng.integers(4, 9)), replace=False)
            api = rng.random() < 0.4
            first = int(rng.integers(0, self.site.n_products))
            idx = (first + np.arange(n)) % self.site.n_products
            path = (self.site.off[R["api_item"] if api else R["product"]] + idx).astype(np.int32)
            gaps = rng.uniform(0.3, 1.2) * np.clip(1 + 0.05 * rng.standard_normal(n), 0.5, None)
            t0 = day.start_us + int(rng.random() * DAY_US)
            ts = t0 + np.round(np.cumsum(np.concatenate([[0.0], gaps[1:]])) * US).astype(np.int64)
            ip = _take(pool, rng.integers(0, len(pool[0]), n))
            out.append(self.rows(n, ts=ts, ip=ip, ua=uas[rng.integers(0, len(uas), n)], path=path,
                                 resp=self.respond(rng, path), profile=prof, sess=np.repeat(day.sessions(sid, 1), n)))
        return out

    def agentic_browser(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        n = _poisson(rng, 6 * self.scale * day.growth, 1)
        openai = rng.random(n) < 0.3
        fleet = self.fleet["ChatGPT agent"]
        ip = tuple(np.where(openai, a, b) for a, b in zip(_take(fleet, rng.integers(0, len(fleet[0]), n)),
                                                           self.cloud.sample(rng, n)))
        p_openai = self.profile(SCENARIOS[sid], "agent", "ai_agent", "undeclared", ai_driven=True, operator="OpenAI",
                                agent="ChatGPT agent", http2=True)
        p_other = self.profile(SCENARIOS[sid], "agent", "ai_agent", "undeclared", ai_driven=True, http2=True)
        prof = np.where(openai, p_openai, p_other).astype(np.int16)
        starts = day.start_us + np.round(_diurnal(rng, n) * US).astype(np.int64)
        ua = self.agent_ua[rng.integers(0, len(self.agent_ua), n)]
        landing = np.where(rng.random(n) < 0.6, R["home"], R["search"])
        flow = _choice(rng, n, [FLOW_NAMES.index(f) for f in ("checkout", "agent_cart", "browse")], [0.45, 0.35, 0.2])
        # Search, then the product pages it compares (back to the results between some), then the
        # purchase; a steady few seconds apart.
        return [self.browse(rng, starts=starts, ip=ip, ua=ua, profile=prof, sess=day.sessions(sid, n), landing=landing,
                            landing_ref=np.full(n, -1), nbrowse=rng.integers(2, 6, n), flow=flow,
                            returning=np.zeros(n, dtype=bool), think=None, period=rng.uniform(0.8, 3.5, n),
                            back=rng.uniform(0.0, 0.4, n), back_cached=0.3,
                            browse_roles=("product",), browse_p=(1.0,), second="search", beacons=np.ones(n, dtype=bool))]

    def headless_automation(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        n = _poisson(rng, 2 * self.scale, day.least)
        kind = _choice(rng, n, [0, 1, 2], [0.45, 0.15, 0.4])
        names = ("HeadlessChrome", "PhantomJS", "")
        profs = np.array([self.profile(SCENARIOS[sid], "agent", "tool", "declared" if k else "undeclared",
                                       agent=k or None, http2=True) for k in names], dtype=np.int16)
        ua = np.array([self.headless_ua[k][rng.integers(0, len(self.headless_ua[k]))] for k in names])[kind]
        starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
        # Listing pages and the products on them, css/js rendered, images and favicon never asked for.
        return [self.browse(rng, starts=starts, ip=self.cloud.sample(rng, n), ua=ua, profile=profs[kind],
                            sess=day.sessions(sid, n), landing=np.full(n, R["listing"]), landing_ref=np.full(n, -1),
                            nbrowse=rng.integers(25, 120, n), flow=np.zeros(n, dtype=np.int64),
                            returning=np.zeros(n, dtype=bool), think=None, period=rng.uniform(1.0, 3.0, n),
                            favicon=False, images=False, browse_roles=("listing_page", "product", "listing"),
                            browse_p=(0.5, 0.42, 0.08), beacons=np.ones(n, dtype=bool))]

    def paced_bot(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        # Browser automation that passes for a visitor: a real browser (assets, favicon, scripts),
        # residential proxy or cloud addresses, and a random link of each page, now and then the
        # page's own or the one back. Most sleep a random few seconds to half a minute between
        # pages, four in ten of them Poisson-like (an exponential wait: as irregular as a person,
        # seldom a long read); a third copy a person's reading times too, and only their link
        # choice shows.
        # About one browser-looking visit in eight: bot reports count such evasive automation in
        # the tens of percent of all bad-bot traffic.
        n = _poisson(rng, 20 * self.scale, day.least)
        prof = self.profile(SCENARIOS[sid], "scraper", "unknown", "undeclared", http2=True)
        resi = rng.random(n) < 0.6
        ip = tuple(np.where(resi, a, b) for a, b in zip(self.residential.sample(rng, n), self.cloud.sample(rng, n)))
        ua = _choice(rng, n, self.browser_ua, self.browser_p)
        starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
        landing = _choice(rng, n, [R["home"], R["listing"], R["product"]], [0.5, 0.25, 0.25])
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
            out.append(self.browse(
                rng, starts=starts[m], ip=tuple(a[m] for a in ip), ua=ua[m], profile=prof, sess=sess[m],
                landing=landing[m], landing_ref=np.full(k, -1), nbrowse=nbrowse[m], flow=np.zeros(k, dtype=np.int64),
                returning=np.zeros(k, dtype=bool), think=(think[0][m], think[1][m]) if m is mimic else None,
                sleep=None if m is mimic else (low[m], high[m], expo[m]), self_link=self_link[m], back=back[m],
                beacons=np.ones(k, dtype=bool)))
        return out

    def spoofed_crawler(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        n = _poisson(rng, 3 * self.scale, day.least)
        claims = ("Googlebot", "GPTBot", "bingbot")
        claim = _choice(rng, n, np.arange(3), [0.5, 0.25, 0.25])
        probe = rng.random(n) < 0.4
        hosted = rng.random(n) < 0.65
        ip = tuple(np.where(hosted, a, b) for a, b in zip(self.hosting.sample(rng, n), self.residential.sample(rng, n)))
        ua = np.array([self.bot_ua[c][0] for c in claims])[claim]
        scrape_p = [self.profile(SCENARIOS[sid], "scraper", "unknown", "spoofed", agent=c, threats=("spoofed_identity",))
                    for c in claims]
        probe_p = [self.profile(SCENARIOS[sid], "crawler", "security_scanner", "spoofed", agent=c,
                                threats=("spoofed_identity", "vuln_scan"), path_threats=True) for c in claims]
        starts = day.start_us + np.round(rng.random(n) * DAY_US).astype(np.int64)
        out = []
        for mode in (False, True):
            m = probe == mode
            k = int(m.sum())
            if not k:
                continue
            prof = np.where(mode, np.array(probe_p), np.array(scrape_p))[claim[m]].astype(np.int16)
            if mode:
                roles = ("probe_sensitive", "probe_admin", "probe_backdoor", "probe_generic", "home", "product")
                role_p, period = (0.35, 0.25, 0.1, 0.15, 0.05, 0.1), rng.uniform(0.1, 0.8, k)
            else:
                roles, role_p, period = ("product", "listing_page", "api_item"), (0.7, 0.15, 0.15), rng.uniform(0.3, 1.5, k)
            out.append(self.flat(rng, starts=starts[m], sizes=rng.integers(20, 70, k), ip=_take(ip, np.flatnonzero(m)),
                                 ua=ua[m], profile=prof, sess=day.sessions(sid, k), roles=roles, role_p=role_p,
                                 period=period, jitter=0.15))
        return out

    def vuln_scanner(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        n = _poisson(rng, 2 * self.scale, day.least)
        tools = ("Nikto", "Nuclei", "sqlmap", "zgrab", "")
        tool = _choice(rng, n, np.arange(5), [0.2, 0.3, 0.15, 0.15, 0.2])
        out = []
        for t in range(5):
            m = tool == t
            k = int(m.sum())
            if not k:
                continue
            name = tools[t]
            if name:
                uas = self.scanner_ua[name]
                ua = uas[rng.integers(0, len(uas), k)]
                prof = self.profile(SCENARIOS[sid], "crawler", "security_scanner", "declared", agent=name,
                                    threats=("vuln_scan", "bad_user_agent"), path_threats=True)
            else:
                ua = self.stale_ua[rng.integers(0, len(self.stale_ua), k)]
                prof = self.profile(SCENARIOS[sid], "crawler", "security_scanner", "undeclared",
                                    threats=("vuln_scan",), path_threats=True)
            probes = ("probe_sensitive", "probe_admin", "probe_backdoor", "probe_traversal", "probe_sqli",
                      "probe_xss", "probe_generic", "home")
            mix, sizes = {
                "Nikto": ((0.3, 0.2, 0.15, 0.1, 0.05, 0.05, 0.13, 0.02), rng.integers(60, 250, k)),
                "Nuclei": ((0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.18, 0.02), rng.integers(60, 250, k)),
                "sqlmap": ((0, 0, 0, 0, 0.95, 0, 0, 0.05), rng.integers(40, 150, k)),
                "zgrab": ((0.3, 0, 0, 0, 0, 0, 0, 0.7), rng.integers(1, 4, k)),
                "": ((0.3, 0.2, 0.1, 0.05, 0.15, 0.1, 0.08, 0.02), rng.integers(30, 120, k)),
            }[name]
            out.append(self.flat(rng, starts=day.start_us + np.round(rng.random(k) * DAY_US).astype(np.int64),
                                 sizes=sizes, ip=self.hosting.sample(rng, k), ua=ua, profile=prof,
                                 sess=day.sessions(sid, k), roles=probes, role_p=mix, period=rng.uniform(0.03, 0.4, k),
                                 jitter=0.3, first=((0, "home", 0.6),)))
        return out

    def credential_stuffing(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        prof = self.profile(SCENARIOS[sid], "agent", "unknown", "undeclared", threats=("credential_stuffing",))
        n = _poisson(rng, 55 * self.scale, 3 * day.least)
        # Campaigns of a few hours; each botnet address tries a handful of logins, about one a minute.
        n_camp = max(1, round(n / 60))
        camp = rng.integers(0, n_camp, n)
        c_start = day.start_us + np.round(rng.random(n_camp) * DAY_US).astype(np.int64)
        c_len = rng.uniform(1, 4, n_camp) * 3600 * US
        starts = c_start[camp] + np.round(rng.random(n) * c_len[camp]).astype(np.int64)
        ua = _choice(rng, n, np.concatenate([self.stale_ua, self.browser_ua]),
                     np.concatenate([np.full(len(self.stale_ua), 0.5 / len(self.stale_ua)), self.browser_p * 0.5]))
        return [self.flat(rng, starts=starts, sizes=rng.integers(1, 9, n), ip=self.botnet.sample(rng, n), ua=ua,
                          profile=prof, sess=day.sessions(sid, n), roles=("login_post",), role_p=(1.0,),
                          period=rng.uniform(30, 75, n), jitter=0.3,
                          status={R["login_post"]: ((401, 403, 429, 302), (0.82, 0.12, 0.03, 0.03))})]

    def card_testing(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        prof = self.profile(SCENARIOS[sid], "agent", "unknown", "undeclared", threats=("card_testing",))
        n = _poisson(rng, 2.5 * self.scale, day.least)
        # A small cart, then card after card on the payment endpoint, mostly declined.
        n_attack = max(1, round(n / 2.5))
        attack = rng.integers(0, n_attack, n)
        t_attack = day.start_us + np.round(rng.random(n_attack) * DAY_US).astype(np.int64)
        starts = t_attack[attack] + np.round(rng.random(n) * 600 * US).astype(np.int64)
        hosted = rng.random(n) < 0.5
        ip = tuple(np.where(hosted, a, b) for a, b in zip(self.hosting.sample(rng, n), self.residential.sample(rng, n)))
        return [self.flat(rng, starts=starts, sizes=rng.integers(10, 40, n), ip=ip,
                          ua=self.stale_ua[rng.integers(0, len(self.stale_ua), n)], profile=prof,
                          sess=day.sessions(sid, n), roles=("payment",), role_p=(1.0,),
                          period=rng.uniform(4, 20, n), jitter=0.25, first=((0, "cart_add", 1.0), (1, "checkout", 1.0)),
                          status={R["payment"]: ((402, 200, 429), (0.9, 0.05, 0.05))})]

    def fake_signup(self, rng: np.random.Generator, day: _Day, sid: int) -> list[dict[str, np.ndarray]]:
        prof = self.profile(SCENARIOS[sid], "agent", "unknown", "undeclared", threats=("fake_signup",))
        n = _poisson(rng, 45 * self.scale, 3 * day.least)
        # Bursts of fresh addresses, each signing up once or twice within minutes.
        n_burst = max(1, round(n / 45))
        burst = rng.integers(0, n_burst, n)
        b_start = day.start_us + np.round(rng.random(n_burst) * DAY_US).astype(np.int64)
        starts = b_start[burst] + np.round(rng.random(n) * rng.uniform(300, 1800, n_burst)[burst] * US).astype(np.int64)
        hosted = rng.random(n) < 0.3
        ip = tuple(np.where(hosted, a, b) for a, b in zip(self.hosting.sample(rng, n), self.botnet.sample(rng, n)))
        ua = _choice(rng, n, self.browser_ua, self.browser_p)
        return [self.flat(rng, starts=starts, sizes=_choice(rng, n, [1, 2, 3], [0.55, 0.35, 0.1]), ip=ip, ua=ua,
                          profile=prof, sess=day.sessions(sid, n), roles=("signup_post",), role_p=(1.0,),
                          period=rng.uniform(2, 15, n), jitter=0.3, first=((0, "signup_form", 0.4),),
                          status={R["signup_post"]: ((302, 422, 429), (0.75, 0.15, 0.1))})]

    # -- one day ------------------------------------------------------------------------------

    def day_frame(self, d: int) -> pl.DataFrame:
        start = self.start + dt.timedelta(days=d)
        day = _Day(d, int(np.datetime64(start, "us").astype(np.int64)),
                   AI_GROWTH ** (d / max(self.days - 1, 1)), start.weekday())
        frames = []
        for sid, name in enumerate(SCENARIOS):
            rng = np.random.default_rng([self.seed, d, sid])
            frames.append(self.frame(getattr(self, name)(rng, day, sid)))
        return pl.concat(frames)

    def ranges(self) -> dict[str, list[str]]:
        """Published range files -> the prefixes in them (those drawn from, and a few more)."""
        out: dict[str, list[str]] = {}
        for name, (file, prefixes) in _AGENT_PREFIXES.items():
            if file:
                out.setdefault(file, []).extend(str(ipaddress.ip_network(p)) for p in prefixes)
        for file, prefixes in _EXTRA_PUBLISHED.items():
            out.setdefault(file, []).extend(prefixes)
        return out


# ---------------------------------------------------------------------------------------------
# Rendering lines
# ---------------------------------------------------------------------------------------------

_HEX = pl.Series("hex", [f"{i:x}" for i in range(65536)])
_HEX4 = pl.Series("hex4", [f"{i:04x}" for i in range(65536)])
_W3C_FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
               "cs(Referer) sc-status sc-substatus sc-win32-status time-taken")


def _ip_strings(hi: pl.Series, lo: pl.Series, six: pl.Series) -> pl.Series:
    h, low = hi.to_numpy(), lo.to_numpy()
    v4 = pl.DataFrame({f"o{i}": ((low >> np.uint64(24 - 8 * i)) & np.uint64(255)).astype(np.int64) for i in range(4)})
    out = v4.select(pl.concat_str([pl.col(f"o{i}").cast(pl.String) for i in range(4)], separator=".")).to_series()
    if six.any():
        m = six.to_numpy()
        groups = [(h[m] >> np.uint64(48 - 16 * i)) & np.uint64(0xFFFF) for i in range(4)] + [
            (low[m] >> np.uint64(48 - 16 * i)) & np.uint64(0xFFFF) for i in range(4)]
        g = pl.DataFrame({f"g{i}": _HEX.gather(pl.Series(x.astype(np.int64))) for i, x in enumerate(groups)})
        v6 = g.select(pl.concat_str([pl.col(f"g{i}") for i in range(8)], separator=":")).to_series()
        out = out.scatter(np.flatnonzero(m), v6)
    return out.rename("client_ip")


class _Renderer:
    """Slices of generated rows -> log lines in one format, and the matching truth rows."""

    def __init__(self, sim: _Sim, fmt: str, seed: int) -> None:
        self.sim, self.fmt, self.seed = sim, fmt, seed
        self.uas = pl.Series("ua", sim.uas, dtype=pl.String)
        self.refs = pl.Series("ref", _REFERERS, dtype=pl.String)
        self._labels = pl.DataFrame()
        self.seconds = fmt != "alb"  # every format but ALB logs whole seconds

    def labels(self) -> pl.DataFrame:
        """The label columns of every profile (scenarios may add profiles on any day)."""
        p = self.sim.profiles
        if self._labels.height == len(p):
            return self._labels
        self._labels = pl.DataFrame({
            "profile": pl.Series(range(len(p)), dtype=pl.Int16),
            "scenario": [x.scenario for x in p], "actor_class": [x.actor_class for x in p],
            "automated": [x.automated for x in p], "ai_driven": [x.ai_driven for x in p],
            "purpose": [x.purpose for x in p], "operator": pl.Series([x.operator for x in p], dtype=pl.String),
            "agent": pl.Series([x.agent for x in p], dtype=pl.String), "identity": [x.identity for x in p],
            "http2": [x.http2 for x in p],
        })
        return self._labels

    def render(self, rows: pl.DataFrame, first_line: int) -> tuple[pl.Series, pl.DataFrame]:
        sim = self.sim
        n = rows.height
        ts_us = rows["ts"]
        if self.seconds:
            ts_us = ts_us - ts_us % US
        path = sim.site.paths.gather(rows["path"])
        ref = pl.select(
            pl.when(rows["ref_ext"] >= 0).then(self.refs.gather(rows["ref_ext"].clip(0)))
            .when(rows["ref_path"] >= 0).then(pl.lit(f"https://{sim.host}") + sim.site.paths.gather(rows["ref_path"].clip(0)))
            .otherwise(None)
        ).to_series()
        df = pl.DataFrame({
            "line_no": pl.int_range(first_line, first_line + n, eager=True, dtype=pl.Int64),
            "ts": ts_us.cast(pl.Datetime("us", "UTC")),
            "client_ip": _ip_strings(rows["ip_hi"], rows["ip_lo"], rows["ip6"]),
            "user_agent": self.uas.gather(rows["ua"]),
            "method": pl.Series(METHODS).gather(rows["method"].cast(pl.Int64)),
            "path": path, "stem": sim.site.stem.gather(rows["path"]),
            "status": rows["status"].cast(pl.Int32), "bytes": rows["bytes"], "rt": rows["rt"],
            "referer": ref, "profile": rows["profile"], "threats_mask": rows["threats"], "sess": rows["sess"],
        }).join(self.labels(), on="profile", how="left", maintain_order="left")
        lines = df.select(self._line().alias("line")).to_series()
        return lines, self._truth(df)

    def _truth(self, df: pl.DataFrame) -> pl.DataFrame:
        # Few distinct threat sets exist: name each once, then join.
        masks = df["threats_mask"].unique().sort().to_list()
        names = pl.DataFrame({
            "threats_mask": pl.Series(masks, dtype=pl.Int32),
            "threats": pl.Series([[t for t, bit in _BIT.items() if m & bit] for m in masks], dtype=pl.List(pl.String)),
        })
        df = df.join(names, on="threats_mask", how="left", maintain_order="left")
        mask = pl.col("threats_mask")
        scen = pl.Series(SCENARIOS)
        session = pl.concat_str([
            pl.lit(scen).gather((pl.col("sess") // (1 << 48)).cast(pl.Int64)), pl.lit("-d"),
            (pl.col("sess") // (1 << 36) % (1 << 12)).cast(pl.String).str.zfill(2), pl.lit("-"),
            (pl.col("sess") % (1 << 36)).cast(pl.String).str.zfill(6)])
        return df.select(
            "line_no", "ts", "client_ip", "user_agent", "actor_class", "automated", "ai_driven", "purpose",
            "operator", "agent", "identity",
            malicious=(mask & ~_BIT["robots_violation"]) != 0, threats=pl.col("threats"), scenario=pl.col("scenario"),
            session=session, method=pl.col("method"), path=pl.col("path"), status=pl.col("status"),
        ).cast(TRUTH_SCHEMA)  # type: ignore[arg-type]

    def _line(self) -> pl.Expr:
        c = pl.col
        lit = pl.lit
        proto = pl.when(c("http2")).then(lit("HTTP/2.0")).otherwise(lit("HTTP/1.1"))
        status = c("status").cast(pl.String)
        host = self.sim.host
        if self.fmt in ("combined", "common", "vhost_combined"):
            size = pl.when(c("bytes") == 0).then(lit("-")).otherwise(c("bytes").cast(pl.String))
            parts = [c("client_ip"), lit(" - - ["), c("ts").dt.strftime("%d/%b/%Y:%H:%M:%S +0000"), lit('] "'),
                     c("method"), lit(" "), c("path"), lit(" "), proto, lit('" '), status, lit(" "), size]
            if self.fmt != "common":
                parts += [lit(' "'), c("referer").fill_null("-"), lit('" "'), c("user_agent"), lit('"')]
            if self.fmt == "vhost_combined":
                parts = [lit(f"{host}:443 ")] + parts
            return pl.concat_str(parts)
        secs = pl.concat_str([(c("rt") // 1000).cast(pl.String), lit("."),
                              (c("rt") % 1000).cast(pl.String).str.zfill(3)])
        if self.fmt == "nginx_json":
            return pl.concat_str([
                lit('{"remote_addr":"'), c("client_ip"), lit('","time_iso8601":"'),
                c("ts").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), lit('","request":"'), c("method"), lit(" "),
                c("path"), lit(" "), proto, lit('","status":"'), status, lit('","body_bytes_sent":"'),
                c("bytes").cast(pl.String), lit('","http_referer":"'), c("referer").fill_null(""),
                lit('","http_user_agent":"'), c("user_agent"), lit('","request_time":"'), secs,
                lit(f'","http_x_forwarded_for":"","host":"{host}"}}')])
        if self.fmt == "w3c":
            query = c("path").str.splitn("?", 2).struct.field("field_1").fill_null("-")
            win32 = pl.when(c("status") == 404).then(lit(" 0 2 ")).otherwise(lit(" 0 0 "))
            return pl.concat_str([
                c("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), lit(" 10.0.0.4 "), c("method"), lit(" "), c("stem"),
                lit(" "), query, lit(" 443 - "), c("client_ip"), lit(" "), c("user_agent").str.replace_all(" ", "+"),
                lit(" "), c("referer").fill_null("-"), lit(" "), status, win32, c("rt").cast(pl.String)])
        if self.fmt == "alb":
            # Trace ids and ports derived from the line, so runs repeat exactly.
            h = (c("line_no").cast(pl.UInt64) * 0x9E3779B1 + self.seed) % (1 << 32)
            h2 = (c("line_no").cast(pl.UInt64) * 0x85EBCA77 + 0xC2B2AE3D) % (1 << 32)
            sess = c("sess").cast(pl.UInt64)
            h3 = ((sess % (1 << 31)) * 0x27D4EB2F + sess // (1 << 36)) % (1 << 32)
            hx = lambda e: pl.lit(_HEX4).gather((e % 65536).cast(pl.Int64))  # noqa: E731
            epoch = c("ts").dt.epoch("s")
            tls = pl.when(c("http2")).then(lit("TLS_AES_128_GCM_SHA256 TLSv1.3")).otherwise(
                lit("ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"))
            target = pl.when(c("sess") % 2 == 0).then(lit("10.0.1.15:8080")).otherwise(lit("10.0.1.16:8080"))
            created = (c("ts") - pl.duration(milliseconds=c("rt") + 1)).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            return pl.concat_str([
                pl.when(c("http2")).then(lit("h2")).otherwise(lit("https")), lit(" "),
                c("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"), lit(" app/shop-prod/50dc6c495c0c9188 "),
                c("client_ip"), lit(":"), (1024 + h3 % 64000).cast(pl.String), lit(" "), target, lit(" 0.001 "),
                secs, lit(" 0.000 "), status, lit(" "), status, lit(" "),
                (180 + c("path").str.len_bytes() + c("user_agent").str.len_bytes()).cast(pl.String), lit(" "),
                c("bytes").cast(pl.String), lit(' "'), c("method"), lit(f" https://{host}:443"), c("path"), lit(" "),
                proto, lit('" "'), c("user_agent"), lit('" '), tls,
                lit(" arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/73e2d6bc24d8a067 "
                    '"Root=1-'),
                hx(epoch // 65536), hx(epoch), lit("-"), hx(h // 65536), hx(h), hx(h2 // 65536), hx(h2), hx(h3 // 65536),
                hx(h3), lit(f'" "{host}" "arn:aws:acm:us-east-1:123456789012:certificate/'
                            '0f8e2b4c-6d1a-4e3b-9c7f-2a5d8e1b3c4f" 0 '),
                created, lit(' "forward" "-" "-" "'), target, lit('" "'), status, lit('" "-" "-"')])
        raise ValueError(f"unknown format {self.fmt!r}")


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


@dataclass
class SimulateSummary:
    """What one simulation wrote."""

    path: Path
    truth_path: Path
    lines: int  # physical lines in the log (W3C directive lines included)
    days: int
    scenarios: dict[str, int]  # log lines per scenario
    seconds: float
    format: str = "combined"
    bytes: int = 0
    ranges_dir: Path | None = None

    @property
    def events(self) -> int:
        return sum(self.scenarios.values())

    def describe(self) -> str:
        top = ", ".join(f"{k} {v:,}" for k, v in sorted(self.scenarios.items(), key=lambda kv: -kv[1]))
        ranges = f", ranges in {self.ranges_dir}" if self.ranges_dir else ""
        return (f"{self.path}: {self.lines:,} lines ({self.format}, {self.days} days, {self.bytes / 1e6:.1f} MB), "
                f"truth in {self.truth_path.name}{ranges}; {self.seconds:.1f}s; {top}")


def _open(path: Path, gz: bool) -> BinaryIO:
    raw = open(path, "wb")
    if gz:
        # No name or time in the header: the same seed gives the same bytes.
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)  # type: ignore[return-value]
    return raw


class _Output:
    """Writes log bytes and truth tables on a thread of its own, overlapping the next slice's rendering."""

    def __init__(self, log: Path, truth: Path, gz: bool) -> None:
        self.fh = _open(log, gz)
        self.truth = truth
        self.writer: pq.ParquetWriter | None = None
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=1)  # bounds the memory of rendered slices
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, data: bytes, table: pa.Table | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((data, table))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                data, table = item
                self.fh.write(data)
                if table is not None:
                    if self.writer is None:
                        self.writer = pq.ParquetWriter(self.truth, table.schema, compression="zstd")
                    self.writer.write_table(table)
            except BaseException as e:  # re-raised in the generating thread
                self.error = e

    def close(self) -> None:
        self.stop()
        if self.error is not None:
            raise self.error
        if self.writer is None:
            empty = pl.DataFrame(schema=TRUTH_SCHEMA).to_arrow(compat_level=pl.CompatLevel.oldest())
            self.writer = pq.ParquetWriter(self.truth, empty.schema, compression="zstd")
        self.writer.close()
        self.fh.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


def write_ranges(folder: str | Path, prefixes: dict[str, list[str]], created: dt.date) -> list[Path]:
    """Range files in the operators' JSON shape, one per published file name."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file, nets in sorted(prefixes.items()):
        entries = [{"ipv6Prefix" if ":" in p else "ipv4Prefix": p} for p in dict.fromkeys(nets)]
        doc = {"creationTime": f"{created.isoformat()}T00:00:00.000000", "prefixes": entries}
        (out / file).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        written.append(out / file)
    return written


def simulate(out: str | Path, *, fmt: str = "combined", days: int = 7, seed: int = 0, scale: float = 1.0,
             site_kind: str = "shop", start: dt.date | None = None, site: str = "www.example-shop.com",
             ranges_out: str | Path | None = None, progress: bool | None = None) -> SimulateSummary:
    """Write a labelled synthetic access log to `out` and its truth to `<out>.truth.parquet`.

    Example: `simulate("sample.log.gz", days=7, seed=1, ranges_out="ranges/")`. `scale` multiplies
    the volumes (1.0 is about 120,000 lines a week); the same arguments give the same bytes.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if site_kind not in SITE_KINDS:
        raise ValueError(f"unknown site kind {site_kind!r}; choose one of {', '.join(SITE_KINDS)}")
    if days < 1 or not scale > 0 or seed < 0:
        raise ValueError("days must be at least 1, scale above 0 and seed not negative")
    began = time.perf_counter()
    path = Path(out)
    truth_path = path.with_name(path.name + ".truth.parquet")
    start = start or DEFAULT_START
    sim = _Sim(seed=seed, scale=scale, days=days, site_kind=site_kind, start=start, site=site)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_log = path.with_name(path.name + ".partial")
    tmp_truth = truth_path.with_name(truth_path.name + ".partial")
    bar = Progress(None, "simulate", enabled=progress)
    counts = dict.fromkeys(SCENARIOS, 0)
    line_no = 0
    terminator = "\r\n" if fmt == "w3c" else "\n"  # IIS writes CRLF
    output = _Output(tmp_log, tmp_truth, gz=path.name.endswith(".gz"))
    renderer = _Renderer(sim, fmt, seed)
    try:
        carry: pl.DataFrame | None = None
        written = 0
        for d in range(days):
            bar.start_source(f"day {d + 1}/{days}")
            day_bytes = 0
            frame = sim.day_frame(d)
            if carry is not None:
                frame = pl.concat([carry, frame])
            # A stable sort (ties keep their order, so runs repeat), one copy of the frame.
            ts = frame["ts"].to_numpy()
            order = np.argsort(ts, kind="stable")
            frame = frame.select(pl.all().gather(order))
            # Visits running past midnight go on in the next day's chunk; the last day ends there.
            end = int(np.datetime64(start + dt.timedelta(days=d + 1), "us").astype(np.int64))
            cut = int(np.searchsorted(ts[order], end, side="left"))
            del ts, order
            carry = frame.slice(cut) if d < days - 1 else None
            frame = frame.slice(0, cut)
            if fmt == "w3c":
                # A directive block per day, as IIS writes when its log starts again.
                day = start + dt.timedelta(days=d)
                head = (f"#Software: Microsoft Internet Information Services 10.0{terminator}#Version: 1.0"
                        f"{terminator}#Date: {day.isoformat()} 00:00:00{terminator}#Fields: {_W3C_FIELDS}"
                        f"{terminator}").encode()
                output.put(head)
                day_bytes += len(head)
                line_no += 4
            for off in range(0, frame.height, SLICE_ROWS):
                rows = frame.slice(off, SLICE_ROWS)
                lines, truth = renderer.render(rows, line_no + 1)
                buf = io.BytesIO()
                pl.DataFrame({"l": lines}).write_csv(buf, include_header=False, quote_style="never",
                                                     line_terminator=terminator)
                output.put(buf.getvalue(), truth.to_arrow(compat_level=pl.CompatLevel.oldest()))
                day_bytes += buf.tell()
                line_no += rows.height
                for name, cnt in truth.group_by("scenario").len().iter_rows():
                    counts[name] += cnt
                bar.update(day_bytes, rows.height)
            written += day_bytes
            del frame
        output.close()
        os.replace(tmp_log, path)
        os.replace(tmp_truth, truth_path)
    except BaseException:
        output.stop()
        for p in (tmp_log, tmp_truth):
            p.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    ranges_dir = None
    if ranges_out is not None:
        write_ranges(ranges_out, sim.ranges(), start)
        ranges_dir = Path(ranges_out)
    return SimulateSummary(path=path, truth_path=truth_path, lines=line_no, days=days, scenarios=counts,
                           seconds=time.perf_counter() - began, format=fmt, bytes=path.stat().st_size,
                           ranges_dir=ranges_dir)
