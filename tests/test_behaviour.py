"""Behaviour: features, the shipped model, evaluation against simulated truth, and the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from trafficlens.classify.behaviour import FEATURES
from trafficlens.classify.evidence import LIKELY_AUTOMATED
from trafficlens.classify.model import META_FILE, load_model, model_dir
from trafficlens.classify.pipeline import classify
from trafficlens.cli import main
from trafficlens.errors import ModelError
from trafficlens.ingest import ingest
from trafficlens.report.evaluate import evaluate
from trafficlens.simulate import simulate


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("sim")
    log = tmp / "sim.log"
    # A seed no training log uses (training.TRAIN_SEEDS), so this is unseen traffic.
    s = simulate(log, days=3, seed=4242, scale=0.3, site_kind="travel", ranges_out=tmp / "ranges", progress=False)
    lake = tmp / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, ranges_dir=tmp / "ranges", progress=False)
    return lake, Path(s.truth_path)


def test_the_shipped_model_matches_the_features() -> None:
    m = load_model()
    assert m.meta["features"] == list(FEATURES)
    assert set(m.classes) == {"human", "crawler", "scraper", "agent"}
    cv = m.meta["cross_validation"]["scores"][m.meta["model"]]
    assert cv["macro_f1"] >= 0.9 and m.meta["training_data"]


def test_a_model_for_other_features_is_refused(tmp_path: Path) -> None:
    for f in model_dir().iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta["features"] = meta["features"][:-1] + ["some_old_feature"]
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="trained on other features .*some_old_feature.*trafficlens train"):
        load_model(tmp_path)
    (tmp_path / META_FILE).unlink()
    with pytest.raises(ModelError, match="no behaviour model"):
        load_model(tmp_path)


def test_unseen_simulated_traffic_is_classified_well(sim_lake: tuple[Path, Path]) -> None:
    lake, truth = sim_lake
    ev = evaluate(lake, truth)
    assert ev.matched == ev.truth_rows
    clients = ev.clients["actor_class"]
    assert clients["macro_f1"] >= 0.9, ev.describe()
    assert ev.clients["malicious"]["per_class"]["True"]["recall"] >= 0.8, ev.describe()
    assert ev.clients["ai_driven"]["per_class"]["True"]["f1"] >= 0.8, ev.describe()


def test_behaviour_verdicts_say_why(sim_lake: tuple[Path, Path]) -> None:
    lake, _ = sim_lake
    c = pl.read_parquet(lake / "clients" / "*.parquet")
    flipped = c.filter(
        pl.col("reasons").list.eval(pl.element().str.starts_with("behaviour:model:")).list.any()
        & (pl.col("identity") == "undeclared")
    )
    assert flipped.height > 0
    for reasons in flipped["reasons"].to_list():
        assert any(r.startswith("behaviour:") and "=" in r for r in reasons)  # the features that stood out
    assert set(FEATURES) <= set(c.columns)
    s = pl.read_parquet(lake / "sessions" / "*.parquet")
    assert {"session_id", "duration_s", "pages", "assets", "landing_path", "actor_class", "reasons"} <= set(s.columns)


def test_evaluate_cli(sim_lake: tuple[Path, Path]) -> None:
    lake, truth = sim_lake
    r = CliRunner().invoke(main, ["evaluate", "--lake", str(lake), "--truth", str(truth)])
    assert r.exit_code == 0, r.output
    assert "clients · actor_class: macro-F1" in r.output and "confusion" in r.output
    r = CliRunner().invoke(main, ["evaluate", "--lake", str(lake), "--truth", str(truth), "--json"])
    assert json.loads(r.output)["clients"]["actor_class"]["labels"] == ["human", "crawler", "scraper", "agent"]
    r = CliRunner().invoke(main, ["evaluate", "--lake", str(lake), "--truth", str(lake / "nope.parquet")])
    assert r.exit_code == 1 and "no truth file" in r.output


def test_simulate_cli(tmp_path: Path) -> None:
    out = tmp_path / "s.log"
    r = CliRunner().invoke(main, ["simulate", "--out", str(out), "--days", "1", "--scale", "0.05", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert out.exists() and Path(str(out) + ".truth.parquet").exists()


def _one_client(tmp_path: Path, text: str, **kw: object) -> dict:
    """The clients-table row of a one-client log, after ingest and classify (with `kw`)."""
    log = tmp_path / "access.log"
    log.write_text(text)
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, **kw)  # type: ignore[arg-type]
    return pl.read_parquet(lake / "clients" / "*.parquet").row(0, named=True)


def test_page_features_see_through_beacons_and_count_self_referrals(tmp_path: Path) -> None:
    """Time on a page is measured page to page, whatever the page's beacons do in between; a page
    view referred by the very page counts as a self-referral, a search engine's '/' does not."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    steps = [
        ("/", "https://www.google.com/", 0),
        ("/a", "https://site.example/", 10),
        ("/a", "https://site.example/a", 30),
        ("/b", "https://site.example/a", 60),
        ("/c?x=1", "https://site.example/b", 100),
    ]
    lines = []
    for path, ref, sec in steps:
        lines.append((sec, "GET", path, ref))
        page = "https://site.example" + path
        lines += [(sec + k, "POST", "/api/collect", page) for k in range(2, 9, 2) if sec + k < 100 or path != "/c?x=1"]
    lines.sort()
    text = "".join(
        f'203.0.113.9 - - [06/Oct/2025:12:{s // 60:02d}:{s % 60:02d} +0000] "{m} {p} HTTP/1.1" 200 512 "{r}" "{ua}"\n'
        for s, m, p, r in lines
    )
    c = _one_client(tmp_path, text, behaviour=False, detect_threats=False)
    assert c["requests"] == len(lines)
    assert c["page_gap_median_log"] == pytest.approx(math.log1p(25.0))
    assert c["page_gap_max_log"] == pytest.approx(math.log1p(40.0))
    assert c["gap_median_log"] == pytest.approx(math.log1p(2.0))  # every request: the beacons set the pace
    assert c["self_referral_share"] == pytest.approx(1 / 5)


def test_going_back_to_the_list_counts_as_a_return(tmp_path: Path) -> None:
    """A person reading round a list goes back to it for the next item: re-requested (list,
    item, list) or from the browser's cache, where the next item names the list as referrer
    although another page was asked for last. A walk straight on has no returns."""
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    site = "https://site.example"
    (tmp_path / "back").mkdir(), (tmp_path / "walk").mkdir()
    steps = [
        ("/c/shoes", "https://www.google.com/"),
        ("/p/1", "/c/shoes"),
        ("/c/shoes", "/p/1"),
        ("/p/2", "/c/shoes"),
        ("/p/3", "/c/shoes"),
        ("/p/4", "/p/3"),
    ]
    text = "".join(
        f'203.0.113.9 - - [06/Oct/2025:12:0{k}:00 +0000] "GET {p} HTTP/1.1" 200 512 '
        f'"{r if r.startswith("http") else site + r}" "{ua}"\n'
        for k, (p, r) in enumerate(steps)
    )
    # Of pages 2 to 6, page 3 (the list again) and page 5 (from the list, shown from the cache
    # after page 4) are returns; pages 2, 4 and 6 follow the page before.
    assert _one_client(tmp_path / "back", text, behaviour=False, detect_threats=False)["return_share"] == 0.4
    walk = "".join(
        f'203.0.113.9 - - [06/Oct/2025:12:0{k}:00 +0000] "GET /p/{k} HTTP/1.1" 200 512 "{site}/p/{k - 1}" "{ua}"\n'
        for k in range(1, 7)
    )
    assert _one_client(tmp_path / "walk", walk, behaviour=False, detect_threats=False)["return_share"] == 0.0


def test_byte_range_fetches_of_one_file_count_as_one_fetch(tmp_path: Path) -> None:
    """A browser's PDF viewer reads a document in byte ranges (206), a dozen in a few seconds:
    one read, not a burst of pages. A file fetched only in ranges counts once too."""
    ua = "Mozilla/5.0 (Windows NT 6.2; WOW64; rv:27.0) Gecko/20100101 Firefox/27.0"
    ref = "https://www.google.es/url?q=https://site.example/docs/talk.pdf"
    lines = [(0, "/docs/talk.pdf", 200, ref), (1, "/favicon.ico", 200, "-")]
    lines += [(2 + 3 * k, "/docs/talk.pdf", 206, ref) for k in range(16)]
    lines += [(60 + 2 * k, "/media/clip.mp4", 206, "-") for k in range(10)]
    text = "".join(
        f'198.51.100.7 - - [06/Oct/2025:12:{s // 60:02d}:{s % 60:02d} +0000] "GET {p} HTTP/1.1" {st} 65536 "{r}" "{ua}"\n'
        for s, p, st, r in lines
    )
    c = _one_client(tmp_path, text, detect_threats=False)
    assert c["requests"] == len(lines)  # the lake keeps every request
    assert c["log_requests"] == pytest.approx(math.log1p(3))  # the PDF, the favicon, the clip
    assert c["log_pages"] == pytest.approx(math.log1p(1))
    assert c["actor_class"] == "human", c["reasons"]


