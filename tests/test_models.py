from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError, load_model
from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.models import registry


def test_tiny_model_shape_and_fingerprint_are_deterministic(tiny):
    again = load_model("tiny")
    assert (tiny.n_layers, tiny.d_model) == (4, 64)
    assert tiny.fingerprint == again.fingerprint
    assert tiny.fingerprint.weights_hash.startswith("sha256:")
    assert "blocks.3.hook_resid_post" in tiny.bridge.hook_dict


def test_fingerprint_mismatch_names_both_models(tiny):
    other = type(tiny.fingerprint)(**{**tiny.fingerprint.to_dict(), "d_model": 128})
    assert "d_model=128" in tiny.fingerprint.mismatch(other)
    assert tiny.fingerprint.mismatch(tiny.fingerprint) is None


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(TraitlensError, match="unknown model spec 'no-such-model'"):
        load_model("no-such-model")


def test_missing_and_corrupt_gguf_are_clear_errors(tmp_path: Path):
    with pytest.raises(TraitlensError, match="not found"):
        load_model(str(tmp_path / "absent.gguf"))
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    with pytest.raises(TraitlensError, match="not a valid GGUF"):
        load_model(str(corrupt))


def test_wrong_checksum_is_refused(tmp_path: Path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not the real weights")
    with pytest.raises(TraitlensError, match="checksum mismatch"):
        registry._load_gguf(fake, "x", expected_sha=registry.SMOLLM2_SHA256)


def test_cli_bad_inputs_end_in_one_line_and_exit_2(tmp_path: Path):
    assert_clean_error(run_cli("model", "info", "--model", "nope"), "unknown model spec")
    corrupt = tmp_path / "c.gguf"
    corrupt.write_bytes(b"\0" * 64)
    assert_clean_error(run_cli("model", "info", "--model", str(corrupt)), "not a valid GGUF")
    assert_clean_error(run_cli("model", "info", "--no-such-flag"), "--no-such-flag")


def test_cli_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("traitlens ")


def test_chat_template_has_exactly_one_bos(tiny):
    ids = chat_ids(tiny.tokenizer, chat_messages("hello"))
    bos = tiny.tokenizer.bos_token_id
    assert ids[0] == bos and ids[1] != bos


@pytest.mark.parametrize("backend", ["hf", "bridge"])
def test_cached_and_uncached_greedy_generation_agree_on_tiny(tiny, backend):
    prompts = [chat_ids(tiny.tokenizer, chat_messages(p)) for p in ("hi", "a longer question?")]
    cached = generate(tiny, prompts, max_new_tokens=12, backend=backend, use_cache=True)
    uncached = generate(tiny, prompts, max_new_tokens=12, backend=backend, use_cache=False)
    assert [g.new_ids for g in cached] == [g.new_ids for g in uncached]
    assert all(len(g.new_ids) > 0 for g in cached)


def test_left_padded_batch_generates_like_single_prompts(tiny):
    prompts = [chat_ids(tiny.tokenizer, chat_messages(p)) for p in ("hi", "a much longer prompt here")]
    together = generate(tiny, prompts, max_new_tokens=8, batch_size=2)
    alone = [generate(tiny, [p], max_new_tokens=8)[0] for p in prompts]
    assert [g.new_ids for g in together] == [g.new_ids for g in alone]


class _NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise _NetworkUsed(f"network call attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_loading_tiny_makes_no_network_call(no_network):
    load_model("tiny")


# --- the real default model -------------------------------------------------------------


@pytest.mark.slow
def test_loading_default_model_makes_no_network_call(no_network):
    loaded = load_model("smollm2-135m-instruct")
    assert (loaded.n_layers, loaded.d_model) == (30, 576)
    assert loaded.fingerprint.weights_hash == "sha256:" + registry.SMOLLM2_SHA256


@pytest.mark.slow
def test_default_chat_prompt_has_one_bos_and_answers_in_english(smollm):
    ids = chat_ids(smollm.tokenizer, chat_messages("What is the capital of France?"))
    assert ids[0] == smollm.tokenizer.bos_token_id == smollm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[1] != ids[0]
    (reply,) = generate(smollm, [ids], max_new_tokens=20)
    assert "Paris" in reply.text


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "bridge"])
def test_cached_and_uncached_generation_agree_on_default_model(smollm, backend):
    ids = chat_ids(smollm.tokenizer, chat_messages("Name three colours of the rainbow."))
    cached = generate(smollm, [ids], max_new_tokens=24, backend=backend, use_cache=True)
    uncached = generate(smollm, [ids], max_new_tokens=24, backend=backend, use_cache=False)
    assert cached[0].new_ids == uncached[0].new_ids
    assert len(cached[0].new_ids) >= 8


