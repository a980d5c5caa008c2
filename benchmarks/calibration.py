"""Calibration (``traitlens edit --trait JP --no-bench``), side by side in one run: the reference
(every curve point a full forward, every repeated scoring pass computed again: the path before
the speed work) against the default, which computes the layers below each vector once per input
and replays them for every strength (``traitlens.accel.lower_layers``) and computes a pass the pipeline
asks for twice once (``RunOptions.memo``); both bit-identical. Both arms start with empty memos. Reported: the whole edit's wall time, the frontier
search's (the alpha curves, where the reuse acts), and whether both chose the same recipe, layer
and alpha. The warm arm is the default path in a study: another trait's edit of the same model
(``--warm-with``, default EI) has filled a fresh score store first, and the timed edit reads its
unsteered passes (baselines, validity checks, priors) back, bit-identical. A last arm runs the default path on the opt-in bfloat16 weights (``--dtype
bfloat16``, where the CPU has AMX or AVX512-BF16): not bit-identical, so its agreement with the
float32 curve is reported beside its speed. Two arms run the opt-in fast path (``edit --fast``:
the chat template's system turn computed once per scoring call, batches by length, the
unembedding only at real answer positions, persona replies with the generator's levers), cold
and warm (after a fast edit of ``--warm-with`` filled a fresh store); not bit-identical, so their
agreement with the default curve is reported too.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

from _harness import model_spec, parser, print_rows, write_result

import traitlens.edit.frontier as frontier
from traitlens import load_model
from traitlens.accel.precision import cpu_has_bf16
from traitlens.edit.pipeline import edit
from traitlens.memo import ScoreStore
from traitlens.options import RunOptions


def _arm(model, trait: str, reuse: bool, recipes, store: ScoreStore | None = None, fast: bool = False) -> dict:
    """One edit; ``reuse=False`` is the reference: no memo, no lower-layer replay."""
    options = RunOptions.cached(store, fast=fast) if reuse else RunOptions(fast=fast, reuse_layers=False)
    timings: dict[str, float] = {}
    search = frontier.search_frontier

    @functools.wraps(search)
    def timed_search(*args, **kwargs):
        start = time.perf_counter()
        try:
            return search(*args, **kwargs)
        finally:
            timings["frontier_search"] = time.perf_counter() - start

    frontier.search_frontier = timed_search
    try:
        start = time.perf_counter()
        result = edit(model, trait, recipes=recipes, options=options)
        timings["edit"] = time.perf_counter() - start
    finally:
        frontier.search_frontier = search
    chosen = result.calibration.chosen
    return timings | {
        "recipe": result.recipe.name,
        "layer": result.layer,
        "alpha": result.alpha,
        "points": len(result.calibration.points),
        "curve": [(p.recipe, p.alpha, p.target_share, p.perplexity) for p in result.calibration.points],
        "train_share": chosen.target_share,
    }


def _agreement(exact: dict, other: dict) -> dict:
    """How far another arm's curve is from the exact float32 one, at the strengths both evaluated."""
    ours = {(r, a): (share, ppl) for r, a, share, ppl in exact["curve"]}
    shared = [(ours[(r, a)], (share, ppl)) for r, a, share, ppl in other["curve"] if (r, a) in ours]
    return {
        "same_choice": all(exact[k] == other[k] for k in ("recipe", "layer", "alpha")),
        "shared_points": len(shared),
        "max_share_diff": max((abs(a[0] - b[0]) for a, b in shared), default=float("nan")),
        "max_ppl_rel_diff": max((abs(a[1] - b[1]) / a[1] for a, b in shared), default=float("nan")),
        "train_share": [exact["train_share"], other["train_share"]],
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--trait", default="JP")
    p.add_argument("--warm-with", default="EI", help="the trait whose edit fills the store before the warm arm")
    args = p.parse_args()
    model = load_model(model_spec(args))
    recipes = "default,persona" if args.quick else None
    arms = {"reference": _arm(model, args.trait, False, recipes), "default": _arm(model, args.trait, True, recipes)}
    ref, new = arms["reference"], arms["default"]
    with tempfile.TemporaryDirectory() as tmp:
        store = ScoreStore(Path(tmp))
        _arm(model, args.warm_with, True, recipes, store)
        arms["warm"] = _arm(model, args.trait, True, recipes, store)
        fast_store = ScoreStore(Path(tmp) / "fast")
        arms["fast"] = _arm(model, args.trait, True, recipes, fast=True)
        _arm(model, args.warm_with, True, recipes, fast_store, fast=True)
        arms["fast_warm"] = _arm(model, args.trait, True, recipes, fast_store, fast=True)
    warm = arms["warm"]
    fast = {
        name: _agreement(new, arms[name]) | {"speedup": ref["edit"] / arms[name]["edit"]}
        for name in ("fast", "fast_warm")
    }
    warm_same = all(new[k] == warm[k] for k in ("recipe", "layer", "alpha")) and new["curve"] == warm["curve"]
    bf16 = None
    if cpu_has_bf16():
        bf16_model = load_model(model_spec(args), dtype="bfloat16")
        arms["bfloat16"] = _arm(bf16_model, args.trait, True, recipes)
        bf16 = _agreement(new, arms["bfloat16"]) | {"speedup": ref["edit"] / arms["bfloat16"]["edit"]}
    same_choice = all(ref[k] == new[k] for k in ("recipe", "layer", "alpha"))
    same_curve = ref["curve"] == new["curve"]
    rows = [
        (name, f"edit {a['edit']:6.1f} s  frontier search {a['frontier_search']:6.1f} s  {a['points']} points")
        for name, a in arms.items()
    ]
    rows.append(
        (
            "speed-up",
            f"edit {ref['edit'] / new['edit']:.2f}x  search {ref['frontier_search'] / new['frontier_search']:.2f}x",
        )
    )
    rows.append(
        (
            "same choice / curve",
            f"{same_choice} / {same_curve} ({new['recipe']}, layer {new['layer']}, alpha {new['alpha']})",
        )
    )
    rows.append(
        (
            "warm",
            f"edit {ref['edit'] / warm['edit']:.2f}x the reference after a {args.warm_with} edit filled the store; "
            f"same choice and curve as the default: {warm_same}",
        )
    )
    for name, agree in fast.items():
        rows.append(
            (
                name,
                f"edit {agree['speedup']:.2f}x the reference; same choice {agree['same_choice']}; curve share "
                f"max |diff| {agree['max_share_diff']:.2e}, perplexity max relative diff {agree['max_ppl_rel_diff']:.2e}",
            )
        )
    if bf16 is not None:
        rows.append(
            (
                "bfloat16",
                f"edit {bf16['speedup']:.2f}x the reference; same choice {bf16['same_choice']}; curve share "
                f"max |diff| {bf16['max_share_diff']:.4f}, perplexity max relative diff {bf16['max_ppl_rel_diff']:.4f}",
            )
        )
    print_rows(f"edit --trait {args.trait} --no-bench on {model.name}", rows)
    write_result(
        "calibration",
        args,
        {
            "trait": args.trait,
            "model": model.name,
            "arms": {k: {key: v for key, v in a.items() if key != "curve"} for k, a in arms.items()},
            "speedup": ref["edit"] / new["edit"],
            "frontier_search_speedup": ref["frontier_search"] / new["frontier_search"],
            "same_choice": same_choice,
            "same_curve": same_curve,
            "warm": {"with": args.warm_with, "speedup": ref["edit"] / warm["edit"], "same_choice_and_curve": warm_same},
            "fast": fast,
            "bfloat16": bf16,
        },
    )


if __name__ == "__main__":
    main()
