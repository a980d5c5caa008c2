"""The confirm split is sealed: nothing that chooses (readouts, layer, recipe, alpha, probe
directions, the null's draws) ever shows a confirm item to the model."""

from __future__ import annotations

import dataclasses

from traitlens.instrument.items import ItemBank, short_items

MARKER = "Zyzzyva"


def _marked_bank() -> ItemBank:
    """JP items of every split; each confirm item's stem carries a word no other text has."""
    items = [i for i in short_items() if i.dimension == "JP" and int(i.id[3:]) % 3 == 0]
    marked = [dataclasses.replace(i, stem=f"{i.stem} {MARKER}") if i.split == "confirm" else i for i in items]
    assert {i.split for i in marked} == {"train", "eval", "confirm"}
    return ItemBank(tuple(marked), "marked")


class _Seen:
    """A forward pre-hook on the embedding: every text the model is shown."""

    def __init__(self, model):
        self.tokenizer, self.texts = model.tokenizer, []
        self.handle = model.hf_model.get_input_embeddings().register_forward_pre_hook(self)

    def __call__(self, module, args):
        ids = args[0]
        self.texts += [self.tokenizer.decode(row) for row in ids.reshape(-1, ids.shape[-1]).tolist()]

    def shown(self, word: str) -> bool:
        return any(word in text for text in self.texts)


def test_no_choosing_path_reads_the_confirm_split(tiny):
    from traitlens.assess import assess
    from traitlens.edit import edit

    bank = _marked_bank()
    seen = _Seen(tiny)
    try:
        assess(tiny, bank)  # auto readouts, chosen on train, reported on eval
        edit(tiny, "JP", items=bank, recipes="band,persona", alphas=(0.1, 0.3), permutations=5, null=2)
        assert seen.texts and seen.shown("plan")  # the hook sees the items that are read
        assert not seen.shown(MARKER)
        assess(tiny, bank, split="confirm", readout="pmi")  # asked for by name, it is read
        assert seen.shown(MARKER)
    finally:
        seen.handle.remove()
