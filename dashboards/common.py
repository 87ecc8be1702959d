"""What every dashboard page shares: the lake, the sidebar filters, cached report sections, the
client drill-down, number formats and chart colours.

A page starts with `ctx = common.start_page("Title")`: that finds the lake (TRAFFICLENS_LAKE),
says how to fill it when it is missing or empty (and stops the page), draws the filters and
returns a `Context` whose `section("shares")` is `Report(...).shares()` for those filters.
Every figure on a page comes from `trafficlens.report` or `trafficlens.report.explore`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import altair as alt
import polars as pl
import streamlit as st

from trafficlens.errors import LakeError, OptionError
from trafficlens.report import Report, explore, layout
from trafficlens.schema import ACTOR_CLASSES, IDENTITIES, PAGE_TYPES, PERIODS, THREATS
from trafficlens.store import DEFAULT_LAKE, Lake

LAKE_ENV = "TRAFFICLENS_LAKE"

# One colour per class, identity and status class on every page, so a reader learns them once.
CLASS_COLORS = {"human": "#4C78A8", "crawler": "#F58518", "scraper": "#B279A2", "agent": "#54A24B"}
IDENTITY_COLORS = {
    "verified": "#54A24B",
    "declared": "#9DA5B0",
    "spoofed": "#E45756",
    "undeclared": "#F58518",
    "none": "#D6D9DE",
}
STATUS_COLORS = {"2xx": "#54A24B", "3xx": "#9DA5B0", "4xx": "#F58518", "5xx": "#E45756"}
AI_CATEGORY_LABELS = {
    "training_crawlers": "Training crawlers",
    "search_crawlers": "AI search crawlers",
    "assistant_fetchers": "Assistant fetchers",
    "agents": "Agents",
    "other_ai": "Other AI",
}
AI_CATEGORY_COLORS = {
    "Training crawlers": "#F58518",
    "AI search crawlers": "#EECA3B",
    "Assistant fetchers": "#B279A2",
    "Agents": "#54A24B",
    "Other AI": "#9DA5B0",
}


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
    """A period's first day as a short axis label: 'Oct 06', 'wk Oct 06', 'Oct 2025'."""
    fmt = {"day": "%b %d", "week": "wk %b %d", "month": "%b %Y"}[by]
    return col.dt.strftime(fmt)