def test_train_cli_writes_both_models(tmp_path: Path) -> None:
    out = tmp_path / "model"
    r = CliRunner().invoke(
        main, ["train", "--out", str(out), "--days", "1", "--scale", "0.1", "--model", "random_forest", "--progress"]
    )
    assert r.exit_code == 0, r.output
    assert "kept random_forest" in r.stdout and "navigation model:" in r.stdout
    # The progress line names each stage of the job, on stderr.
    for stage in (
        "train: log 1 of 24 (shop, origin, seed 101): simulating",
        "log 24 of 24",
        "cross-validating random_forest",
        "fitting random_forest",
        "the navigation model",
    ):
        assert stage in r.stderr, stage
    assert "train:" not in r.stdout
    m = load_model(out)
    nav = m.meta["navigation"]
    assert m.navigation is not None and nav["visits"] > 0 and nav["threshold"] == 0.8
    assert set(nav["monotonic"]) == set(nav["features"])
    # classify and analyze use it when asked to.
    log = tmp_path / "a.log"
    simulate(log, days=1, seed=41, scale=0.05)
    lake = tmp_path / "lake"
    r = CliRunner().invoke(main, ["analyze", str(log), "--lake", str(lake), "--model-dir", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(lake / "clients" / "*.parquet").height > 0
    (out / "navigation.skops").unlink()
    with pytest.raises(ModelError, match="no behaviour model"):
        load_model(out)
    r = CliRunner().invoke(main, ["classify", "--lake", str(lake), "--model-dir", str(out)])
    assert r.exit_code != 0 and "no behaviour model" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["classify", "--lake", str(lake), "--model-dir", str(tmp_path / "none")])
    assert r.exit_code != 0 and "no such folder" in r.output


def _cohort_frames(rows: list[tuple[str, str, float]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Browser clients (site, user agent, navigation probability), left human by the classifier."""
    ids = [f"c{i}" for i in range(len(rows))]
    labelled = pl.DataFrame(
        {
            "client_id": ids,
            "site": [r[0] for r in rows],
            "user_agent": [r[1] for r in rows],
            "requests": [40] * len(rows),
            "identity": ["none"] * len(rows),
            "actor_class": ["human"] * len(rows),
            "automated": [False] * len(rows),
            "purpose": ["human"] * len(rows),
            "ai_driven": [False] * len(rows),
            "confidence": [None] * len(rows),
            "reasons": [["ua:browser"]] * len(rows),
        },
        schema_overrides={"confidence": pl.Float64},
    )
    pred = pl.DataFrame(
        {
            "client_id": ids,
            "b_class": ["human"] * len(rows),
            "b_proba": [0.9] * len(rows),
            "b_human_proba": [0.9] * len(rows),
            "b_reasons": [[]] * len(rows),
            "b_nav_proba": [r[2] for r in rows],
            "b_nav_reasons": [["behaviour:page_gap_cv=0.30"]] * len(rows),
        },
        schema_overrides={"b_reasons": pl.List(pl.String)},
    )
    return labelled, pred


def _evidence_feats(ids: list[str], bare: set[str]) -> pl.DataFrame:
    """Raw behaviour aggregates: 20 page views each, with assets except for the `bare` clients."""
    n = len(ids)
    return pl.DataFrame(
        {
            "client_id": ids,
            "pages": [20] * n,
            "assets": [0 if i in bare else 12 for i in ids],
            "favicon": [0 if i in bare else 1 for i in ids],
            "page_gaps": [19] * n,
            "page_gap_max": [240.0] * n,
            "page_gap_cv": [1.2] * n,
            "form_fill_min_s": [None] * n,
            "pay_fill_min_s": [None] * n,
            "blind_posts": [0] * n,
            "max_views_per_day": [20] * n,
            "http10": [0] * n,
            "proto_requests": [32] * n,
            "switched_visits": [0] * n,
        },
        schema_overrides={"form_fill_min_s": pl.Float64, "pay_fill_min_s": pl.Float64},
    )


def test_protocol_evidence_reads_the_site_not_one_request(tmp_path: Path) -> None:
    """A visit switching between HTTP/1.0 and HTTP/1.1 is two programs: decisive. HTTP/1.0 for a
    whole visit (a person behind an old proxy) only supports; where the site's own browsers all
    speak HTTP/1.0 (a reverse proxy in front of the server), it says nothing."""
    from trafficlens.classify.labels import combine_behaviour

    labelled, pred = _cohort_frames([("a", "X", 0.3)] * 10 + [("a", "X", 0.65)] * 3)
    # The last three: the navigation model at 0.65; the main model leaning to automation for two.
    pred = pred.with_columns(b_human_proba=pl.Series([0.9] * 10 + [0.35, 0.35, 0.9]))
    ids = labelled["client_id"].to_list()
    feats = _evidence_feats(ids, bare=set()).with_columns(
        http10=pl.Series([0] * 8 + [3, 32, 32, 32, 32]), switched_visits=pl.Series([0] * 8 + [1, 0, 0, 0, 0])
    )
    out = combine_behaviour(labelled, pred, feats=feats)
    assert out["automated"].to_list() == [False] * 8 + [True, False, True, True, False]
    assert "evidence:protocol:switched_in_visit=1" in out.row(8, named=True)["reasons"]
    proxy = out.row(9, named=True)
    assert any(r.startswith("evidence:protocol:http10_where_site_share=") for r in proxy["reasons"])
    assert 0.5 < proxy["automation_score"] < 0.99, "a proxied person is only scored, not flipped"
    # Style and HTTP/1.0 together: two families; the same with the site all HTTP/1.0: style alone.
    assert out.row(10, named=True)["automated"]
    # The navigation model's reading alone is not style's support (it called people on a held-out
    # shop week scrapers): with HTTP/1.0 it raises the score as much, and flips nothing.
    nav_only = out.row(12, named=True)
    assert not nav_only["automated"] and nav_only["automation_score"] == out.row(10, named=True)["automation_score"]
    behind_proxy = feats.with_columns(http10=pl.lit(32), switched_visits=pl.lit(0))
    out = combine_behaviour(labelled, pred, feats=behind_proxy)
    assert not out["automated"].any()
    assert not any(r.startswith("evidence:protocol") for rs in out["reasons"].to_list() for r in rs)


def test_one_request_shows_no_style_to_count() -> None:
    """A client of a single request (a person landing once through an old proxy) has no style the
    models can read: their reading raises its score but is not the second family that flips it."""
    from trafficlens.classify.labels import combine_behaviour

    labelled, pred = _cohort_frames([("a", "X", 0.3)] * 10 + [("a", "X", 0.3)] * 3)
    labelled = labelled.with_columns(requests=pl.Series([40] * 10 + [1, 2, None]))
    pred = pred.with_columns(
        b_class=pl.Series(["human"] * 10 + ["scraper"] * 3), b_human_proba=pl.Series([0.9] * 10 + [0.25] * 3)
    )
    ids = labelled["client_id"].to_list()
    feats = _evidence_feats(ids, bare=set()).with_columns(http10=pl.Series([0] * 10 + [1, 2, 32]))
    out = combine_behaviour(labelled, pred, feats=feats)
    assert out["automated"].to_list() == [False] * 10 + [False, True, True], "a count unknown reads as before"
    one, two = out.row(10, named=True), out.row(11, named=True)
    assert one["actor_class"] == "human" and one["identity"] == "none"
    assert one["automation_score"] == two["automation_score"] > 0.5, "scored alike: the band shows it"
    assert any(r.startswith("evidence:protocol:http10") for r in one["reasons"])


def test_a_post_naming_the_sites_page_is_not_posted_blind(tmp_path: Path) -> None:
    """A form posted without its page loaded is blind only where it names no page of the site: a
    person whose address changed since loading the form, or an app drawing the form as a screen,
    names the page it was on; a script posting blind names none, or another site."""
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    lines = []
    for i in range(4):  # the site's visitors load the sign-up form, then post it
        lines += [(f"198.51.100.{i + 1}", 10 * i, "GET", "/signup", "https://site.example/")]
        lines += [(f"198.51.100.{i + 1}", 10 * i + 40, "POST", "/signup", "https://site.example/signup")]
    lines += [("203.0.113.1", 100, "POST", "/signup", "https://site.example/signup")]  # address changed
    lines += [("203.0.113.2", 110, "POST", "/signup", "-")]  # a script
    lines += [("203.0.113.3", 120, "POST", "/signup", "https://elsewhere.example/form")]
    text = "".join(
        f'{ip} - - [06/Oct/2025:12:{t // 60:02d}:{t % 60:02d} +0000] "{m} {p} HTTP/1.1" 200 512 "{r}" "{ua}"\n'
        for ip, t, m, p, r in sorted(lines, key=lambda x: x[1])
    )
    log = tmp_path / "access.log"
    log.write_text(text)
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False)
    clients = pl.read_parquet(lake / "clients" / "*.parquet")
    blind = {
        row["client_ip"]: "evidence:forms:posted_unloaded=1" in row["reasons"] for row in clients.iter_rows(named=True)
    }
    assert blind == {
        **{f"198.51.100.{i + 1}": False for i in range(4)},
        "203.0.113.1": False,
        "203.0.113.2": True,
        "203.0.113.3": True,
    }


def test_a_visit_switching_http_versions_is_counted_from_the_log(tmp_path: Path) -> None:
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    steps = [("GET", "/join", "HTTP/1.0", 0), ("POST", "/join", "HTTP/1.1", 9), ("GET", "/", "HTTP/1.1", 30)]
    text = "".join(
        f'203.0.113.7 - - [06/Oct/2025:12:00:{s:02d} +0000] "{m} {p} {v}" 200 512 "-" "{ua}"\n' for m, p, v, s in steps
    )
    row = _one_client(tmp_path, text)
    assert row["automated"] and "evidence:protocol:switched_in_visit=1" in row["reasons"]


def test_style_alone_never_makes_a_person_a_bot() -> None:
    # Contract: the behaviour models' judgement of style is one supporting family of evidence;
    # a browser is called automated on decisive evidence or on two families agreeing.
    from trafficlens.classify.labels import combine_behaviour

    rows = [("a", "X", 0.99)] * 10 + [("a", "Y", 0.2)] * 10
    labelled, pred = _cohort_frames(rows)
    ids = labelled["client_id"].to_list()
    out = combine_behaviour(labelled, pred, feats=_evidence_feats(ids, bare=set()))
    assert not out["automated"].any(), "sure style, nothing else: still people"
    assert out["automation_score"].to_list()[:10] == [0.99] * 10, "but their score says how likely"
    assert all(s < 0.5 for s in out["automation_score"].to_list()[10:])
    assert out.row(0, named=True)["confidence"] == pytest.approx(0.01)
    # No page read longer than two seconds over 20 page views: decisive, whatever the style.
    fast = _evidence_feats(ids, bare=set()).with_columns(
        page_gap_max=pl.when(pl.col("client_id") == "c15").then(2.0).otherwise(pl.col("page_gap_max"))
    )
    out = combine_behaviour(labelled, pred, feats=fast)
    assert out["automated"].to_list() == [False] * 15 + [True] + [False] * 4
    row = out.row(15, named=True)
    assert row["identity"] == "undeclared" and row["actor_class"] == "scraper"
    assert "evidence:timing:no_reading:max_gap=2.0s" in row["reasons"]


def _timed_visits(gaps: np.ndarray) -> pl.DataFrame:
    """`_evidence_feats` of one-visit clients whose page views are `gaps` seconds apart (a row
    each), with their assets: only the timing family can speak."""
    n, k = gaps.shape
    return _evidence_feats([f"c{i}" for i in range(n)], bare=set()).with_columns(
        pl.lit("shop").alias("site"),
        pl.lit("none").alias("identity"),
        pl.lit(k + 1).alias("pages"),
        pl.lit(k).alias("page_gaps"),
        pl.Series("page_gap_max", gaps.max(axis=1)),
        pl.Series("page_gap_cv", gaps.std(axis=1) / np.maximum(gaps.mean(axis=1), 1e-9)),
        pl.lit(0).alias("screen_gaps"),
        pl.lit(None, pl.Float64).alias("screen_gap_max"),
        pl.lit(None, pl.Float64).alias("screen_gap_cv"),
    )


def test_the_fastest_readers_are_not_timed_as_programs() -> None:
    """Time on a page follows a Weibull of shape 0.5-0.9 [Liu10]; the fastest readers (scale 3 s),
    with 0.3-1.5 s for each page to load and the log's times to the second, are drawn visit by
    visit: at no length of visit is more than one in a thousand called automated by its timing.
    Programs with no reading at all are, over a dozen pages at two seconds a page or twenty at four."""
    from trafficlens.classify.evidence import decided, gather

    rng = np.random.default_rng(7)
    for shape in (0.5, 0.7, 0.9):
        for pages in (12, 16, 20, 30):
            n = 20_000
            gaps = 3.0 * rng.weibull(shape, (n, pages - 1)) + rng.uniform(0.3, 1.5, (n, pages - 1))
            ts = np.floor(np.cumsum(np.hstack([rng.uniform(0, 1, (n, 1)), gaps]), axis=1))
            out = gather(_timed_visits(np.diff(ts, axis=1)), pl.lit(0.0))
            share = out.select(decided().mean()).item()
            assert share <= 0.001, f"shape {shape}, {pages} pages: {share:.4f} of readers called automated"
    programs = [np.full((1, 11), 2.0), np.full((1, 19), 4.0)]
    for gaps in programs:
        out = gather(_timed_visits(gaps), pl.lit(0.0))
        assert out["ev_decisive"].item(), gaps
        assert out["ev_reasons"].item()[0].startswith("evidence:timing:no_reading:max_gap=")
    # Three or four seconds a page over sixteen pages, unevenly: as fast as the quickest readers
    # now and then are.
    uneven = np.array([[2.5, 4.5] * 7 + [3.0]])
    assert not gather(_timed_visits(uneven), pl.lit(0.0))["ev_decisive"].item()


def test_both_models_sure_together_decide_one_alone_does_not() -> None:
    # The failure this rule exists for: the navigation model sure of people the main model called
    # human (returning shoppers reading 25 pages without going back).
    from trafficlens.classify.labels import combine_behaviour

    labelled, pred = _cohort_frames([("a", "X", 0.95), ("a", "X", 0.75), ("a", "X", 0.6)])
    pred = pred.with_columns(
        b_human_proba=pl.Series([0.7, 0.25, 0.25]), b_class=pl.Series(["human", "scraper", "scraper"])
    )
    ids = labelled["client_id"].to_list()
    out = combine_behaviour(labelled, pred, feats=_evidence_feats(ids, bare=set()))
    assert out["automated"].to_list() == [False, True, False]
    assert "evidence:style:models_agree=0.75" in out.row(1, named=True)["reasons"]
    assert out.row(1, named=True)["actor_class"] == "scraper"


def test_a_score_in_the_likely_automated_band_names_what_raised_it() -> None:
    """The navigation model's reading puts a browser in the band below the level at which it reads a
    visit as automated: the reasons name it there too, and the label stays human."""
    from trafficlens.classify.labels import combine_behaviour

    labelled, pred = _cohort_frames([("a", "X", 0.65), ("a", "X", 0.3)])
    out = combine_behaviour(labelled, pred, feats=_evidence_feats(labelled["client_id"].to_list(), bare=set()))
    band, plain = out.row(0, named=True), out.row(1, named=True)
    assert not band["automated"] and band["automation_score"] >= LIKELY_AUTOMATED
    assert "behaviour:navigation:0.65" in band["reasons"] and "behaviour:page_gap_cv=0.30" in band["reasons"]
    assert plain["automation_score"] < LIKELY_AUTOMATED
    assert not any(r.startswith("behaviour:navigation:") for r in plain["reasons"])


def test_a_campaign_cohort_lends_its_prior_to_its_borderline_visits() -> None:
    from trafficlens.classify.labels import combine_behaviour

    rows = (
        [("a", "X", 0.95)] * 30
        + [("a", "X", 0.55)] * 10  # a campaign: most of its visits found
        + [("a", "Y", 0.9)]
        + [("a", "Y", 0.55)] * 39  # people, one bot among them
        + [("b", "X", 0.55)] * 5  # the same build on another site
        + [("a", "Z", 0.1)] * 200  # the site's own people, loading its assets
    )
    labelled, pred = _cohort_frames(rows)
    ids = labelled["client_id"].to_list()
    order = pl.col("client_id").str.slice(1).cast(pl.Int64)
    # The campaign and the people of cohort Y load no assets; the site's people do.
    feats = _evidence_feats(ids, bare=set(ids[:85]))
    out = combine_behaviour(labelled, pred, nav_prior=0.4, feats=feats).sort(order)
    plain = combine_behaviour(labelled, pred, feats=feats).sort(order)
    score, before = out["automation_score"].to_list(), plain["automation_score"].to_list()
    # The navigation model's reading, however its cohort reads it, is not style's support: with
    # the main model sure of people, no one is flipped; the cohort raises the campaign's scores.
    assert not out["automated"].any() and not plain["automated"].any()
    assert all(score[i] > before[i] for i in range(30, 40)), "the campaign's borderline visits join it"
    assert score[40:80] == before[40:80], "a cohort of people lends no suspicion"
    assert score[80:] == before[80:], "five visits elsewhere are too few to say anything; the site's people stay"
    cohort = out.row(35, named=True)
    # (30 found + 20 visits' worth of the 0.4 prior) / (40 + 20) = 0.63; 0.55 read against it: 0.78.
    assert "behaviour:cohort:0.63" in cohort["reasons"] and cohort["automation_score"] >= 0.5
    assert any(r.startswith("evidence:assets:none_where_site_norm=") for r in cohort["reasons"])
    # Where the main model leans to automation too, style and the bare pages are two families.
    leaning = pred.with_columns(
        b_human_proba=pl.when(pl.col("client_id").is_in(ids[:41])).then(0.35).otherwise(pl.col("b_human_proba"))
    )
    auto = combine_behaviour(labelled, leaning, nav_prior=0.4, feats=feats).sort(order)["automated"].to_list()
    assert all(auto[:41]) and not any(auto[41:])


def test_a_cohort_share_is_corrected_for_what_the_navigation_model_misses() -> None:
    from trafficlens.classify.labels import combine_behaviour

    rows = [("a", "X", 0.95)] * 24 + [("a", "X", 0.5)] * 16 + [("a", "Y", 0.9)] + [("a", "Y", 0.5)] * 39
    rows += [("a", "Z", 0.1)] * 200
    labelled, pred = _cohort_frames(rows)
    ids = labelled["client_id"].to_list()
    feats = _evidence_feats(ids, bare=set(ids[:80]))
    order = pl.col("client_id").str.slice(1).cast(pl.Int64)
    raw = combine_behaviour(labelled, pred, nav_prior=0.4, feats=feats).sort(order)
    # Found 24 of 40: (24 + 8) / 60 = 0.53, against which 0.5 reads 0.63.
    assert "behaviour:cohort:0.53" in raw.row(30, named=True)["reasons"]
    # A model that finds 75% of automation and flags 1.5% of people: 24 found of 40 means
    # (0.6 - 0.015) / 0.735 = 80% automated; (31.8 + 8) / 60 = 0.66, and 0.5 read against it is 0.66.
    fixed = combine_behaviour(labelled, pred, nav_prior=0.4, nav_rates=(0.75, 0.015), feats=feats).sort(order)
    assert "behaviour:cohort:0.66" in fixed.row(30, named=True)["reasons"]
    assert "behaviour:cohort:0.66" not in fixed.row(0, named=True)["reasons"], "found on its own: no cohort"
    assert fixed.row(30, named=True)["automation_score"] > raw.row(30, named=True)["automation_score"]
    assert fixed["automation_score"].to_list()[41:] == raw["automation_score"].to_list()[41:], (
        "the people's cohort stays as it was"
    )
    assert not fixed["automated"].any(), "the navigation model's reading alone flips no one"


def test_a_near_tie_between_candidates_goes_to_the_random_forest() -> None:
    from trafficlens.classify.model import choose

    def s(**f1: float) -> dict[str, dict]:
        return {n: {"macro_f1": v} for n, v in f1.items()}

    assert choose(s(hist_gradient_boosting=0.994, random_forest=0.991, logistic_regression=0.88)) == "random_forest"
    assert choose(s(hist_gradient_boosting=0.990, random_forest=0.980)) == "hist_gradient_boosting"
    assert choose(s(logistic_regression=0.9)) == "logistic_regression"


def test_automation_score_counts_declarations_and_threats_as_decisive() -> None:
    from trafficlens.classify.evidence import with_automation_score

    clients = pl.DataFrame(
        {
            "automated": [True, True, True, False, False],
            "threats": [[], ["credential_stuffing"], [], [], ["robots_violation"]],
            # a declared bot (no behaviour score), a browser found by a threat, a browser found by two
            # supporting families, a person in the likely-automated band, a person with no score
            "automation_score": [None, 0.6, 0.85, 0.6, None],
        },
        schema_overrides={"automation_score": pl.Float64},
    )
    assert with_automation_score(clients)["automation_score"].to_list() == [1.0, 0.99, 0.85, 0.6, 0.0]


def test_crowds_behind_one_carrier_address_stay_human_on_a_site_behind_a_cdn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of phone users a day behind each of a few carrier addresses [CF25: up to
    thousands], on a site whose assets come from a CDN: one address shows many browsers an hour
    and no asset, and one browser build there views hundreds of distinct pages a day. Neither
    makes them bots: they follow links (referrers), and re-read the popular pages."""
    import dataclasses

    import trafficlens.simulate.families as families
    import trafficlens.simulate.scenarios.people as people

    monkeypatch.setattr(people, "SHARED", dataclasses.replace(families.SHARED, nat_visitors=(1000, 3000)))
    log = tmp_path / "crowd.log"
    simulate(
        log,
        days=2,
        seed=5,
        scale=6,
        site_kind="media",
        families=["human:carrier_nat"],
        site_layout="cdn",
        progress=False,
    )
    lake = tmp_path / "lake"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False)
    r = pl.read_parquet(f"{lake}/requests/*/*.parquet")
    # What the old rules read as automation is there: 5+ browsers an hour on one address with no
    # asset, and one browser build viewing 500+ distinct pages in a day.
    per_hour = r.group_by("client_ip", pl.col("ts").dt.truncate("1h")).agg(pl.col("user_agent").n_unique())
    assert per_hour["user_agent"].max() >= 5 and r.filter(pl.col("page_type") == "static").height == 0
    daily = r.group_by("client_id", pl.col("ts").dt.date()).agg(pl.col("path").n_unique())
    assert daily["path"].max() >= 500
    truth = pl.read_parquet(f"{log}.truth.parquet").select("client_ip", "user_agent", "family").unique()
    c = pl.read_parquet(f"{lake}/clients/*.parquet").join(truth, on=["client_ip", "user_agent"])
    crowd = c.filter(pl.col("family") == "human:carrier_nat")
    assert crowd.height > 20
    assert crowd.filter("automated").height == 0, crowd.filter("automated")["reasons"].to_list()[:3]
    assert crowd.filter(pl.col("threats").list.len() > 0).height == 0


def _spa_visit(ip: str, dwell: list[float], polls: float = 0.0) -> str:
    """A visit to a single-page app: its document and assets once, then a screen per `dwell`
    entry (the time before the next), each screen's data as GET API calls naming the app's route
    as referrer, an analytics beacon posted on each; every third screen is the list again. With
    `polls`, a widget polls one route's notifications every `polls` seconds throughout."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36"
    site = "https://app.example"
    reqs: list[tuple[float, str, str, str]] = [(0.0, "GET", "/destinations", "-")]
    reqs += [(0.2, "GET", f"/static/{a}", f"{site}/destinations") for a in ("app.js", "app.css")]
    t = 0.5
    for i, d in enumerate(dwell):
        route = "/destinations" if i % 3 == 0 else f"/hotels/h{i}"
        api = "/api/places" if i % 3 == 0 else f"/api/hotels/{i}"
        reqs += [(t, "GET", api, site + route), (t + 0.1, "GET", f"{api}/prices", site + route)]
        reqs.append((t + 0.3, "POST", "/api/collect", site + route))
        t += d
    if polls:
        reqs += [(p * polls, "GET", "/api/notifications", f"{site}/destinations") for p in range(1, int(t / polls))]
    lines = []
    for s, m, p, ref in sorted(reqs):
        ts = f"06/Oct/2025:12:{int(s) // 60:02d}:{int(s) % 60:02d} +0000"
        lines.append(f'{ip} - - [{ts}] "{m} {p} HTTP/1.1" 200 512 "{ref}" "{ua}"\n')
    return "".join(lines)


def test_a_sweep_of_a_single_page_app_is_timed_by_its_screens(tmp_path: Path) -> None:
    """On a single-page app the log holds one page view a visit: the time between screens (the
    routes its API calls name, each first shown) is what says whether anyone read them. A program
    stepping through 16 screens two seconds apart is automated, back to the list between items
    included; a person reading the same screens (a widget polling all along) is not."""
    (tmp_path / "bot").mkdir()
    (tmp_path / "person").mkdir()
    bot = _one_client(tmp_path / "bot", _spa_visit("198.51.100.7", [2.0] * 24))
    assert bot["automated"], bot["reasons"]
    assert "evidence:timing:no_reading:screens:max_gap=2.0s" in bot["reasons"]
    dwell = [4.0, 25.0, 3.0, 40.0, 12.0, 3.0, 60.0, 8.0, 2.0, 30.0, 15.0, 3.0] * 2
    person = _one_client(tmp_path / "person", _spa_visit("198.51.100.8", dwell, polls=2.0))
    assert not person["automated"], person["reasons"]
    assert not any(r.startswith("evidence:timing") for r in person["reasons"])


def test_a_pages_own_api_calls_are_not_read_as_pages_viewed(tmp_path: Path) -> None:
    """Each document load of a modern shop asks its API who is signed in and what the cart holds,
    and fetches the app's manifest, all in the second the page opens. Read as page views, six
    visits of one screen each made 18 gaps of under a second: a person timed as a program."""
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1"
    site = "https://shop.example"
    lines = []
    for visit in range(6):
        start = visit * 7200  # two hours apart: a visit each
        page = f"/shop/item/{100 + visit}"
        reqs = [(start, page, "-")]
        reqs += [(start, p, site + page) for p in ("/api/session", "/api/cart/summary", "/site.webmanifest")]
        reqs += [
            (start + 1, f"/assets/app-{visit}.js", site + page),
            (start + 45, f"/api/product/{100 + visit}", site + page),
        ]
        for s, p, ref in reqs:
            day, rest = divmod(s, 86400)
            ts = f"{6 + day:02d}/Oct/2025:{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d} +0000"
            lines.append(f'203.0.113.44 - - [{ts}] "GET {p} HTTP/2.0" 200 512 "{ref}" "{ua}"\n')
    c = _one_client(tmp_path, "".join(lines))
    assert c["sessions"] == 6
    assert not c["automated"], c["reasons"]
    assert not any(r.startswith("evidence:timing") for r in c["reasons"])


def test_coverage_counts_the_records_a_program_reads_from_the_api(tmp_path: Path) -> None:
    """A browser's user agent reading 600 products from the site's API in a day, no page around
    them (its calls name none), covers more than any reader: automated, on coverage. A day of 600
    screens on the same app, its calls naming their page (colleagues behind one proxy between
    them), is not read as coverage, nor one person's 80 screens."""
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36"

    def line(ip: str, s: float, path: str, ref: str) -> str:
        ts = f"06/Oct/2025:{int(s) // 3600:02d}:{int(s) % 3600 // 60:02d}:{int(s) % 60:02d} +0000"
        return f'{ip} - - [{ts}] "GET {path} HTTP/1.1" 200 512 "{ref}" "{ua}"\n'

    (tmp_path / "bot").mkdir()
    (tmp_path / "person").mkdir()
    bot = _one_client(
        tmp_path / "bot", "".join(line("198.51.100.9", 3600 + i * 1.5, f"/api/product/{i}", "-") for i in range(600))
    )
    assert bot["automated"], bot["reasons"]
    assert "evidence:coverage:views_per_day=600" in bot["reasons"]
    site = "https://app.example"
    dwell = (12, 55, 8, 30, 90, 20, 6, 44, 17, 70)  # seconds on a screen, uneven as a reader's
    person = [line("198.51.100.10", 3600, "/shop", "-")]
    t = 3601
    for i in range(80):
        route = f"{site}/shop/item/{i % 60}"
        person += [line("198.51.100.10", t, f"/api/product/{i % 60}", route)]
        person += [line("198.51.100.10", t, "/api/cart/summary", route)]
        t += dwell[i % 10]
    c = _one_client(tmp_path / "person", "".join(person))
    assert not c["automated"], c["reasons"]
    assert not any(r.startswith("evidence:coverage") for r in c["reasons"])
    (tmp_path / "office").mkdir()
    office, t = [], 3600
    for i in range(600):
        office.append(line("198.51.100.11", t, f"/api/product/{i}", f"{site}/shop/item/{i}"))
        t += dwell[i % 10] / 4  # several people at once
    c = _one_client(tmp_path / "office", "".join(office))
    assert not any(r.startswith("evidence:coverage") for r in c["reasons"]), c["reasons"]


def test_a_card_kept_by_the_site_is_paid_in_a_click_a_sign_up_is_not_filled_in_one(tmp_path: Path) -> None:
    """A returning buyer whose card the site keeps pays a second after the payment page loads: that
    only supports other evidence. A sign-up form posted a second after loading it is no person's."""
    ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"

    def visit(ip: str, steps: list[tuple[str, str, int]]) -> str:
        out = []
        for method, path, s in steps:
            ts = f"06/Oct/2025:18:{s // 60:02d}:{s % 60:02d} +0000"
            ref = "-" if s == 0 else "https://shop.example/"
            out.append(f'{ip} - - [{ts}] "{method} {path} HTTP/1.1" 200 2048 "{ref}" "{ua}"\n')
            if method == "GET":
                out += [
                    f'{ip} - - [{ts}] "GET /static/{a} HTTP/1.1" 200 512 "https://shop.example{path}" "{ua}"\n'
                    for a in ("site.css", "app.js")
                ]
        return "".join(out)

    (tmp_path / "buyer").mkdir()
    (tmp_path / "farm").mkdir()
    buyer = visit(
        "203.0.113.20",
        [
            ("GET", "/", 0),
            ("GET", "/products/kettle", 25),
            ("GET", "/cart", 70),
            ("GET", "/checkout/payment", 82),
            ("POST", "/checkout/payment", 83),
            ("GET", "/orders", 90),
        ],
    )
    row = _one_client(tmp_path / "buyer", buyer)
    assert not row["automated"], row["reasons"]
    assert "evidence:forms:paid_within=1.0s" in row["reasons"]
    signup = visit("203.0.113.21", [("GET", "/", 0), ("GET", "/register", 30), ("POST", "/register", 31)])
    row = _one_client(tmp_path / "farm", signup)
    assert row["automated"] and "evidence:timing:form_fill=1.0s" in row["reasons"], row["reasons"]
