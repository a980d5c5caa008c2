"""``traitlens model info`` and ``traitlens chat``."""

from __future__ import annotations

import typer
from rich.table import Table

from traitlens.cli.common import DtypeOption, ModelOption, console, load_with_status

__all__ = ["model_app", "chat"]

model_app = typer.Typer(help="Inspect models.", no_args_is_help=True)


@model_app.command("info")
def info(model: str = ModelOption) -> None:
    """Architecture, layers, d_model, hook names, load time and peak memory."""
    loaded = load_with_status(model)
    fp = loaded.fingerprint
    table = Table(title=f"model {fp.name}", show_header=False)
    rows = [
        ("architecture", fp.architecture),
        ("layers", str(fp.n_layers)),
        ("d_model", str(fp.d_model)),
        ("vocab", str(len(loaded.tokenizer))),
        ("weights", fp.weights_hash),
        ("residual hooks", f"blocks.{{0..{fp.n_layers - 1}}}.hook_resid_{{pre,mid,post}}"),
        ("hook points", str(len(loaded.bridge.hook_dict))),
        ("load time", f"{loaded.load_seconds:.1f} s"),
        ("peak memory", f"{loaded.peak_rss_mb:.0f} MB (process RSS)"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def chat(
    prompt: str = typer.Argument(..., help="The user's message."),
    model: str = ModelOption,
    max_new_tokens: int = typer.Option(128, min=1, max=4096),
    system: str | None = typer.Option(None, help="Optional system prompt."),
    dtype: str = DtypeOption,
    speculative: bool = typer.Option(
        False,
        "--speculative",
        help="Opt-in: a bfloat16 copy of the model drafts tokens that the float32 model verifies several at a time "
        "(the float32 greedy reply, faster; CPUs with AMX/AVX512-BF16).",
    ),
) -> None:
    """Greedy reply to one message, for a first look at a model."""
    from traitlens.accel.precision import check_dtype
    from traitlens.chat import chat_ids, chat_messages
    from traitlens.errors import TraitlensError
    from traitlens.generation import generate

    if speculative and dtype != "float32":
        raise TraitlensError("--speculative verifies in float32: leave --dtype at float32")
    if speculative:
        check_dtype("bfloat16")  # the draft's precision: refused in one line where it cannot run
    loaded = load_with_status(model, dtype)
    draft = load_with_status(model, "bfloat16") if speculative else None
    ids = chat_ids(loaded.tokenizer, chat_messages(prompt, system=system))
    engine = "speculative" if speculative else "loop"
    (reply,) = generate(loaded, [ids], max_new_tokens=max_new_tokens, engine=engine, draft=draft)
    console.print(reply.text.strip(), markup=False, highlight=False)
