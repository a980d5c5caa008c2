"""Chat prompts through the tokenizer's own template, with exactly one BOS."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Message", "chat_messages", "chat_ids", "chat_text"]

Message = dict[str, str]


def chat_messages(user: str, system: str | None = None, assistant: str | None = None) -> list[Message]:
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


def chat_text(tokenizer, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The prompt as text; ``assistant`` turns are left open so an answer can be scored."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    # A base model without a template: a plain transcript.
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + ("\nAssistant:" if add_generation_prompt else "")


def chat_ids(tokenizer, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
    """Token ids of the prompt. The template already writes the BOS (SmolLM2's
    ``<|im_start|>`` is its BOS), so special tokens are not added a second time."""
    text = chat_text(tokenizer, messages, add_generation_prompt)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and not getattr(tokenizer, "chat_template", None) and ids[:1] != [bos]:
        ids = [bos, *ids]
    return ids
