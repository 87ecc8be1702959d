"""The learned behaviour classifier: human / crawler / scraper / agent from client features.

Trained on labelled simulated traffic (`trafficlens train`), persisted in the package as a joblib
file with a JSON metadata file beside it (features, versions, training data, cross-validated
scores, feature importances). Loading refuses a model whose features differ from the code's.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from trafficlens.classify.behaviour import FEATURES
from trafficlens.errors import TrafficlensError

CLASSES = ("human", "crawler", "scraper", "agent")
MODEL_FILE = "behaviour.joblib"
META_FILE = "behaviour.json"


class ModelError(TrafficlensError):
    """The behaviour model is missing or does not fit this version's features."""


def model_dir() -> Path:
    return Path(str(resources.files("trafficlens") / "models"))


@dataclass
class BehaviourModel:
    estimator: object
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def predict(self, feats: pl.DataFrame) -> pl.DataFrame:
        """`client_id, b_class, b_proba, b_human_proba, b_reasons` for each row of `feats`."""
        if feats.height == 0:
            return pl.DataFrame(schema={"client_id": pl.String, "b_class": pl.String, "b_proba": pl.Float64,
                                        "b_human_proba": pl.Float64, "b_reasons": pl.List(pl.String)})
        x = feats.select(FEATURES).to_numpy().astype(np.float64)
        proba = self.estimator.predict_proba(x)  # type: ignore[attr-defined]
        classes = np.array(self.classes)
        best = proba.argmax(axis=1)
        return pl.DataFrame(
            {
                "client_id": feats["client_id"],
                "b_class": classes[best],
                "b_proba": proba[np.arange(len(best)), best],
                "b_human_proba": proba[:, self.classes.index("human")],
                "b_reasons": explain(feats, self.meta),
            },
            schema_overrides={"b_reasons": pl.List(pl.String)},
        )


def explain(feats: pl.DataFrame, meta: dict, top: int = 3) -> list[list[str]]:
    """The features that set each client furthest apart from typical human traffic, weighted by
    the model's permutation importance: `behaviour:asset_per_page=0.00` and the like."""
    ref = meta["human_reference"]  # feature -> (median, iqr) over human clients in training
    imp = meta["importance"]
    cols = [f for f in FEATURES if imp.get(f, 0) > 0]
    if not cols:
        return [[] for _ in range(feats.height)]
    x = feats.select(cols).to_numpy().astype(np.float64)
    med = np.array([ref[c][0] for c in cols])
    iqr = np.array([max(ref[c][1], 1e-6) for c in cols])
    w = np.array([imp[c] for c in cols])
    score = np.abs(x - med) / iqr * w
    order = np.argsort(-score, axis=1)[:, :top]
    out = []
    for i, idx in enumerate(order):  # per client, a handful of strings: not a hot path per request
        out.append([f"behaviour:{cols[j]}={x[i, j]:.2f}" for j in idx if score[i, j] > 0])
    return out


def load_model(folder: Path | None = None) -> BehaviourModel:
    """The shipped (or `folder`'s) model; a clear error when it is missing or out of date."""
    import joblib

    d = folder or model_dir()
    meta_path, model_path = d / META_FILE, d / MODEL_FILE
    if not meta_path.exists() or not model_path.exists():
        raise ModelError(f"no behaviour model in {d}; run `trafficlens train` to build one")
    meta = json.loads(meta_path.read_text())
    if list(meta.get("features", [])) != list(FEATURES):
        missing = sorted(set(FEATURES) - set(meta.get("features", [])))
        extra = sorted(set(meta.get("features", [])) - set(FEATURES))
        raise ModelError(
            f"the behaviour model in {d} was trained on other features (missing {missing or 'none'}, "
            f"extra {extra or 'none'}); run `trafficlens train` to rebuild it"
        )
    return BehaviourModel(joblib.load(model_path), meta)


def candidates() -> dict[str, object]:
    """The estimators compared at training time."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.08, max_leaf_nodes=31, l2_regularization=1.0, class_weight="balanced",
            random_state=0,
        ),
        "random_forest": RandomForestClassifier(
            n_estimators=300, min_samples_leaf=2, class_weight="balanced", n_jobs=-1, random_state=0
        ),
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
        ),
    }


def fit(train: pl.DataFrame, *, description: str, out: Path | None = None, folds: int = 5,
        only: str | None = None) -> dict:
    """Fit each candidate on `train` (FEATURES + `label`, one row per client), keep the best by
    cross-validated macro-F1, and write it with its metadata. Returns the metadata."""
    import joblib
    import sklearn
    from sklearn.base import clone
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.metrics import f1_score

    data = train.filter(pl.col("label").is_in(list(CLASSES)))
    x = data.select(FEATURES).to_numpy().astype(np.float64)
    y = data["label"].to_numpy()
    # Folds by training log, so a score says how the model does on traffic it has not seen.
    groups = data["group"].to_numpy() if "group" in data.columns else np.arange(len(y)) % folds
    cv = StratifiedGroupKFold(n_splits=min(folds, len(set(groups))), shuffle=True, random_state=0)
    scores: dict[str, dict] = {}
    models = candidates()
    if only:
        models = {only: models[only]}
    for name, est in models.items():
        t0 = time.perf_counter()
        pred = cross_val_predict(clone(est), x, y, cv=cv, groups=groups)
        scores[name] = {
            "macro_f1": float(f1_score(y, pred, average="macro")),
            "per_class_f1": {c: float(v) for c, v in zip(CLASSES, f1_score(y, pred, labels=list(CLASSES), average=None))},
            "seconds": round(time.perf_counter() - t0, 1),
        }
    best = max(scores, key=lambda n: scores[n]["macro_f1"])
    est = clone(models[best]).fit(x, y)
    sub = np.random.default_rng(0).choice(len(y), size=min(len(y), 4000), replace=False)
    pi = permutation_importance(est, x[sub], y[sub], scoring="f1_macro", n_repeats=3, random_state=0)
    importance = {f: float(max(v, 0.0)) for f, v in zip(FEATURES, pi.importances_mean)}
    human = data.filter(pl.col("label") == "human").select(FEATURES)
    ref = {}
    for f in FEATURES:
        q = human[f].quantile(0.25), human[f].quantile(0.5), human[f].quantile(0.75)
        ref[f] = (float(q[1] or 0), float((q[2] or 0) - (q[0] or 0)))
    meta = {
        "model": best,
        "classes": [str(c) for c in est.classes_],  # type: ignore[attr-defined]
        "features": list(FEATURES),
        "training_data": description,
        "clients": int(len(y)),
        "class_counts": {c: int((y == c).sum()) for c in CLASSES},
        "cross_validation": {"folds": int(cv.get_n_splits()), "grouped_by": "training log", "scores": scores},
        "importance": importance,
        "human_reference": ref,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "polars": pl.__version__,
                     "python": platform.python_version()},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    d = out or model_dir()
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(est, d / MODEL_FILE, compress=3)
    (d / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta
