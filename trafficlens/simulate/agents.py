"""Who the simulated clients say they are: browsers' user agents (current, stale, headless), and
the declared agents (AI crawlers and assistants, search engines, SEO bots, monitors, HTTP tools,
vulnerability scanners) with their labels and the user agents their operators document.

A new declared agent goes in `AGENTS` (and its addresses in `addresses.AGENT_PREFIXES`).
"""

from __future__ import annotations

from dataclasses import dataclass


def browser_uas() -> list[tuple[str, float]]:
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
    for os_, v, w in (
        ("18_6", "26.0", 10),
        ("18_6", "18.6", 8),
        ("18_5", "18.5", 3),
        ("18_3", "18.3", 1.2),
        ("17_6", "17.6", 1.5),
    ):
        out.append(
            (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
                w,
            )
        )
    for os_, v, w in (("18_6", "26.0", 1), ("18_6", "18.6", 1.2), ("17_7", "17.6", 0.4)):
        out.append(
            (
                f"Mozilla/5.0 (iPad; CPU OS {os_} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Version/{v} Mobile/15E148 Safari/604.1",
                w,
            )
        )
    for v, w in (("141.0.7390.96", 2), ("140.0.7339.122", 0.8)):
        out.append(
            (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"CriOS/{v} Mobile/15E148 Safari/604.1",
                w,
            )
        )
    out.append(
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "FxiOS/144.0 Mobile/15E148 Safari/605.1.15",
            0.3,
        )
    )
    out.append(
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 Instagram 401.0.0.48.79 (iPhone16,2; iOS 18_6; en_GB; en-GB; scale=3.00; 1290x2796; "
            "812390145)",
            1.2,
        )
    )
    for v, w in (("141", 14), ("140", 5), ("139", 2), ("138", 0.8)):
        out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/{v}.0.0.0 Mobile Safari/537.36", w))
    for sv, cv, w in (("28.0", "130", 3), ("27.0", "125", 1)):
        out.append(
            (
                f"Mozilla/5.0 (Linux; Android 10; K) {webkit} SamsungBrowser/{sv} Chrome/{cv}.0.0.0 "
                "Mobile Safari/537.36",
                w,
            )
        )
    out.append(
        (f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/141.0.0.0 Mobile Safari/537.36 EdgA/141.0.0.0", 0.4)
    )
    out.append(("Mozilla/5.0 (Android 15; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0", 0.4))
    out.append(
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Version/4.0 Chrome/141.0.7390.70 Mobile Safari/537.36 "
            "[FB_IAB/FB4A;FBAV/525.0.0.52.109;]",
            1.0,
        )
    )
    out.append((f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/141.0.0.0 Safari/537.36", 0.6))  # tablet
    return out


# Slightly stale desktop browsers: what scraping and attack kits ship with.
STALE_UAS = tuple(
    [
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
        for v in (114, 116, 119, 120, 122, 124, 126, 128, 131)
    ]
    + [
        f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
        "Safari/537.36"
        for v in (118, 125, 130)
    ]
    + [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
        "Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
        "Safari/537.36",
    ]
)
AGENT_BROWSER_UAS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
)
HEADLESS_UAS = {
    "HeadlessChrome": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/139.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 "
        "Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/141.0.0.0 "
        "Safari/537.36",
    ),
    "PhantomJS": (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    ),
    "": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
    ),
}


@dataclass(frozen=True)
class Agent:
    """A declared agent: its labels and the user agents it sends (as documented by its operator)."""

    name: str
    operator: str | None
    actor_class: str
    purpose: str
    ai_driven: bool
    uas: tuple[str, ...]


def _moz(token: str) -> str:
    return f"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; {token})"


