"""Shared fixtures: the tiny random model for unit tests, the real default model for a few
integration tests (loaded once per session)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    from traitlens import load_model

    return load_model("tiny")


@pytest.fixture(scope="session")
def smollm():
    from traitlens import load_model

    return load_model("smollm2-135m-instruct")
