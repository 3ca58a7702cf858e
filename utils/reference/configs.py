"""--config best: published hyperparameters from utils/reference/best_configs.json (each entry cites its source)."""
import json
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


def explicit_flags(parser, argv):
    """Destinations of the options written on the command line (they win over a config)."""
    return {action.dest for option, action in parser.options().items()
            if any(token == option or token.startswith(option + "=") for token in argv)}


def config_source(args, model=None):
    """The citation of the --config entry the run takes (model: the one whose entries it reads, default
    args.model), or None without --config: recorded beside the run, never in its key."""
    return published_entry(args.dataset, model or args.model, args.buffer_size)[1] if args.config else None


def apply_config(parser, args, argv, model=None):
    """Fill args from the published entry of `model` (default: args.model), except flags given explicitly."""
    model = model or args.model
    values, _ = published_entry(args.dataset, model, args.buffer_size)
    unknown = [key for key in values if not hasattr(args, key)]
    if unknown:
        raise ConfigError(f"entry for {model} on {args.dataset} sets unknown flags {', '.join(unknown)}")
    given = explicit_flags(parser, argv)
    for key, value in values.items():
        if key not in given:
            setattr(args, key, value)
