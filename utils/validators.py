"""Flag value types: each accepts what its name says and refuses anything else with one line naming
the value and what is allowed."""
import argparse
import math


def _number(kind, allowed, accept):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be {allowed}")
        return value
    parse.__name__ = allowed
    return parse


positive_int = _number(int, "a positive integer", lambda v: v > 0)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a positive finite number", lambda v: math.isfinite(v) and v > 0)
non_negative_float = _number(float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)
fraction = _number(float, "a number strictly between 0 and 1", lambda v: 0 < v < 1)
MASK_VALUE_ALLOWED = "a finite number or -inf"
mask_value = _number(float, MASK_VALUE_ALLOWED, lambda v: math.isfinite(v) or v == -math.inf)


def check_mask_value(value):
    """The command line's rule for m, for callers of the Python API: ValueError with the same line."""
    try:
        return mask_value(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"argument --mask_value: {error}") from None


def device_name(text):
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be auto, cpu, cuda or cuda:N")
