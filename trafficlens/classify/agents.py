"""Who a user agent says it is: the agent catalogue, generic fallbacks, and browser parsing.

Everything here runs once per distinct user agent (a log of millions of lines has thousands);
the labels are joined back onto clients and requests by the pipeline.

Matching: every catalogue pattern, wrapped in word boundaries, goes into one case-insensitive
alternation, longest first, that polars runs over all user agents in one pass (Rust's regex
engine: linear time, so a 10 kB user agent costs no more than its length). The few distinct
matched texts are then mapped back to their entries; where a user agent holds several, the
entry with the highest priority wins, then the longest match, then the first in the string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from trafficlens.errors import CatalogueError
from trafficlens.schema import ACTOR_CLASSES, PURPOSES, STR_LIST

# libyaml's safe loader when pyyaml has it: the catalogue loads several times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_UA_CHARS = 4096  # longer user agents are matched on their first 4 kB: bounded cost, same tokens
DEFAULT_PRIORITY = 50


@dataclass(frozen=True)
class Agent:
    """One known agent: how to recognise it, who runs it, what for, and how to check the claim."""

    name: str
    pattern: str | None
    operator: str
    actor_class: str
    purpose: str
    ai_driven: bool
    url: str
    robots: tuple[str, ...] = ()
    verify_ranges: tuple[str, ...] = ()
    verify_rdns: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    in_user_agent: bool = True
    signature_agent: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    file: str = ""

    @property
    def regex(self) -> str:
        """The pattern wrapped in word boundaries where it starts or ends with a word character."""
        assert self.pattern is not None
        p = self.pattern
        head = "" if p.startswith("^") or not re.match(r"[\w(\[\\]", p) else r"\b"
        tail = "" if p.endswith("$") or not re.search(r"[\w)\]]$", p) else r"\b"
        return f"{head}(?:{p}){tail}"


REQUIRED = ("name", "pattern", "operator", "actor_class", "purpose", "ai_driven", "url", "robots", "examples")
CLASSES_AUTOMATED = tuple(c for c in ACTOR_CLASSES if c != "human")
AGENT_PURPOSES = tuple(p for p in PURPOSES if p != "human")


def _entry(raw: object, file: str, index: int) -> Agent:
    where = f"{file} entry {index + 1}"
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: expected a mapping")
    name = raw.get("name")
    where = f"{file} entry {index + 1} ({name})"
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")
    if raw["actor_class"] not in CLASSES_AUTOMATED:
        raise CatalogueError(f"{where}: actor_class {raw['actor_class']!r} is not one of {CLASSES_AUTOMATED}")
    if raw["purpose"] not in AGENT_PURPOSES:
        raise CatalogueError(f"{where}: purpose {raw['purpose']!r} is not one of {AGENT_PURPOSES}")
    pattern = raw["pattern"]
    in_ua = bool(raw.get("in_user_agent", True))
    if pattern is not None:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise CatalogueError(f"{where}: pattern does not compile: {e}") from None
        if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
            raise CatalogueError(f"{where}: pattern uses look-around or back-references")
    elif in_ua and not raw.get("signature_agent"):
        raise CatalogueError(f"{where}: needs a pattern, a signature_agent, or in_user_agent: false")
    verify = raw.get("verify") or {}
    examples = tuple(raw.get("examples") or ())
    if in_ua and pattern is not None and not examples:
        raise CatalogueError(f"{where}: needs at least one example user agent")
    return Agent(
        name=str(name),
        pattern=pattern,
        operator=str(raw["operator"]),
        actor_class=raw["actor_class"],
        purpose=raw["purpose"],
        ai_driven=bool(raw["ai_driven"]),
        url=str(raw["url"]),
        robots=tuple(raw.get("robots") or ()),
        verify_ranges=tuple(verify.get("ranges") or ()),
        verify_rdns=tuple(verify.get("rdns") or ()),
        priority=int(raw.get("priority", DEFAULT_PRIORITY)),
        in_user_agent=in_ua,
        signature_agent=tuple(raw.get("signature_agent") or ()),
        examples=examples,
        file=file,
    )


@dataclass
class Catalogue:
    """The known agents, and the one regex that finds any of them in a user agent."""

    agents: tuple[Agent, ...]
    combined: str = ""
    _compiled: list[tuple[int, re.Pattern[str]]] = field(default_factory=list, repr=False)
    _frame: pl.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Robots-only tokens are matched too (at the lowest priority): one seen in a user agent is a
        # claim the operator never makes, worth a reason of its own.
        matchable = [(i, a) for i, a in enumerate(self.agents) if a.pattern is not None]
        # Longest first: at one position the alternation takes the first alternative that fits,
        # so "Googlebot-Image" is tried before "Googlebot".
        ordered = sorted(matchable, key=lambda ia: -len(ia[1].pattern or ""))
        self.combined = "(?i)(?:" + "|".join(a.regex for _, a in ordered) + ")"
        self._compiled = [(i, re.compile(a.regex, re.IGNORECASE)) for i, a in matchable]

    def owners(self, text: str) -> list[int]:
        """Entries whose pattern matches all of `text` (a piece the combined regex found)."""
        return [i for i, rx in self._compiled if rx.fullmatch(text)]

    def robots_only_entries(self) -> list[int]:
        return [i for i, a in enumerate(self.agents) if not a.in_user_agent]

    def by_signature_agent(self) -> dict[str, int]:
        return {host.lower(): i for i, a in enumerate(self.agents) for host in a.signature_agent}

    def frame(self) -> pl.DataFrame:
        """One row per entry: `entry` (its index) and its labels (built once: every bucket asks)."""
        if self._frame is None:
            self._frame = self._build_frame()
        return self._frame

    def _build_frame(self) -> pl.DataFrame:
        a = self.agents
        return pl.DataFrame(
            {
                "entry": list(range(len(a))),
                "agent": [x.name for x in a],
                "operator": [x.operator for x in a],
                "actor_class": [x.actor_class for x in a],
                "purpose": [x.purpose for x in a],
                "ai_driven": [x.ai_driven for x in a],
                "priority": [x.priority if x.in_user_agent else 0 for x in a],
                "verify_ranges": [list(x.verify_ranges) for x in a],
                "verify_rdns": [list(x.verify_rdns) for x in a],
            },
            schema={
                "entry": pl.Int32,
                "agent": pl.String,
                "operator": pl.String,
                "actor_class": pl.String,
                "purpose": pl.String,
                "ai_driven": pl.Boolean,
                "priority": pl.Int32,
                "verify_ranges": STR_LIST,
                "verify_rdns": STR_LIST,
            },
        )


def catalogue_files(folder: Path | None = None) -> list[Path]:
    if folder is not None:
        return sorted(folder.glob("*.yml"))
    root = resources.files("trafficlens") / "catalogues" / "agents"
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yml"))


def load_catalogue(folder: str | Path | None = None) -> Catalogue:
    """Every entry of every `*.yml` in `folder` (default: the catalogue shipped in the package)."""
    if folder is None:
        return _default_catalogue()
    return _load(catalogue_files(Path(folder)))


@lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return _load(catalogue_files())


def _load(files: list[Path]) -> Catalogue:
    agents: list[Agent] = []
    seen: dict[str, str] = {}
    for f in files:
        try:
            doc = yaml.load(f.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or []
        except yaml.YAMLError as e:
            raise CatalogueError(f"{f.name}: not valid YAML: {e}") from None
        if not isinstance(doc, list):
            raise CatalogueError(f"{f.name}: expected a list of entries")
        for i, raw in enumerate(doc):
            a = _entry(raw, f.name, i)
            if a.name.lower() in seen:
                raise CatalogueError(f"{f.name}: agent {a.name!r} is already defined in {seen[a.name.lower()]}")
            seen[a.name.lower()] = f.name
            agents.append(a)
    return Catalogue(tuple(agents))


# --- generic fallbacks: what no entry names ------------------------------------------------------

# Each rule: (reason id, regex over the user agent, actor_class, purpose). Tried in order on user
# agents that no entry matched; the first that fits decides.
GENERIC_RULES: tuple[tuple[str, str, str, str], ...] = (
    # Attack payloads where a user agent belongs (Log4Shell probes, PHP or template injection).
    (
        "ua:attack:injection",
        r"\$\{|<\?|<script|\{\{|(?i)\bunion\b.{1,40}\bselect\b|(?i)'\s*or\s*'?1|\.\./\.\./",
        "crawler",
        "security_scanner",
    ),
    # Feed readers report their subscriber counts ("Feedbin - 9 subscribers").
    ("ua:generic:feed_subscribers", r"(?i)\b[0-9]+ (?:subscribers?|readers?)\b", "scraper", "feed"),
    # Words that only self-declared automation puts in a user agent. "bot" must end a word
    # ("Googlebot", "my_bot") but not be a phone brand (Cubot) or a word like "Abbott".
    (
        "ua:generic:bot_word",
        r"(?i)(?:crawler|crawl\b|spider|scraper|scrapy|robot|harvest|indexer|archiver)"
        r"|(?:^|[^u\s])bot(?:[^a-z]|$)",
        "crawler",
        "unknown",
    ),
    (
        "ua:generic:scanner_word",
        r"(?i)(?:scanner|\bscan(?:ning)?\b|\baudit(?:or)?\b|inspector|\bresearch|\brecon\b|detector|"
        r"vulnerab|pentest|\bsecurity\b|fingerprint|\bsurvey\b|measurement)",
        "crawler",
        "security_scanner",
    ),
    (
        "ua:generic:fetcher_word",
        r"(?i)\b(?:\w*(?:fetcher|checker|monitor(?:ing)?|validator|preview|linkcheck|uptime|healthcheck|probe|"
        r"sniffer|downloader|proxy|lookup|finder|extractor|analy[sz]er|resolver|verification|verifier|"
        r"retriever|collector|diagnostics|observatory|reporting|tester|benchmark|screenshot|thumbnails?|"
        r"prerender|headless|leadgen|prospecting))\b",
        "scraper",
        "unknown",
    ),
    # A contact address is how well-behaved automation identifies itself; browsers never do.
    (
        "ua:generic:contact_url",
        r"(?i)\+?https?://|\bwww\.[a-z0-9-]+\.[a-z]{2,}|[a-z0-9._-]+@[a-z0-9-]+\.[a-z]{2,}|"
        r"[a-z0-9._-]+ ?[\[(]at[\])] ?[a-z0-9-]+",
        "crawler",
        "unknown",
    ),
    # A bare library-style token ("name/1.2.3" or "name 1.2") with nothing else.
    ("ua:generic:bare_product", r"^[A-Za-z][\w.+-]{0,40}(?:[/ ]v?[0-9][\w.+-]*)?$", "scraper", "tool"),
)
# Rules that need ua-parser's view: they fire only where it recognises no browser, OS or device.
UNPARSED_RULES: tuple[tuple[str, str, str, str], ...] = (
    # A site's own domain in the user agent ("kouio.com RSS reader"), not an app's product token
    # ("radio.de/1.1.19", which a version follows).
    (
        "ua:generic:domain",
        r"(?i)(?:^|[\s(;/])[a-z0-9-]{2,}(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ai|de|eu|me|ly|party|app|dev|co|fm|"
        r"info|biz|us|uk|fr|nl|ru|cn|jp|pl|cz|be|ch|se|no|fi|es|it|xyz|tech|cloud|site|online)(?:[\s);]|/[a-z]|$)",
        "crawler",
        "unknown",
    ),
    # "Mozilla/5.0 (compatible; Something/1.0)" without a browser behind it (MSIE and Konqueror
    # also say "compatible", and ua-parser knows them).
    ("ua:generic:compatible_token", r"(?i)\(compatible\b", "crawler", "unknown"),
    # No product token at all ("Hello World"): every browser and app sends one.
    ("ua:generic:no_product", r"^[^/]*$", "scraper", "unknown"),
)
ABSURD_RULES: tuple[tuple[str, str], ...] = (
    ("ua:absurd:no_letters", r"^[^A-Za-z]*$"),
    ("ua:absurd:too_short", r"^.{1,4}$"),
    ("ua:absurd:control_chars", r"[\x00-\x08\x0e-\x1f\x7f]"),
)
OS_WORDS = (
    r"(?i)windows|mac ?os|macintosh|linux|android|\bios\b|iphone|amiga|beos|syllable|haiku|os/2|sunos|"
    r"freebsd|openbsd|netbsd|x11|morphos|risc ?os|symbian|blackberry|palm|webos|tizen|kaios"
)
ABSURD_LENGTH = 1500  # real browsers stay well under 500 characters
# Rules whose verdict a recognised device overrides (a feature phone's user agent is bare).
DEVICE_OVERRIDES = ("ua:generic:bare_product", "ua:generic:no_product", "ua:generic:compatible_token")


def _generic(ua: pl.Expr, unparsed: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(reason, actor_class, purpose) of the first generic rule that fits, else nulls.

    `unparsed` is true where ua-parser recognised no browser, OS or device brand.
    """
    reason: pl.Expr = pl.lit(None, pl.String)
    klass: pl.Expr = pl.lit(None, pl.String)
    purpose: pl.Expr = pl.lit(None, pl.String)
    rules: list[tuple[pl.Expr, str, str, str]] = [
        (ua.is_null() | ua.str.strip_chars().is_in(["", "-"]), "ua:empty", "scraper", "unknown"),
        (ua.str.len_chars() > ABSURD_LENGTH, "ua:absurd:too_long", "scraper", "unknown"),
        *[(ua.str.contains(rx), rid, "scraper", "unknown") for rid, rx in ABSURD_RULES],
        *[(ua.str.contains(rx), rid, klass_, purp) for rid, rx, klass_, purp in GENERIC_RULES],
        *[(ua.str.contains(rx) & unparsed, rid, klass_, purp) for rid, rx, klass_, purp in UNPARSED_RULES],
    ]
    # Old and rare browsers say "compatible" too, with the system they run on; bots seldom do.
    names_os = ua.str.contains(OS_WORDS)
    # Built back to front so the first rule ends up outermost (first to decide).
    for cond, rid, k, p in reversed(rules):
        if rid in DEVICE_OVERRIDES:
            cond = cond & unparsed
        if rid == "ua:generic:compatible_token":
            cond = cond & ~names_os
        reason = pl.when(cond).then(pl.lit(rid)).otherwise(reason)
        klass = pl.when(cond).then(pl.lit(k)).otherwise(klass)
        purpose = pl.when(cond).then(pl.lit(p)).otherwise(purpose)
    return reason, klass, purpose


