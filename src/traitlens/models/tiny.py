"""A deterministic random Llama model and a byte-level tokenizer, for fast tests.

Nothing is read from disk: the tokenizer is built in memory (256 byte tokens plus ChatML
specials) so every string can be encoded, and the weights come from a seeded initialisation,
large enough that greedy replies depend on the prompt and on each position (a broken position
or cache changes them).
"""

from __future__ import annotations

import torch

__all__ = ["TINY_CONFIG", "tiny_tokenizer", "tiny_model"]

TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    # Ten times Llama's default: at 0.02 a random model's greedy reply is one token repeated
    # whatever the prompt, so tests of positions and caches could not fail; at 0.2 it follows
    # the context.
    initializer_range=0.2,
)

_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|pad|>"]

# A minimal ChatML template of our own: like SmolLM2's, the first token of the chat is
# <|im_start|>, which is also the BOS, so no extra BOS may be prepended.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {char: index for index, char in enumerate(sorted(byte_chars))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=_SPECIALS[0],
        eos_token=_SPECIALS[1],
        pad_token=_SPECIALS[2],
        additional_special_tokens=[],
    )
    tokenizer.add_special_tokens({"additional_special_tokens": []})
    tokenizer.chat_template = _CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_model(seed: int = 0, vocab_size: int | None = None):
    """A random ``LlamaForCausalLM``; the same seed always gives the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer_len = vocab_size or len(tiny_tokenizer())
    config = LlamaConfig(
        vocab_size=tokenizer_len,
        bos_token_id=256,
        eos_token_id=257,
        pad_token_id=258,
        **TINY_CONFIG,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()
