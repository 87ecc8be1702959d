"""The simulated site: every path it answers, grouped by role (home, listing, product, cart, the
probes attackers send...), and how it answers each (method, status, body size, request time).

A site kind (shop, media, travel) names its pages in `_blocks`; the roles, their responses and
the attack probes are the same for every kind. A new site kind goes in `schema.SITE_KINDS` and
`_blocks`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from trafficlens.schema import SITE_KINDS
from trafficlens.simulate.rows import GET, HEAD, POST, choice, lognormal, mask

# Statuses that replace a role's usual ones: role index -> (statuses, their chances).
StatusMix = dict[int, tuple[Sequence[int], Sequence[float]]]


class Role(NamedTuple):
    """What a role's paths answer: the usual method, statuses with their chances, the body size
    and request time (lognormal: median and sigma), and whether it is an HTML page (assets follow)."""

    method: int
    statuses: tuple[tuple[int, float], ...]  # (status, probability)
    bytes_median: float
    bytes_sigma: float
    ms_median: float  # request time
    ms_sigma: float
    html: bool


# Data tables stay packed, a row a line, as they were written to be read.
# fmt: off
ROLES: dict[str, Role] = {
    "home": Role(GET, ((200, 1.0),), 48_000, 0.15, 110, 0.5, True),
    "listing": Role(GET, ((200, 1.0),), 62_000, 0.3, 170, 0.5, True),
    "listing_page": Role(GET, ((200, 1.0),), 58_000, 0.3, 190, 0.5, True),
    "product": Role(GET, ((200, 0.995), (301, 0.005)), 55_000, 0.35, 140, 0.5, True),
    "product_utm": Role(GET, ((200, 1.0),), 55_000, 0.35, 140, 0.5, True),
    "search": Role(GET, ((200, 1.0),), 41_000, 0.4, 260, 0.6, True),
    "cart": Role(GET, ((200, 1.0),), 21_000, 0.3, 90, 0.4, True),
    "cart_add": Role(POST, ((200, 0.97), (409, 0.03)), 420, 0.3, 60, 0.4, False),
    "checkout": Role(GET, ((200, 1.0),), 30_000, 0.2, 150, 0.4, True),
    "payment": Role(POST, ((200, 0.96), (402, 0.04)), 640, 0.2, 900, 0.5, False),
    "confirm": Role(GET, ((200, 1.0),), 18_000, 0.2, 120, 0.4, True),
    "login_form": Role(GET, ((200, 1.0),), 14_000, 0.1, 60, 0.4, True),
    "login_post": Role(POST, ((302, 0.9), (401, 0.1)), 0, 0.0, 240, 0.3, False),
    "signup_form": Role(GET, ((200, 1.0),), 15_500, 0.1, 60, 0.4, True),
    "signup_post": Role(POST, ((302, 0.93), (422, 0.07)), 0, 0.0, 310, 0.3, False),
    "account": Role(GET, ((200, 1.0),), 25_000, 0.3, 130, 0.4, True),
    "api_list": Role(GET, ((200, 1.0),), 18_000, 0.3, 45, 0.5, False),
    "api_item": Role(GET, ((200, 0.98), (404, 0.02)), 360, 0.2, 12, 0.5, False),
    "robots": Role(GET, ((200, 1.0),), 410, 0.0, 2, 0.3, False),
    "sitemap": Role(GET, ((200, 1.0),), 120_000, 0.5, 30, 0.5, False),
    "feed": Role(GET, ((200, 0.9), (304, 0.1)), 36_000, 0.2, 25, 0.5, False),
    "health": Role(GET, ((200, 1.0),), 21, 0.0, 2, 0.4, False),
    "notfound": Role(GET, ((404, 1.0),), 0, 0.0, 15, 0.5, False),
    "css": Role(GET, ((200, 1.0),), 36_000, 0.4, 2, 0.6, False),
    "js": Role(GET, ((200, 1.0),), 140_000, 0.5, 3, 0.6, False),
    "img_product": Role(GET, ((200, 1.0),), 48_000, 0.6, 3, 0.6, False),
    "img_banner": Role(GET, ((200, 1.0),), 160_000, 0.3, 4, 0.6, False),
    "favicon": Role(GET, ((200, 1.0),), 5_430, 0.0, 1, 0.4, False),
    "probe_sensitive": Role(GET, ((404, 0.9), (403, 0.1)), 0, 0.0, 6, 0.5, False),
    "probe_admin": Role(GET, ((404, 0.85), (403, 0.15)), 0, 0.0, 6, 0.5, False),
    "probe_backdoor": Role(GET, ((404, 1.0),), 0, 0.0, 6, 0.5, False),
    "probe_traversal": Role(GET, ((400, 0.5), (404, 0.4), (403, 0.1)), 0, 0.0, 4, 0.5, False),
    "probe_sqli": Role(GET, ((200, 0.35), (400, 0.35), (403, 0.2), (500, 0.1)), 0, 0.0, 60, 0.8, False),
    "probe_xss": Role(GET, ((200, 0.5), (400, 0.3), (403, 0.2)), 0, 0.0, 40, 0.6, False),
    "probe_generic": Role(GET, ((404, 0.95), (405, 0.05)), 0, 0.0, 6, 0.5, False),
    "beacon": Role(POST, ((204, 1.0),), 0, 0.0, 3, 0.4, False),
    "llms": Role(GET, ((200, 1.0),), 9_000, 0.4, 3, 0.4, False),
    "markdown": Role(GET, ((200, 0.97), (404, 0.03)), 8_000, 0.5, 20, 0.5, False),
}
ROLE_NAMES = tuple(ROLES)
R = {name: i for i, name in enumerate(ROLE_NAMES)}
# Static files a browser fetches for a page: what a CDN serves in the origin's stead.
ASSET_ROLES = ("css", "js", "img_product", "img_banner", "favicon")
# Response bodies of non-2xx answers (the page's own size does not apply).
STATUS_BYTES = {301: 230, 302: 0, 304: 0, 400: 340, 401: 420, 402: 380, 403: 310, 404: 1_250, 405: 300,
                409: 260, 422: 510, 429: 160, 500: 620, 503: 590}

PROBES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
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
        "/search?q=1%3BWAITFOR%20DELAY%20%270:0:5%27--",
        "/c/shoes?sort=price%20ASC%2C(SELECT%201%20FROM%20pg_sleep(5))",
        "/api/price/1%20UNION%20ALL%20SELECT%20username,password%20FROM%20users--",
        "/search?q=%27%20AND%20EXTRACTVALUE(1,CONCAT(0x7e,VERSION()))--")],
    "probe_xss": [(p, ("xss",)) for p in (
        "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "/search?q=%22%3E%3Csvg/onload=alert(document.domain)%3E",
        "/search?q=%3Cimg%20src=x%20onerror=alert(1)%3E", "/p/item?ref=javascript:alert(1)",
        "/search?q=%27%3E%3Ciframe%20src=javascript:alert(1)%3E", "/login?next=%3Cscript%3Efetch(1)%3C/script%3E")],
    "probe_generic": [(p, ("vuln_scan",)) for p in (
        "/cgi-bin/test.cgi", "/api/v1/pods", "/.well-known/security.txt", "/owa/auth/logon.aspx",
        "/remote/login", "/boaform/admin/formLogin", "/HNAP1/", "/sdk",
        "/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application",
        "/geoserver/web/", "/vpn/index.html", "/global-protect/login.esp", "/console/", "/druid/index.html",
        "/struts2-showcase/", "/level/15/exec/-/sh/run/CR", "/mifs/.;/services/LogService")],
}

# fmt: on


class Site:
    """Every path the simulated site answers, grouped in contiguous blocks by role, and its answers."""

    def __init__(
        self, kind: str, rng: np.random.Generator, start: dt.date, beacon_period: float | None, layout: str = "origin"
    ) -> None:
        self.kind = kind
        # Where its assets come from and how its pages load (schema.SITE_LAYOUTS): the origin
        # serving everything, a CDN serving the assets (absent from the origin's log), or a
        # single-page app (one document, then API calls).
        self.layout = layout
        # The site's own analytics script, if it has one: seconds between the beacons it posts.
        self.beacon_period = beacon_period
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
                add(role, [p for p, _ in PROBES[role]], [mask(*t) for _, t in PROBES[role]])
            else:
                add(role, b[role])
        for p in paths:
            # The formats carry these values unquoted or inside quotes without escaping.
            assert " " not in p and '"' not in p and "\\" not in p, p
        self.paths = pl.Series("path", paths, dtype=pl.String)
        self.role = np.array(roles, dtype=np.int16)
        self.threat = np.array(threats, dtype=np.int32)
        self.stem = self.paths.str.splitn("?", 2).struct.field("field_0")

        # The answers of each role, as arrays indexed by role.
        spec = [ROLES[n] for n in ROLE_NAMES]
        self.r_method = np.array([r.method for r in spec], dtype=np.int8)
        k = max(len(r.statuses) for r in spec)
        self.r_status = np.array(
            [[s for s, _ in r.statuses] + [r.statuses[-1][0]] * (k - len(r.statuses)) for r in spec]
        )
        self.r_status_p = np.array([[p for _, p in r.statuses] + [0.0] * (k - len(r.statuses)) for r in spec])
        self.r_bytes = np.array([r.bytes_median for r in spec], dtype=float)
        self.r_bsig = np.array([r.bytes_sigma for r in spec])
        self.r_rt = np.array([r.ms_median for r in spec], dtype=float)
        self.r_rsig = np.array([r.ms_sigma for r in spec])
        self.r_html = np.array([r.html for r in spec])
        self.r_asset = np.isin(np.arange(len(ROLE_NAMES)), [R[r] for r in ASSET_ROLES])
        self.status_bytes = np.full(600, -1.0)
        for s, v in STATUS_BYTES.items():
            self.status_bytes[s] = v

    def pick(self, rng: np.random.Generator, role: np.ndarray, skew: float = 1.0) -> np.ndarray:
        """A path of each row's role; skew > 1 favours the first entries (popular pages)."""
        u = rng.random(len(role))
        if skew != 1.0:
            u = u**skew
        return (self.off[role] + np.floor(u * self.size[role]).astype(np.int64)).astype(np.int32)

    def product_index(self, path: np.ndarray) -> np.ndarray:
        """Index of the product a product (or utm product) path shows, -1 for other paths."""
        role = self.role[path]
        return np.where(
            role == R["product"],
            path - self.off[R["product"]],
            np.where(role == R["product_utm"], path - self.off[R["product_utm"]], -1),
        )

    def respond(
        self,
        rng: np.random.Generator,
        path: np.ndarray,
        *,
        method: np.ndarray | int | None = None,
        status: StatusMix | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Method, status, bytes and request time (ms) for each request, plausible per path."""
        n = len(path)
        role = self.role[path].astype(np.int64)
        meth = self.r_method[role] if method is None else np.broadcast_to(np.asarray(method, dtype=np.int8), (n,))
        cp = np.cumsum(self.r_status_p[role], axis=1)
        col = np.minimum((rng.random(n)[:, None] >= cp).sum(axis=1), cp.shape[1] - 1)
        st = self.r_status[role, col]
        for r, (codes, probs) in (status or {}).items():
            m = role == r
            if m.any():
                st[m] = choice(rng, int(m.sum()), codes, probs)
        # A rare server error on dynamic pages.
        st = np.where(self.r_html[role] & (rng.random(n) < 0.0012), 503, st)
        size = lognormal(rng, self.r_bytes[role], self.r_bsig[role], n)
        fixed = self.status_bytes[st]
        size = np.where(
            fixed >= 0,
            fixed * np.where(st == 404, np.where(self.r_html[role] | (role == R["notfound"]), 1.0, 0.15), 1.0),
            size,
        )
        size = np.where((meth == HEAD) | (st == 304) | (st == 204), 0, size)
        rt = lognormal(rng, self.r_rt[role], self.r_rsig[role], n)
        auth = (role == R["login_post"]) | (role == R["signup_post"]) | (role == R["payment"])
        rt = np.where((st >= 300) & ~auth, np.minimum(rt, 8.0 + 10 * rng.random(n)), rt)
        return meth.astype(np.int8), st.astype(np.int16), np.round(size).astype(np.int32), np.round(rt).astype(np.int32)


# fmt: off
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

# fmt: on


def _blocks(kind: str, rng: np.random.Generator, start: dt.date) -> dict[str, list[str]]:
    """Path lists for every non-probe role of a site kind."""
    w = _WORDS

    def words(key: str, n: int) -> np.ndarray:
        return np.array(w[key])[rng.integers(0, len(w[key]), n)]

    b: dict[str, list[str]] = {}
    n_img = 3
    if kind == "shop":
        cats = [
            "shoes",
            "sneakers",
            "boots",
            "sandals",
            "jackets",
            "coats",
            "t-shirts",
            "shirts",
            "jeans",
            "trousers",
            "dresses",
            "skirts",
            "knitwear",
            "hoodies",
            "sportswear",
            "swimwear",
            "bags",
            "backpacks",
            "wallets",
            "belts",
            "hats",
            "scarves",
            "gloves",
            "socks",
            "watches",
            "sunglasses",
            "jewellery",
            "home",
            "kitchen",
            "gifts",
        ]
        n = 2400
        ids = 10_000 + np.arange(n) * 7 + rng.integers(0, 7, n)
        names = [f"{a}-{c}-{o}" for a, c, o in zip(words("adj", n), words("color", n), words("noun", n))]
        b["home"] = ["/"]
        b["listing"] = [f"/c/{c}" for c in cats]
        b["listing_page"] = [f"/c/{c}?page={p}" for c in cats for p in range(2, 9)] + [
            f"/c/{c}?sort={s}" for c in cats for s in ("price-asc", "price-desc", "newest")
        ]
        b["product"] = [f"/p/{nm}-{i}" for nm, i in zip(names, ids)]
        terms = sorted({f"{c}+{o}" for c, o in zip(words("color", 400), words("noun", 400))})
        b["search"] = [f"/search?q={t}" for t in terms] + [f"/search?q={t}&page=2" for t in terms[:40]]
        b["cart"], b["cart_add"] = ["/cart"], ["/cart/add"]
        b["checkout"], b["payment"], b["confirm"] = ["/checkout"], ["/checkout/payment"], ["/checkout/confirmation"]
        b["api_list"] = [f"/api/products?page={p}" for p in range(1, 151)]
        b["api_item"] = [f"/api/price/{i}" for i in ids]
        b["img_product"] = [f"/img/p/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)]
        b["img_banner"] = [
            f"/img/banners/{s}.jpg"
            for s in ("autumn-sale", "new-in", "free-delivery", "gift-guide", "outerwear", "members")
        ]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-categories.xml"] + [f"/sitemap-products-{k}.xml" for k in range(1, 6)]
        b["feed"] = ["/feed.xml"]
        b["account"] = ["/account", "/account/orders", "/account/wishlist", "/account/addresses"]
        gone = 90_000 + np.arange(200) * 3
        b["notfound"] = [f"/p/{nm}-{i}" for nm, i in zip(names[:200], gone)] + [
            "/promo/summer-2023",
            "/old-collection/",
            "/c/outlet-2022",
            "/blog/",
            "/index.php",
            "/shop/",
        ]
    elif kind == "media":
        sections = [
            "news",
            "politics",
            "business",
            "technology",
            "science",
            "health",
            "sport",
            "culture",
            "travel",
            "opinion",
            "world",
            "climate",
            "money",
            "style",
            "food",
            "books",
            "film",
            "music",
        ]
        n = 3000
        sec = np.array(sections)[rng.integers(0, len(sections), n)]
        ids = 250_000 + np.arange(n) * 11 + rng.integers(0, 11, n)
        days_back = rng.integers(0, 400, n)
        slugs = [
            f"{t}-{v}-{t2}-{k}"
            for t, v, t2, k in zip(words("topic", n), words("verb", n), words("topic", n), words("noun", n))
        ]
        when = [start - dt.timedelta(days=int(d)) for d in days_back]
        b["home"] = ["/"]
        b["listing"] = [f"/{s}/" for s in sections]
        b["listing_page"] = [f"/{s}/?page={p}" for s in sections for p in range(2, 11)]
        b["product"] = [f"/{s}/{d.year}/{d.month:02d}/{sl}-{i}" for s, d, sl, i in zip(sec, when, slugs, ids)]
        terms = sorted({f"{t}+{v}" for t, v in zip(words("topic", 300), words("verb", 300))})
        b["search"] = [f"/search?q={t}" for t in terms]
        b["cart"], b["cart_add"] = ["/subscribe"], ["/subscribe/plan"]
        b["checkout"], b["payment"] = ["/subscribe/checkout"], ["/subscribe/payment"]
        b["confirm"] = ["/subscribe/welcome"]
        b["api_list"] = [f"/api/articles?section={s}&page={p}" for s in sections for p in range(1, 6)]
        b["api_item"] = [f"/api/articles/{i}/comments" for i in ids]
        b["img_product"] = [
            f"/img/articles/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)
        ]
        b["img_banner"] = [f"/img/promo/{s}.jpg" for s in ("subscribe", "newsletter", "podcast", "app")]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-news.xml"] + [f"/sitemap-articles-{k}.xml" for k in range(1, 9)]
        b["feed"] = ["/feed.xml"] + [f"/rss/{s}.xml" for s in sections]
        b["account"] = ["/account", "/account/subscription", "/account/newsletters", "/account/saved"]
        b["notfound"] = [
            f"/{s}/2019/{m:02d}/{sl}" for s, m, sl in zip(sec[:200], rng.integers(1, 13, 200), slugs[:200])
        ] + ["/amp/", "/liveblog/", "/wp-json/", "/index.php"]
    elif kind == "travel":
        n_h, n_o = 1500, 700
        cities_h = words("city", n_h)
        ids = 40_000 + np.arange(n_h + n_o) * 5 + rng.integers(0, 5, n_h + n_o)
        hotels = [
            f"/hotels/{c}/{a}-{h}-hotel-{i}"
            for c, a, h, i in zip(cities_h, words("adj", n_h), words("hotel", n_h), ids[:n_h])
        ]
        offers = [
            f"/offers/{c}-{k}-nights-{i}" for c, k, i in zip(words("city", n_o), rng.integers(2, 15, n_o), ids[n_h:])
        ]
        b["home"] = ["/"]
        b["listing"] = [f"/destinations/{c}" for c in w["city"]] + ["/deals", "/last-minute", "/city-breaks"]
        b["listing_page"] = [f"/deals?page={p}" for p in range(2, 30)] + [
            f"/destinations/{c}?tab=hotels" for c in w["city"]
        ]
        b["product"] = hotels + offers
        dep = [start + dt.timedelta(days=int(x)) for x in rng.integers(3, 120, 400)]
        a1, a2 = rng.integers(0, len(w["airport"]), 400), rng.integers(0, len(w["airport"]), 400)
        a2 = np.where(a2 == a1, (a2 + 1) % len(w["airport"]), a2)
        ap = np.array(w["airport"])
        flights = [
            f"/flights/search?from={ap[x]}&to={ap[y]}&depart={d.isoformat()}&return="
            f"{(d + dt.timedelta(days=int(k))).isoformat()}&adults={ad}"
            for x, y, d, k, ad in zip(a1, a2, dep, rng.integers(2, 15, 400), rng.integers(1, 5, 400))
        ]
        stays = [
            f"/hotels/search?city={c}&checkin={d.isoformat()}&nights={k}&guests={g}"
            for c, d, k, g in zip(words("city", 300), dep[:300], rng.integers(1, 10, 300), rng.integers(1, 5, 300))
        ]
        b["search"] = flights + stays
        b["cart"], b["cart_add"] = ["/booking"], ["/booking/hold"]
        b["checkout"], b["payment"] = ["/booking/checkout"], ["/booking/payment"]
        b["confirm"] = ["/booking/confirmation"]
        b["api_list"] = [
            f"/api/fares?route={ap[x]}-{ap[y]}&month=2025-{m:02d}"
            for x, y, m in zip(a1[:200], a2[:200], rng.integers(10, 13, 200))
        ]
        b["api_item"] = [f"/api/availability/{i}" for i in ids]
        b["img_product"] = [
            f"/img/stays/{i}-{k}.{'webp' if k < 3 else 'jpg'}" for i in ids for k in range(1, n_img + 1)
        ]
        b["img_banner"] = [f"/img/hero/{c}.jpg" for c in w["city"][:8]]
        b["sitemap"] = ["/sitemap.xml", "/sitemap-destinations.xml"] + [f"/sitemap-hotels-{k}.xml" for k in range(1, 6)]
        b["feed"] = ["/deals/feed.xml"]
        b["account"] = ["/account", "/account/trips", "/account/travellers", "/account/payment-methods"]
        b["notfound"] = [
            f"/hotels/{c}/{h}-hotel-{i}"
            for c, h, i in zip(words("city", 200), words("hotel", 200), 90_000 + np.arange(200))
        ] + ["/summer-2023", "/cruises/", "/index.php"]
    else:
        raise ValueError(f"unknown site kind {kind!r}; choose one of {', '.join(SITE_KINDS)}")
    b["login_form"] = b["login_post"] = ["/login"]
    b["signup_form"] = b["signup_post"] = ["/signup"]
    b["robots"], b["health"], b["favicon"] = ["/robots.txt"], ["/health"], ["/favicon.ico"]
    b["css"] = ["/static/css/main.3f9a1c.css", "/static/css/vendor.8b2e4d.css"]
    b["js"] = ["/static/js/app.5c7d2e.js", "/static/js/vendor.1a9f3b.js", "/static/js/analytics.77c0e1.js"]
    b["beacon"] = ["/api/collect"]
    # What a site offers language models (llmstxt.org): an index, the whole text, and a Markdown
    # copy of each item's page beside it.
    b["llms"] = ["/llms.txt", "/llms-full.txt"]
    b["markdown"] = [p.split("?", 1)[0] + ".md" for p in b["product"]]
    return b


# External referrers: search engines, social networks, AI assistants.
REFERERS = (
    "https://www.google.com/",
    "https://www.google.co.uk/",
    "https://www.google.de/",
    "https://www.google.fr/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://search.yahoo.com/",
    "https://www.ecosia.org/",
    "https://l.facebook.com/",
    "https://www.instagram.com/",
    "https://t.co/",
    "https://www.reddit.com/",
    "https://www.pinterest.com/",
    "android-app://com.google.android.gm/",
    "https://news.google.com/",
    "https://chatgpt.com/",
    "https://www.perplexity.ai/",
    "https://claude.ai/",
    "https://gemini.google.com/",
    "https://copilot.microsoft.com/",
)
REF = {r: i for i, r in enumerate(REFERERS)}
