"""What every dashboard page shares: the lake, the sidebar filters, cached report sections, the
client drill-down, number formats and chart colours.

A page starts with `ctx = common.start_page("Title")`: that finds the lake (TRAFFICLENS_LAKE),
says how to fill it when it is missing or empty (and stops the page), draws the filters and
returns a `Context` whose `section("shares")` is `Report(...).shares()` for those filters.
Every figure on a page comes from `trafficlens.report` or `trafficlens.report.explore`.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import altair as alt
import polars as pl
import streamlit as st
from PIL import Image, ImageDraw

from trafficlens.errors import LakeError, OptionError
from trafficlens.report import Report, explore, layout
from trafficlens.report import colours as palette
from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PAGE_TYPES, PERIODS, THREATS
from trafficlens.store import DEFAULT_LAKE, URI, Lake

LAKE_ENV = "TRAFFICLENS_LAKE"
PRICING_ENV = "TRAFFICLENS_PRICING"  # the pay-per-crawl policy (trafficlens dashboard --pricing)

# One colour language with the HTML report, defined once in trafficlens.report.colours (Okabe–Ito
# for the classes; colour by meaning elsewhere), so a reader learns it once.
CLASS_COLORS = palette.CLASS_COLOURS
IDENTITY_COLORS = palette.IDENTITY_COLOURS
STATUS_COLORS = palette.STATUS_COLOURS
PAGE_TYPE_COLORS = palette.PAGE_TYPE_COLOURS
AI_CATEGORY_LABELS = {
    "training_crawlers": "Training crawlers",
    "search_crawlers": "AI search crawlers",
    "assistant_fetchers": "Assistant fetchers",
    "agents": "Agents",
    "other_ai": "Other AI",
}
AI_CATEGORY_COLORS = {AI_CATEGORY_LABELS[k]: v for k, v in palette.AI_KIND_COLOURS.items()}


# --- text from logs ----------------------------------------------------------------------------

# What Markdown, GitHub's extensions, Streamlit's directives (:red[…], :material/…:) and math ($)
# read in text: escaped, each is shown as it is. '.' stays (an address reads as one) but not in
# "www.", which would start a link.
_MARKDOWN_CHARS = re.compile(r"([\\`*_{}\[\]()<>#+\-!|~$:@&])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")


def md(value: object, code: bool = False) -> str:
    """Text that came from a log (an address, a user agent, a path, a host) or from a user, ready
    to go into Markdown (st.markdown, st.caption, st.info …) shown as it is: never an image, a
    link, HTML or formatting. Line breaks become spaces. `code` sets it in a code span, fenced
    with more backticks than it holds; otherwise every character Markdown reads is escaped."""
    text = _LINE_BREAKS.sub(" ", "–" if value is None else str(value))
    if code:
        fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
        return f"{fence} {text} {fence}" if text.strip() else "(empty)"
    text = _MARKDOWN_CHARS.sub(r"\\\1", text)
    return re.sub(r"(?i)\bwww\.", lambda m: m.group(0)[:-1] + "\\.", text)


# --- number formats -----------------------------------------------------------------------------


def fmt_count(n: float | int | None) -> str:
    """12,345 below 100,000; 123.4K, 1.2M, 3.4B above (a KPI must read at a glance)."""
    if n is None:
        return "–"
    n = float(n)
    if abs(n) < 100_000:
        return f"{n:,.0f}"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:,.1f}{suffix}"
    return f"{n:,.0f}"


def fmt_pct(x: float | None, signed: bool = False) -> str:
    """A share as 12.3% (0.04% as <0.1%, so a small share never reads as none)."""
    if x is None:
        return "–"
    sign = "+" if signed and x > 0 else ""
    if x != 0 and abs(x) < 0.001:
        return ("-" if x < 0 else sign) + "<0.1%"
    return f"{sign}{x * 100:.1f}%"


def fmt_bytes(n: float | int | None) -> str:
    """Bytes in decimal units, as the report writes them: 2.8 GB."""
    return "–" if n is None else layout.fmt_bytes(n)


def label(value: str | None) -> str:
    """A vocabulary id as a reader sees it: ai_training -> AI training."""
    if value is None:
        return "–"
    text = value.replace("_", " ")
    text = text[:1].upper() + text[1:]
    words = {
        "Ai": "AI",
        "ai": "AI",
        "Seo": "SEO",
        "seo": "SEO",
        "Ua": "UA",
        "ua": "UA",
        "Api": "API",
        "api": "API",
        "Dos": "DoS",
        "Xss": "XSS",
        "Sqli": "SQL injection",
    }
    return " ".join(words.get(w, w) for w in text.split(" "))


def period_label(col: pl.Expr, by: str) -> pl.Expr:
    """A period's start as a short axis label: 'Oct 06 14h', 'Oct 06', 'wk Oct 06', 'Oct 2025'."""
    fmt = {"hour": "%b %d %Hh", "day": "%b %d", "week": "wk %b %d", "month": "%b %Y"}[by]
    return col.dt.strftime(fmt)


