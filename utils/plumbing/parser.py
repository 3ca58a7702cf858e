"""The command-line parser every tool uses: errors as one line and exit status 2 (or a typed FlagError
for a caller that parses runs), "did you mean" for misspelt names, help that states each default, the flag
value types (each accepts what its name says and refuses anything else with one line naming the value and
what is allowed), and a run's flags frozen once parsed."""
import argparse
import difflib
import math
import os
import re


class FlagError(ValueError):
    """Flags that cannot run, raised instead of exiting by a parser made with raise_errors=True (a sweep
    parsing its runs); the message is the line a user sees after "main.py: error: "."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors as one line on stderr and exit status 2 (no usage block), or raised as a
    FlagError with raise_errors=True.

    Values such as -inf, -Infinity and -1e3 are read as negative numbers, not as unknown options;
    a value outside a flag's choices gets the closest allowed one as "did you mean".
    """

    def __init__(self, *args, raise_errors=False, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.raise_errors = raise_errors
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?|inf|infinity)$", re.I)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but a misspelt flag gets the closest one: "argument --basline: no such flag; did you mean
        '--baseline'?"."""
        parsed, extras = self.parse_known_args(args, namespace)
        flags = [token.split("=", 1)[0] for token in extras if token.startswith("-")]
        if flags:
            self.error(f"argument {flags[0]}: no such flag{did_you_mean(flags[0], self.options()) or ''}")
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message):
        if self.raise_errors:
            raise FlagError(message)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def options(self):
        """{option string: action} of every flag (argparse offers no public listing)."""
        return {option: action for action in self._actions for option in action.option_strings}

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            allowed = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"{value!r} is not allowed: choose from {allowed}"
                                                 f"{did_you_mean(value, action.choices)}")


def did_you_mean(value, names):
    """'; did you mean 'x'?' for the closest name (case-insensitive), or ''."""
    lowered = {str(name).lower(): name for name in names}
    close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (they are wrapped by the caller); every flag's help ends with its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or action.required or not action.option_strings:
            return text
        if action.default is None or action.default is False:
            return f"{text} (default: {'off' if action.nargs == 0 else 'none'})"
        return f"{text} (default: %(default)s)"


class RunFlags(argparse.Namespace):
    """A run's resolved flags, frozen once parsing is done (utils.plumbing.cli.parse_args returns them frozen): nothing
    writes to them after, so what a run used is known before it starts. `replaced(**changes)` makes a frozen copy
    with other values (the levers --levers auto measured, a checkpoint's choice)."""

    def __setattr__(self, name, value):
        raise AttributeError(f"a run's flags are frozen after parsing (setting {name}); make a copy with "
                             f"replaced({name}=...)")

    __delattr__ = __setattr__

    @classmethod
    def of(cls, namespace):
        flags = cls.__new__(cls)
        flags.__dict__.update(vars(namespace))
        return flags

    def replaced(self, **changes):
        return RunFlags.of(argparse.Namespace(**{**vars(self), **changes}))


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
percent = _number(float, "a number from 0 to 100", lambda v: 0 <= v <= 100)
held_out_fraction = _number(float, "0 (off) or a number strictly between 0 and 1", lambda v: 0 <= v < 1)
MASK_VALUE_ALLOWED = "a finite number or -inf"
mask_value = _number(float, MASK_VALUE_ALLOWED, lambda v: math.isfinite(v) or v == -math.inf)


def check_mask_value(value):
    """The command line's rule for m, for callers of the Python API: ValueError with the same line."""
    try:
        return mask_value(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"argument --mask_value: {error}") from None


def config_name(text):
    """--config: best, or the picked file a tuning wrote (python -m utils.tune)."""
    if text == "best" or (text.endswith(".json") and os.path.isfile(text)):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be best, or an existing picked.json written by "
                                     f"python -m utils.tune")


def device_name(text):
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be auto, cpu, cuda or cuda:N")
