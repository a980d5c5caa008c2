"""The instrument: the questionnaire's items and dimensions, the persona prompts, and the
length balance of an item's options. Pure data and its rules; no model is touched here."""

from traitlens.instrument.items import (
    DIMENSIONS,
    Item,
    ItemBank,
    Option,
    Trait,
    default_items,
    load_items,
    short_items,
)

__all__ = ["DIMENSIONS", "Item", "ItemBank", "Option", "Trait", "default_items", "load_items", "short_items"]