# --- browser, OS and device ---------------------------------------------------------------------

DEVICE_RULES = (
    ("console", r"(?i)playstation|xbox|nintendo"),
    ("tv", r"(?i)smart-?tv|hbbtv|appletv|googletv|crkey|tizen.*tv|web0s|roku|\baft[a-z]"),
    ("tablet", r"(?i)ipad|tablet|kindle|silk/|playbook|\bsm-t[0-9]|nexus (?:7|9|10)\b"),
    ("mobile", r"(?i)mobi|iphone|ipod|windows phone|blackberry|opera mini|symbian|kaios|nokia"),
)


def _device_class(ua: pl.Expr) -> pl.Expr:
    """desktop, mobile, tablet, tv or console, from the usual device words (first rule wins)."""
    # Android without "Mobile" is a tablet, by Google's own guidance to browser makers.
    out: pl.Expr = (
        pl.when(ua.is_null())
        .then(None)
        .when(ua.str.contains("(?i)android"))
        .then(pl.lit("tablet"))
        .otherwise(pl.lit("desktop"))
    )
    for name, rx in reversed(DEVICE_RULES):
        out = pl.when(ua.str.contains(rx)).then(pl.lit(name)).otherwise(out)
    return out


def parse_browsers(uas: pl.Series) -> pl.DataFrame:
    """`user_agent, browser, os, device_model, device_brand, parser_spider` from ua-parser, once
    per value.

    ua-parser uses its Rust engine when `ua-parser-rs` is installed (about 20x faster than its
    pure-Python regexes); inputs are cut to MAX_UA_CHARS first.
    """
    from ua_parser import parse

    values = uas.unique().drop_nulls().to_list()
    browser, os_, model, brand, spider = [], [], [], [], []
    for ua in values:  # once per distinct user agent, not per request
        r = parse(ua[:MAX_UA_CHARS])
        brand.append((r.device.brand or None) if r.device and r.device.family not in ("Spider", "Other") else None)
        b = r.user_agent.family if r.user_agent else None
        browser.append(None if b in (None, "Other") else b)
        o = r.os.family if r.os else None
        os_.append(None if o in (None, "Other") else o)
        d = r.device.family if r.device else None
        model.append(None if d in (None, "Other") else d)
        spider.append(d == "Spider")
    return pl.DataFrame(
        {
            "user_agent": values,
            "browser": browser,
            "os": os_,
            "device_model": model,
            "device_brand": brand,
            "parser_spider": spider,
        },
        schema={
            "user_agent": pl.String,
            "browser": pl.String,
            "os": pl.String,
            "device_model": pl.String,
            "device_brand": pl.String,
            "parser_spider": pl.Boolean,
        },
    )


