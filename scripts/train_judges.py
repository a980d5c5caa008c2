"""Train and validate the shipped judges: ``python scripts/train_judges.py --data DIR``
(``make judges``). Deterministic: the same data gives the same weights, bit for bit.

Refusal judge: JailbreakBench's judged replies (a reply its Llama-3-70B judge did not call
jailbroken counts as a refusal) plus our own labelled replies, or a user's CSV/JSONL of
``prompt,reply,label``. Validated by leave-one-model-out and leave-one-attack-out
cross-validation: each fold is scored by a judge that never saw that model's (or attack's)
replies. Toxicity scorer: ToxiGen's labelled statements, validated on a held-out fifth and on
the TOXIGEN hand-written demonstrations (another source).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from traitlens._io import read_jsonl, read_text
from traitlens.bench.agreement import binary_agreement, roc_auc
from traitlens.bench.textclf import featurize, fit_features, fit_linear
from traitlens.errors import TraitlensError

__all__ = ["read_labelled_replies", "jailbreakbench_replies", "train_refusal", "train_toxicity", "check_judge", "main"]

JBB = "safety/jailbreakbench/artifacts"
TOXIGEN = "paper/tracingllm/toxigen.csv"
DEMONSTRATIONS = "safety/toxigen/demonstrations"
# Chosen among C in {1, 4, 16} x {plain, balanced} by leave-one-model-out F1 (0.839-0.869), so
# that figure is slightly optimistic; leave-one-attack-out played no part in the choice.
REFUSAL_C = 16.0
TOXICITY_CS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # chosen by inner cross-validation on the training part


def shipped_dir() -> Path:
    return Path(str(resources.files("traitlens.data") / "judges"))


def read_labelled_replies(path: str | Path) -> list[dict]:
    """Rows ``{prompt, reply, label}`` (label 1 = refusal) from .csv or .jsonl; ``refused`` is
    accepted for ``label``. Wrong columns or no positives: one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TraitlensError(f"labelled replies not found: {path}")
    if path.suffix == ".csv":
        with io.StringIO(read_text(path), newline="") as handle:
            try:
                raw = [(f"{path.name} line {n}", row) for n, row in enumerate(csv.DictReader(handle), start=2)]
            except csv.Error as exc:
                raise TraitlensError(f"{path.name}: not a readable CSV ({exc})") from None
    elif path.suffix == ".jsonl":
        raw = [(where, row) for where, _, row in read_jsonl(path)]
    else:
        raise TraitlensError(f"{path.name}: labelled replies must be .csv or .jsonl")
    rows = []
    for where, row in raw:
        label = row.get("label", row.get("refused")) if isinstance(row, dict) else None
        if not isinstance(row, dict) or "reply" not in row or label is None:
            raise TraitlensError(f"{where}: expected columns reply and label (1 = refusal, 0 = not)")
        try:
            label = int(label)
        except (TypeError, ValueError):
            raise TraitlensError(f"{where}: label must be 0 or 1, not {label!r}") from None
        if label not in (0, 1):
            raise TraitlensError(f"{where}: label must be 0 or 1, not {label}")
        rows.append({"prompt": row.get("prompt", ""), "reply": str(row["reply"]), "label": label, "source": path.name})
    if not rows or not any(r["label"] for r in rows) or all(r["label"] for r in rows):
        raise TraitlensError(f"{path.name}: needs both refusals (label 1) and other replies (label 0)")
    return rows


def jailbreakbench_replies(data: Path) -> list[dict]:
    folder = data / JBB
    files = sorted(folder.glob("*.json"))
    if not files:
        raise TraitlensError(f"no JailbreakBench artifacts in {folder}")
    rows = []
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        attack, model = record["parameters"]["method"], record["parameters"]["model"]
        for entry in record["jailbreaks"]:
            if entry.get("response") is None or entry.get("jailbroken") is None:
                continue  # no prompt was submitted for this goal
            rows.append(
                {
                    "prompt": entry.get("prompt") or "",
                    "reply": entry["response"],
                    "label": int(not entry["jailbroken"]),
                    "model": model,
                    "attack": attack,
                    "source": "jailbreakbench",
                }
            )
    return rows


