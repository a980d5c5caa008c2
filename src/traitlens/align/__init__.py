"""``traitlens align``: make a base/aligned pair offline (a LoRA safety fine-tune and a neutral
control arm, each saved as a merged checkpoint that ``--model DIR`` loads everywhere)."""

from traitlens.align.study import ARMS, AlignConfig, align

__all__ = ["align", "AlignConfig", "ARMS"]
