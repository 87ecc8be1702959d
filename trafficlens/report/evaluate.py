"""Labels against ground truth: per-class precision, recall and F1 at request and client level,
confusion matrices, and the same for `ai_driven` and `malicious`.

Truth files are what `trafficlens simulate` writes beside its log (`LOG.truth.parquet`: one row
per log line with `line_no` and the true labels), or any Parquet/CSV with `line_no` plus the
label columns, for a log named with `--log` (default: the truth file's name without
`.truth.parquet`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from trafficlens.errors import InputError, LakeError
from trafficlens.schema import ACTOR_CLASSES
from trafficlens.store import Lake, connect

TRUTH_SUFFIX = ".truth.parquet"


def read_truth(path: str | Path) -> pl.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no truth file at {p}")
    try:
        df = pl.read_parquet(p, glob=False) if p.suffix == ".parquet" else pl.read_csv(p, glob=False)
    except Exception as e:  # a file of the wrong kind: one clear line
        raise InputError(f"{p}: not a Parquet or CSV truth file ({type(e).__name__})") from None
    need = {"line_no", "actor_class"}
    if not need <= set(df.columns):
        raise InputError(f"{p}: a truth file needs the columns {', '.join(sorted(need))}")
    return df


def _log_for(truth: Path, log: str | Path | None) -> Path:
    if log:
        return Path(log).expanduser().resolve()
    name = truth.name
    if name.endswith(TRUTH_SUFFIX):
        return truth.with_name(name[: -len(TRUTH_SUFFIX)]).resolve()
    raise InputError(f"{truth}: say which log it describes with --log")


def _scores(y_true: list, y_pred: list, labels: list) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per = {
        str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(n[i])}
        for i, c in enumerate(labels)
    }
    present = [i for i in range(len(labels)) if n[i] > 0]
    macro = sum(f[i] for i in present) / len(present) if present else 0.0
    accuracy = sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true) if y_true else 0.0
    return {
        "n": len(y_true),
        "accuracy": accuracy,
        "macro_f1": float(macro),
        "per_class": per,
        "labels": [str(x) for x in labels],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist() if y_true else [],
    }


@dataclass
class Evaluation:
    """Scores at request and client level for actor_class, ai_driven and malicious."""

    requests: dict = field(default_factory=dict)
    clients: dict = field(default_factory=dict)
    matched: int = 0
    truth_rows: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "requests": self.requests,
                "clients": self.clients,
                "matched": self.matched,
                "truth_rows": self.truth_rows,
            },
            indent=1,
        )

    def describe(self) -> str:
        out = [f"{self.matched:,} of {self.truth_rows:,} truth rows matched requests in the lake"]
        for level, res in (("clients", self.clients), ("requests", self.requests)):
            for target in ("actor_class", "ai_driven", "malicious"):
                s = res.get(target)
                if not s or not s["n"]:
                    continue
                out += [
                    "",
                    f"{level} · {target}: macro-F1 {s['macro_f1']:.3f}, accuracy {s['accuracy']:.3f} (n={s['n']:,})",
                    f"  {'class':<10} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>9}",
                ]
                for c, m in s["per_class"].items():
                    out.append(
                        f"  {c:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>9,}"
                    )
                out.append("  confusion (rows: truth, columns: predicted): " + " ".join(s["labels"]))
                for c, row in zip(s["labels"], s["confusion"]):
                    out.append(f"  {c:<10} " + " ".join(f"{v:>8,}" for v in row))
        return "\n".join(out)


def evaluate(lake: str | Path, truth: str | Path, log: str | Path | None = None) -> Evaluation:
    """Compare the lake's labels for `log`'s lines with the truth file."""
    store = Lake(lake)
    if not store.has_table("requests"):
        raise LakeError(f"the lake at {store.name} has no labelled requests; run `trafficlens classify` first")
    tpath = Path(truth).expanduser().resolve()
    t = read_truth(tpath)
    source = str(_log_for(tpath, log))
    con = connect(store)
    try:
        con.register("truth", t)
        # The log may have been ingested under another path: fall back to its file name.
        n_exact = con.sql("SELECT count(*) FROM requests WHERE source = $src", params={"src": source}).fetchall()[0][0]
        cond = "r.source = $src" if n_exact else "regexp_extract(r.source, '[^/]+$') = regexp_extract($src, '[^/]+$')"
        cols = set(t.columns)

        def tcol(c: str, default: str) -> str:
            return f"t.{c}" if c in cols else default

        joined = con.sql(
            f"""SELECT r.client_id, r.actor_class AS p_class, r.ai_driven AS p_ai, r.malicious AS p_mal,
                       t.actor_class AS t_class, {tcol("ai_driven", "NULL::BOOLEAN")} AS t_ai,
                       {tcol("malicious", "NULL::BOOLEAN")} AS t_mal
                FROM requests r JOIN truth t ON r.line_no = t.line_no AND {cond}""",
            params={"src": source},
        ).pl()
    except duckdb.Error as e:
        raise InputError(f"{tpath}: cannot be compared with the lake ({str(e).splitlines()[0]})") from None
    finally:
        con.close()
    res = Evaluation(matched=joined.height, truth_rows=t.height)
    if joined.height == 0:
        raise InputError(f"no request in the lake comes from {source}; ingest and classify that log first")
    classes = list(ACTOR_CLASSES)
    res.requests["actor_class"] = _scores(joined["t_class"].to_list(), joined["p_class"].to_list(), classes)
    # A client's true class is what most of its requests truly are.
    per_client = joined.group_by("client_id").agg(
        pl.col("t_class").mode().sort().first(),
        pl.col("p_class").first(),
        pl.col("t_ai").mean() > 0.5,
        pl.col("p_ai").first(),
        pl.col("t_mal").mean() > 0.5,
        pl.col("p_mal").first(),
    )
    res.clients["actor_class"] = _scores(per_client["t_class"].to_list(), per_client["p_class"].to_list(), classes)
    for target, tc, pc in (("ai_driven", "t_ai", "p_ai"), ("malicious", "t_mal", "p_mal")):
        for level, frame in (("requests", joined), ("clients", per_client)):
            f = frame.drop_nulls([tc, pc])
            if f.height:
                getattr(res, level)[target] = _scores(f[tc].to_list(), f[pc].to_list(), [True, False])
    return res
