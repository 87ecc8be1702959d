"""How well behaviour separates humans from automation, on simulated and real labelled traffic.

    python benchmarks/eval_behaviour.py             # figures; exit 1 when a target is missed
    python benchmarks/eval_behaviour.py --json out.json
    python benchmarks/eval_behaviour.py --train-seeds 111-116   # a model trained on other seeds
    python benchmarks/eval_behaviour.py --skip-lofo  # without the model per family (about 25 min)
    python benchmarks/eval_behaviour.py --skip-sim --family human:tab_opener   # one family left out
    python benchmarks/eval_behaviour.py --skip-lofo --families-alone   # each family of people in volume

- Simulated traffic with seeds the model never saw (EVAL_SEEDS), one log per site kind:
  client-level macro-F1 over human / crawler / scraper / agent (target >= 0.95).
- logparser's hackers-access.log: every address is a spam or hack bot with an ordinary browser
  user agent; the share labelled automated (target >= 90%).
- Iliou et al. 2021, phase 1: each PHP session id becomes an address of its own; balanced
  accuracy of human vs moderate bots (>= 0.85) and vs advanced bots (>= 0.70) over the annotated
  sessions, a session found where it is labelled automated or shown in the likely-automated band
  (its bots differ from its people only in navigation style, which never decides alone); the
  confident labels' figures are printed beside.
- Leave-one-family-out, the measure of generalisation: for each simulated family of people and
  each family of browser-like bots, a model trained without it (LOFO_TRAIN_SEEDS), then the share
  of that family's clients labelled automated on unseen logs of each site layout (assets served
  by the origin, by a CDN, a single-page app). People: at most 1% in every family and layout;
  bots not built to pass as people: at least 90%.
- With --families-alone, each family of people alone in volume (a few thousand clients a site,
  shop and media, every layout) on a seed apart from all others, by the shipped model: how many
  are labelled automated and on what evidence (the model trained on these families, other seeds:
  the rare person of a known family, not generalisation).
- People's connections, which no family of the simulator has (--skip-connections to leave out):
  on a simulated week of each site kind and layout (seeds apart from all others), a tenth of the
  people's clients moved to a hosting provider's address (a VPN in a cloud), another tenth
  speaking HTTP/1.0 for every request (an old proxy): the share of each labelled automated, by
  the shipped model (at most 1%), beside the other people and the bots' recall.
- Elastic's 10,000-line real Apache log: the class mix, and the human-labelled clients with the
  most requests, to look at by hand.
Real data comes from ../shared/external (or $TRAFFICLENS_EXTERNAL) and is skipped when absent.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from trafficlens.classify.evidence import LIKELY_AUTOMATED  # noqa: E402
from trafficlens.classify.pages import default_rules_path  # noqa: E402
from trafficlens.classify.pipeline import classify  # noqa: E402
from trafficlens.classify.training import EVAL_SEEDS, SITE_KINDS  # noqa: E402
from trafficlens.ingest import ingest  # noqa: E402
from trafficlens.report.evaluate import evaluate  # noqa: E402
from trafficlens.simulate import simulate  # noqa: E402

EXTERNAL = Path(os.environ.get("TRAFFICLENS_EXTERNAL", ROOT.parent / "shared" / "external"))
MODEL: Path | None = None  # the package's model unless --train-seeds trains another
LOFO_CLIENTS: Path | None = None  # where --lofo-clients keeps the held-out families' clients
TARGETS = {
    "sim_macro_f1": 0.95,
    "hackers_automated": 0.90,
    "iliou_moderate_bacc": 0.85,
    "iliou_advanced_bacc": 0.70,
    "lofo_bots_worst_recall": 0.90,
}
# Held to at most: the share of a held-out family of people labelled automated; the share of people
# on a cloud VPN or behind an HTTP/1.0 proxy labelled automated (worst site).
CEILINGS = {"lofo_people_worst": 0.01, "connections_people_worst": 0.01}


def simulated(work: Path, out: dict, days: int, scale: float) -> None:
    f1s = []
    for i, seed in enumerate(EVAL_SEEDS):
        kind = SITE_KINDS[i % len(SITE_KINDS)]
        log = work / f"eval-{kind}-{seed}.log"
        ranges = work / f"ranges-{seed}"
        t0 = time.perf_counter()
        sim = simulate(log, days=days, seed=seed, scale=scale, site_kind=kind, ranges_out=ranges, progress=False)
        lake = work / f"eval-lake-{seed}"
        ingest([str(log)], lake, progress=False)
        classify(lake, ranges_dir=ranges, progress=False, model_dir=MODEL)
        ev = evaluate(lake, sim.truth_path)
        c = ev.clients["actor_class"]
        f1s.append(c["macro_f1"])
        out[f"sim_{kind}_{seed}"] = {
            "lines": sim.lines,
            "clients": c["n"],
            "macro_f1": c["macro_f1"],
            "per_class_f1": {k: v["f1"] for k, v in c["per_class"].items()},
            "request_macro_f1": ev.requests["actor_class"]["macro_f1"],
            "ai_driven_f1": ev.clients.get("ai_driven", {}).get("per_class", {}).get("True", {}).get("f1"),
            "malicious_f1": ev.clients.get("malicious", {}).get("per_class", {}).get("True", {}).get("f1"),
            "confusion": c["confusion"],
            "labels": c["labels"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    out["sim_macro_f1"] = min(f1s)


def hackers(work: Path, out: dict) -> None:
    log = EXTERNAL / "logparser-hackers-access" / "hackers-access.log"
    if not log.exists():
        print("logparser-hackers-access: not available, skipped")
        return
    lake = work / "hackers"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, model_dir=MODEL)
    c = pl.read_parquet(lake / "clients" / "*.parquet")
    per_ip = c.group_by("client_ip").agg(pl.col("automated").any(), pl.col("reasons").first())
    out["hackers_addresses"] = per_ip.height
    out["hackers_automated"] = per_ip["automated"].mean()
    out["hackers_reasons"] = (
        c.filter("automated")
        .select(pl.col("reasons").list.first().str.replace(r":[^:]*$", ""))
        .to_series()
        .value_counts()
        .sort("count", descending=True)
        .head(8)
        .rows()
    )


def iliou(work: Path, out: dict) -> None:
    base = EXTERNAL / "web-bot-detection-iliou2021" / "phase1"
    if not base.is_dir():
        print("web-bot-detection-iliou2021: not available, skipped")
        return
    # `- - [ts] "request" status bytes "referer" SESSION "user agent"`: the session id takes the
    # place of the (removed) client address, as the dataset's README suggests.
    lines = []
    for f in sorted((base / "web_logs").rglob("*.log.gz")):
        with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head, _, rest = line.partition('" ')
                parts = rest.split(" ", 3)
                if len(parts) < 4:
                    continue
                status, size, ref, tail = parts
                sess, _, ua = tail.partition(" ")
                digest = hashlib.blake2b(sess.encode(), digest_size=3).digest()
                ip = "10.{}.{}.{}".format(*digest)
                lines.append(f'{ip} - - {head[4:]}" {status} {size} {ref} {ua.rstrip()}')
    log = work / "iliou.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The site's own mouse-movement beacons (/storage/*.php) are API calls, not pages: mapped
    # the way a site owner would, with a page rule ahead of the shipped ones.
    pages = work / "iliou-pages.yml"
    pages.write_text("- {page_type: api, path: '^/storage/'}\n" + default_rules_path().read_text(), encoding="utf-8")
    lake = work / "iliou"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, pages=pages, model_dir=MODEL)
    c = (
        pl.read_parquet(lake / "clients" / "*.parquet")
        .group_by("client_ip")
        .agg(pl.col("automated").any(), pl.col("automation_score").max())
    )
    auto = dict(zip(c["client_ip"].to_list(), c["automated"].to_list()))
    # The "likely automated" band: what the report shows beside the confident shares.
    band = dict(zip(c["client_ip"].to_list(), (c["automation_score"] >= LIKELY_AUTOMATED).to_list()))
    for kind in ("moderate", "advanced"):
        labels = {}
        for part in ("train", "test"):
            for row in (base / "annotations" / f"humans_and_{kind}_bots" / part).read_text().split("\n"):
                if row.strip():
                    sess, label = row.split()
                    digest = hashlib.blake2b(sess.encode(), digest_size=3).digest()
                    labels["10.{}.{}.{}".format(*digest)] = label != "human"
        present = {ip: bot for ip, bot in labels.items() if ip in auto}
        bots = [ip for ip, b in present.items() if b]
        humans = [ip for ip, b in present.items() if not b]
        tpr = sum(auto[ip] for ip in bots) / max(len(bots), 1)
        tnr = sum(not auto[ip] for ip in humans) / max(len(humans), 1)
        # What the report says of a client: automated, or left human in the likely-automated band.
        # These bots differ from these people only in how they move from page to page, the style
        # that never decides alone (trafficlens.classify.evidence): the band is where they belong.
        found = {ip: auto[ip] or band[ip] for ip in present}
        tpr_band = sum(found[ip] for ip in bots) / max(len(bots), 1)
        tnr_band = sum(not found[ip] for ip in humans) / max(len(humans), 1)
        out[f"iliou_{kind}_bacc"] = (tpr_band + tnr_band) / 2
        out[f"iliou_{kind}_detail"] = {
            "bots": len(bots),
            "humans": len(humans),
            "bot_recall": tpr,
            "human_recall": tnr,
            "labels_bacc": (tpr + tnr) / 2,
            "bots_in_band": sum(band[ip] for ip in bots) / max(len(bots), 1),
            "humans_in_band": sum(band[ip] for ip in humans) / max(len(humans), 1),
        }


def elastic(work: Path, out: dict) -> None:
    log = EXTERNAL / "elastic-apache-logs" / "apache_logs"
    if not log.exists():
        print("elastic-apache-logs: not available, skipped")
        return
    lake = work / "elastic"
    ingest([str(log)], lake, progress=False)
    classify(lake, progress=False, model_dir=MODEL)
    r = pl.scan_parquet(str(lake / "requests" / "*" / "*.parquet"))
    out["elastic_mix"] = r.group_by("actor_class").len().sort("len", descending=True).collect().rows()
    c = pl.read_parquet(lake / "clients" / "*.parquet")
    out["elastic_top_humans"] = (
        c.filter(pl.col("actor_class") == "human")
        .sort("requests", descending=True)
        .head(12)
        .select("client_ip", "requests", "sessions", "user_agent", "asset_per_page", "referer_share")
        .rows()
    )


# Leave-one-family-out: training seeds and evaluation seeds of their own, apart from the shipped
# model's and from EVAL_SEEDS; a smaller training set per model (six logs of three days at half
# volume) keeps a model per family affordable.
LOFO_TRAIN_SEEDS = (201, 202, 203, 204, 205, 206)
LOFO_EVAL = ((911, "shop", "origin"), (912, "media", "cdn"), (913, "travel", "spa"))
# Bot families whose user agent is a browser's: the ones behaviour has to find.
LOFO_BOTS = (
    "bot:stealth_scraper",
    "bot:agentic_browser",
    "bot:headless_sweep",
    "bot:humanised_automation",
    "bot:paced_crawler",
    "bot:credential_stuffing",
    "bot:card_testing",
    "bot:fake_signup",
)
# Families built to pass as people: their recall is stated, not held to the 90% bar.
DESIGNED_TO_PASS = ("bot:humanised_automation", "bot:agentic_browser")


def _family_clients(lake: Path, truth: Path, model: Path | None = None) -> pl.DataFrame:
    """Each client's family (what most of its lines are), whether it was labelled automated, its
    automation_score, and the two behaviour models' probabilities of automation (`model_p`, and
    `nav_p` where the navigation model reads it)."""
    from trafficlens.classify.model import load_model

    t = pl.read_parquet(truth).group_by("client_ip", "user_agent").agg(family=pl.col("family").mode().first())
    c = pl.read_parquet(lake / "clients" / "*.parquet")
    p = (
        load_model(model)
        .predict(c)
        .select("client_id", model_p=1 - pl.col("b_human_proba"), nav_p=pl.col("b_nav_proba"))
    )
    c = c.join(p, on="client_id").select(
        "client_ip", "user_agent", "automated", "automation_score", "model_p", "nav_p", "requests"
    )
    return c.join(t, on=["client_ip", "user_agent"], how="inner", nulls_equal=True)


def lofo(work: Path, out: dict, families: list[str] | None = None) -> None:
    """For each family, a model trained without it, and the share of its clients labelled automated
    on logs of every site layout (people: as few as can be; bots: recall)."""
    from trafficlens.classify.training import train
    from trafficlens.simulate import HUMAN_FAMILIES

    lakes = []
    for seed, kind, layout in LOFO_EVAL:
        log = work / f"lofo-{seed}.log"
        sim = simulate(
            log,
            days=7,
            seed=seed,
            site_kind=kind,
            site_layout=layout,
            ranges_out=work / f"lofo-r{seed}",
            progress=False,
        )
        lake = work / f"lofo-lake-{seed}"
        ingest([str(log)], lake, progress=False)
        lakes.append((layout, lake, work / f"lofo-r{seed}", Path(sim.truth_path)))
    todo = families or [*HUMAN_FAMILIES, *LOFO_BOTS]
    rows = []
    held: list[pl.DataFrame] = []
    for fam in todo:
        t0 = time.perf_counter()
        model = work / f"lofo-model-{fam.replace(':', '-')}"
        train(
            out=model,
            seeds=LOFO_TRAIN_SEEDS,
            days=3,
            scale=0.5,
            progress=False,
            only="random_forest",
            families=f"-{fam}",
        )
        row: dict = {"family": fam}
        for layout, lake, ranges, truth in lakes:
            classify(lake, ranges_dir=ranges, progress=False, model_dir=model)
            f = _family_clients(lake, truth, model).filter(pl.col("family") == fam)
            held.append(f.with_columns(layout=pl.lit(layout), held_out=pl.lit(fam)))
            row[layout] = f["automated"].mean() if f.height else None
            row[f"{layout}_n"] = f.height
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(
            f"  {fam:<28} "
            + "  ".join(
                f"{lay} {row[lay]:.3f} (n={row[lay + '_n']})" if row[lay] is not None else f"{lay} -"
                for lay, *_ in lakes
            ),
            flush=True,
        )
    out["lofo"] = rows
    if held and LOFO_CLIENTS is not None:
        pl.concat(held, how="diagonal_relaxed").write_parquet(LOFO_CLIENTS)
    people = [r for r in rows if r["family"].startswith("human:")]
    worst = [max(v for k, v in r.items() if k in ("origin", "cdn", "spa") and v is not None) for r in people]
    if worst:
        out["lofo_people_worst"] = max(worst)
    bots = [r for r in rows if r["family"].startswith("bot:") and r["family"] not in DESIGNED_TO_PASS]
    recall = [min(v for k, v in r.items() if k in ("origin", "cdn", "spa") and v is not None) for r in bots]
    if recall:
        out["lofo_bots_worst_recall"] = min(recall)


def report(out: dict) -> int:
    fails = 0
    print()
    for key in sorted(k for k in out if k.startswith("sim_") and isinstance(out[k], dict)):
        s = out[key]
        pcf = ", ".join(f"{k} {v:.3f}" for k, v in s["per_class_f1"].items())
        print(
            f"{key}: {s['lines']:,} lines, {s['clients']:,} clients: client macro-F1 {s['macro_f1']:.3f} ({pcf}); "
            f"requests {s['request_macro_f1']:.3f}; ai_driven F1 {s['ai_driven_f1']}; malicious F1 {s['malicious_f1']}"
        )
    rows = [
        ("simulated, unseen seeds: client macro-F1 (worst log)", "sim_macro_f1"),
        ("hackers-access: addresses labelled automated", "hackers_automated"),
        ("Iliou phase 1: human vs moderate bots, balanced accuracy*", "iliou_moderate_bacc"),
        ("Iliou phase 1: human vs advanced bots, balanced accuracy*", "iliou_advanced_bacc"),
        ("held-out bot families (not built to pass): worst recall", "lofo_bots_worst_recall"),
    ]
    if out.get("lofo"):
        print("\nleave-one-family-out: share of the family's clients labelled automated, by site layout")
        for r in out["lofo"]:
            cells = "  ".join(
                f"{lay} {r[lay]:.3f} (n={r[lay + '_n']})" if r.get(lay) is not None else f"{lay} -"
                for lay in ("origin", "cdn", "spa")
            )
            print(f"  {r['family']:<28} {cells}")
    if out.get("alone"):
        print(
            "\neach family of people alone (seed 23, shipped model): clients labelled automated, by site kind and layout"
        )
        total = sum(r[3] for r in out["alone"])
        flagged = sum(r[4] for r in out["alone"])
        for fam in dict.fromkeys(r[0] for r in out["alone"]):
            mine = [r for r in out["alone"] if r[0] == fam]
            cells = "  ".join(f"{r[1]}/{r[2]} {r[4]}/{r[3]}" for r in mine)
            print(f"  {fam:<28} {cells}")
        why: dict[str, int] = {}
        for r in out["alone"]:
            for reason in r[5]:
                key = ":".join(str(reason).split(":")[:3])
                why[key] = why.get(key, 0) + 1
        print(f"  in all: {flagged} of {total:,} ({flagged / max(total, 1):.4%}); first evidence: {why}")
    if out.get("connections"):
        print(
            "\npeople's connections (shipped model): clients labelled automated / clients (in the likely-automated band)"
        )
        for site in dict.fromkeys(r[0] for r in out["connections"]):
            cells = "  ".join(f"{g} {a:,}/{n:,} ({band:,})" for s_, g, n, a, band in out["connections"] if s_ == site)
            print(f"  {site:<14} {cells}")
    for label, key in rows:
        if key not in out:
            continue
        ok = out[key] >= TARGETS[key]
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {label:<58} {out[key]:.3f}  (target >= {TARGETS[key]})")
    for key, label in (
        ("lofo_people_worst", "held-out families of people: worst share labelled automated"),
        ("connections_people_worst", "people on a cloud VPN or an HTTP/1.0 proxy: worst share"),
    ):
        if key not in out:
            continue
        ok = out[key] <= CEILINGS[key]
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {label:<58} {out[key]:.3f}  (target <= {CEILINGS[key]})")
    for kind in ("moderate", "advanced"):
        d = out.get(f"iliou_{kind}_detail")
        if d:
            print(
                f"  * Iliou {kind}: {d['bots']} bot and {d['humans']} human sessions, found where labelled automated "
                f"or in the likely-automated band (bots {d['bots_in_band']:.3f}, people {d['humans_in_band']:.3f} "
                f"in the band); by the confident labels alone: bot recall {d['bot_recall']:.3f}, human recall "
                f"{d['human_recall']:.3f}, balanced accuracy {d['labels_bacc']:.3f}"
            )
    if "hackers_reasons" in out:
        print(f"  hackers-access ({out['hackers_addresses']} addresses), first reasons: {out['hackers_reasons']}")
    if "elastic_mix" in out:
        print(f"\nelastic apache_logs class mix (requests): {out['elastic_mix']}")
        print("top human-labelled clients (address, requests, sessions, user agent, assets/page, referer share):")
        for row in out["elastic_top_humans"]:
            print(f"  {row[0]:<16} {row[1]:>5} {row[2]:>4}  {str(row[3])[:70]:<70} {row[4]:.2f} {row[5]:.2f}")
    return fails


# People's connections: seeds apart from every training and evaluation seed, one site per kind.
CONNECTION_SITES = (("shop", "origin", 5151), ("media", "cdn", 5252), ("travel", "spa", 5353))
# A cloud provider's block of the simulated ranges (`simulate.addresses.HOSTING_PUBLISHED`), where a
# person on a VPN is moved: each address of the log to one of its own, so that the people sharing
# an address (an office, a carrier's NAT) keep sharing one.
VPN_BLOCK = "159.89"


def connections(work: Path, out: dict, scale: float = 4.0) -> None:
    """A tenth of the people's clients on a VPN in a cloud, another tenth behind an HTTP/1.0 proxy,
    written into simulated weeks: how many of each the shipped model labels automated."""
    rows = []
    for kind, layout, seed in CONNECTION_SITES:
        log = work / f"conn-{kind}.log"
        ranges = work / f"conn-{kind}-ranges"
        sim = simulate(
            log, seed=seed, scale=scale, site_kind=kind, site_layout=layout, ranges_out=ranges, progress=False
        )
        truth = pl.read_parquet(sim.truth_path).select("line_no", "family", "client_ip", "user_agent")
        lines = pl.read_csv(
            log,
            has_header=False,
            separator="\x01",
            quote_char=None,
            new_columns=["line"],
            schema_overrides={"line": pl.String},
        ).with_row_index("line_no", offset=1)
        df = lines.join(truth, on="line_no", how="left")
        person = pl.col("family").str.starts_with("human:")
        tenth = (pl.col("client_ip") + "|" + pl.col("user_agent").fill_null("")).hash(seed=7) % 10
        h = pl.col("client_ip").hash(seed=11)
        vpn_ip = pl.format(VPN_BLOCK + ".{}.{}", h // 256 % 256, h % 254 + 1)
        df = df.with_columns(
            group=pl.when(person & (tenth == 0))
            .then(pl.lit("vpn"))
            .when(person & (tenth == 1))
            .then(pl.lit("http10"))
            .when(person)
            .then(pl.lit("people"))
            .otherwise(pl.lit("bot"))
        ).with_columns(
            line=pl.when(pl.col("group") == "vpn")
            .then(vpn_ip + pl.col("line").str.extract(r"^\S+( .*)$", 1))
            .when(pl.col("group") == "http10")
            .then(pl.col("line").str.replace(r' HTTP/(1\.1|2\.0)" ', ' HTTP/1.0" '))
            .otherwise(pl.col("line"))
        )
        moved = work / f"conn-{kind}-moved.log"
        df.select("line").write_csv(moved, include_header=False, quote_style="never")
        lake = work / f"conn-{kind}-lake"
        ingest([str(moved)], lake, progress=False)
        classify(lake, ranges_dir=ranges, progress=False, model_dir=MODEL)
        who = df.select(
            "group", "family", client_ip=pl.col("line").str.extract(r"^(\S+)", 1), user_agent="user_agent"
        ).unique(["client_ip", "user_agent"])
        c = pl.read_parquet(lake / "clients" / "*.parquet").join(who, on=["client_ip", "user_agent"], how="inner")
        for group in ("vpn", "http10", "people", "bot"):
            g = c.filter(pl.col("group") == group)
            band = (~pl.col("automated") & (pl.col("automation_score") >= LIKELY_AUTOMATED)).sum()
            rows.append((f"{kind}/{layout}", group, g.height, int(g["automated"].sum()), int(g.select(band).item())))
    out["connections"] = rows
    out["connections_people_worst"] = max(r[3] / max(r[2], 1) for r in rows if r[1] in ("vpn", "http10"))


# Each family of people alone, in volume, judged by the shipped model: a seed apart from every
# training and evaluation seed, two site kinds, every layout. The model saw these families in
# training (other seeds), so this measures the rare client of a family, not generalisation.
ALONE_SEED = 23
ALONE_KINDS = ("shop", "media")


def families_alone(work: Path, out: dict, scale: float) -> None:
    from trafficlens.schema import SITE_LAYOUTS
    from trafficlens.simulate.families import HUMAN_FAMILIES

    rows = []
    for fam in HUMAN_FAMILIES:
        for kind in ALONE_KINDS:
            for layout in SITE_LAYOUTS:
                log = work / f"alone-{fam.split(':')[1]}-{kind}-{layout}.log"
                simulate(
                    log,
                    days=3,
                    seed=ALONE_SEED,
                    scale=scale,
                    site_kind=kind,
                    families=[fam],
                    site_layout=layout,
                    progress=False,
                )
                lake = work / f"{log.stem}-lake"
                ingest([str(log)], lake, progress=False)
                classify(lake, progress=False, model_dir=MODEL)
                truth = pl.read_parquet(f"{log}.truth.parquet").select("client_ip", "user_agent", "family").unique()
                c = pl.read_parquet(lake / "clients" / "*.parquet").join(truth, on=["client_ip", "user_agent"])
                mine = c.filter(pl.col("family") == fam)
                first = mine.filter("automated").select(
                    pl.col("reasons")
                    .list.eval(
                        pl.element().filter(
                            pl.element().str.starts_with("evidence:") | pl.element().str.starts_with("threat:")
                        )
                    )
                    .list.first()
                )
                rows.append((fam, kind, layout, mine.height, int(mine["automated"].sum()), first.to_series().to_list()))
                shutil.rmtree(lake, ignore_errors=True)
                log.unlink()
                Path(f"{log}.truth.parquet").unlink()
    out["alone"] = rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="also write every figure here")
    ap.add_argument("--keep", metavar="DIR", help="build the logs and lakes in DIR and keep them (to read the clients)")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-lofo", action="store_true", help="skip leave-one-family-out (a model per family)")
    ap.add_argument("--skip-connections", action="store_true", help="skip people on cloud VPNs and HTTP/1.0 proxies")
    ap.add_argument("--family", action="append", help="leave out only these families (repeat)")
    ap.add_argument("--lofo-clients", help="write the held-out families' clients (scores, models' reads) here")
    ap.add_argument(
        "--families-alone",
        action="store_true",
        help="also each family of people alone, in volume (a few thousand clients per site), by the shipped model",
    )
    ap.add_argument("--alone-scale", type=float, default=4.0, help="simulator scale of --families-alone")
    ap.add_argument(
        "--train-seeds",
        metavar="A-B|A,B,...",
        help="first train a model on these simulated seeds (not the shipped model's), and evaluate it",
    )
    args = ap.parse_args(argv)
    out: dict = {}
    global MODEL, LOFO_CLIENTS
    LOFO_CLIENTS = Path(args.lofo_clients) if args.lofo_clients else None
    with tempfile.TemporaryDirectory(prefix="tl-eval-b-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.train_seeds:
            from trafficlens.classify.training import train

            a, sep, b = args.train_seeds.partition("-")
            seeds = tuple(range(int(a), int(b) + 1)) if sep else tuple(int(x) for x in args.train_seeds.split(","))
            if set(seeds) & set(EVAL_SEEDS):
                ap.error(f"training seeds must not include the evaluation seeds {EVAL_SEEDS}")
            MODEL = work / "model"
            meta = train(out=MODEL, seeds=seeds, days=args.days, scale=args.scale, progress=False)
            print(f"model trained on seeds {', '.join(map(str, seeds))}: kept {meta['model']}")
        if not args.skip_sim:
            simulated(work, out, args.days, args.scale)
        hackers(work, out)
        iliou(work, out)
        elastic(work, out)
        if not args.skip_connections:
            connections(work, out)
        if not args.skip_lofo:
            lofo(work, out, args.family)
        if args.families_alone:
            families_alone(work, out, args.alone_scale)
    fails = report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
