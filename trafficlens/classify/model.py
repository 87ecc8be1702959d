"""The learned behaviour classifiers.

- The classifier: human / crawler / scraper / agent from every client feature.
- The navigation model: whether a browser visit of a few pages or more is automated, from
  NAV_FEATURES alone (time on each page, longest read, self-referred page views, pages). Those do
  not depend on what the site serves, so it still reads a site unlike the simulated ones fairly,
  where the classifier, which also weighs page sizes, assets and page types, can be thrown.

Both are trained on labelled simulated traffic (`trafficlens train`) and persisted in the package
as skops files with one JSON metadata file beside them (features, versions, training data,
cross-validated scores, feature importances). A skops file holds no code: loading it builds only
the types skops trusts plus TRUSTED_TYPES, so a model folder from elsewhere cannot run anything.
Pickle files (joblib) can, and are refused. Loading also refuses models whose features differ from
the code's.
"""

from __future__ import annotations

import json
import os
import platform
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from trafficlens.classify.behaviour import FEATURES, NAV_FEATURES, NAV_MIN_PAGES
from trafficlens.errors import ModelError
from trafficlens.progress import Stages
from trafficlens.schema import ACTOR_CLASSES, ESTIMATORS

MODEL_FILE = "behaviour.skops"
NAV_FILE = "navigation.skops"
META_FILE = "behaviour.json"
# What the candidates (`candidates()`, `_fit_navigation`) need beyond skops' own trusted types
# (scikit-learn estimators, numpy arrays and dtypes), found once with skops.io.get_untrusted_types on
# each candidate fitted to two and to four classes. Training checks its models need nothing else.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "sklearn.tree._tree.Tree")
# Files that can run code when loaded: refused by name, never opened.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")

# The navigation probability that makes a browser visit automated: out of fold, on simulated
# traffic, it flags under 2% of people's visits of five pages or more.
NAV_THRESHOLD = 0.8
# +1: the probability of automation can only rise with the feature; -1: only fall; 0: free.
NAV_MONOTONIC = {
    "page_gap_median_log": -1,
    "page_gap_cv": 0,
    "page_gap_max_log": -1,
    "self_referral_share": 1,
    "log_pages": 1,
    "return_share": -1,
}
# Cross-validated macro-F1 closer than this to the best is a tie: on simulated traffic the
# candidates differ by less than the spread between training seeds. A tie goes to the earlier of
# CHOICE_ORDER. Retrained on other seeds, gradient boosting won such ties by 0.001 to 0.003 and
# then labelled 80% of hackers-access's addresses automated; the random forest, 92 to 96%. An
# average of many deep trees degrades more gently on traffic unlike the simulated.
CV_TIE = 0.005
CHOICE_ORDER = ESTIMATORS


def model_dir() -> Path:
    return Path(str(resources.files("trafficlens") / "models"))


def _nav_rows(feats: pl.DataFrame) -> np.ndarray:
    """Clients the navigation model reads: NAV_MIN_PAGES page views or more."""
    return (feats["log_pages"].to_numpy() >= np.log1p(NAV_MIN_PAGES)) & (feats["page_gap_cv"].to_numpy() >= 0)