def period_name(day: date, by: str) -> str:
    """A period as a reader names it: 'Oct 06 14:00', 'Oct 06', 'week of Oct 06', 'Oct 2025'."""
    names = {
        "hour": f"{day:%b %d %H:00}" if isinstance(day, datetime) else f"{day:%b %d}",
        "day": f"{day:%b %d}",
        "week": f"week of {day:%b %d}",
        "month": f"{day:%b %Y}",
    }
    return names[by]


def period_word(by: str, n: int = 1) -> str:
    """'hour', '3 days', '2 weeks'."""
    return by if n == 1 else f"{n} {by}s"


def too_short(ctx: Context, periods: int) -> str | None:
    """Why a chart over time would mislead with `periods` points, in words, or None when it would
    not. Never suggests a shorter period than the shortest."""
    by = ctx.filters.by
    if by == "hour" and periods > MAX_HOURS:
        return (
            f"{ctx.days} days are too many hours for one chart: choose Day as the trend period, "
            f"or at most {MAX_HOURS // 24} days."
        )
    if periods >= 2:
        return None
    shorter = DASHBOARD_PERIODS[: DASHBOARD_PERIODS.index(by)]
    span = f"The {period_word('day', ctx.days) if ctx.days > 1 else 'one day'} shown fall{'s' if ctx.days == 1 else ''}"
    hint = f": choose {label(shorter[-1])} as the trend period" if shorter else ""
    return f"{span} in one {by}, so there is no change over time to draw{hint}."


# --- the lake and the filters -----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices, as `Report` takes them (None and () mean "all")."""

    since: date | None
    until: date | None
    sites: tuple[str, ...]
    classes: tuple[str, ...]
    by: str


@dataclass
class _Shared:
    report: Report
    lock: threading.Lock  # one DuckDB connection per Report: sessions take turns on it


# A Report holds its lake's summary tables in memory (some hundred MB on a 10M-request lake): a
# few filter choices are kept; an evicted one is freed when no session still reads it.
@st.cache_resource(max_entries=3, show_spinner=False)
def _open_report(lake: str, stamp: str, filters: Filters) -> _Shared:
    # `stamp` is not read: it is in the key, so a re-classified lake gets a new Report.
    return _Shared(
        Report(
            lake,
            since=filters.since,
            until=filters.until,
            sites=list(filters.sites) or None,
            classes=list(filters.classes) or None,
            by=report_period(filters.by),
            pricing=os.environ.get(PRICING_ENV) or None,
        ),
        threading.Lock(),
    )


@st.cache_data(max_entries=512, show_spinner=False)
def _section(lake: str, stamp: str, filters: Filters, name: str) -> Any:
    shared = _open_report(lake, stamp, filters)
    with shared.lock:
        return getattr(shared.report, name)()


