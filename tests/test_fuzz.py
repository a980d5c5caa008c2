"""Property-based tests of every file reader: any input either loads or raises the project's one
error type, naming the file; never another exception (a bounded number of examples each, so the
suite stays fast)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traitlens import TraitlensError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=12)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)
# Keys the readers look for, so generated records often get past the first check.
_KEYS = st.sampled_from(
    [
        "id", "dimension", "split", "stem", "options", "text", "pole", "prompt", "pole_a", "answer_a", "pole_b",
        "answer_b", "group", "instruction", "input", "output", "E", "I", "J", "P", "statement", "label", "goal",
        "sentence", "gt-email", "context", "question", "ans0", "ans1", "ans2", "answer_info", "answer", "reply",
        "refused", "A", "B",
    ]
)  # fmt: skip
_records = st.dictionaries(_KEYS, _json | st.sampled_from(["EI", "J", "P", "eval", "train", "x"]), max_size=8)


def _jsonl(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def _csv(header, rows) -> bytes:
    return ("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n").encode("utf-8", "surrogatepass")


_cell = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=10)
_csv_columns = st.lists(
    st.sampled_from(
        [
            "id", "dimension", "stem", "option_a", "pole_a", "option_b", "pole_b", "split", "statement", "label",
            "goal", "Behavior", "forbidden_prompt", "prompt", "reply",
        ]
    ),
    min_size=1, max_size=8, unique=True,
)  # fmt: skip


@st.composite
def file_bytes(draw, suffix: str) -> bytes:
    """Random bytes, random text, or a plausible layout with random contents."""
    kind = draw(st.sampled_from(["bytes", "text", "layout"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if suffix == ".jsonl":
        return _jsonl(draw(st.lists(_records | _json, max_size=4)))
    if suffix == ".json":
        return json.dumps(
            draw(st.lists(_records, max_size=4) | st.dictionaries(st.text(max_size=3), _records, max_size=3) | _json)
        ).encode()
    if suffix == ".csv":
        header = draw(_csv_columns)
        rows = draw(st.lists(st.lists(_cell, min_size=len(header), max_size=len(header)), max_size=4))
        return _csv(header, rows)
    return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")


def _loads_or_refuses(reader, name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            reader(path)
        except TraitlensError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip()
            assert path.name in str(exc) or str(path) in str(exc), str(exc)


def _items_loader(path):
    from traitlens.instrument.items import load_items

    return load_items(path)


def _pairs_loader(path):
    from traitlens.probe.contrast import load_pairs

    return load_pairs([path])


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
@FUZZ
@given(data=st.data())
def test_item_files_load_or_refuse(suffix, data):
    _loads_or_refuses(_items_loader, f"items{suffix}", data.draw(file_bytes(suffix)))


@FUZZ
@given(content=file_bytes(".jsonl"))
def test_paired_answer_files_load_or_refuse(content):
    _loads_or_refuses(_pairs_loader, "pairs.jsonl", content)


@FUZZ
@given(first=file_bytes(".json"), second=file_bytes(".json"))
def test_alpaca_pair_files_load_or_refuse(first, second):
    from traitlens.probe.contrast import load_pairs

    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "x_judging.json", Path(tmp) / "x_perceiving.json"
        a.write_bytes(first)
        b.write_bytes(second)
        try:
            load_pairs([a, b])
        except TraitlensError as exc:
            assert "\n" not in str(exc).strip() and ("x_judging" in str(exc) or "x_perceiving" in str(exc)), str(exc)


def _bench_readers():
    from traitlens.bench import loaders

    return [
        (loaders.read_statements, ".csv"),
        (loaders.read_statements, ".json"),
        (loaders.read_goals, ".csv"),
        (loaders.read_goals, ".json"),
        (loaders.read_prompts, ".csv"),
        (loaders.read_prompts, ".txt"),
        (loaders.read_leakage, ".json"),
        (loaders.read_bbq, ".jsonl"),
        (loaders.read_mcq, ".jsonl"),
    ]


@pytest.mark.parametrize("index", range(9))
@FUZZ
@given(data=st.data())
def test_public_safety_layouts_load_or_refuse(index, data):
    reader, suffix = _bench_readers()[index]
    _loads_or_refuses(reader, f"set{suffix}", data.draw(file_bytes(suffix)))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@FUZZ
@given(data=st.data())
def test_labelled_reply_files_load_or_refuse(suffix, data):
    from train_judges import read_labelled_replies

    _loads_or_refuses(read_labelled_replies, f"labels{suffix}", data.draw(file_bytes(suffix)))


@pytest.mark.parametrize("suffix", [".gguf", ".safetensors"])
@FUZZ
@given(content=st.binary(max_size=400))
def test_vector_imports_load_or_refuse(suffix, content):
    from traitlens.steering.interop import import_gguf, import_safetensors

    reader = import_gguf if suffix == ".gguf" else import_safetensors
    _loads_or_refuses(reader, f"vector{suffix}", content)


@FUZZ
@given(meta=_json | _records, tensors=st.binary(max_size=200), keep_tensors=st.booleans())
def test_vector_artifacts_load_or_refuse(meta, tensors, keep_tensors):
    import torch
    from safetensors.torch import save_file

    from traitlens.steering.artifact import FILES, load_vector

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "vec"
        directory.mkdir()
        (directory / FILES["meta"]).write_text(json.dumps(meta))
        if keep_tensors:
            save_file({"layer.1": torch.ones(8)}, str(directory / FILES["directions"]))
        else:
            (directory / FILES["directions"]).write_bytes(tensors)
        try:
            load_vector(directory)
        except TraitlensError as exc:
            assert "\n" not in str(exc).strip() and "vec" in str(exc), str(exc)


_SHIPPED = ["instrument/items.jsonl", "instrument/statements.jsonl", "bench/privacy.csv", "bench/jailbreak.csv", "bench/leakage.json", "bench/capability.jsonl", "bench/refusal_labels.jsonl"]  # fmt: skip


def _reader_for(name: str):
    from train_judges import read_labelled_replies

    from traitlens.bench import loaders

    return {
        "instrument/items.jsonl": _items_loader,
        "instrument/statements.jsonl": _pairs_loader,
        "bench/privacy.csv": loaders.read_statements,
        "bench/jailbreak.csv": loaders.read_goals,
        "bench/leakage.json": loaders.read_leakage,
        "bench/capability.jsonl": loaders.read_mcq,
        "bench/refusal_labels.jsonl": read_labelled_replies,
    }[name]


@pytest.mark.parametrize("name", _SHIPPED)
@FUZZ
@given(cut=st.integers(0, 4000), flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6))
def test_damaged_copies_of_our_files_load_or_refuse(name, cut, flips):
    """Valid files, truncated and with bytes overwritten: the deeper checks get exercised too."""
    from importlib import resources

    package, _, rest = name.partition("/") if name.startswith("instrument/") else ("", "", name)
    shipped = resources.files(f"traitlens.{package}.data" if package else "traitlens.data") / rest
    data = bytearray(shipped.read_bytes()[: cut or None])
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    _loads_or_refuses(_reader_for(name), Path(name).name, bytes(data))