def period_name(day: date, by: str) -> str:
    """A period as a reader names it: 'Oct 06', 'week of Oct 06', 'Oct 2025'."""
    return {"day": f"{day:%b %d}", "week": f"week of {day:%b %d}", "month": f"{day:%b %Y}"}[by]


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
            by=filters.by,
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

    def explore(self, function: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return _explore(self.lake, self.stamp, function, args, tuple(sorted(kwargs.items())))
        except (LakeError, OptionError) as e:
            st.error(md(e))
            st.stop()


def lake_path() -> str:
    """The lake this dashboard reads: $TRAFFICLENS_LAKE, else ./trafficlens-lake (as the CLI)."""
    return str(Path(os.environ.get(LAKE_ENV) or DEFAULT_LAKE).expanduser().resolve())


def _fill_hint(lake: str) -> str:
    return (
        f"Fill it with {md(f'trafficlens analyze LOG... --lake {lake}', code=True)} (or try the sample week: "
        f"`make demo`), then reload this page."
    )


def start_page(title: str, caption: str | None = None, *, filters: bool = True) -> Context:
    """Set the page up; stop it with a clear message when there is nothing to show."""
    st.set_page_config(page_title=f"{title} · trafficlens", page_icon=":material/traffic:", layout="wide")
    st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button: this is a local tool
    st.title(title)
    if caption:
        st.caption(caption)
    lake = lake_path()
    if not Path(lake).is_dir():
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
    chosen = _sidebar(lake, bounds) if filters else Filters(None, None, (), (), "day")
    return Context(lake, stamp, chosen, bounds)


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


def _sidebar(lake: str, bounds: explore.LakeBounds) -> Filters:
    """Days, sites, classes and the trend period, the same on every page until changed."""
    sb = st.sidebar
    first, last = bounds.first, bounds.last
    assert first is not None and last is not None
    # A lake re-read with other days: a remembered range outside it would be refused.
    in_lake = lambda days: all(first <= d <= last for d in days)  # noqa: E731
    picked = sb.date_input(
        "Days (UTC)",
        min_value=first,
        max_value=last,
        help="Both days included.",
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
    by = (
        sb.segmented_control("Trend period", PERIODS, format_func=label, required=True, **_remembered("tl_by", "day"))
        or "day"
    )
    sb.divider()
    sb.caption(f"Lake: {md(lake, code=True)}")
    return Filters(
        since=None if since <= first else since,  # the whole lake: the same cache entry as no filter
        until=None if until >= last else until,
        sites=tuple(sorted(sites)),
        classes=tuple(c for c in ACTOR_CLASSES if c in classes and len(classes) < len(ACTOR_CLASSES)),
        by=by,
    )


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
    fmt = "%b %Y" if by == "month" else "%b %d"
    ticks = [alt.DateTime(year=d.year, month=d.month, date=d.day, utc=True) for d in periods]
    return alt.X(
        f"{field}:T",
        timeUnit=_utc_unit(by),
        title=None,
        axis=alt.Axis(format=fmt, values=ticks, labelAngle=0, labelOverlap=True),
    )


def _utc_unit(by: str) -> Literal["utcyearmonth", "utcyearmonthdate"]:
    return "utcyearmonth" if by == "month" else "utcyearmonthdate"


def period_tooltip(by: str, field: str = "period") -> alt.Tooltip:
    fmt = "%b %Y" if by == "month" else ("week of %b %d, %Y" if by == "week" else "%b %d, %Y")
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


def pct_column(title: str, help: str | None = None, bar: bool = True) -> Any:
    """A share (0..1) as 12.3%, with a bar when comparing rows is the point."""
    if not bar:
        return st.column_config.NumberColumn(title, help=help, format="percent")
    return st.column_config.ProgressColumn(
        title, help=help, format="percent", min_value=0.0, max_value=1.0, color="#4C78A8"
    )


def count_column(title: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(title, help=help, format="localized")


def bytes_column(title: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(title, help=help, format="bytes")


def time_column(title: str) -> Any:
    return st.column_config.DatetimeColumn(title, format="YYYY-MM-DD HH:mm:ss", timezone="UTC")


def table(df: pl.DataFrame, config: dict[str, Any], height: int | str = "auto", **kwargs: Any) -> Any:
    """A frame shown with only the configured columns, in that order, under readable titles."""
    cols = [c for c in config if c in df.columns]
    return st.dataframe(
        df.select(cols),
        column_config=config,
        column_order=cols,
        hide_index=True,
        height=height,  # type: ignore[arg-type]
        placeholder="–",
        **kwargs,
    )


def rows_height(n: int, cap: int = 420) -> int:
    """A table's height that fits n rows, up to `cap` pixels (then it scrolls)."""
    return min(38 + 35 * max(n, 1), cap)


# --- one client ---------------------------------------------------------------------------


def client_detail(ctx: Context, client_id: str) -> None:
    """One client's labels, reasons, features, sessions and raw requests (explorer and security pages)."""
    profile: explore.ClientProfile | None = ctx.explore("client_profile", client_id)
    if profile is None:
        st.info(f"No client {md(client_id, code=True)} in this lake (it may have been re-classified).", icon=INFO)
        return
    ident, lab = profile.identity, profile.labels
    st.markdown(
        f"#### {md(ident['client_ip'], code=True)} · {label(lab['actor_class'])}"
        + (f" · {md(lab['agent'])}" if lab.get("agent") else "")
    )
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
        st.markdown("**Behaviour features**")
        feats = pl.DataFrame(
            {"feature": list(profile.features), "value": list(profile.features.values())},
            schema={"feature": pl.String, "value": pl.Float64},
        )
        st.dataframe(
            feats,
            hide_index=True,
            height=320,
            placeholder="–",
            column_config={"feature": "Feature", "value": st.column_config.NumberColumn("Value", format="%.3f")},
        )
    activity: pl.DataFrame = ctx.explore("client_activity", client_id)
    if activity.height:
        st.markdown("**Requests over time (UTC), by status**")
        chart(
            alt.Chart(activity)
            .mark_bar()
            .encode(
                x=alt.X("bucket:T", title=None, timeUnit="utcyearmonthdatehoursminutes"),  # UTC, as the lake
                y=alt.Y("requests:Q", title="Requests", stack=True),
                color=alt.Color("status:N", title="Status", scale=color_scale(STATUS_COLORS)),
                tooltip=[
                    alt.Tooltip(
                        "bucket:T", title="From (UTC)", timeUnit="utcyearmonthdatehoursminutes", format="%Y-%m-%d %H:%M"
                    ),
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
    st.markdown(f"**Raw requests** (first {reqs.height:,} of {ident['requests']:,})")
    table(
        reqs,
        {
            "ts": time_column("Time (UTC)"),
            "method": "Method",
            "path": "Path",
            "query": "Query",
            "status": st.column_config.NumberColumn("Status", format="%d"),
            "bytes": bytes_column("Bytes"),
            "page_type": "Page type",
            "referer": "Referer",
            "threats": "Threats",
            "line_no": count_column("Log line"),
            "source": "Source",
        },
        height=400,
    )


__all__ = [
    "ACTOR_CLASSES",
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
    "require_requests",
    "start_page",
    "table",
]
