"""Label precedence: what decides each client's labels, in layers, each change with its reasons.

Identity first (`label_clients`: signed agents, claims checked against published ranges and
reverse DNS, browsers inside an operator's ranges, the user agent's own labels); then the
behaviour models (`combine_behaviour`); then threats (`combine_threats`).
"""

from __future__ import annotations

import polars as pl

from trafficlens.classify.agents import Catalogue
from trafficlens.classify.behaviour import EVIDENCE_INPUTS
from trafficlens.classify.evidence import DEFAULT, LIKELY_AUTOMATED, EvidenceConfig, decided, gather
from trafficlens.classify.model import NAV_THRESHOLD
from trafficlens.schema import ATTACK_THREATS, AUTOMATED_THREATS, STR_LIST


def ai_range_files(catalogue: Catalogue) -> set[str]:
    """Range files that hold an AI system's addresses (an AI entry names them for verification)."""
    return {f for a in catalogue.agents if a.ai_driven for f in a.verify_ranges}


def label_clients(
    clients: pl.DataFrame,
    ua_labels: pl.DataFrame,
    verified: pl.DataFrame | None,
    attributed: pl.DataFrame | None,
    catalogue: Catalogue,
    signatures: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Client rows (site, client_ip, user_agent, signature_agent, ...) -> the identity labels.

    `ua_labels` comes from match_user_agents; `verified` (client_ip, agent, identity, reasons)
    from the ranges layer; `attributed` (client_ip, operator, range_file) lists addresses inside
    an operator's published ranges. Precedence, each step with its reason:
    1. a `Signature-Agent` header naming a known agent's host: that agent; verified where its
       logged HTTP message signatures verify against the signer's published keys, spoofed where
       one fails (tampered, expired, replayed), declared where none could be checked.
       `signatures` (site, client_ip, user_agent, signature_status, signature_reasons) says so
       per client (`client_signatures`);
    2. a user agent naming a known agent: that agent; verified / spoofed / declared from its
       addresses;
    3. a browser user agent from inside an operator's ranges: that operator's agentic browser,
       undeclared;
    4. the user agent's generic labels (automated tools, empty or absurd user agents, browsers).
    """
    df = clients.join(ua_labels, on="user_agent", how="left", nulls_equal=True)

    # 1. Signed agents: the header names the agent's host (RFC 9421 / Web Bot Auth).
    hosts = catalogue.by_signature_agent()
    if hosts and "signature_agent" in df.columns:
        cat = catalogue.frame()
        sig = (
            pl.DataFrame(
                {"_sig_host": list(hosts), "entry": list(hosts.values())},
                schema={"_sig_host": pl.String, "entry": pl.Int32},
            )
            .join(cat, on="entry")
            .drop("entry", "priority")
        )
        host = (
            pl.col("signature_agent")
            .str.strip_chars('" ')
            .str.to_lowercase()
            .str.replace(r"^https?://", "")
            .str.replace(r"[/:].*$", "")
        )
        df = df.with_columns(_sig_host=host).join(sig, on="_sig_host", how="left", suffix="_sig")
        signed = pl.col("agent_sig").is_not_null()
        df = df.with_columns(
            *[
                pl.when(signed).then(pl.col(f"{c}_sig")).otherwise(pl.col(c)).alias(c)
                for c in ("agent", "operator", "actor_class", "purpose", "ai_driven", "verify_ranges", "verify_rdns")
            ],
            automated=pl.col("automated") | signed,
            reasons=pl.when(signed)
            .then(pl.concat_list(pl.lit("header:signature_agent:") + pl.col("_sig_host"), pl.col("reasons")))
            .otherwise(pl.col("reasons")),
            _signed=signed,
        ).drop([c for c in df.columns if c.endswith("_sig")] + ["_sig_host"])
    else:
        df = df.with_columns(_signed=pl.lit(False))

    if signatures is not None and signatures.height:
        df = df.join(
            signatures.select("site", "client_ip", "user_agent", "signature_status", "signature_reasons"),
            on=["site", "client_ip", "user_agent"],
            how="left",
            nulls_equal=True,
        )
    else:
        df = df.with_columns(signature_status=pl.lit(None, pl.String), signature_reasons=pl.lit(None, STR_LIST))
    sig_valid = pl.col("_signed") & (pl.col("signature_status") == "valid")
    sig_failed = pl.col("_signed") & (pl.col("signature_status") == "failed")

    # 2. Verification of claims.
    claims = pl.col("agent").is_not_null()
    if verified is not None and verified.height:
        df = df.join(
            verified.select("client_ip", "agent", pl.col("identity").alias("_vid"), pl.col("reasons").alias("_vr")),
            on=["client_ip", "agent"],
            how="left",
            nulls_equal=True,
        )
    else:
        df = df.with_columns(_vid=pl.lit(None, pl.String), _vr=pl.lit(None, STR_LIST))

    # 3. Browsers inside an operator's published ranges.
    if attributed is not None and attributed.height:
        df = df.join(
            attributed.select("client_ip", pl.col("operator").alias("_aop"), pl.col("range_file").alias("_arf")),
            on="client_ip",
            how="left",
        )
    else:
        df = df.with_columns(_aop=pl.lit(None, pl.String), _arf=pl.lit(None, pl.String))
    ai_files = sorted(ai_range_files(catalogue))
    browser = ~pl.col("automated").fill_null(False)
    in_ranges = browser & pl.col("_aop").is_not_null()
    ai_range = in_ranges & pl.col("_arf").is_in(ai_files)

    identity = (
        pl.when(sig_valid)
        .then(pl.lit("verified"))
        .when(sig_failed)
        .then(pl.lit("spoofed"))
        .when(pl.col("_signed"))
        .then(pl.lit("declared"))
        .when(claims)
        .then(pl.coalesce(pl.col("_vid"), pl.lit("declared")))
        .when(in_ranges)
        .then(pl.lit("undeclared"))
        # Tools and generic bots say they are automated but not who they are.
        .when(pl.col("automated").fill_null(False))
        .then(pl.lit("declared"))
        .otherwise(pl.lit("none"))
    )
    spoofed = identity == "spoofed"
    empty = pl.lit([], STR_LIST)
    reasons = pl.concat_list(
        pl.col("reasons").fill_null(empty),
        pl.col("signature_reasons").fill_null(empty),
        pl.when(claims).then(pl.col("_vr").fill_null(empty)).otherwise(empty),
        pl.when(in_ranges).then(pl.concat_list(pl.lit("ip:operator_range:") + pl.col("_arf"))).otherwise(empty),
        pl.when(spoofed).then(pl.lit(["threat:spoofed_identity"], STR_LIST)).otherwise(empty),
    )
    confidence = (
        pl.when(spoofed | (identity == "verified"))
        .then(0.99)
        .when(pl.col("_signed"))
        .then(0.95)
        .when(claims)
        .then(0.9)
        .when(in_ranges)
        .then(0.8)
        .when(pl.col("automated").fill_null(False))
        .then(0.8)
        # A browser user agent alone says little: behaviour (a later layer) decides more.
        .otherwise(0.6)
    )
    return df.with_columns(
        identity=identity,
        actor_class=pl.when(in_ranges).then(pl.lit("agent")).otherwise(pl.col("actor_class").fill_null("human")),
        automated=pl.col("automated").fill_null(False) | in_ranges,
        # A spoofed claim is not the operator's: neither its operator nor its AI use holds.
        ai_driven=~spoofed & (pl.col("ai_driven").fill_null(False) | ai_range),
        purpose=pl.when(ai_range)
        .then(pl.lit("ai_agent"))
        .when(in_ranges)
        .then(pl.lit("unknown"))
        .otherwise(pl.col("purpose").fill_null("human")),
        operator=pl.when(spoofed).then(None).otherwise(pl.coalesce(pl.col("operator"), pl.col("_aop"))),
        malicious=spoofed,
        threats=pl.when(spoofed).then(pl.lit(["spoofed_identity"], STR_LIST)).otherwise(empty),
        confidence=confidence,
        reasons=reasons,
    ).drop("_vid", "_vr", "_aop", "_arf", "_signed", "signature_status", "signature_reasons")


def client_signatures(checked: pl.DataFrame) -> pl.DataFrame:
    """Checked signed requests (`verify_signatures`) -> per client (site, client_ip, user_agent):
    `signature_status` "failed" where any signature was invalid, expired or replayed, else "valid"
    where one verified, else null (none could be checked); `signature_reasons`, each distinct."""
    failed = pl.col("signature_status").is_in(["invalid", "expired", "replayed"])
    return checked.group_by("site", "client_ip", "user_agent").agg(
        signature_status=pl.when(failed.any())
        .then(pl.lit("failed"))
        .when((pl.col("signature_status") == "valid").any())
        .then(pl.lit("valid")),
        signature_reasons=pl.col("signature_reason").drop_nulls().unique(maintain_order=True).sort(),
    )


# How many visits' worth of the navigation model's training share of automation a user agent's
# own share on a site is weighed against: a handful of visits says little about a campaign.
COHORT_WEIGHT = 20


def cohort_counts(labelled: pl.DataFrame, pred: pl.DataFrame) -> pl.DataFrame:
    """`site, user_agent, n, found`: per site and user agent, the browsers the navigation model
    reads and how many of them either behaviour model reads as automated. Counts, so that the
    shares of any split of the clients (classify's buckets) add up to the whole's."""
    df = labelled.select("client_id", "site", "user_agent", "identity").join(pred, on="client_id", how="inner")
    read = (pl.col("identity") == "none") & pl.col("b_class").is_not_null() & pl.col("b_nav_proba").is_not_null()
    styled = pl.max_horizontal(1 - pl.col("b_human_proba"), pl.col("b_nav_proba").fill_null(0)) >= NAV_THRESHOLD
    return (
        df.filter(read).group_by("site", "user_agent").agg(n=pl.len().cast(pl.Int64), found=styled.sum().cast(pl.Int64))
    )


def combine_behaviour(
    labelled: pl.DataFrame,
    pred: pl.DataFrame,
    nav_prior: float | None = None,
    nav_rates: tuple[float, float] | None = None,
    feats: pl.DataFrame | None = None,
    cfg: EvidenceConfig = DEFAULT,
    cohorts: pl.DataFrame | None = None,
    norms: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Identity labels + behaviour evidence -> labels, each change with its reasons.

    Behaviour decides only where the user agent does not: a browser user agent (identity `none`)
    becomes an `undeclared` crawler, scraper or agent when the evidence rule holds
    (`trafficlens.classify.evidence`: decisive evidence a person cannot produce, or two
    supporting families agreeing); the behaviour models' judgement of style is one supporting
    family and never decides alone. Its class is the main model's (a scraper where the model
    says human). A spoofed claim takes the class its behaviour shows. Declared and verified
    agents keep theirs. An undeclared agent (a real browser completing tasks at machine pace) is
    taken to be AI-driven: that is what agentic browsers are; the threat layer overrides this
    for attack automation. Every browser gets `automation_score`.

    Style is the larger of the main model's probability of automation and the navigation
    model's. A campaign runs many visits from one browser build. `nav_prior` is the share of
    automated visits the navigation model learnt from; where, on one site, more of the visits with
    one user agent than that read as automated, their share is the better prior for the others,
    and the navigation probability of each is read against it (never the other way: a cohort of
    people can hide a bot). `nav_rates` = (share of automated visits found, share of people
    flagged), out of fold in training: the share found in a cohort understates its automated share
    by the first and overstates it by the second, and is corrected for both (Rogan-Gladen).

    `labelled` are the clients' rows with their identity labels and `requests`. Where `labelled`
    holds only some of the clients (one of classify's buckets), `cohorts`
    (`cohort_counts` of every bucket, stacked) and `norms` (`evidence.site_norms`) say what the
    whole log's do.
    """
    df = labelled.join(pred, on="client_id", how="left")
    if feats is not None:
        df = df.join(
            feats.select("client_id", *(c for c in EVIDENCE_INPUTS if c in feats.columns)), on="client_id", how="left"
        )
    df = df.with_columns([pl.lit(None, pl.Float64).alias(c) for c in EVIDENCE_INPUTS if c not in df.columns])
    has = pl.col("b_class").is_not_null()
    browser = (pl.col("identity") == "none") & has
    spoofed = (pl.col("identity") == "spoofed") & has & (pl.col("b_class") != "human")
    model_p = 1 - pl.col("b_human_proba")
    df = df.with_columns(_cohort=pl.lit(None, pl.Float64), _nav_p=pl.col("b_nav_proba"))
    if nav_prior is not None and 0 < nav_prior < 1:
        read = browser & pl.col("b_nav_proba").is_not_null()
        counts = cohort_counts(labelled, pred) if cohorts is None else cohorts
        cohorts = counts.group_by("site", "user_agent").agg(_n=pl.col("n").sum(), _found=pl.col("found").sum())
        if nav_rates is not None and nav_rates[0] > nav_rates[1]:
            found, false = nav_rates
            share = ((pl.col("_found") / pl.col("_n") - false) / (found - false)).clip(0.0, 1.0)
            cohorts = cohorts.with_columns(_found=share * pl.col("_n"))
        cohorts = cohorts.with_columns(
            _cohort=(pl.col("_found") + COHORT_WEIGHT * nav_prior) / (pl.col("_n") + COHORT_WEIGHT)
        )
        prior_odds = nav_prior / (1 - nav_prior)
        ratio = (pl.col("_cohort") / (1 - pl.col("_cohort")) / prior_odds).clip(lower_bound=1.0)
        odds = pl.col("b_nav_proba") / (1 - pl.col("b_nav_proba")) * ratio
        df = (
            df.drop("_cohort")
            .join(
                cohorts.select("site", "user_agent", "_cohort"), on=["site", "user_agent"], how="left", nulls_equal=True
            )
            .with_columns(
                _nav_p=pl.when(read & (pl.col("_cohort") > nav_prior) & (pl.col("b_nav_proba") < NAV_THRESHOLD))
                .then(odds / (1 + odds))
                .otherwise(pl.col("b_nav_proba"))
            )
        )
    style = pl.when(browser).then(pl.max_horizontal(model_p, pl.col("_nav_p").fill_null(0)))
    # Only where the navigation model reads the client (min_horizontal would skip its null).
    agree = pl.when(browser & pl.col("b_nav_proba").is_not_null()).then(
        pl.min_horizontal(model_p, pl.col("b_nav_proba"))
    )
    # What counts as style's support towards two families agreeing is the main model's reading:
    # the navigation model's alone (how a visit moves from page to page) is the style that called
    # people on a held-out shop week scrapers; it decides only with the main model (`agree`), and
    # raises the score. A client of one request has no style to read (a count unknown is read).
    read = pl.col("requests").fill_null(cfg.style_min_requests) >= cfg.style_min_requests
    df = gather(df, style, cfg, agree, norms, supports=pl.when(browser & read).then(model_p))
    flips = browser & decided()
    klass = pl.when(pl.col("b_class") == "human").then(pl.lit("scraper")).otherwise(pl.col("b_class"))
    agentic = flips & (pl.col("b_class") == "agent")
    empty = pl.lit([], STR_LIST)
    verdict = pl.concat_list(
        pl.concat_str(
            pl.lit("behaviour:model:"), pl.col("b_class"), pl.lit(":"), pl.col("b_proba").round(2).cast(pl.String)
        ),
        pl.col("b_reasons"),
    )
    # Named wherever it reaches the "likely automated" band, not only where it reads a visit as
    # automated: a score of the band says what raised it.
    nav_read = browser & (pl.col("_nav_p").fill_null(0) >= pl.lit(LIKELY_AUTOMATED))
    nav_verdict = pl.concat_list(
        pl.concat_str(pl.lit("behaviour:navigation:"), pl.col("b_nav_proba").round(2).cast(pl.String)),
        pl.when(pl.col("_nav_p") > pl.col("b_nav_proba"))
        .then(pl.concat_list(pl.concat_str(pl.lit("behaviour:cohort:"), pl.col("_cohort").round(2).cast(pl.String))))
        .otherwise(empty),
        pl.col("b_nav_reasons"),
    )
    return df.with_columns(
        actor_class=pl.when(flips | spoofed).then(klass).otherwise(pl.col("actor_class")),
        automated=pl.col("automated") | flips,
        identity=pl.when(flips).then(pl.lit("undeclared")).otherwise(pl.col("identity")),
        purpose=pl.when(agentic)
        .then(pl.lit("ai_agent"))
        .when(flips)
        .then(pl.lit("unknown"))
        .otherwise(pl.col("purpose")),
        ai_driven=pl.col("ai_driven") | agentic,
        confidence=pl.when(flips)
        .then(pl.col("automation_score"))
        .when(browser)
        .then((1 - pl.col("automation_score")).round(3))
        .otherwise(pl.col("confidence")),
        automation_score=pl.when(browser).then(pl.col("automation_score")),
        reasons=pl.concat_list(
            "reasons",
            pl.when(browser | spoofed).then(verdict).otherwise(empty),
            pl.when(agentic).then(pl.lit(["behaviour:agentic_browser"], STR_LIST)).otherwise(empty),
            pl.when(nav_read).then(nav_verdict).otherwise(empty),
            pl.when(browser).then(pl.col("ev_reasons")).otherwise(empty),
        ).list.unique(maintain_order=True),  # both models may name the same feature
    ).drop(
        "b_class",
        "b_proba",
        "b_human_proba",
        "b_reasons",
        "b_nav_proba",
        "b_nav_reasons",
        "_cohort",
        "_nav_p",
        "ev_decisive",
        "ev_support",
        "ev_reasons",
        *EVIDENCE_INPUTS,
    )


# Threats that make a client a task-performing agent, a scanner, a scraper (DESIGN.md classes).
THREAT_CLASS = {
    "credential_stuffing": ("agent", "unknown"),
    "card_testing": ("agent", "unknown"),
    "fake_signup": ("agent", "unknown"),
    "vuln_scan": ("crawler", "security_scanner"),
    "abusive_scraping": ("scraper", "unknown"),
}


def combine_threats(labelled: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """Client labels + threat rows (client_id, threat, reason) -> threats, malicious, reasons.

    A threat that only automation shows makes the client automated; one that defines a class
    (stuffing, card testing and fake sign-ups are agents; scanning is a crawler; scraping a
    scraper) sets it for a client the user agent did not name. Attack automation (any threat in
    ATTACK_THREATS) is not taken for an AI agent: the agentic-browser guess is withdrawn with a
    reason, and the purpose becomes unknown.
    """
    empty = pl.lit([], STR_LIST)
    per = found.group_by("client_id").agg(
        _threats=pl.col("threat").unique().sort(), _treasons=pl.col("reason").unique(maintain_order=True)
    )
    df = labelled.join(per, on="client_id", how="left").with_columns(
        _threats=pl.col("_threats").fill_null(empty), _treasons=pl.col("_treasons").fill_null(empty)
    )
    threats = pl.concat_list("threats", "_threats").list.unique().list.sort()
    unnamed = pl.col("agent").is_null()
    klass: pl.Expr = pl.col("actor_class")
    purpose: pl.Expr = pl.col("purpose")
    for t in ("vuln_scan", "abusive_scraping", "fake_signup", "card_testing", "credential_stuffing"):  # last wins
        k, p = THREAT_CLASS[t]
        hit = unnamed & pl.col("_threats").list.contains(t)
        klass = pl.when(hit).then(pl.lit(k)).otherwise(klass)
        purpose = pl.when(hit).then(pl.lit(p)).otherwise(purpose)
    auto_hit = pl.col("_threats").list.eval(pl.element().is_in(list(AUTOMATED_THREATS))).list.any()
    attacks = pl.col("_threats").list.eval(pl.element().is_in(list(ATTACK_THREATS))).list.any()
    withdrawn = attacks & pl.col("reasons").list.contains("behaviour:agentic_browser")
    malicious = threats.list.eval(pl.element() != "robots_violation").list.any()
    return df.with_columns(
        actor_class=klass,
        purpose=pl.when(withdrawn & (purpose == "ai_agent")).then(pl.lit("unknown")).otherwise(purpose),
        automated=pl.col("automated") | auto_hit,
        identity=pl.when(auto_hit & (pl.col("identity") == "none"))
        .then(pl.lit("undeclared"))
        .otherwise(pl.col("identity")),
        ai_driven=pl.when(withdrawn).then(False).otherwise(pl.col("ai_driven")),
        threats=threats,
        malicious=malicious.fill_null(False),
        reasons=pl.concat_list(
            "reasons",
            "_treasons",
            pl.when(withdrawn).then(pl.lit(["threat:attack_automation_not_ai_agent"], STR_LIST)).otherwise(empty),
        ),
    ).drop("_threats", "_treasons")
