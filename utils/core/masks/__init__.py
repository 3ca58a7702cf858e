"""Mask registry: one file per softmax mask or stream-loss variant in this folder, each registered with
@register_mask("name"). The paper's four masks are pure functions (functional.py); a variant with state or a term
of its own subclasses Mask (base.py). Which classes a row keeps: functional.py."""
import os

from utils.plumbing.registry import Registry, dict_keys

MASKS = Registry("mask", "utils.core.masks")
DEFAULT_MASK_VALUE = -3.0  # m, from the seq-digits study in the README (grids/digits-masks-*.yaml)


def scope_names(table):
    """The names of functional.py's SCOPES (stream rows) or BUFFER_SCOPES, read without importing torch, for the
    parser's choices."""
    return dict_keys(os.path.join(os.path.dirname(__file__), "functional.py"), table)


def register_mask(name, uses_value=False):
    """Register a Mask subclass, or a pure function mask(logits, keep, m) -> logits, which gets the same
    class-level interface (uses_value: whether it reads m, `--mask_value`)."""
    def decorator(entry):
        if not isinstance(entry, type):
            from utils.core.masks.base import as_entry

            as_entry(entry, uses_value)
        return MASKS.register(name)(entry)
    return decorator
