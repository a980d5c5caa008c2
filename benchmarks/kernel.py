"""Per-token steering op: fused vs the unfused chain of tensor ops (``reference_steer``), over
hidden sizes 576..8192 and token counts 1..4096, float32 and bfloat16; on a GPU also with CUDA
events and the achieved bandwidth against a device-to-device copy of the same bytes."""

from __future__ import annotations

import time

import torch
from _harness import parser, print_rows, write_result

from traitlens.steering.kernels import fused_steer, reference_steer


def _time_cpu(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _time_cuda(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--mode", default="add")
    args = p.parse_args()
    sizes = [576, 2048] if args.quick else [576, 2048, 4096, 8192]
    tokens = [1, 64] if args.quick else [1, 64, 512, 4096]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    repeats = 3 if args.quick else 20
    rows, records = [], []
    for device in devices:
        timer = _time_cuda if device == "cuda" else _time_cpu
        for dtype in (torch.float32, torch.bfloat16):
            for d in sizes:
                for t in tokens:
                    h = torch.randn(1, t, d, device=device).to(dtype)
                    v = torch.randn(d, device=device)
                    mask = torch.ones(1, t, device=device)
                    fused = timer(lambda: fused_steer(h, v, mask, 0.5, args.mode), repeats)
                    ref = timer(lambda: reference_steer(h, v, mask, 0.5, args.mode), repeats)
                    record = {
                        "device": device,
                        "dtype": str(dtype).split(".")[-1],
                        "d_model": d,
                        "tokens": t,
                        "fused_s": fused,
                        "reference_s": ref,
                        "speedup": ref / fused,
                    }
                    if device == "cuda":
                        copy = timer(lambda: h.clone(), repeats)
                        moved = 2 * h.numel() * h.element_size()
                        record |= {"fused_GBps": moved / fused / 1e9, "copy_GBps": moved / copy / 1e9}
                    records.append(record)
                    extra = f"  {record['fused_GBps']:.0f}/{record['copy_GBps']:.0f} GB/s" if device == "cuda" else ""
                    rows.append(
                        (
                            f"{device} {record['dtype']:8s} d={d:5d} t={t:5d}",
                            f"fused {ref / fused:5.2f}x faster than unfused{extra}",
                        )
                    )
    print_rows(f"per-token steering op ({args.mode})", rows)
    write_result("kernel", args, {"mode": args.mode, "records": records})


if __name__ == "__main__":
    main()