AGENTS: dict[str, Agent] = {
    a.name: a
    for a in (
        # AI training and AI search crawlers
        Agent(
            "GPTBot",
            "OpenAI",
            "crawler",
            "ai_training",
            True,
            (_moz("GPTBot/1.2; +https://openai.com/gptbot"), _moz("GPTBot/1.1; +https://openai.com/gptbot")),
        ),
        Agent(
            "ClaudeBot", "Anthropic", "crawler", "ai_training", True, (_moz("ClaudeBot/1.0; +claudebot@anthropic.com"),)
        ),
        Agent("CCBot", "Common Crawl", "crawler", "ai_training", True, ("CCBot/2.0 (https://commoncrawl.org/faq/)",)),
        Agent(
            "Bytespider",
            "ByteDance",
            "crawler",
            "ai_training",
            True,
            (
                "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
                "(compatible; Bytespider; spider-feedback@bytedance.com)",
            ),
        ),
        Agent(
            "meta-externalagent",
            "Meta",
            "crawler",
            "ai_training",
            True,
            ("meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",),
        ),
        Agent(
            "Amazonbot",
            "Amazon",
            "crawler",
            "ai_training",
            True,
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/600.2.5 (KHTML, like Gecko) Version/8.0.2 "
                "Safari/600.2.5 (Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
            ),
        ),
        Agent(
            "OAI-SearchBot",
            "OpenAI",
            "crawler",
            "ai_search",
            True,
            (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.3; "
                "+https://openai.com/searchbot",
            ),
        ),
        Agent(
            "Claude-SearchBot",
            "Anthropic",
            "crawler",
            "ai_search",
            True,
            (_moz("Claude-SearchBot/1.0; +searchbot@anthropic.com"),),
        ),
        Agent(
            "PerplexityBot",
            "Perplexity",
            "crawler",
            "ai_search",
            True,
            (_moz("PerplexityBot/1.0; +https://perplexity.ai/perplexitybot"),),
        ),
        # AI assistants fetching for a user
        Agent(
            "ChatGPT-User",
            "OpenAI",
            "scraper",
            "ai_assistant",
            True,
            (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
                "+https://openai.com/bot",
            ),
        ),
        Agent(
            "Claude-User",
            "Anthropic",
            "scraper",
            "ai_assistant",
            True,
            (_moz("Claude-User/1.0; +Claude-User@anthropic.com"),),
        ),
        Agent(
            "Perplexity-User",
            "Perplexity",
            "scraper",
            "ai_assistant",
            True,
            (_moz("Perplexity-User/1.0; +https://perplexity.ai/perplexity-user"),),
        ),
        Agent(
            "MistralAI-User",
            "Mistral AI",
            "scraper",
            "ai_assistant",
            True,
            (_moz("MistralAI-User/1.0; +https://docs.mistral.ai/robots"),),
        ),
        # Search engines
        Agent(
            "Googlebot",
            "Google",
            "crawler",
            "search_engine",
            False,
            (
                "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/141.0.7390.122 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
                "+http://www.google.com/bot.html) Chrome/141.0.7390.122 Safari/537.36",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ),
        ),
        Agent(
            "bingbot",
            "Microsoft",
            "crawler",
            "search_engine",
            False,
            (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
                "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            ),
        ),
        Agent(
            "YandexBot",
            "Yandex",
            "crawler",
            "search_engine",
            False,
            ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",),
        ),
        Agent(
            "DuckDuckBot",
            "DuckDuckGo",
            "crawler",
            "search_engine",
            False,
            ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",),
        ),
        Agent(
            "Applebot",
            "Apple",
            "crawler",
            "search_engine",
            False,
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 "
                "Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            ),
        ),
        # SEO
        Agent(
            "AhrefsBot",
            "Ahrefs",
            "crawler",
            "seo",
            False,
            ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",),
        ),
        Agent(
            "SemrushBot",
            "Semrush",
            "crawler",
            "seo",
            False,
            ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",),
        ),
        Agent(
            "MJ12bot",
            "Majestic",
            "crawler",
            "seo",
            False,
            ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",),
        ),
        Agent(
            "DotBot",
            "Moz",
            "crawler",
            "seo",
            False,
            ("Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",),
        ),
        # Monitors
        Agent(
            "UptimeRobot",
            "UptimeRobot",
            "scraper",
            "monitoring",
            False,
            ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",),
        ),
        Agent(
            "Pingdom",
            "Pingdom (SolarWinds)",
            "scraper",
            "monitoring",
            False,
            ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",),
        ),
        # HTTP tools: the tool is known, who runs it is not.
        Agent("curl", None, "scraper", "tool", False, ("curl/8.5.0", "curl/7.88.1", "curl/8.11.1")),
        Agent("python-requests", None, "scraper", "tool", False, ("python-requests/2.32.3", "python-requests/2.31.0")),
        Agent("Go-http-client", None, "scraper", "tool", False, ("Go-http-client/1.1", "Go-http-client/2.0")),
        Agent("Wget", None, "scraper", "tool", False, ("Wget/1.21.4", "Wget/1.24.5")),
    )
}
# Vulnerability scanners, by tool.
SCANNER_UAS = {
    "sqlmap": ("sqlmap/1.9.8#stable (https://sqlmap.org)", "sqlmap/1.8.11#stable (https://sqlmap.org)"),
    "Nikto": (
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)",
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:007234)",
    ),
    "Nuclei": ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",),
    "zgrab": ("Mozilla/5.0 zgrab/0.x",),
}
