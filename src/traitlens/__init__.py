"""traitlens: measure, probe and edit the personality of language models."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# traitlens never downloads: models come from local files or the local HF cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:
    __version__ = version("traitlens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from traitlens.errors import TraitlensError  # noqa: E402
from traitlens.models import LoadedModel, ModelFingerprint, load_model  # noqa: E402

__all__ = ["__version__", "TraitlensError", "LoadedModel", "ModelFingerprint", "load_model"]