# --- the one entry point ---------------------------------------------------------------------------

LABEL_COLUMNS = (
    "user_agent",
    "agent",
    "operator",
    "actor_class",
    "purpose",
    "ai_driven",
    "automated",
    "verify_ranges",
    "verify_rdns",
    "browser",
    "os",
    "device",
    "reasons",
)


def catalogue_matches(uas: pl.Series, catalogue: Catalogue) -> pl.DataFrame:
    """`user_agent, entry`: the winning catalogue entry of each distinct user agent that has one."""
    df = pl.DataFrame({"user_agent": uas}, schema={"user_agent": pl.String}).unique()
    found = (
        df.with_columns(_m=pl.col("user_agent").str.slice(0, MAX_UA_CHARS).str.extract_all(catalogue.combined))
        .explode("_m")
        .drop_nulls("_m")
        .with_columns(_pos=pl.int_range(pl.len()).over("user_agent"), _len=pl.col("_m").str.len_chars())
    )
    if found.height == 0:
        return pl.DataFrame(schema={"user_agent": pl.String, "entry": pl.Int32})
    # Few distinct matched texts (one per agent and version spelling): Python maps them back.
    texts = found["_m"].unique().to_list()
    rows = [(t, i) for t in texts for i in catalogue.owners(t)]
    owners = pl.DataFrame(rows, schema={"_m": pl.String, "entry": pl.Int32}, orient="row")
    prio = catalogue.frame().select("entry", "priority")
    return (
        found.join(owners, on="_m")
        .join(prio, on="entry")
        .sort(["user_agent", "priority", "_len", "_pos", "entry"], descending=[False, True, True, False, False])
        .group_by("user_agent", maintain_order=True)
        .agg(pl.col("entry").first())
    )


# Words that tie an automated client to an AI system when no entry names it: AI vendors and
# model names, an "-AI" product, a contact address on an .ai domain. Only applied to user agents
# already judged automated, so a browser never becomes AI-driven by a word.
AI_HINT = (
    r"(?i)\b(?:ai|llm|gpt|chatgpt|openai|anthropic|claude|gemini|bard|copilot|cohere|deepseek|mistral|"
    r"perplexity|huggingface|replicate|groq|chatglm|kimi|qwen|llama|xai|genai|rag)\b|[a-z0-9-]\.ai\b|"
    r"(?i)\w(?:ai|gpt|llm)(?:bot|crawler|spider|agent)\b"
)
# The host of a contact URL or e-mail address in a user agent.
CONTACT_HOST = r"(?i)(?:https?://|@|\bwww\.)((?:[a-z0-9-]+\.)+[a-z]{2,})"
SECOND_LEVEL = ("co", "com", "ac", "org", "net", "gov", "edu", "ne", "or")  # co.uk, com.au, ne.jp ...


def registrable_domain(host: pl.Expr) -> pl.Expr:
    """'docs.example.co.uk' -> 'example.co.uk', 'www.x.ai' -> 'x.ai' (a light public-suffix rule)."""
    labels = host.str.to_lowercase().str.strip_prefix("www.").str.split(".")
    n = labels.list.len()
    two = labels.list.slice(-2, 2).list.join(".")
    three = labels.list.slice(-3, 3).list.join(".")
    return (
        pl.when(n <= 2)
        .then(labels.list.join("."))
        .when(
            labels.list.get(-2, null_on_oob=True).is_in(list(SECOND_LEVEL)) & (labels.list.get(-1).str.len_chars() == 2)
        )
        .then(three)
        .otherwise(two)
    )


