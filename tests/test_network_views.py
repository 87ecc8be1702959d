"""The network section where people read it: the "Networks and countries" dashboard page and the
table, Markdown and HTML reports, on a lake whose clients carry hosting, ASN and country, and on
one classified before clients carried them (the section's note instead of empty tables)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import simulated_lake
from streamlit.testing.v1 import AppTest
from test_network import _with_network_columns

from trafficlens.dashboards import common
from trafficlens.report import Report, layout
from trafficlens.report.render import render
from trafficlens.schema import ASN, COUNTRY, HOSTING, NETWORK_SCHEMA

PAGE = Path(__file__).resolve().parent.parent / "dashboards" / "views" / "network.py"


@pytest.fixture(scope="module")
def net_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days classified with the providers' range files and an ASN/country table."""
    d = tmp_path_factory.mktemp("netviews")
    lake = simulated_lake(d, days=2, scale=0.08, seed=5)
    clients = _with_network_columns(lake, d)
    assert clients[COUNTRY].is_not_null().any() and clients[HOSTING].is_not_null().any()
    return lake


@pytest.fixture(scope="module")
def old_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake whose clients table was written before clients carried network columns."""
    lake = simulated_lake(tmp_path_factory.mktemp("netold"), days=1, scale=0.02, seed=2)
    files = sorted((lake / "clients").glob("*.parquet"))
    older = pl.read_parquet(files).drop(*NETWORK_SCHEMA)
    for f in files:
        f.unlink()
    older.write_parquet(lake / "clients" / "part-0.parquet")
    return lake


def _page(lake: Path, monkeypatch: pytest.MonkeyPatch, **params: str | list[str]) -> AppTest:
    monkeypatch.setenv("TRAFFICLENS_LAKE", str(lake))
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    return at


def _shown(at: AppTest, first_column: str) -> pl.DataFrame:
    """The shown table whose first column is `first_column`."""
    tables = [pl.from_pandas(t.value) for t in at.dataframe]
    hits = [t for t in tables if t.columns and t.columns[0] == first_column]
    assert len(hits) == 1, [t.columns for t in tables]
    return hits[0]


@pytest.mark.parametrize("classes", [[], ["scraper", "agent"]], ids=["all", "scrapers-agents"])
def test_page_shows_the_sections_figures(net_lake: Path, monkeypatch: pytest.MonkeyPatch, classes: list[str]) -> None:
    at = _page(net_lake, monkeypatch, **({"class": classes} if classes else {}))
    with Report(net_lake, classes=classes or None) as rep:
        net, total = rep.network(), rep.totals()["requests"]
    hosting, countries, networks = net["hosting_share"], net["by_country"], net["by_network"]
    known_countries = countries.filter(pl.col(COUNTRY).is_not_null())
    known_networks = networks.filter(pl.col(ASN).is_not_null())
    assert known_countries.height > 1 and known_networks.height > 1 and net["undeclared_by_provider"].height
    kpis = {m.label: m.value for m in at.metric}
    assert kpis["From hosting ranges"] == common.fmt_pct(hosting["hosting_requests"].sum() / total)
    assert kpis["Countries"] == f"{known_countries.height:,}"
    assert kpis["Networks (AS)"] == f"{known_networks.height:,}"
    assert kpis["Undeclared from hosting"] == common.fmt_count(net["undeclared_by_provider"]["requests"].sum())
    # The tables are the section's rows: per class, per provider, per country and network.
    shown = _shown(at, "class_label")
    assert shown["hosting_requests"].to_list() == hosting["hosting_requests"].to_list()
    assert shown["class_label"].to_list() == [common.label(c) for c in hosting["actor_class"]]
    und = _shown(at, "provider")
    assert und["provider"].to_list() == net["undeclared_by_provider"]["provider"].to_list()
    assert und["requests"].to_list() == net["undeclared_by_provider"]["requests"].to_list()
    by_country = _shown(at, "country")
    assert by_country.select(COUNTRY, "requests", "scraper").equals(
        known_countries.select(COUNTRY, "requests", "scraper").with_columns(
            pl.col("requests", "scraper").cast(pl.Int64)
        )
    )
    by_asn = _shown(at, "asn")
    assert by_asn["asn"].to_list() == known_networks[ASN].to_list()
    assert by_asn["as_org"].to_list() == known_networks["as_org"].to_list()
    # Bars for each part, and the unknown rest said in words with what adds it.
    assert len(at.get("vega_lite_chart")) == 4
    unknown = int(countries.filter(pl.col(COUNTRY).is_null())["requests"].sum() or 0)
    assert unknown and any(f"{unknown:,} requests" in c.value and "--geo PATH" in c.value for c in at.caption)
    if classes:  # narrowed like every page: no other class's requests anywhere
        assert set(shown["class_label"]) <= {common.label(c) for c in classes}
        assert by_country["human"].sum() == 0


def test_page_says_what_to_run_on_a_lake_without_network_columns(
    old_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(old_lake, monkeypatch)
    with Report(old_lake) as rep:
        note = rep.network()["note"]
    assert note
    info = [i.value for i in at.info]
    assert len(info) == 1 and common.md(note[1:]) in info[0]
    assert "trafficlens ranges update" in info[0] and "--geo PATH" in info[0] and ".mmdb" in info[0]
    assert not at.get("vega_lite_chart") and not at.dataframe and not at.metric


def test_page_says_what_to_run_when_no_database_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Classified with the providers' ranges but no --geo: hosting is drawn, countries are a hint.
    lake = simulated_lake(tmp_path, days=1, scale=0.05, seed=3)
    at = _page(lake, monkeypatch)
    kpis = {m.label: m.value for m in at.metric}
    assert kpis["Countries"] == "–" and kpis["Networks (AS)"] == "–"
    hints = [c.value for c in at.caption if c.value.startswith("_No ")]
    assert len(hints) == 2 and "--geo PATH" in hints[0] and "--geo" in hints[1]
    assert at.get("vega_lite_chart"), "the hosting share is drawn"


def test_reports_carry_the_network_section(net_lake: Path) -> None:
    with Report(net_lake) as rep:
        net = rep.network()
        table, markdown, html = (render(rep, fmt, width=80) for fmt in ("table", "markdown", "html"))
    top_country = net["by_country"].filter(pl.col(COUNTRY).is_not_null())[COUNTRY][0]
    top_provider = net["undeclared_by_provider"]["provider"][0]
    org = net["by_network"].filter(pl.col(ASN).is_not_null())["as_org"][0]
    for text in (table, markdown, html):
        for title in ("Traffic by country", "Traffic by network (AS)", "Undeclared automation by hosting provider"):
            assert title in text
        assert top_country in text and top_provider in text and org in text
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "| country | requests | share |" in markdown
    # The hosting share per class, as a row of the Markdown table and a bar in the page.
    scraper = net["hosting_share"].filter(pl.col("actor_class") == "scraper").row(0, named=True)
    assert f"| scraper | {scraper['requests']:,} | {scraper['hosting_requests']:,} |" in markdown
    assert f"<title>scraper: {layout.fmt_pct(scraper['hosting_share'])}</title>" in html
    assert "Networks and countries" not in table  # the note's heading is only for a lake without


def test_reports_show_the_note_instead_of_empty_tables(old_lake: Path) -> None:
    with Report(old_lake) as rep:
        note = rep.network()["note"]
        outputs = {fmt: render(rep, fmt, width=80) for fmt in ("table", "markdown", "html")}
    assert note
    for fmt, text in outputs.items():
        assert "Networks and countries" in text, fmt
        assert "Traffic by country" not in text and "Undeclared automation by hosting provider" not in text, fmt
        flat = " ".join(text.split())
        assert "(--geo)" in flat and "trafficlens ranges update" in flat, fmt
    assert f"_{note}_" in outputs["markdown"]
