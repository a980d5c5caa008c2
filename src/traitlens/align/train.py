"""A LoRA safety fine-tune with the field's standard tools (``peft`` and TRL's ``SFTTrainer``),
and its control arm.

Arms: ``safety`` trains on safety demonstrations mixed with neutral instructions; ``control``
trains the same number of steps on the neutral instructions alone. Neutral targets are the
base model's own greedy answers, so the control teaches no new style. Each arm trains into a
temporary directory beside ``out`` and is renamed into place only when complete: an interrupted
run leaves any previous model untouched and nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from traitlens._io import write_json
from traitlens.align.data import Example
from traitlens.errors import TraitlensError

__all__ = ["AlignConfig", "ARMS", "lora_targets", "own_answers", "tokenize", "train_arm", "check_out"]

ARMS = ("safety", "control")


@dataclass
class AlignConfig:
    steps: int = 150
    batch_size: int = 8
    learning_rate: float = 2e-4
    rank: int = 16
    lora_alpha: int = 32
    max_length: int = 192
    n_safety: int = 400
    n_neutral: int = 400
    answer_tokens: int = 64  # length of the model's own answers to the neutral instructions
    seed: int = 0


def check_out(out: Path) -> None:
    """An output directory that already holds something is never overwritten."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TraitlensError(
            f"{out} already exists and is not empty: choose a new --out (models are never overwritten)"
        )


def lora_targets(model) -> list[str]:
    """The linear projections inside the decoder layers (q/k/v/o, gate/up/down on Llama)."""
    import torch.nn as nn

    from traitlens.steering.inject import decoder_layers

    layers = decoder_layers(model)
    if len(layers) == 0:
        raise TraitlensError(f"{type(model).__name__}: no decoder layers found to train")
    names = sorted({name.rsplit(".", 1)[-1] for name, m in layers[0].named_modules() if isinstance(m, nn.Linear)})
    if not names:
        raise TraitlensError(f"{type(model).__name__}: no linear layers inside its decoder layers")
    return names


def own_answers(model, prompts: Sequence[str], max_new_tokens: int, progress=None) -> list[str]:
    """The base model's greedy answers (the neutral targets)."""
    from traitlens.bench.common import generate_replies

    return [r.strip() or "..." for r in generate_replies(model, prompts, None, max_new_tokens, progress, 16)]


def tokenize(tokenizer, examples: Sequence[Example], max_length: int) -> list[dict[str, list[int]]]:
    """Chat-formatted prompt + answer + EOS; the loss is on the answer only (``completion_mask``)."""
    from traitlens.chat import chat_ids, chat_messages

    rows = []
    for example in examples:
        prompt = chat_ids(tokenizer, chat_messages(example.instruction))
        answer = tokenizer(example.output, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + answer)[:max_length]
        mask = ([0] * len(prompt) + [1] * len(answer))[:max_length]
        if sum(mask):
            rows.append({"input_ids": ids, "completion_mask": mask})
    if not rows:
        raise TraitlensError("no training example fits max_length")
    return rows


def _plain_float(model) -> None:
    """A model transformers loaded from GGUF is dequantized to float32 but still marked as
    quantized, which makes the Trainer refuse it and would make the saved config claim GGUF
    weights. The weights are plain floats: drop the marks."""
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config


def _callback(tick: Callable[[int], None] | None):
    from transformers import TrainerCallback

    class Tick(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if tick:
                tick(1)

    return Tick()


def train_arm(
    spec: str,
    arm: str,
    rows: list[dict[str, list[int]]],
    config: AlignConfig,
    out: Path,
    meta: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train one arm from a fresh copy of ``spec`` and move the merged model into ``out``."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from traitlens.models.registry import resolve

    check_out(out)
    set_seed(config.seed)
    resolved = resolve(spec)
    model, tokenizer = resolved.hf_model, resolved.tokenizer
    _plain_float(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    targets = lora_targets(model)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    try:
        args = SFTConfig(
            output_dir=str(tmp / "trainer"),
            max_steps=config.steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=max(1, config.steps // 20),
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=config.seed,
            data_seed=config.seed,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
            completion_only_loss=True,
            max_length=config.max_length,
            dataloader_num_workers=0,
        )
        lora = LoraConfig(
            r=config.rank, lora_alpha=config.lora_alpha, target_modules=targets, lora_dropout=0.0, task_type="CAUSAL_LM"
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[_callback(progress)],
        )
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # the progress bar and align.json carry the losses
        trainer.train()
        merged = trainer.model.merge_and_unload()
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        losses = [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]
        record = {
            "arm": arm,
            "base_model": spec,
            "config": asdict(config),
            "lora_targets": targets,
            "examples": len(rows),
            "losses": losses,
            "seconds": round(time.perf_counter() - start, 1),
            **meta,
        }
        write_json(tmp / "align.json", record)
        check_out(out)
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record
