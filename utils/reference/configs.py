"""--config best: published hyperparameters from utils/reference/best_configs.json (each entry cites its source);
--config PATH/picked.json: the configuration a tuning picked for the run's group (python -m utils.tune)."""
import json
import math
import os

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "best_configs.json")


class ConfigError(ValueError):
    """No published entry for the run, or an entry naming an unknown flag."""


def published_entry(dataset, model, buffer_size, path=None):
    """The flag values published for (dataset, model, buffer size) and their source's citation; `any` matches
    every size."""
    with open(path or CONFIG_FILE, encoding="utf-8") as f:
        table = json.load(f)
    sizes = table.get(dataset, {}).get(model)
    entry = None if sizes is None else sizes.get(str(buffer_size), sizes.get("any"))
    if entry is None:
        published = sorted(f"{m} {s}" for m, by_size in table.get(dataset, {}).items() for s in by_size)
        raise ConfigError(f"no published configuration for model {model} on {dataset} with buffer {buffer_size} "
                          f"(published there: {', '.join(published) or 'none'})")
    values = dict(entry)
    source = values.pop("source")
    return values, table["_sources"][source]


def same_value(value, wanted):
    """A run's flag against a value written in a grid or a picked file (numbers as numbers, the rest as text)."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return bool(value) == bool(wanted)
    try:
        return math.isclose(float(value), float(wanted))
    except (TypeError, ValueError):
        return str(value) == str(wanted)


def tuned_entry(path, args):
    """The flag values a tuning picked for the group whose every flag the run has, and the line that says how they
    were picked (recorded beside the run as its config_source)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        entries, about = data["entries"], data["about"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path} is not a picked file written by python -m utils.tune ({error})") from None
    for entry in entries:
        if all(same_value(getattr(args, name, None), value) for name, value in entry["group"].items()):
            seeds = about["selection_seeds"]
            return dict(entry["picked"]), (
                f"tuned: best of {entry['trials']} trials of {', '.join(about['tuned'])} by {about['metric']} "
                f"(mean {entry['mean']:.2f} over seeds {seeds[0]}-{seeds[-1]}) on a {about['validation']:.0%} "
                f"validation split; {os.path.abspath(path)}")
    groups = "; ".join(" ".join(f"{k}={v}" for k, v in entry["group"].items()) for entry in entries[:4])
    raise ConfigError(f"{path} has no picked configuration for this run's flags (its groups: {groups}"
                      f"{' ...' if len(entries) > 4 else ''}); give the group's flags")


def config_entry(args, model=None):
    """(values, citation) of the run's --config: a published entry of `model` (default: args.model), or a picked
    one."""
    if args.config == "best":
        from datasets import DATASETS

        dataset = DATASETS.get(args.dataset).CONFIG_DATASET or args.dataset  # a stand-in reads its original's
        values, source = published_entry(dataset, model or args.model, args.buffer_size)
        return values, source if dataset == args.dataset else f"{source} (on {args.dataset}, standing in for {dataset})"
    return tuned_entry(args.config, args)


def explicit_flags(parser, argv):
    """Destinations of the options written on the command line (they win over a config)."""
    return {action.dest for option, action in parser.options().items()
            if any(token == option or token.startswith(option + "=") for token in argv)}


def config_source(args, model=None):
    """The citation of the --config entry the run takes (model: the one whose entries it reads, default
    args.model), or None without --config: recorded beside the run, never in its key."""
    return config_entry(args, model)[1] if args.config else None


def apply_config(parser, args, argv, model=None):
    """Fill args from the --config entry (published for `model`, default args.model; or picked), except flags given
    explicitly."""
    values, _ = config_entry(args, model)
    unknown = [key for key in values if not hasattr(args, key)]
    if unknown:
        raise ConfigError(f"entry for {model or args.model} on {args.dataset} sets unknown flags {', '.join(unknown)}")
    given = explicit_flags(parser, argv)
    for key, value in values.items():
        if key not in given:
            setattr(args, key, value)
