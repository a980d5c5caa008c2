"""How collection and probing time grow with the number of contrast pairs and of layers: a
small table and the fitted exponent (time ~ size^k, least squares on logs). The layer axis takes
blocks 0..n-1, so it measures depth."""

from __future__ import annotations

import time

import numpy as np
from _harness import model_spec, parser, print_rows, write_result

from traitlens import load_model
from traitlens.probe.api import default_contrast, probe_dimension
from traitlens.probe.collect import collect


def exponent(sizes, times) -> float:
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    model = load_model(model_spec(args))
    contrast = default_contrast().for_dimension("SN")
    pair_counts = [16, 32] if args.quick else [24, 48, 96]
    layer_counts = [2, 4] if args.quick else [8, 15, 30]
    table: dict[str, list] = {"pairs": [], "layers": []}

    def run(n_pairs: int, n_layers: int) -> tuple[float, float]:
        subset = type(contrast)(contrast.pairs[:n_pairs], f"{contrast.name}[:{n_pairs}]")
        # The first n blocks: collection stops the pass after the last block it needs, so depth, not
        # the count of hooks, is what costs (the last n blocks would always run the whole model).
        layers = list(range(n_layers))
        start = time.perf_counter()
        acts = collect(model, subset, layers=layers, use_cache=False)
        collected = time.perf_counter() - start
        start = time.perf_counter()
        probe_dimension(acts, "meandiff", permutations=20 if args.quick else 100, seed=0)
        return collected, time.perf_counter() - start

    run(pair_counts[0], layer_counts[0])  # warm-up
    for n in pair_counts:
        table["pairs"].append((n, *run(n, model.n_layers if not args.quick else layer_counts[-1])))
    for n_layers in layer_counts:
        table["layers"].append((n_layers, *run(pair_counts[-1], n_layers)))
    rows = []
    fits = {}
    for axis, entries in table.items():
        sizes = [e[0] for e in entries]
        for name, column in (("collect", 1), ("probe", 2)):
            k = exponent(sizes, [e[column] for e in entries])
            fits[f"{name}_vs_{axis}"] = k
            rows.append(
                (
                    f"{name} time vs {axis}",
                    "  ".join(f"{e[0]}: {e[column]:.2f}s" for e in entries) + f"   exponent {k:.2f}",
                )
            )
    print_rows("scaling (SN contrast, meandiff + 100 permutations)", rows)
    write_result("scaling", args, {"table": table, "exponents": fits})


if __name__ == "__main__":
    main()
