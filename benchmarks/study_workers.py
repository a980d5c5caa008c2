"""What Ray workers buy a study on this machine: the same small study (none, one vector, one
persona prompt; perplexity, the bank's eval split, privacy and jailbreak) run from an empty cache
with 1 worker and with 2, side by side. Each worker loads the model and measures the readouts'
validity once, so the ratio includes that overhead."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _harness import ROOT, parser, print_rows, write_result

SPEC = """name = "workers"
models = ["{model}"]
vector_root = "{vectors}"

[interventions]
none = true
vectors = ["{vector}"]
multiples = [1.0]
personas = ["{pole}"]

[instruments]
bank = "eval"

[suites.privacy]
n = {privacy}
at = "all"

[suites.jailbreak]
n = {jailbreak}
at = "all"
"""


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    from traitlens.study import execute, load_spec

    model = "tiny" if args.quick else (args.model or "smollm2-135m-instruct")
    vectors = ROOT.parent / "results" / "vectors"
    sizes = {"privacy": 6, "jailbreak": 3} if args.quick else {"privacy": 20, "jailbreak": 6}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workers.toml"
        path.write_text(SPEC.format(model=model, vectors=vectors, vector="JP", pole="P", **sizes))
        spec = load_spec(path)
        for workers in (1, 2):
            start = time.perf_counter()
            run = execute(spec, Path(tmp) / f"w{workers}", executor="ray", workers=workers)
            seconds[workers] = time.perf_counter() - start
            assert run.computed == len(spec.units()) and not run.failed, run.failed
    payload = {
        "model": model,
        "units": len(spec.units()),
        "seconds": {f"workers{k}": round(v, 1) for k, v in seconds.items()},
        "speedup_2_over_1": round(seconds[1] / seconds[2], 3),
    }
    print_rows("study on Ray", [(k, f"{v} s") for k, v in payload["seconds"].items()])
    write_result("study_workers", args, payload)


if __name__ == "__main__":
    main()
