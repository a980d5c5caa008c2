"""What the model is asked: one item shown in one option order, or one option as a reply."""

from __future__ import annotations

from dataclasses import dataclass

from traitlens.assess.contexts import Context, resolve
from traitlens.chat import Message, chat_messages
from traitlens.instrument.items import Item, Option

__all__ = ["LABELS", "LabelRequest", "OptionRequest", "label_requests", "option_requests"]

LABELS = ("1", "2")
LABEL_INSTRUCTION = "Which answer describes you better? Reply with 1 or 2 only."


@dataclass(frozen=True)
class LabelRequest:
    """The item as a numbered list; ``order[k]`` is the index of the option shown at label k+1."""

    item: Item
    order: tuple[int, int]
    system: str | None = None
    question: str | None = None  # replaces the item's stem (a content-free question)

    @property
    def shown(self) -> tuple[Option, Option]:
        return self.item.options[self.order[0]], self.item.options[self.order[1]]

    def messages(self) -> list[Message]:
        first, second = self.shown
        stem = self.item.stem if self.question is None else self.question
        text = f"{stem}\n1. {first.text}\n2. {second.text}\n{LABEL_INSTRUCTION}"
        return chat_messages(text, system=self.system)

    def pole_at(self, position: int) -> str:
        return self.shown[position].pole


@dataclass(frozen=True)
class OptionRequest:
    """The bare stem (or a content-free ``question`` in its place) as the user's turn, one
    option's text as the assistant's reply."""

    item: Item
    option: Option
    system: str | None = None
    question: str | None = None

    def messages(self) -> list[Message]:
        return chat_messages(self.item.stem if self.question is None else self.question, system=self.system)


def label_requests(items: list[Item], system: str | None = None, question: Context | None = None) -> list[LabelRequest]:
    """Every item in both orders, so a pure preference for one position cancels. ``question``
    (a neutral context, or one per item) replaces every stem."""
    return [LabelRequest(item, order, system, resolve(question, item)) for item in items for order in ((0, 1), (1, 0))]


def option_requests(
    items: list[Item], system: str | None = None, question: Context | None = None
) -> list[OptionRequest]:
    return [OptionRequest(item, option, system, resolve(question, item)) for item in items for option in item.options]