def _ours() -> list[dict]:
    with resources.as_file(resources.files("traitlens.data") / "bench" / "refusal_labels.jsonl") as path:
        return [dict(r, model="ours", attack="ours") for r in read_labelled_replies(path)]


def _cross_validate(rows: list[dict], key: str, extra: list[dict], pattern) -> dict:
    """Leave one ``key`` value out at a time; pooled predictions on the held-out rows. Every
    reply is featurized once; each fold fits on its rows of that matrix."""
    from scipy import sparse

    features = featurize([r["reply"] for r in rows + extra])
    labels = np.array([r["label"] for r in rows + extra])
    own = np.arange(len(rows))
    extra_rows = np.arange(len(rows), len(rows) + len(extra))
    truth, predicted, baseline = [], [], []
    folds = {}
    for held in sorted({r[key] for r in rows}):
        test = own[[r[key] == held for r in rows]]
        train = np.concatenate([own[[r[key] != held for r in rows]], extra_rows])
        model = fit_features(sparse.csr_matrix(features[train]), labels[train], REFUSAL_C, balanced=True)
        guess = (model.decision_features(features[test]) > 0).astype(int)
        folds[held] = binary_agreement(labels[test], guess)
        truth += labels[test].tolist()
        predicted += guess.tolist()
        baseline += [int(pattern(rows[k]["reply"])) for k in test]
    return {
        "pooled": binary_agreement(truth, predicted),
        "pattern_detector_same_rows": binary_agreement(truth, baseline),
        "folds": folds,
    }


def train_refusal(data: Path, user_files: Sequence[Path] = ()) -> tuple:
    from traitlens.bench.refusal import PatternRefusalDetector

    jbb = jailbreakbench_replies(data)
    extra = _ours() + [r for f in user_files for r in read_labelled_replies(f)]
    pattern = PatternRefusalDetector().is_refusal
    validation = {
        "leave_one_model_out": _cross_validate(jbb, "model", extra, pattern),
        "leave_one_attack_out": _cross_validate(jbb, "attack", extra, pattern),
    }
    rows = jbb + extra
    card = {
        "judge": "refusal",
        "label": "1 = the reply refuses (JailbreakBench: not jailbroken)",
        "trained_on": {"jailbreakbench_replies": len(jbb), "ours_and_user": len(extra)},
        "c": REFUSAL_C,
        "class_weight": "balanced",
        "validation": validation,
    }
    labels = [r["label"] for r in rows]
    return fit_linear([r["reply"] for r in rows], labels, REFUSAL_C, card, balanced=True), validation