@pytest.mark.slow
def test_direct_gguf_loader_matches_transformers_loader(smollm):
    from transformers import AutoModelForCausalLM

    path = registry._package_dir(registry.SMOLLM2_PACKAGE, "") / registry.SMOLLM2_FILE
    reference = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
    ).eval()
    ids = torch.tensor([chat_ids(smollm.tokenizer, chat_messages("Hello there"))])
    with torch.no_grad():
        ours = smollm.hf_model(ids).logits
        theirs = reference(ids).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def _write_llama_gguf(path: Path, *, head_dim: int = 16, extra: dict | None = None, rope_freqs=None, meta=None):
    """A tiny random Llama as a GGUF file: d_model 64, 4 heads of ``head_dim``, 2 KV heads."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    d, heads, kv, ff, vocab = 64, 4, 2, 96, 300

    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_context_length(128)
    writer.add_embedding_length(d)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    for key, value in (meta or {}).items():
        writer.add_string(key, value) if isinstance(value, str) else writer.add_float32(key, value)
    tensors = {"token_embd.weight": w(vocab, d), "output_norm.weight": np.ones(d, np.float32)}
    for b in range(2):
        tensors |= {
            f"blk.{b}.attn_norm.weight": np.ones(d, np.float32),
            f"blk.{b}.attn_q.weight": w(heads * head_dim, d),
            f"blk.{b}.attn_k.weight": w(kv * head_dim, d),
            f"blk.{b}.attn_v.weight": w(kv * head_dim, d),
            f"blk.{b}.attn_output.weight": w(d, heads * head_dim),
            f"blk.{b}.ffn_norm.weight": np.ones(d, np.float32),
            f"blk.{b}.ffn_gate.weight": w(ff, d),
            f"blk.{b}.ffn_up.weight": w(ff, d),
            f"blk.{b}.ffn_down.weight": w(d, ff),
        }
    if rope_freqs is not None:
        tensors["rope_freqs.weight"] = np.asarray(rope_freqs, np.float32)
    tensors |= extra or {}
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_loader_reads_head_size_rope_freqs_and_refuses_unknown_tensors(tmp_path: Path):
    """Defect 16: head size came from d_model/n_heads, rope_freqs was dropped and unknown
    tensors were loaded with strict=False (silently ignored)."""
    import numpy as np

    from traitlens.models.gguf_loader import llama_from_gguf, read_gguf

    wide = llama_from_gguf(read_gguf(_write_llama_gguf(tmp_path / "wide.gguf", head_dim=32)))
    assert wide.config.head_dim == 32 and wide.model.layers[0].self_attn.q_proj.weight.shape == (128, 64)
    plain = llama_from_gguf(read_gguf(_write_llama_gguf(tmp_path / "plain.gguf")))
    factors = np.linspace(1.0, 8.0, 8)
    scaled = llama_from_gguf(read_gguf(_write_llama_gguf(tmp_path / "scaled.gguf", rope_freqs=factors)))
    torch.testing.assert_close(
        scaled.model.rotary_emb.inv_freq, plain.model.rotary_emb.inv_freq / torch.tensor(factors, dtype=torch.float32)
    )
    ids = torch.arange(40)[None]
    with torch.inference_mode():  # the scaled rotation changes what the model computes
        assert not torch.allclose(scaled(ids).logits, plain(ids).logits)
    linear = _write_llama_gguf(
        tmp_path / "linear.gguf", meta={"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": 4.0}
    )
    assert llama_from_gguf(read_gguf(linear)).config.rope_parameters["factor"] == 4.0
    odd = _write_llama_gguf(tmp_path / "odd.gguf", extra={"blk.0.attn_sinks.weight": np.ones(4, np.float32)})
    with pytest.raises(TraitlensError, match="unexpected tensor 'blk.0.attn_sinks.weight'"):
        llama_from_gguf(read_gguf(odd))


def _bf16_or_skip():
    from traitlens.accel.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bfloat16 on this CPU")
    return load_model("tiny", dtype="bfloat16")


def test_bfloat16_head_reads_a_contiguous_input_with_the_same_logits():
    model = _bf16_or_skip()
    fm = model.hf_model
    seen = []
    handle = fm.lm_head.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
    ids = torch.randint(3, 100, (4, 9))
    with torch.inference_mode():
        out = fm(input_ids=ids, logits_to_keep=1).logits
        hidden = fm.model(input_ids=ids).last_hidden_state
        unhooked = torch.nn.functional.linear(hidden[:, -1:, :].contiguous(), fm.lm_head.weight)
    handle.remove()
    assert seen == [True]
    assert torch.equal(out, unhooked)
    assert load_model("tiny").hf_model.lm_head._forward_pre_hooks == {}  # float32 runs as Hugging Face does


def test_row_linear_is_a_linear_that_reads_its_bias_at_every_call():
    from traitlens.accel.precision import RowLinear, row_products

    torch.manual_seed(0)
    net = row_products(torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.Linear(5, 3, bias=False)))
    assert all(type(m) is RowLinear and isinstance(m, torch.nn.Linear) for m in net)
    one, many = torch.randn(1, 1, 8), torch.randn(3, 2, 8)
    torch.testing.assert_close(net[0](one), torch.nn.functional.linear(one, net[0].weight, net[0].bias))
    assert torch.equal(net[0](many), torch.nn.functional.linear(many, net[0].weight, net[0].bias))
    assert net(one).shape == (1, 1, 3) and net(many).shape == (3, 2, 3)
    before = net[0](one)
    net[0].bias = torch.nn.Parameter(net[0].bias + 1.0)  # what a steering fold does
    torch.testing.assert_close(net[0](one), before + 1.0)


def test_bfloat16_steered_decoding_at_batch_one_uses_row_products_and_detaches_cleanly():
    from traitlens.accel.precision import RowLinear
    from traitlens.steering import Steering, SteeringVector

    model = _bf16_or_skip()
    assert isinstance(model.hf_model.model.layers[0].mlp.down_proj, RowLinear)
    assert not any(isinstance(m, RowLinear) for m in model.bridge.modules())
    prompt = [chat_ids(model.tokenizer, chat_messages("hello there"))]
    plain = generate(model, prompt, max_new_tokens=6)[0].new_ids
    g = torch.Generator().manual_seed(1)
    vector = SteeringVector({1: 50 * torch.randn(model.d_model, generator=g)}, model=model.fingerprint.to_dict())
    steered = generate(model, prompt, max_new_tokens=6, steering=Steering(vector, 1.0))[0].new_ids
    assert steered != plain
    assert generate(model, prompt, max_new_tokens=6)[0].new_ids == plain


def _kernel_or_skip():
    from traitlens.accel.gemv import bf16_mv

    kernel = bf16_mv()
    if kernel is None:
        pytest.skip("no AVX512-BF16 CPU or no compiler: the bfloat16 kernel is not built")
    return kernel


@pytest.mark.parametrize(("rows", "cols"), [(1, 32), (7, 64), (16, 576), (1539, 576), (577, 1536)])
def test_bf16_kernel_sums_like_mv(rows, cols):
    kernel = _kernel_or_skip()
    g = torch.Generator().manual_seed(rows)
    weight = torch.randn(rows, cols, generator=g).bfloat16()
    x = torch.randn(cols, generator=g).bfloat16()
    exact = weight.double() @ x.double()
    ours, mv = kernel(weight, x), torch.mv(weight, x)
    assert ours.dtype == torch.bfloat16 and ours.shape == (rows,)
    # Both sum in float32 and round once to bfloat16: one bfloat16 step from the exact sum at most.
    step = exact.abs().clamp(min=1e-3) * 2**-7
    assert ((ours.double() - exact).abs() <= step).all() and ((mv.double() - exact).abs() <= step).all()
    assert (ours == mv).float().mean() > 0.9
    with pytest.raises(RuntimeError, match="multiple of 32"):
        kernel(weight[:, :-1].contiguous(), x[:-1])


def test_bf16_kernel_is_used_by_compiled_steps_and_can_be_turned_off(monkeypatch):
    from traitlens.accel import gemv

    kernel = _kernel_or_skip()
    model = _bf16_or_skip()
    down = model.hf_model.model.layers[0].mlp.down_proj
    assert down.mv is kernel
    x = torch.randn(1, 1, down.in_features).bfloat16()
    compiled = torch.compile(down, dynamic=False)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), down(x))
    gemv._library.cache_clear()
    monkeypatch.setenv("TRAITLENS_GEMV", "0")
    try:
        assert gemv.bf16_mv() is None
        assert load_model("tiny", dtype="bfloat16").hf_model.model.layers[0].mlp.down_proj.mv is torch.mv
    finally:
        gemv._library.cache_clear()


@pytest.mark.parametrize("rows", [1, 5, 8])
def test_few_row_products_match_linear_inside_the_block_and_are_linear_outside(rows):
    from traitlens.accel.gemv import RowsLinear, f32_rows, few_row_products

    if f32_rows() is None:
        pytest.skip("no AVX512-BF16 CPU or no compiler: the kernels are not built")
    torch.manual_seed(rows)
    net = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.Linear(48, 32, bias=False))
    seen = []
    net[1].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    x = torch.randn(1, rows, 64)
    with torch.inference_mode():
        expected = net(x)
        with few_row_products(net):
            assert all(type(m) is RowsLinear for m in net)
            got = net(x)
            many = net(torch.randn(3, 4, 64))  # more than eight rows: torch's own product
        after = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert many.shape == (3, 4, 32) and len(seen) == 4  # hooks ran around the kernel's products too
    assert torch.equal(after, expected)  # outside the block: exactly nn.Linear


def test_a_stale_build_lock_is_removed_and_a_live_one_waited_for_then_given_up(tmp_path):
    """torch's builder waits forever on a ``lock`` file a killed build left: the kernel lock's
    holder removes it; a build held by a live process is waited for ``wait`` seconds, then not."""
    import subprocess
    import sys

    from traitlens.accel.gemv import build_lock

    build = tmp_path / "gemv"
    build.mkdir()
    (build / "lock").touch()
    with build_lock(build, wait=1.0) as held:
        assert held and not (build / "lock").exists()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from traitlens.accel.gemv import build_lock\nimport time\n"
         f"with build_lock(__import__('pathlib').Path({str(build)!r})):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with build_lock(build, wait=1.0) as held:
            assert not held
        assert 1.0 <= time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
    with build_lock(build, wait=5.0) as held:  # its holder died: the kernel released the lock
        assert held


def test_a_killed_first_build_does_not_hang_the_next_run(tmp_path):
    """The kernel's build directory holds a ``lock`` file a killed build left: the next run
    builds (or falls back) instead of waiting forever."""
    import subprocess
    import sys

    script = (
        "import traitlens.accel.gemv as g\n"
        "g.cpu_flags = lambda: frozenset({'avx512_bf16', 'avx512bw', 'avx512vl'})\n"
        "build = g._build_dir(); build.mkdir(parents=True); (build / 'lock').touch()\n"
        "print('library', g._library())\n"
    )
    env = {**os.environ, "TRAITLENS_CACHE": str(tmp_path), "TRAITLENS_GEMV": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "library" in done.stdout


def _rows_op_or_reference():
    """The built ``f32_rows`` kernel, or (where it cannot build) a reference op registered under
    its name, so the module swap around it is tested on every CPU."""
    from traitlens.accel import gemv

    if gemv.f32_rows() is not None:
        return gemv.f32_rows()
    if not hasattr(torch.ops.traitlens_gemv, "f32_rows"):
        library = torch.library.Library("traitlens_gemv", "DEF")
        library.define("f32_rows(Tensor weight, Tensor x) -> Tensor")
        library.impl("f32_rows", lambda weight, x: x @ weight.t(), "CPU")
        _rows_op_or_reference.library = library  # kept alive with the op
    return torch.ops.traitlens_gemv.f32_rows


def test_few_row_views_share_state_and_hooks_and_leave_the_originals_back(monkeypatch):
    """Inside ``few_row_products`` each float32 linear is replaced by a view with the same state
    (a bias folded on it, a hook on the original: both apply), and the originals come back."""
    from traitlens.accel import gemv

    op = _rows_op_or_reference()
    monkeypatch.setattr(gemv, "f32_rows", lambda: op)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.Linear(48, 32, bias=False))
    originals = list(net)
    seen = []
    net[1].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    x = torch.randn(1, 5, 64)
    with torch.inference_mode():
        expected = net(x)
        with gemv.few_row_products(net):
            assert all(type(m) is gemv.RowsLinear for m in net)
            net[0].bias = torch.nn.Parameter(net[0].bias + 1)  # a fold, written through the view
            folded = net(x)
        assert list(net) == originals and all(type(m) is torch.nn.Linear for m in net)
        after = net(x)
    torch.testing.assert_close(folded, after, rtol=1e-5, atol=1e-5)  # the fold is on the original too
    assert not torch.allclose(folded, expected)
    assert len(seen) == 3  # the original's hook ran inside the block too
