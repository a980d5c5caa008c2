"""matplotlib set-up shared by every plot: headless backend, one house style."""

from __future__ import annotations

__all__ = ["pyplot", "POLE_COLOURS"]

POLE_COLOURS = ("#4C72B0", "#DD8452")  # first pole, second pole


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