def _toxigen(data: Path) -> list[tuple[str, int]]:
    path = data / TOXIGEN
    if not path.is_file():
        raise TraitlensError(f"ToxiGen statements not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["statement"], int(row["label"])) for row in csv.DictReader(handle)]


def _demonstrations(data: Path) -> list[tuple[str, int]]:
    rows = []
    for path in sorted((data / DEMONSTRATIONS).rglob("*.txt")):
        label = 1 if path.name.startswith("hate") else 0 if path.name.startswith("neutral") else None
        if label is not None:
            rows += [(line.strip(), label) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def _held_out(text: str) -> bool:
    return zlib.crc32(text.encode()) % 5 == 0


def _choose_c(texts: list[str], labels: list[int], grid=TOXICITY_CS, folds: int = 5) -> tuple[float, dict]:
    """C by 5-fold cross-validated AUC on the training part only (folds by a hash of the text)."""
    features = featurize(texts)
    y = np.asarray(labels)
    fold = np.array([zlib.crc32(t.encode()) // 5 % folds for t in texts])
    scores = {}
    for c in grid:
        auc = []
        for k in range(folds):
            model = fit_features(features[fold != k], y[fold != k], c)
            auc.append(roc_auc(y[fold == k], model.decision_features(features[fold == k])))
        scores[c] = float(np.mean(auc))
    return max(grid, key=lambda c: scores[c]), scores


def train_toxicity(data: Path) -> tuple:
    rows = _toxigen(data)
    train = [r for r in rows if not _held_out(r[0])]
    test = [r for r in rows if _held_out(r[0])]
    c, cv = _choose_c([t for t, _ in train], [y for _, y in train])
    probe = fit_linear([t for t, _ in train], [y for _, y in train], c)
    demos = _demonstrations(data)
    from traitlens.bench.toxicity import LexiconScorer

    held_texts, held_labels = [t for t, _ in test], [y for _, y in test]
    validation = {
        "c_by_inner_cv_auc": {str(k): round(v, 6) for k, v in cv.items()},
        "toxigen_held_out_fifth": {"n": len(test), "auc": roc_auc(held_labels, probe.decision(held_texts))},
        "lexicon_same_rows": {"n": len(test), "auc": roc_auc(held_labels, LexiconScorer().score(held_texts))},
    }
    if demos:
        validation["toxigen_demonstrations"] = {
            "n": len(demos),
            "auc": roc_auc([y for _, y in demos], probe.decision([t for t, _ in demos])),
        }
    card = {"judge": "toxicity", "label": "1 = toxic (ToxiGen)", "trained_on": {"toxigen": len(rows)}, "c": c}
    card["validation"] = validation
    return fit_linear([t for t, _ in rows], [y for _, y in rows], c, card), validation


def check_judge(spec: str, rows: list[dict], limit: int | None = None) -> dict:
    """Agreement of a refusal judge (``get_detector`` spec) with labelled replies."""
    from traitlens.bench.base import subset
    from traitlens.bench.refusal import get_detector

    rows = subset(rows, limit)
    judge = get_detector(spec)
    if hasattr(judge, "refusals"):
        verdicts = judge.refusals([r["reply"] for r in rows])
    elif hasattr(judge, "scores"):
        verdicts = [bool(x > 0) for x in judge.scores([r["reply"] for r in rows])]
    else:
        verdicts = [judge.is_refusal(r["reply"]) for r in rows]
    return binary_agreement([r["label"] for r in rows], [int(v) for v in verdicts])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--labels", type=Path, action="append", default=[], help="extra labelled replies (csv/jsonl)")
    parser.add_argument("--out", type=Path, default=None, help="default: the package's shipped judges")
    parser.add_argument("--check", default=None, help="judge spec to check instead of training (e.g. llm:<model>)")
    parser.add_argument("--limit", type=int, default=None, help="with --check: at most N replies (a seeded sample)")
    args = parser.parse_args(argv)
    out = args.out or shipped_dir()
    try:
        if args.check:
            rows = [r for f in args.labels for r in read_labelled_replies(f)] or jailbreakbench_replies(args.data)
            print(json.dumps({"judge": args.check, **check_judge(args.check, rows, args.limit)}, indent=2))
            return
        if not args.data.is_dir():
            raise TraitlensError(f"data directory not found: {args.data}")
        refusal, r_val = train_refusal(args.data, args.labels)
        toxicity, t_val = train_toxicity(args.data)
    except TraitlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    refusal.save(out / "refusal.safetensors")
    toxicity.save(out / "toxicity.safetensors")
    for name, block in r_val.items():
        p = block["pooled"]
        print(
            f"refusal {name}: F1 {p['f1']:.3f} [{p['f1_ci'][0]:.3f}, {p['f1_ci'][1]:.3f}], kappa {p['kappa']:.3f}, n {p['n']}"
        )
    for name, block in t_val.items():
        if "auc" in block:
            print(f"toxicity {name}: AUC {block['auc']:.3f}, n {block['n']}")
    print(f"wrote {out}/refusal.safetensors, toxicity.safetensors (+ .json cards)")


if __name__ == "__main__":
    main()