@st.cache_data(max_entries=512, show_spinner=False)
def _explore(lake: str, stamp: str, function: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    return getattr(explore, function)(lake, *args, **dict(kwargs))


@st.cache_data(max_entries=16, show_spinner=False)
def _bounds(lake: str, stamp: str) -> explore.LakeBounds:
    return explore.lake_bounds(lake)


@st.cache_data(max_entries=16, show_spinner=False)
def _identity_checks(lake: str, stamp: str) -> explore.IdentityChecks:
    return explore.identity_checks(lake)


# The trend periods the sidebar offers: the report's, and hours (summed here from the requests,
# for a day or a weekend, where days would draw one or two bars).
DASHBOARD_PERIODS = ("hour", *PERIODS)


def report_period(by: str) -> str:
    """The report's period for the sidebar's choice: days under the hours."""
    return "day" if by == "hour" else by


@dataclass(frozen=True)
class Context:
    """The page's lake and filters; `section` and `explore` are the cached library calls."""

    lake: str
    stamp: str
    filters: Filters
    bounds: explore.LakeBounds

    def section(self, name: str) -> Any:
        try:
            with st.spinner("Reading the lake…", show_time=True):
                return _section(self.lake, self.stamp, self.filters, name)
        except (LakeError, OptionError) as e:
            st.error(md(e))
            st.stop()

    @property
    def first(self) -> date:
        """The first day shown (the lake's when no day is chosen)."""
        day = self.filters.since or self.bounds.first
        assert day is not None  # start_page stops a page on a lake without requests
        return day

    @property
    def last(self) -> date:
        day = self.filters.until or self.bounds.last
        assert day is not None
        return day

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Context | None:
        """The same filters over the days just before, as many as are shown: what the first
        screen's deltas compare with. None when the lake does not hold all of those days."""
        first = self.bounds.first
        assert first is not None
        since = self.first - timedelta(days=self.days)
        if since < first:
            return None
        prior = replace(self.filters, since=None if since == first else since, until=self.first - timedelta(days=1))
        return replace(self, filters=prior)

    def trends(self) -> dict[str, pl.DataFrame]:
        """`Report.trends()` per the sidebar's period; per hour, from the requests (explore)."""
        if self.filters.by != "hour":
            trends: dict[str, pl.DataFrame] = self.section("trends")
            return trends
        hourly: dict[str, pl.DataFrame] = self.explore(
            "hourly_trends",
            since=self.filters.since,
            until=self.filters.until,
            sites=self.filters.sites,
            classes=self.filters.classes,
        )
        return hourly

    def explore(self, function: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return _explore(self.lake, self.stamp, function, args, tuple(sorted(kwargs.items())))
        except (LakeError, OptionError) as e:
            st.error(md(e))
            st.stop()


@st.cache_resource(show_spinner=False)
def page_icon() -> Image.Image:
    """The tab's icon, drawn here: a ":material/…:" icon as page icon is fetched from Google's font
    server, and the dashboard fetches nothing from the internet. Three dots in the class colours."""
    size = 64
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((14, 0, 50, 63), radius=12, fill=palette.INK)
    for i, cls in enumerate(("human", "crawler", "agent")):
        y = 4 + i * 19
        draw.ellipse((21, y, 43, y + 17), fill=palette.CLASS_COLOURS[cls])
    return img


def lake_path() -> str:
    """The lake this dashboard reads: $TRAFFICLENS_LAKE, else ./trafficlens-lake (as the CLI); a
    folder, or a URI (a lake on object storage)."""
    lake = os.environ.get(LAKE_ENV) or DEFAULT_LAKE
    return lake if URI.match(lake) else str(Path(lake).expanduser().resolve())


def _fill_hint(lake: str) -> str:
    return (
        f"Fill it with {md(f'trafficlens analyze LOG... --lake {lake}', code=True)} (or try the sample week: "
        f"`make demo`), then reload this page."
    )


def start_page(title: str, caption: str | None = None, *, filters: bool = True) -> Context:
    """Set the page up; stop it with a clear message when there is nothing to show."""
    st.set_page_config(page_title=f"{title} · trafficlens", page_icon=page_icon(), layout="wide")
    st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button: this is a local tool
    st.title(title)
    if caption:
        st.caption(caption)
    lake = lake_path()
    if not URI.match(lake) and not Path(lake).is_dir():
        st.info(
            f"**No lake at {md(lake, code=True)} yet.** {_fill_hint(lake)}\n\n"
            f"Another lake: `trafficlens dashboard --lake DIR`, or set `{LAKE_ENV}`.",
            icon=INFO,
        )
        st.stop()
    try:
        Lake(lake)
        stamp = explore.lake_stamp(lake)
        bounds = _bounds(lake, stamp)
    except LakeError:
        st.info(f"**{md(lake, code=True)} is not a trafficlens lake.** {_fill_hint(lake)}", icon=INFO)
        st.stop()
    if not bounds.requests:
        st.info(
            f"**The lake at {md(lake, code=True)} has no classified requests yet.** {_fill_hint(lake)}\n\n"
            f"Logs already ingested? {md(f'trafficlens classify --lake {lake}', code=True)} labels them.",
            icon=INFO,
        )
        st.stop()
    _ranges_banner(lake, stamp)
    chosen = _sidebar(lake, bounds) if filters else Filters(None, None, (), (), "day")
    return Context(lake, stamp, chosen, bounds)


def _ranges_banner(lake: str, stamp: str) -> None:
    """Say on every page when classify loaded no published ranges: every claimed crawler is then
    "declared", none verified or spoofed, and nothing else on the page would tell."""
    checks = _identity_checks(lake, stamp)
    if not checks.ranges_missing:
        return
    st.warning(
        f"**Identity checks were off.** The last classify loaded no published IP ranges, so "
        f"{checks.unchecked_clients:,} clients that claim a known crawler or fetcher (Googlebot, GPTBot, …) "
        "are *declared*: neither verified nor spoofed. Download the ranges and label the lake again: "
        f"{md('trafficlens ranges update', code=True)} then "
        f"{md(f'trafficlens classify --lake {lake}', code=True)} (offline: `--ranges DIR`).",
        icon=":material/gpp_maybe:",
    )


def _keep(key: str) -> None:
    st.session_state[f"{key}_kept"] = st.session_state[key]


def _remembered(key: str, default: Any, valid: Any = None) -> dict[str, Any]:
    """Widget arguments that give the widget `key` the value last chosen on any page.

    Streamlit forgets a widget's value when a page that does not draw it runs, so the choice is
    kept under another key, copied back before the widget is drawn, and updated on change.
    """
    kept = st.session_state.get(f"{key}_kept", default)
    if valid is not None and not valid(kept):
        kept = default
    st.session_state[f"{key}_kept"] = kept
    st.session_state[key] = kept
    return {"key": key, "on_change": _keep, "args": (key,)}


# The filters' names in the page's address, so that a view can be shared or bookmarked:
# ?since=2025-10-06&until=2025-10-07&site=a&site=b&class=agent&by=hour
URL_KEYS = ("since", "until", "site", "class", "by")


def _url_filters(bounds: explore.LakeBounds) -> None:
    """Copy the filters in the address into the widgets' kept values, once per session (the
    address a reader opened); values the lake does not hold are left out, never an error."""
    if st.session_state.get("tl_url_read"):
        return
    st.session_state["tl_url_read"] = True
    q = st.query_params
    first, last = bounds.first, bounds.last
    assert first is not None and last is not None

    def day(key: str) -> date | None:
        try:
            value = date.fromisoformat(q.get(key) or "")
        except ValueError:
            return None
        return value if first <= value <= last else None

    since, until = day("since"), day("until")
    if since or until:
        lo, hi = since or first, until or last
        st.session_state["tl_days_kept"] = (min(lo, hi), max(lo, hi))
    sites = [v for v in q.get_all("site") if v in bounds.sites]
    if sites:
        st.session_state["tl_sites_kept"] = sites
    classes = [v for v in q.get_all("class") if v in ACTOR_CLASSES]
    if classes:
        st.session_state["tl_classes_kept"] = classes
    if q.get("by") in DASHBOARD_PERIODS:
        st.session_state["tl_by_kept"] = q.get("by")


def _write_url(f: Filters) -> None:
    """The chosen filters into the address (only those that differ from "everything, by day")."""
    want: dict[str, str | list[str]] = {}
    if f.since:
        want["since"] = f.since.isoformat()
    if f.until:
        want["until"] = f.until.isoformat()
    if f.sites:
        want["site"] = list(f.sites)
    if f.classes:
        want["class"] = list(f.classes)
    if f.by != "day":
        want["by"] = f.by
    q = st.query_params
    for key in URL_KEYS:
        have: str | list[str] | None = q.get_all(key) if key in ("site", "class") else q.get(key)
        if key not in want:
            if key in q:
                del q[key]
        elif have != want[key]:
            q[key] = want[key]


def _sidebar(lake: str, bounds: explore.LakeBounds) -> Filters:
    """Days, sites, classes and the trend period, the same on every page until changed, and
    in the page's address."""
    sb = st.sidebar
    first, last = bounds.first, bounds.last
    assert first is not None and last is not None
    _url_filters(bounds)
    # A lake re-read with other days: a remembered range outside it would be refused.
    in_lake = lambda days: all(first <= d <= last for d in days)  # noqa: E731
    picked = sb.date_input(
        "Days (UTC)",
        min_value=first,
        max_value=last,
        help="Both days included. The first screen compares them with as many days just before.",
        **_remembered("tl_days", (first, last), in_lake),
    )
    picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,) if picked else ()
    since = picked[0] if picked else first
    until = picked[1] if len(picked) > 1 else last  # while the second day is being picked
    sites: tuple[str, ...] = ()
    if len(bounds.sites) > 1:
        sites = tuple(
            sb.multiselect(
                "Sites",
                bounds.sites,
                placeholder="All sites",
                **_remembered("tl_sites", [], lambda v: set(v) <= set(bounds.sites)),
            )
        )
    classes = sb.multiselect(
        "Classes", ACTOR_CLASSES, format_func=label, placeholder="All classes", **_remembered("tl_classes", [])
    )
    # A list rather than buttons: four buttons do not fit the sidebar on one line.
    by = sb.selectbox(
        "Trend period",
        DASHBOARD_PERIODS,
        format_func=label,
        help="The step of the charts over time. Hours are for a few days: a chart holds at most "
        f"{MAX_HOURS // 24} days of them.",
        **_remembered("tl_by", "day", lambda v: v in DASHBOARD_PERIODS),
    )
    sb.divider()
    sb.caption(f"Lake: {md(lake, code=True)}")
    chosen = Filters(
        since=None if since <= first else since,  # the whole lake: the same cache entry as no filter
        until=None if until >= last else until,
        sites=tuple(sorted(sites)),
        classes=tuple(c for c in ACTOR_CLASSES if c in classes and len(classes) < len(ACTOR_CLASSES)),
        by=by,
    )
    _write_url(chosen)
    return chosen


# Hourly charts beyond this many hours turn into a comb: past it, the charts say so instead.
MAX_HOURS = 14 * 24


def describe_period(ctx: Context) -> str:
    """'7 days, 2025-10-06 to 2025-10-12 (UTC) · 54,780 requests · all classes'."""
    period = ctx.section("period")
    totals = ctx.section("totals")
    first = ctx.filters.since or ctx.bounds.first
    last = ctx.filters.until or ctx.bounds.last
    days = (last - first).days + 1 if first and last else period["days"]
    classes = ", ".join(label(c) for c in ctx.filters.classes) or "all classes"
    sites = md(", ".join(period["sites"])) if period["sites"] else "no site"
    return (
        f"{days} day{'s' if days != 1 else ''}, {first} to {last} (UTC) · "
        f"{totals['requests']:,} requests · {classes} · site {sites}"
    )


def require_requests(ctx: Context) -> dict[str, Any]:
    """The totals; stops the page with a hint when the filters leave nothing."""
    totals = ctx.section("totals")
    if not totals["requests"]:
        st.info("No requests match these filters: widen the days or the classes in the sidebar.", icon=INFO)
        st.stop()
    return totals


# --- charts and tables ----------------------------------------------------------------------

INFO = ":material/info:"
OK = ":material/check_circle:"


def period_x(by: str, periods: list[date], field: str = "period") -> alt.X:
    """A time axis with one tick per period, in UTC as the lake counts days, whatever the browser's zone."""
    if by == "hour":
        # Hours: Vega-Lite picks the ticks (every few hours), labelled with the day at midnight.
        return alt.X(
            f"{field}:T",
            timeUnit="utcyearmonthdatehours",
            title=None,
            axis=alt.Axis(
                labelAngle=0,
                labelOverlap=True,
                format="%H:%M",
                labelExpr="utchours(datum.value) == 0 ? utcFormat(datum.value, '%b %d') : utcFormat(datum.value, '%H:%M')",
            ),
        )
    fmt = "%b %Y" if by == "month" else "%b %d"
    ticks = [alt.DateTime(year=d.year, month=d.month, date=d.day, utc=True) for d in periods]
    return alt.X(
        f"{field}:T",
        timeUnit=_utc_unit(by),
        title=None,
        axis=alt.Axis(format=fmt, values=ticks, labelAngle=0, labelOverlap=True),
    )


def _utc_unit(by: str) -> Literal["utcyearmonth", "utcyearmonthdate", "utcyearmonthdatehours"]:
    if by == "hour":
        return "utcyearmonthdatehours"
    return "utcyearmonth" if by == "month" else "utcyearmonthdate"


def period_tooltip(by: str, field: str = "period") -> alt.Tooltip:
    fmt = {"month": "%b %Y", "week": "week of %b %d, %Y", "day": "%b %d, %Y", "hour": "%b %d, %Y %H:00 UTC"}[by]
    return alt.Tooltip(f"{field}:T", timeUnit=_utc_unit(by), title=by.capitalize(), format=fmt)


def y_names(field: str, order: list[str] | str | None = None, title: str | None = None) -> alt.Y:
    """The category axis of a horizontal bar chart: every label shown, none cut short."""
    return alt.Y(f"{field}:N", title=title, sort=order, axis=alt.Axis(labelOverlap=False, labelLimit=220))


def bars_height(n: int, legend: bool = False) -> int:
    """Height of a horizontal bar chart with n bars, so that every bar keeps its label."""
    # The height Streamlit gives a chart holds its axes and legend too, not only the bars.
    return 34 * max(n, 1) + (110 if legend else 70)


def color_scale(colors: dict[str, str], labels: bool = False) -> alt.Scale:
    domain = [label(k) for k in colors] if labels else list(colors)
    return alt.Scale(domain=domain, range=list(colors.values()))


def chart(c: alt.Chart | alt.LayerChart, height: int = 300) -> None:
    st.altair_chart(c.properties(height=height), width="stretch")


def empty(message: str) -> None:
    st.caption(f"_{message}_")


def pct_column(title: str, help: str | None = None, bar: bool = True, color: str = palette.NEUTRAL) -> Any:
    """A share (0..1) as 12.3%, with a bar when comparing rows is the point (in `color` when the
    share has a meaning: palette.BAD for a spoofed share)."""
    if not bar:
        return st.column_config.NumberColumn(title, help=help, format="percent")
    return st.column_config.ProgressColumn(
        title, help=help, format="percent", min_value=0.0, max_value=1.0, color=color, width="small"
    )


def count_column(title: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(title, help=help, format="localized")


def bytes_column(title: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(title, help=help, format="bytes")


def time_column(title: str) -> Any:
    return st.column_config.DatetimeColumn(title, format="YYYY-MM-DD HH:mm:ss", timezone="UTC")


def table(df: pl.DataFrame, config: dict[str, Any], height: int | str = "auto", **kwargs: Any) -> Any:
    """A frame shown with only the configured columns, in that order, under readable titles; as
    tall as its rows, up to a dozen whole rows (Streamlit's own "auto" stops mid-row)."""
    cols = [c for c in config if c in df.columns]
    if height == "auto":
        height = rows_height(df.height)
    return st.dataframe(
        df.select(cols),
        column_config=config,
        column_order=cols,
        hide_index=True,
        height=height,  # type: ignore[arg-type]
        placeholder="–",
        **kwargs,
    )


def rows_height(n: int, cap: int = 460) -> int:
    """A table's height that fits n rows, or as many whole rows as fit in `cap` pixels (then it
    scrolls): a row cut in half reads as the end of the table."""
    rows = min(max(n, 1), max((cap - TABLE_CHROME) // ROW_PX - 1, 1))
    return TABLE_CHROME + ROW_PX * (rows + 1)  # + the header row


# Streamlit's data grid: 35 pixels a row (the header too), and a border.
ROW_PX = 35
TABLE_CHROME = 3


# --- clients, as a list to pick from ---------------------------------------------------------


def identity_text(col: str = "identity") -> pl.Expr:
    """An identity with its mark, so that it reads without its colour: '✓ Verified', '✗ Spoofed'."""
    return pl.col(col).replace_strict(
        {k: f"{m} {label(k)}".strip() for k, m in palette.IDENTITY_MARKS.items()} | {"none": "No claim"},
        default=pl.col(col),
    )


def clients_table(ctx: Context, hits: pl.DataFrame, key: str, height: int | None = None) -> str | None:
    """Clients (rows of `explore.search_clients`) as a table; the client picked in it, with its
    details below, or None."""
    if not hits.height:
        empty("No client in this selection.")
        return None
    view = hits.with_columns(
        pl.col("actor_class").replace_strict({c: label(c) for c in ACTOR_CLASSES}, default=None).alias("class_label"),
        identity_text().alias("identity_label"),
        pl.col("threats").list.eval(pl.element().str.replace_all("_", " ")).alias("threat_list"),
    )
    picked = table(
        view,
        CLIENT_COLUMNS,
        height=height or rows_height(view.height, 380),
        on_select="rerun",
        selection_mode="single-row",
        key=key,
    )
    rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
    if not rows:
        st.caption("Select a row for that client's labels, reasons and requests.")
        return None
    client_id: str = view["client_id"][rows[0]]
    with st.container(border=True):
        client_detail(ctx, client_id)
    return client_id


# Wide enough for a whole IPv6 address (39 characters), which "medium" cuts.
ADDRESS_WIDTH = 290

# The client list's columns, widths chosen so that an address and a class are never cut.
CLIENT_COLUMNS: dict[str, Any] = {
    "client_ip": st.column_config.TextColumn("Address", width=ADDRESS_WIDTH),
    "class_label": st.column_config.TextColumn("Class", width="small"),
    "agent": st.column_config.TextColumn("Agent", width="medium"),
    "operator": st.column_config.TextColumn("Operator", width="medium"),
    "identity_label": st.column_config.TextColumn("Identity", width="medium"),
    "ai_driven": st.column_config.CheckboxColumn("AI", width="small"),
    "malicious": st.column_config.CheckboxColumn("Malicious", width="small"),
    "threat_list": st.column_config.ListColumn("Threats", width="medium"),
    "requests": st.column_config.NumberColumn("Requests", format="localized", width="small"),
    "sessions": st.column_config.NumberColumn("Sessions", format="localized", width="small"),
    "user_agent": st.column_config.TextColumn("User agent", width="large"),
    "first_seen": st.column_config.DatetimeColumn("First seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "last_seen": st.column_config.DatetimeColumn("Last seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "site": st.column_config.TextColumn("Site", width="small"),
}


def selected(state: Any, param: str) -> dict[str, Any] | None:
    """The first point picked in a chart's selection parameter `param` (what `st.altair_chart`
    returns with on_select="rerun"), or None when nothing is picked."""
    points = ((state or {}).get("selection") or {}).get(param) or []
    return points[0] if points and isinstance(points[0], dict) else None


def parse_period(value: object) -> datetime | None:
    """A period from a chart's selection (Vega-Lite sends times as epoch milliseconds or text)."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def period_days(start: datetime | date, by: str) -> tuple[date, date]:
    """The first and last day of the period that starts at `start`."""
    day = start.date() if isinstance(start, datetime) else start
    if by == "week":
        return day, day + timedelta(days=6)
    if by == "month":
        nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        return day, nxt - timedelta(days=1)
    return day, day


# --- behaviour features, as a reader reads them -------------------------------------------

# What each feature the model reads means, and how its stored value reads: `count`, `seconds` and
# `bytes` are stored as log(1 + x) (the model's scale) and shown as x; `share` is 0..1; -1 (or -2
# for burstiness) means "not measurable" (one request has no gap).
FEATURE_MEANINGS: dict[str, tuple[str, str]] = {
    "automation_score": ("Automation score (0 to 1: sure automation)", "score"),
    "log_requests": ("Requests", "count"),
    "log_sessions": ("Sessions (30-minute gaps)", "count"),
    "requests_per_session": ("Requests per session", "number"),
    "log_span_s": ("Time from first to last request", "seconds"),
    "rate_per_min": ("Requests per minute, over that time", "number"),
    "max_per_min": ("Most requests in one minute", "number"),
    "gap_mean_log": ("Mean gap between requests in a session", "seconds"),
    "gap_median_log": ("Median gap between requests in a session", "seconds"),
    "gap_cv": ("Spread of those gaps (machines ≈ 0)", "number"),
    "burstiness": ("Burstiness (−1 clockwork, 0 random, 1 bursts)", "signed"),
    "gap_min_log": ("Shortest gap between requests", "seconds"),
    "gap_all_median_log": ("Median gap, across sessions too", "seconds"),
    "gap_all_cv": ("Spread of gaps across sessions", "number"),
    "html_share": ("Page views among requests", "share"),
    "asset_per_page": ("Assets (CSS, JS, images) per page view", "number"),
    "favicon": ("Fetched the favicon", "flag"),
    "referer_share": ("Requests with a referrer", "share"),
    "internal_referer_share": ("Referrers from the site itself", "share"),
    "robots": ("Fetched robots.txt", "flag"),
    "sitemap": ("Fetched a sitemap", "flag"),
    "status_3xx": ("Redirects (3xx)", "share"),
    "status_4xx": ("Client errors (4xx)", "share"),
    "status_5xx": ("Server errors (5xx)", "share"),
    "post_share": ("POST requests", "share"),
    "head_share": ("HEAD requests", "share"),
    "bad_request_share": ("Malformed request lines", "share"),
    "distinct_path_ratio": ("Distinct paths per request (1: never the same page twice)", "share"),
    "depth_mean": ("Mean path depth (slashes)", "number"),
    "query_share": ("Requests with a query string", "share"),
    "night_share": ("Requests from 00:00 to 06:00 UTC", "share"),
    "bytes_log": ("Mean response size", "bytes"),
    "ip_user_agents_log": ("User agents from this address", "count"),
    "net_clients_log": ("Clients in its network (/24 or /48)", "count"),
    "net_same_ua_log": ("Addresses in its network with its user agent", "count"),
    "page_gap_median_log": ("Median time between page views", "seconds"),
    "page_gap_cv": ("Spread of time between page views", "number"),
    "page_gap_max_log": ("Longest time between page views", "seconds"),
    "self_referral_share": ("Page views referred by the same page", "share"),
    "log_pages": ("Page views", "count"),
    "return_share": ("Steps back to a page seen before", "share"),
    **{f"mix_{t}": (f"{label(t)} pages among requests", "share") for t in PAGE_TYPES},
}


def _fmt_feature(value: float | None, kind: str) -> str:
    if value is None or (kind in ("seconds", "count", "bytes", "number") and value < 0) or value <= -2:
        return "–"  # not measurable for this client (one request has no gap)
    plain = math.expm1(value) if kind in ("seconds", "count", "bytes") else value
    if kind == "seconds":
        return _fmt_seconds(plain)
    if kind == "count":
        return f"{round(plain):,}"
    if kind == "bytes":
        return fmt_bytes(plain)
    if kind == "share":
        return "–" if value < 0 else fmt_pct(plain)
    if kind == "flag":
        return "yes" if value > 0 else "no"
    if kind == "signed":
        return f"{plain:+.2f}"
    return f"{plain:,.0f}" if plain == round(plain) else f"{plain:,.2f}"


def _fmt_seconds(s: float) -> str:
    """0.4 s, 13 s, 2 min 5 s, 3 h 20 min, 2.5 days."""
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 2 * 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{s / 86400:.1f} days"


def feature_table(features: dict[str, float]) -> pl.DataFrame:
    """A client's behaviour features as a reader reads them: what each means and its value in
    units (13 s, 42%, 1.2 MB), with the model's raw value beside it for the curious."""
    rows = [(name, *FEATURE_MEANINGS.get(name, (name.replace("_", " "), "number"))) for name in features]
    return pl.DataFrame(
        {
            "meaning": [meaning for _, meaning, _ in rows],
            "value": [_fmt_feature(features[name], kind) for name, _, kind in rows],
            "feature": [name for name, _, _ in rows],
            "raw": [features[name] for name, _, _ in rows],
        },
        schema={"meaning": pl.String, "value": pl.String, "feature": pl.String, "raw": pl.Float64},
    )


# --- one client ---------------------------------------------------------------------------


def client_detail(ctx: Context, client_id: str) -> None:
    """One client's labels, reasons, features, sessions and raw requests (explorer and security pages)."""
    profile: explore.ClientProfile | None = ctx.explore("client_profile", client_id)
    if profile is None:
        st.info(f"No client {md(client_id, code=True)} in this lake (it may have been re-classified).", icon=INFO)
        return
    ident, lab = profile.identity, profile.labels
    # A false claim is not the agent: "claims Googlebot (spoofed)", and what it did comes first.
    claim = ""
    if lab.get("agent"):
        claim = (
            f" · claims {md(lab['agent'])} ({palette.IDENTITY_MARKS['spoofed']} spoofed)"
            if lab["identity"] == "spoofed"
            else f" · {md(lab['agent'])}"
        )
    harm = f" · :red[malicious: {', '.join(label(t) for t in lab['threats'] or [])}]" if lab["malicious"] else ""
    st.markdown(f"#### {md(ident['client_ip'], code=True)} · {label(lab['actor_class'])}{claim}{harm}")
    st.caption(
        f"User agent: {md(ident['user_agent'] or '(none)', code=True)} · site {md(ident['site'])} · "
        f"client id {md(client_id, code=True)}"
    )
    cols = st.columns(6)
    cols[0].metric("Class", label(lab["actor_class"]))
    cols[1].metric("Identity", label(lab["identity"]))
    cols[2].metric("AI-driven", "yes" if lab["ai_driven"] else "no")
    cols[3].metric("Malicious", "yes" if lab["malicious"] else "no")
    cols[4].metric(
        "Requests",
        fmt_count(ident["requests"]),
        help=f"{ident['requests']:,} requests in {ident['sessions']:,} sessions",
    )
    cols[5].metric("Confidence", fmt_pct(lab["confidence"]))
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Labels**")
        facts = {
            "Purpose": label(lab["purpose"]),
            "Operator": md(lab["operator"]),
            "Agent": md(lab["agent"]),
            "Automated": "yes" if lab["automated"] else "no",
            "Threats": ", ".join(label(t) for t in lab["threats"] or []) or "none",
            "First seen": f"{ident['first_seen']:%Y-%m-%d %H:%M:%S} UTC",
            "Last seen": f"{ident['last_seen']:%Y-%m-%d %H:%M:%S} UTC",
            "Browser / OS / device": md(" / ".join(str(v) for v in profile.device.values() if v) or None),
        }
        st.markdown("\n".join(f"- **{k}:** {v}" for k, v in facts.items()))
        st.markdown("**Why (reasons, in the order the rules decided)**")
        st.markdown("\n".join(f"- {md(r, code=True)}" for r in profile.reasons) or "_no reasons recorded_")
    with right:
        st.markdown("**Behaviour features** (what the model read)")
        feats = feature_table(profile.features)
        st.dataframe(
            feats,
            hide_index=True,
            height=rows_height(feats.height, 460),
            placeholder="–",
            # The meaning and its value side by side in half a page; the lake's column and the
            # model's value follow for the curious (scroll right).
            column_order=("meaning", "value", "feature", "raw"),
            column_config={
                "meaning": st.column_config.TextColumn("Feature", width=280),
                "value": st.column_config.TextColumn("Value", width=90),
                "feature": st.column_config.TextColumn("Column in the lake", width="small"),
                "raw": st.column_config.NumberColumn("Model value", format="%.3f", width="small"),
            },
        )
    activity: pl.DataFrame = ctx.explore("client_activity", client_id)
    if activity.height:
        # The bucket explore chose (minute, hour or day, by the client's span): bars as wide as it.
        unit, step = _bucket_unit(activity)
        st.markdown(f"**Requests per {step} (UTC), by status**")
        chart(
            alt.Chart(activity)
            .mark_bar()
            .encode(
                x=alt.X("bucket:T", title=None, timeUnit=unit),  # UTC, as the lake
                y=alt.Y("requests:Q", title="Requests", stack=True),
                color=alt.Color("status:N", title="Status", scale=color_scale(STATUS_COLORS)),
                tooltip=[
                    alt.Tooltip("bucket:T", title="From (UTC)", timeUnit=unit, format="%Y-%m-%d %H:%M"),
                    "status",
                    "requests",
                ],
            ),
            height=180,
        )
    sessions: pl.DataFrame = ctx.explore("client_sessions", client_id)
    st.markdown(f"**Sessions** ({sessions.height:,}{' shown' if sessions.height >= 200 else ''})")
    table(
        sessions,
        {
            "start": time_column("Start"),
            "duration_s": st.column_config.NumberColumn("Duration", format="duration"),
            "requests": count_column("Requests"),
            "pages": count_column("Pages"),
            "assets": count_column("Assets"),
            "distinct_paths": count_column("Distinct paths"),
            "bytes": bytes_column("Bytes"),
            "status_4xx": pct_column("4xx", bar=False),
            "referer_share": pct_column("With referer", bar=False),
            "landing_path": "Landing path",
            "landing_referer": "Landing referer",
            "page_types": "Page types",
            "threats": "Threats",
        },
        height=rows_height(sessions.height, 300),
    )
    reqs: pl.DataFrame = ctx.explore("client_requests", client_id)
    sources = reqs["source"].unique().to_list() if "source" in reqs.columns else []
    # One source (the usual case) is said once, not repeated on every row beside a cut path.
    where = f" · from {md(sources[0], code=True)}" if len(sources) == 1 else ""
    st.markdown(f"**Raw requests** (first {reqs.height:,} of {ident['requests']:,}){where}")
    table(
        reqs,
        {
            "ts": time_column("Time (UTC)"),
            "method": st.column_config.TextColumn("Method", width="small"),
            "path": st.column_config.TextColumn("Path", width="large"),
            "query": st.column_config.TextColumn("Query", width="medium"),
            "status": st.column_config.NumberColumn("Status", format="%d", width="small"),
            "bytes": bytes_column("Bytes"),
            "page_type": st.column_config.TextColumn("Page type", width="small"),
            "referer": st.column_config.TextColumn("Referer", width="medium"),
            "threats": st.column_config.ListColumn("Threats", width="medium"),
            "line_no": count_column("Log line"),
            **({"source": st.column_config.TextColumn("Source", width="medium")} if len(sources) > 1 else {}),
        },
        height=rows_height(reqs.height, 460),
    )


def _bucket_unit(
    activity: pl.DataFrame,
) -> tuple[Literal["utcyearmonthdate", "utcyearmonthdatehours", "utcyearmonthdatehoursminutes"], str]:
    """The Vega-Lite time unit, and its name, of `explore.client_activity`'s buckets: that chooses
    minutes for a client seen over up to 3 hours, hours up to 4 days, days beyond (read back here
    from the buckets' own span, which is the client's to within one bucket)."""
    first, last = activity["bucket"].min(), activity["bucket"].max()
    span = last - first if isinstance(first, datetime) and isinstance(last, datetime) else timedelta(0)
    if span < timedelta(hours=3):
        return "utcyearmonthdatehoursminutes", "minute"
    if span < timedelta(days=4):
        return "utcyearmonthdatehours", "hour"
    return "utcyearmonthdate", "day"


__all__ = [
    "ACTOR_CLASSES",
    "DASHBOARD_PERIODS",
    "CLASS_COLORS",
    "Context",
    "Filters",
    "IDENTITIES",
    "IDENTITY_COLORS",
    "PAGE_TYPES",
    "STATUS_COLORS",
    "THREATS",
    "chart",
    "client_detail",
    "color_scale",
    "describe_period",
    "empty",
    "fmt_bytes",
    "fmt_count",
    "fmt_pct",
    "label",
    "lake_path",
    "md",
    "page_icon",
    "palette",
    "require_requests",
    "start_page",
    "table",
]
