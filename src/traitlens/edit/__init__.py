"""The edit experiment: probe a trait, build candidate vectors by recipe, calibrate their
strength under the perplexity guard, re-assess on held-out items, and report."""

from traitlens.edit.pipeline import EditResult, check_options, default_recipes, edit

__all__ = ["EditResult", "check_options", "default_recipes", "edit"]