def operator_domains(catalogue: Catalogue) -> pl.DataFrame:
    """`domain, operator_known`: the registrable domains of the entries' documentation URLs,
    where one operator owns the domain (github.com and the like name many, so none)."""
    rows = []
    for a in catalogue.agents:
        m = re.match(r"https?://([^/:]+)", a.url)
        if m:
            rows.append((m.group(1), a.operator))
    df = pl.DataFrame(rows, schema={"host": pl.String, "operator_known": pl.String}, orient="row")
    return (
        df.with_columns(domain=registrable_domain(pl.col("host")))
        .group_by("domain")
        .agg(pl.col("operator_known").unique())
        .filter(pl.col("operator_known").list.len() == 1)
        .select("domain", pl.col("operator_known").list.first())
    )


def match_user_agents(uas: pl.Series, catalogue: Catalogue | None = None) -> pl.DataFrame:
    """Labels for each distinct user agent (LABEL_COLUMNS), with the reasons that decided them.

    - a catalogue entry: its labels, `ua:catalogue:NAME` (a robots.txt-only token seen in a user
      agent also says `ua:robots_token_in_user_agent`: the operator never sends it);
    - else a generic rule (empty, absurd, bot-like words, contact URL, bare library token):
      automated with purpose unknown or tool, `ua:empty`, `ua:generic:bot_word`, ...; an AI word
      makes it AI-driven (`ua:generic:ai_hint`), and a contact address names its operator
      (`ua:operator_from_contact:DOMAIN`);
    - else ua-parser's spider list: automated, `ua:parser:spider`;
    - else a browser or app: human, `ua:browser`.
    """
    cat = catalogue or load_catalogue()
    df = pl.DataFrame({"user_agent": uas}, schema={"user_agent": pl.String}).unique(maintain_order=True)
    hits = catalogue_matches(df["user_agent"], cat).join(cat.frame(), on="entry").drop("priority")
    df = df.join(hits, on="user_agent", how="left", nulls_equal=True)
    ua = pl.col("user_agent")
    named = pl.col("entry").is_not_null()
    # Browser, OS and device for what no entry names; a device brand marks a real device even
    # when its user agent is a bare token ("Nokia6230/2.0").
    parsed = parse_browsers(df.filter(~named)["user_agent"])
    df = df.join(parsed, on="user_agent", how="left", nulls_equal=True)
    unparsed = pl.col("browser").is_null() & pl.col("os").is_null() & pl.col("device_brand").is_null()
    g_reason, g_class, g_purpose = _generic(ua, unparsed)
    df = df.with_columns(_gr=pl.when(~named).then(g_reason), _gc=g_class, _gp=g_purpose)
    spider = pl.col("parser_spider").fill_null(False) & pl.col("_gr").is_null() & ~named
    generic = pl.col("_gr").is_not_null() | spider
    automated = named | generic
    # What a generic client says of itself: an AI word, a contact domain.
    contact = registrable_domain(ua.str.extract(CONTACT_HOST, 1))
    df = df.with_columns(_dom=pl.when(generic).then(contact), _ai=generic & ua.str.contains(AI_HINT))
    df = df.join(operator_domains(cat), left_on="_dom", right_on="domain", how="left")
    robots_only = cat.robots_only_entries()
    reason = pl.concat_list(
        pl.when(named)
        .then(pl.lit("ua:catalogue:") + pl.col("agent"))
        .when(pl.col("_gr").is_not_null())
        .then(pl.col("_gr"))
        .when(spider)
        .then(pl.lit("ua:parser:spider"))
        .otherwise(pl.lit("ua:browser")),
        pl.when(pl.col("entry").is_in(robots_only)).then(pl.lit("ua:robots_token_in_user_agent")),
        pl.when(pl.col("_ai")).then(pl.lit("ua:generic:ai_hint")),
        pl.when(pl.col("_dom").is_not_null()).then(pl.lit("ua:operator_from_contact:") + pl.col("_dom")),
    ).list.drop_nulls()
    return df.select(
        "user_agent",
        "agent",
        operator=pl.coalesce("operator", "operator_known", "_dom"),
        actor_class=pl.when(named)
        .then(pl.col("actor_class"))
        .when(pl.col("_gr").is_not_null())
        .then(pl.col("_gc"))
        .when(spider)
        .then(pl.lit("crawler"))
        .otherwise(pl.lit("human")),
        purpose=pl.when(named)
        .then(pl.col("purpose"))
        .when(pl.col("_gr").is_not_null())
        .then(pl.col("_gp"))
        .when(spider)
        .then(pl.lit("unknown"))
        .otherwise(pl.lit("human")),
        ai_driven=pl.col("ai_driven").fill_null(False) | pl.col("_ai"),
        automated=automated,
        verify_ranges=pl.col("verify_ranges").fill_null(pl.lit([], STR_LIST)),
        verify_rdns=pl.col("verify_rdns").fill_null(pl.lit([], STR_LIST)),
        browser=pl.when(automated).then(None).otherwise(pl.col("browser")),
        os=pl.when(automated).then(None).otherwise(pl.col("os")),
        device=pl.when(automated).then(None).otherwise(_device_class(ua)),
        reasons=reason,
    )
