"""Shared flags, value validators and the one-line-error argument parser."""
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
HEADS = ("linear", "cosine")  # backbone/heads.py builds them
DEFAULT_MASK_VALUE = -3.0  # from the seq-digits study in the README (grids/digits-masks-*.yaml)
MASK_VALUE_ALLOWED = "a finite number or -inf"
mask_value = _number(float, MASK_VALUE_ALLOWED, lambda v: math.isfinite(v) or v == -math.inf)


def check_mask_value(value):
    """The command line's rule for m, for callers of the Python API: ValueError with the same line."""
    try:
        return mask_value(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"argument --mask_value: {error}") from None


def nearest_existing(path):
    """`path` itself if it exists, else its closest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def folder_problem(path):
    """Why `path` cannot be a folder to write into (an existing file, or under a file, or under a folder
    that cannot be written), or None."""
    existing = nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written into"
    return None


def device_name(text):
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be auto, cpu, cuda or cuda:N")


def add_experiment_args(parser, models, datasets, masks, default_dataset):
    """Flags every run has; `models`, `datasets`, `masks` are the registered names."""
    run = parser.add_argument_group("experiment")
    run.add_argument("--model", required=True, choices=models, help="continual model")
    run.add_argument("--dataset", default=default_dataset, choices=datasets,
                     help=f"benchmark (default: {default_dataset})")
    run.add_argument("--buffer_size", type=non_negative_int, default=0,
                     help="replay buffer capacity: required (> 0) for replay models, refused for models without a buffer")
    run.add_argument("--minibatch_size", type=positive_int, help="buffer samples per draw, at most --buffer_size "
                                                                       "(default: --batch_size or --buffer_size, the smaller)")
    run.add_argument("--n_epochs", type=positive_int, help="epochs per task (default: the dataset's published value)")
    run.add_argument("--batch_size", type=positive_int, help="stream batch size (default: the dataset's)")
    run.add_argument("--lr", type=positive_float, help="SGD learning rate (default: the dataset's)")
    run.add_argument("--lr_milestones", type=positive_int, nargs="*",
                     help="epochs at which the lr is multiplied by --lr_gamma, restarting every task "
                          "(default: the dataset's)")
    run.add_argument("--lr_gamma", type=positive_float, default=0.1,
                     help="lr factor at each of --lr_milestones (default: 0.1)")
    run.add_argument("--head", choices=HEADS,
                     help="classifier head: linear, or cosine (scale 10, no bias; ER-ACE's original head) "
                          "(default: the model's own)")
    run.add_argument("--config", choices=("best",),
                     help="best: the published hyperparameters for this model, dataset and buffer size "
                          "(utils/best_configs.json); explicit flags override them")
    run.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    run.add_argument("--device", type=device_name, default="auto", help="auto (cuda if present), cpu, cuda, cuda:N")
    run.add_argument("--data_path", default="./data", help="where datasets are read and downloaded (default: ./data)")
    run.add_argument("--results_path", default="results", help="folder of results.jsonl (default: results)")
    run.add_argument("--non_verbose", action="store_true", help="no progress bars")
    run.add_argument("--rerun", action="store_true",
                     help="run even when the results file already holds a result of this run's key (same flags "
                          "and seed), appending a second line; without it such a run does nothing")
    run.add_argument("--eval_future", action="store_true",
                     help="also evaluate future tasks after each task, and the untrained network, for FWT "
                          "(FWT is null without it)")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--amp", nargs="?", const="bf16", choices=("bf16", "fp16"),
                       help="autocast the network: bf16 (CPU and CUDA; the value when --amp is given alone) "
                            "or fp16 with a gradient scaler (CUDA only)")
    speed.add_argument("--channels_last", action=argparse.BooleanOptionalAction,
                       help="channels_last memory format for images (default: on for convolutional backbones "
                            "in fp32, where it is never slower; off under --amp and for MLPs)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    speed.add_argument("--threads", type=positive_int,
                       help="torch CPU threads (default: torch's own choice; a sweep gives each run its share)")
    logging = parser.add_argument_group("diagnostics")
    logging.add_argument("--log_dir", help="write TensorBoard event files of the per-step diagnostics and the "
                                           "per-task accuracies into this folder (default: none, no logging)")
    logging.add_argument("--log_every", type=positive_int, default=20,
                         help="steps between two TensorBoard points (default: 20)")
    safety = parser.add_argument_group("checkpoints and numerics")
    safety.add_argument("--checkpoint_dir", help="write a checkpoint after every epoch and task into this folder")
    safety.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint of --checkpoint_dir (default folder: "
                             "checkpoints/<model>-<dataset>-<mask>-seed<N>-<hash of the flags>); with none "
                             "there yet, start from the beginning")
    safety.add_argument("--deterministic", action="store_true",
                        help="torch deterministic algorithms and cuDNN settings (slower on GPU)")
    safety.add_argument("--nan_policy", choices=("stop", "skip"), default="stop",
                        help="on a non-finite loss: stop (exit 3) or skip the step and count it (default: stop)")
    mask = parser.add_argument_group("softmax mask")
    mask.add_argument("--mask", choices=masks, help="masking variant (default: the model's own)")
    mask.add_argument("--mask_value", type=mask_value,
                      help=f"m of `general` and `stopgrad` (refused for other masks): {MASK_VALUE_ALLOWED} "
                           f"(default: {DEFAULT_MASK_VALUE})")
    mask.add_argument("--mask_scope", choices=("task", "ace"),
                      help="classes a stream row keeps: task (its own task's) or ace (batch + unseen); "
                           "default: the model's own")
    mask.add_argument("--mask_buffer", action="store_true", help="also mask the buffer cross-entropy terms (task scope)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (they are wrapped by the caller); every flag's help ends with its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or action.required or not action.option_strings:
            return text
        if action.default in (None, False):
            return f"{text} (default: {'off' if action.nargs == 0 else 'none'})"
        return f"{text} (default: %(default)s)"