@dataclass
class BehaviourModel:
    estimator: object
    meta: dict
    navigation: object | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def nav_prior(self) -> float | None:
        """The share of automated visits among those the navigation model was trained on."""
        info = self.meta.get("navigation") or {}
        return info["automated_visits"] / info["visits"] if info.get("visits") else None

    @property
    def nav_rates(self) -> tuple[float, float] | None:
        """Out of fold at the threshold: (share of automated visits found, share of people flagged)."""
        cv = (self.meta.get("navigation") or {}).get("cross_validation") or {}
        return (cv["automated_found"], cv["human_flagged"]) if "automated_found" in cv else None

    def predict(self, feats: pl.DataFrame) -> pl.DataFrame:
        """`client_id, b_class, b_proba, b_human_proba, b_reasons, b_nav_proba, b_nav_reasons` for
        each row of `feats`; the navigation columns are null where it does not read the client."""
        if feats.height == 0:
            return pl.DataFrame(
                schema={
                    "client_id": pl.String,
                    "b_class": pl.String,
                    "b_proba": pl.Float64,
                    "b_human_proba": pl.Float64,
                    "b_reasons": pl.List(pl.String),
                    "b_nav_proba": pl.Float64,
                    "b_nav_reasons": pl.List(pl.String),
                }
            )
        x = feats.select(FEATURES).to_numpy().astype(np.float64)
        proba = predict_proba(self.estimator, x)
        classes = np.array(self.classes)
        best = proba.argmax(axis=1)
        nav = np.full(feats.height, np.nan)
        nav_reasons = pl.DataFrame({"row": np.arange(feats.height)})
        rows = _nav_rows(feats)
        if self.navigation is not None and rows.any():
            sub = feats.filter(pl.Series(rows))
            p = predict_proba(self.navigation, sub.select(NAV_FEATURES).to_numpy().astype(np.float64))
            nav[rows] = p[:, 1]
            info = self.meta["navigation"]
            explained = explain(sub, self.meta, cols=NAV_FEATURES, importance=info["importance"])
            read = pl.DataFrame({"row": np.flatnonzero(rows), "b_nav_reasons": explained})
            nav_reasons = nav_reasons.join(read, on="row", how="left", maintain_order="left")
        else:
            nav_reasons = nav_reasons.with_columns(b_nav_reasons=pl.lit(None, pl.List(pl.String)))
        return pl.DataFrame(
            {
                "client_id": feats["client_id"],
                "b_class": classes[best],
                "b_proba": proba[np.arange(len(best)), best],
                "b_human_proba": proba[:, self.classes.index("human")],
                "b_reasons": explain(feats, self.meta),
                "b_nav_proba": pl.Series(nav).fill_nan(None),
                "b_nav_reasons": nav_reasons["b_nav_reasons"].fill_null(pl.lit([], pl.List(pl.String))),
            },
            schema_overrides={"b_reasons": pl.List(pl.String), "b_nav_reasons": pl.List(pl.String)},
        )


# Rows per share of a prediction: below it, a thread costs more than it saves.
_PREDICT_SHARE = 2_000


def predict_proba(est: object, x: np.ndarray) -> np.ndarray:
    """`est.predict_proba(x)` with the rows in shares, one thread each (the trees release the
    interpreter's lock): each row's trees are still added in one order, on one thread, so the
    figures are those of a single thread, bit for bit (see `_read_estimator`)."""
    shares = min(os.cpu_count() or 1, max(1, len(x) // _PREDICT_SHARE))
    if shares == 1:
        return est.predict_proba(x)  # type: ignore[attr-defined]
    with ThreadPoolExecutor(shares) as pool:
        return np.vstack(list(pool.map(est.predict_proba, np.array_split(x, shares))))  # type: ignore[attr-defined]


def explain(
    feats: pl.DataFrame,
    meta: dict,
    top: int = 3,
    cols: tuple[str, ...] = FEATURES,
    importance: dict[str, float] | None = None,
) -> pl.Series:
    """The features that set each client furthest apart from typical human traffic, weighted by
    the model's permutation importance: `behaviour:asset_per_page=0.00` and the like (a list per
    row of `feats`)."""
    ref = meta["human_reference"]  # feature -> (median, iqr) over human clients in training
    imp = importance if importance is not None else meta["importance"]
    cols = tuple(f for f in cols if imp.get(f, 0) > 0)
    if not cols:
        return pl.Series("reasons", [[] for _ in range(feats.height)], dtype=pl.List(pl.String))
    x = feats.select(cols).to_numpy().astype(np.float64)
    med = np.array([ref[c][0] for c in cols])
    iqr = np.array([max(ref[c][1], 1e-6) for c in cols])
    w = np.array([imp[c] for c in cols])
    score = np.abs(x - med) / iqr * w
    order = np.argsort(-score, axis=1)[:, :top]
    rows = np.arange(feats.height)[:, None]
    values = x[rows, order].ravel()
    picked = pl.DataFrame(
        {
            "row": np.repeat(np.arange(feats.height), order.shape[1]),
            "name": np.array(cols)[order].ravel(),
            # Two decimals as Python formats them (the binary value, not a rounded product).
            "value": np.char.mod("%.2f", values),
            "keep": (score[rows, order] > 0).ravel(),
        }
    )
    text = pl.format("behaviour:{}={}", pl.col("name"), pl.col("value"))
    out = (
        picked.with_columns(text=pl.when("keep").then(text))
        .group_by("row", maintain_order=True)
        .agg(pl.col("text").drop_nulls())
    )
    return out["text"].alias("reasons")


def load_model(folder: Path | None = None) -> BehaviourModel:
    """The shipped (or `folder`'s) model; a clear error when it is missing, out of date, unreadable,
    a pickle, or holds a type that is not trusted."""
    d = folder or model_dir()
    meta_path, model_path, nav_path = d / META_FILE, d / MODEL_FILE, d / NAV_FILE
    if not model_path.exists() or not nav_path.exists():
        pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES) if d.is_dir() else []
        if pickles:
            raise ModelError(
                f"{d} holds {', '.join(pickles)}: pickle files can run code when loaded, so trafficlens reads "
                f"only .skops models; run `trafficlens train --out DIR` to build one"
            )
    if not meta_path.exists() or not model_path.exists() or not nav_path.exists():
        raise ModelError(f"no behaviour model in {d}; run `trafficlens train` to build one")
    meta = _read_meta(meta_path)
    if list(meta.get("features", [])) != list(FEATURES):
        missing = sorted(set(FEATURES) - set(meta.get("features", [])))
        extra = sorted(set(meta.get("features", [])) - set(FEATURES))
        raise ModelError(
            f"the behaviour model in {d} was trained on other features (missing {missing or 'none'}, "
            f"extra {extra or 'none'}); run `trafficlens train` to rebuild it"
        )
    if list(meta.get("navigation", {}).get("features", [])) != list(NAV_FEATURES):
        raise ModelError(
            f"the navigation model in {d} was trained on other features; run `trafficlens train` to rebuild it"
        )
    estimator = _read_estimator(model_path, len(FEATURES))
    return BehaviourModel(estimator, meta, _read_estimator(nav_path, len(NAV_FEATURES)))


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: unreadable ({e}); run `trafficlens train --out DIR` to build a model") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("navigation", {}), dict):
        raise ModelError(f"{path}: not a trafficlens model description; run `trafficlens train --out DIR`")
    return meta


def _read_estimator(path: Path, n_features: int) -> object:
    """A classifier from a skops file, building no type outside skops' trusted ones and TRUSTED_TYPES."""
    import skops.io as sio

    # A damaged file fails in many ways inside skops (zip, JSON, missing keys, wrong types); each
    # is the same to the user: this file cannot be read.
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as e:
        raise ModelError(f"{path}: not a readable skops model ({type(e).__name__}); run `trafficlens train`") from None
    if untrusted:
        raise ModelError(f"{path}: holds types trafficlens does not trust ({', '.join(untrusted)}); it was not loaded")
    try:
        est = sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as e:
        raise ModelError(f"{path}: not a readable skops model ({type(e).__name__}); run `trafficlens train`") from None
    if not hasattr(est, "predict_proba") or getattr(est, "n_features_in_", n_features) != n_features:
        raise ModelError(f"{path}: not a classifier of {n_features} features; run `trafficlens train` to rebuild it")
    # A forest predicting on several threads adds its trees' probabilities in whatever order the
    # threads finish: the last bits move between runs, and a reason's rounded probability with them.
    # One thread per row gives the same figures on every run and engine (`predict_proba` shares the
    # rows among threads instead).
    if hasattr(est, "n_jobs"):
        est.n_jobs = 1
    return est


def _dump(est: object, path: Path) -> None:
    """Write `est` as a skops file (atomically), refusing what loading would refuse."""
    import skops.io as sio

    tmp = path.with_name(f".{path.name}.tmp")
    sio.dump(est, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    extra = [t for t in sio.get_untrusted_types(file=tmp) if t not in TRUSTED_TYPES]
    if extra:
        tmp.unlink()
        raise ModelError(f"the trained model needs types outside TRUSTED_TYPES: {', '.join(extra)}")
    os.replace(tmp, path)


def candidates() -> dict[str, object]:
    """The estimators compared at training time."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.08,
            max_leaf_nodes=31,
            l2_regularization=1.0,
            class_weight="balanced",
            random_state=0,
        ),
        "random_forest": RandomForestClassifier(
            n_estimators=300, min_samples_leaf=2, class_weight="balanced", n_jobs=-1, random_state=0
        ),
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
        ),
    }


def choose(scores: dict[str, dict]) -> str:
    """The candidate to keep: the best cross-validated macro-F1, ties (CV_TIE) by CHOICE_ORDER."""
    top = max(s["macro_f1"] for s in scores.values())
    near = [n for n in scores if scores[n]["macro_f1"] >= top - CV_TIE]
    return min(near, key=lambda n: CHOICE_ORDER.index(n) if n in CHOICE_ORDER else len(CHOICE_ORDER))


def fit(
    train: pl.DataFrame,
    *,
    description: str,
    out: Path | None = None,
    folds: int = 5,
    only: str | None = None,
    stage: Stages | None = None,
) -> dict:
    """Fit each candidate on `train` (FEATURES + `label`, one row per client, and `identity` if
    known), keep the best by cross-validated macro-F1 (`choose`), fit the navigation model on the browser
    visits (identity `none`) of NAV_MIN_PAGES pages or more, and write both with their metadata.
    Returns the metadata."""
    import sklearn
    import skops
    from sklearn.base import clone
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    data = train.filter(pl.col("label").is_in(list(ACTOR_CLASSES)))
    # The lake's row order varies from run to run; the folds, and boosting's early-stopping split,
    # follow it. A fixed order makes training reproducible.
    order = [c for c in ("group", "client_id") if c in data.columns]
    if order:
        data = data.sort(order)
    x = data.select(FEATURES).to_numpy().astype(np.float64)
    y = data["label"].to_numpy()
    # Folds by training log, so a score says how the model does on traffic it has not seen.
    groups = data["group"].to_numpy() if "group" in data.columns else np.arange(len(y)) % folds
    cv = StratifiedGroupKFold(n_splits=min(folds, len(set(groups))), shuffle=True, random_state=0)
    scores: dict[str, dict] = {}
    models = candidates()
    if only:
        models = {only: models[only]}
    stage = stage or Stages("train", False)
    for i, (name, est) in enumerate(models.items(), 1):
        stage(f"cross-validating {name} ({i} of {len(models)}, {len(y):,} clients)")
        t0 = time.perf_counter()
        pred = cross_val_predict(clone(est), x, y, cv=cv, groups=groups)
        scores[name] = {
            "macro_f1": float(f1_score(y, pred, average="macro")),
            "per_class_f1": {
                c: float(v) for c, v in zip(ACTOR_CLASSES, f1_score(y, pred, labels=list(ACTOR_CLASSES), average=None))
            },
            "seconds": round(time.perf_counter() - t0, 1),
        }
    best = choose(scores)
    stage(f"fitting {best} on every client, and its feature importance")
    est = clone(models[best]).fit(x, y)
    sub = np.random.default_rng(0).choice(len(y), size=min(len(y), 4000), replace=False)
    pi = permutation_importance(est, x[sub], y[sub], scoring="f1_macro", n_repeats=3, random_state=0)
    importance = {f: float(max(v, 0.0)) for f, v in zip(FEATURES, pi.importances_mean)}
    stage("the navigation model")
    navigation, nav_meta = _fit_navigation(data, folds)
    human = data.filter(pl.col("label") == "human").select(FEATURES)
    ref = {}
    for f in FEATURES:
        q = human[f].quantile(0.25), human[f].quantile(0.5), human[f].quantile(0.75)
        ref[f] = (float(q[1] or 0), float((q[2] or 0) - (q[0] or 0)))
    meta = {
        "model": best,
        "classes": [str(c) for c in est.classes_],
        "features": list(FEATURES),
        "training_data": description,
        "clients": int(len(y)),
        "class_counts": {c: int((y == c).sum()) for c in ACTOR_CLASSES},
        "cross_validation": {"folds": int(cv.get_n_splits()), "grouped_by": "training log", "scores": scores},
        "importance": importance,
        "human_reference": ref,
        "navigation": nav_meta,
        "versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "skops": skops.__version__,
            "polars": pl.__version__,
            "python": platform.python_version(),
        },
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    d = out or model_dir()
    d.mkdir(parents=True, exist_ok=True)
    _dump(est, d / MODEL_FILE)
    _dump(navigation, d / NAV_FILE)
    (d / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _fit_navigation(data: pl.DataFrame, folds: int) -> tuple[object, dict]:
    """The navigation model: browser visits, automated or not, from NAV_FEATURES alone."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    rows = data.filter(pl.Series(_nav_rows(data)))
    if "identity" in rows.columns:
        rows = rows.filter(pl.col("identity") == "none")
    x = rows.select(NAV_FEATURES).to_numpy().astype(np.float64)
    y = (rows["label"] != "human").to_numpy()
    # What is known of automation holds for any value, including those no simulated visit had:
    # shorter reads and a shorter longest read, more self-referred page views, and more pages at
    # the same pace never make a visit look more human. Boosting under these constraints keeps a
    # site unlike the simulated ones from landing in a corner the training data left empty.
    est = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        class_weight="balanced",
        monotonic_cst=[NAV_MONOTONIC[f] for f in NAV_FEATURES],
        random_state=0,
    )
    groups = rows["group"].to_numpy() if "group" in rows.columns else np.arange(len(y)) % folds
    cv = StratifiedGroupKFold(n_splits=min(folds, len(set(groups))), shuffle=True, random_state=0)
    p = cross_val_predict(est, x, y, cv=cv, groups=groups, method="predict_proba")[:, 1]
    flag = p >= NAV_THRESHOLD
    est.fit(x, y)
    sub = np.random.default_rng(0).choice(len(y), size=min(len(y), 4000), replace=False)
    pi = permutation_importance(est, x[sub], y[sub], scoring="balanced_accuracy", n_repeats=3, random_state=0)
    meta = {
        "model": "hist_gradient_boosting",
        "features": list(NAV_FEATURES),
        "monotonic": {f: NAV_MONOTONIC[f] for f in NAV_FEATURES},
        "min_pages": NAV_MIN_PAGES,
        "threshold": NAV_THRESHOLD,
        "visits": int(len(y)),
        "automated_visits": int(y.sum()),
        # At the threshold, out of fold: what share of people it would call automated, and what
        # share of automation it finds.
        "cross_validation": {
            "folds": int(cv.get_n_splits()),
            "grouped_by": "training log",
            "human_flagged": float(flag[~y].mean()) if (~y).any() else 0.0,
            "automated_found": float(flag[y].mean()) if y.any() else 0.0,
        },
        "importance": {f: float(max(v, 0.0)) for f, v in zip(NAV_FEATURES, pi.importances_mean)},
    }
    return est, meta
