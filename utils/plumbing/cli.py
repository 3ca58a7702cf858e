"""main.py's command line: the parser (shared flags plus those of the named model, dataset and mask),
every default resolved, and anything that cannot run refused with one line, exit 2, before anything
is written. A sweep parses each of its runs with the same functions."""
import os
import textwrap

from utils.core.masks import scope_names
from utils.plumbing.args import add_experiment_args
from utils.plumbing.parser import ArgumentParser, HelpFormatter, RunFlags, did_you_mean

PROG = "main.py"
DEFAULT_DATASET = "seq-digits"
WIDTH = 100
RENAMED = {"--m": "--margin", "--non_verbose": "--quiet"}  # old flag -> its name now
STREAM_SHAPES = {"blurry_disjoint": "blurry", "blurry_mix": "blurry", "transition_width": "gradual"}  # flag -> stream
TASK_FREE_SCOPE = "batch"  # a default scope that needs a task becomes this one on a stream that announces none


def registries():
    from datasets import DATASETS
    from models import MODELS
    from utils.core.calibrations import CALIBRATIONS
    from utils.core.masks import MASKS

    return ((MODELS, "--model"), (DATASETS, "--dataset"), (MASKS, "--mask"), (CALIBRATIONS, "--calibration"))


def catalogue():
    """The epilog of --help: each registered model, dataset and mask with its one-line description."""
    lines = []
    for registry, flag in registries():
        lines.append(f"{registry.kind}s ({flag} NAME --help shows one's own flags):")
        for name in registry.names():
            lines += textwrap.wrap(registry.describe(name), WIDTH, initial_indent=f"  {name:<13}",
                                   subsequent_indent=" " * 15)
    return "\n".join(lines)


def group_description(registry, name, cls):
    text = registry.describe(name)
    if registry.kind == "model":
        text += f" Default mask: {cls.DEFAULT_MASK}, scope {cls.DEFAULT_SCOPE}, head {cls.DEFAULT_HEAD}."
    return textwrap.fill(text, WIDTH)


def build_parser(argv, raise_errors=False):
    """The full parser and the classes (model, dataset, mask) named in argv (None where unknown);
    with raise_errors, every refusal is a FlagError instead of an exit."""
    preparser = ArgumentParser(add_help=False, raise_errors=raise_errors)
    for _, flag in registries():
        preparser.add_argument(flag)
    preparser.add_argument("-h", "--help", action="store_true")
    named, _ = preparser.parse_known_args(argv)
    if named.dataset is None and not named.help:
        named.dataset = DEFAULT_DATASET  # a bare --help imports nothing heavy
    parser = ArgumentParser(prog=PROG, description="Replay-based class-incremental learning with softmax masking.",
                            raise_errors=raise_errors,
                            epilog=catalogue(), formatter_class=HelpFormatter)
    names = [registry.names() for registry, _ in registries()]
    add_experiment_args(parser, *names, DEFAULT_DATASET)
    classes = []
    for registry, flag in registries():
        name = getattr(named, flag[2:])
        cls = registry.get(name) if name in registry.names() else None
        if cls is not None:
            cls.add_args(parser.add_argument_group(f"{registry.kind} {name}", group_description(registry, name, cls)))
        classes.append(cls)
    return parser, classes


def entry_options():
    """(registry, entry name, {option: action} of the flags the entry adds itself) of every registered
    model, dataset, mask and calibration."""
    for registry, _ in registries():
        for name in registry.names():
            scratch = ArgumentParser(add_help=False)
            registry.get(name).add_args(scratch)
            yield registry, name, scratch.options()


def flag_owners(flag):
    """'model der, derpp' style list of the registered entries that declare `flag`."""
    owners = {}
    for registry, name, options in entry_options():
        if flag in options:
            owners.setdefault(registry.kind, []).append(name)
    return "; ".join(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}" for kind, names in owners.items())


def every_option():
    """{option: action} of every flag a run can take: the shared ones and every registered entry's own."""
    options = dict(build_parser([])[0].options())
    for _, _, own in entry_options():
        options.update(own)
    return options


def unknown_flag_message(extras, parser, args):
    flags = [token.split("=", 1)[0] for token in extras if token.startswith("-")]
    if not flags:
        return f"unrecognized arguments: {' '.join(extras)}"
    flag, owners = flags[0], flag_owners(flags[0])
    if flag in RENAMED:
        return f"argument {flag}: renamed {RENAMED[flag]}; use {RENAMED[flag]}"
    if owners:
        return (f"argument {flag}: not a flag of model {args.model}, dataset {args.dataset} or mask "
                f"{args.mask or 'default'}; it belongs to {owners}")
    known = list(parser.options())
    return f"argument {flag}: no such flag{did_you_mean(flag, known) or '; see --help'}"


def parse_args(argv, raise_errors=False):
    """Validated args with every default resolved, frozen (utils.plumbing.parser.RunFlags), and the model and dataset
    classes; a refusal exits with one line and status 2, or with raise_errors is a FlagError."""
    parser, (model_cls, dataset_cls, _, _) = build_parser(argv, raise_errors)
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(unknown_flag_message(extras, parser, args))
    resolve_defaults(parser, args, argv, model_cls, dataset_cls)
    return RunFlags.of(args), model_cls, dataset_cls


def resolve_defaults(parser, args, argv, model_cls, dataset_cls):
    """Fill unset flags from --config, then the model and dataset; refuse what cannot run."""
    from utils.reference.configs import ConfigError, apply_config

    if args.config:
        try:
            apply_config(parser, args, argv, model_cls.CONFIG_NAME)
        except ConfigError as error:
            parser.error(f"argument --config: {error}")
    check_data_path(parser, args.data_path)
    if args.log_dir:
        check_log_dir(parser, args.log_dir)
    args.mask = args.mask or model_cls.DEFAULT_MASK
    check_stream(parser, args, model_cls, dataset_cls)
    check_task_free_mask(parser, args, dataset_cls)
    resolve_scope(parser, args, model_cls, dataset_cls)
    resolve_scope_window(parser, args)
    args.head = args.head or model_cls.DEFAULT_HEAD
    args.n_epochs = args.n_epochs or dataset_cls.N_EPOCHS
    args.batch_size = args.batch_size or dataset_cls.BATCH_SIZE
    args.lr = args.lr or dataset_cls.LR
    resolve_milestones(parser, args, dataset_cls)
    resolve_buffer(parser, args, model_cls)
    resolve_mask_value(parser, args)
    resolve_mask_buffer(parser, args, model_cls)
    check_buffer_scope(parser, args, model_cls)
    check_task_free_buffer_scope(parser, args, dataset_cls)
    check_calibration(parser, args, model_cls)
    check_task_free_calibration(parser, args, dataset_cls)
    resolve_device(parser, args, argv, dataset_cls)
    if args.resume and not args.checkpoint_dir:
        from utils.plumbing.identity import default_checkpoint_dir
        args.checkpoint_dir = default_checkpoint_dir(args)
    from utils.plumbing.results_file import ResultsPathError, check_results_path
    try:
        check_results_path(args.results_path)
    except ResultsPathError as error:
        parser.error(f"argument --results_path: {error}")


def task_free(args, dataset_cls):
    """'--stream NAME' or 'dataset NAME' where the run's stream announces no task (utils/core/streams.py), else None."""
    from utils.core.streams import announces_tasks

    if announces_tasks(args, dataset_cls):
        return None
    return f"--stream {args.stream}" if args.stream != "tasks" else f"dataset {args.dataset}"


def check_stream(parser, args, model_cls, dataset_cls):
    """The stream flags shape their own stream only; a dataset with an order of its own takes no --stream; a model
    that needs announced tasks is refused on a stream without them, with its TASK_FREE_REFUSAL."""
    from utils.core.streams import has_own_order

    for flag, stream in STREAM_SHAPES.items():
        if getattr(args, flag) != parser.get_default(flag) and args.stream != stream:
            parser.error(f"argument --{flag}: not allowed with --stream {args.stream}: it shapes --stream {stream}")
    if args.stream != "tasks" and has_own_order(dataset_cls):
        parser.error(f"argument --stream: {args.stream!r} is not allowed with dataset {args.dataset}, which streams "
                     f"an order of its own")
    where = task_free(args, dataset_cls)
    if where and model_cls.TASK_FREE_REFUSAL:
        parser.error(f"argument --model: {args.model!r} is not allowed on {where}, which announces no task: "
                     f"{model_cls.TASK_FREE_REFUSAL}")


def resolve_scope(parser, args, model_cls, dataset_cls):
    """--mask_scope: the mask's own where it has one, else the model's. On a stream that announces no task a scope
    that needs one (NEEDS_TASK) is refused when given, and becomes TASK_FREE_SCOPE when it is the default."""
    from utils.core.masks import MASKS

    default = MASKS.get(args.mask).SCOPE or model_cls.DEFAULT_SCOPE
    where = task_free(args, dataset_cls)
    if where is None:
        args.mask_scope = args.mask_scope or default
        return
    from utils.core.masks.functional import NEEDS_TASK

    if args.mask_scope in NEEDS_TASK:
        parser.error(f"argument --mask_scope: {args.mask_scope!r} is not allowed on {where}, which announces no "
                     f"task: it keeps classes by the task (task-free scopes: "
                     f"{', '.join(sorted(set(scope_names('SCOPES')) - NEEDS_TASK))})")
    args.mask_scope = args.mask_scope or (TASK_FREE_SCOPE if default in NEEDS_TASK else default)


def check_task_free_mask(parser, args, dataset_cls):
    """A mask defined by the current task (its TASK_FREE_REFUSAL, e.g. LODE's) is refused on a stream that announces
    none."""
    from utils.core.masks import MASKS

    where, refusal = task_free(args, dataset_cls), MASKS.get(args.mask).TASK_FREE_REFUSAL
    if where and refusal:
        parser.error(f"argument --mask: {args.mask!r} is not allowed on {where}, which announces no task: {refusal}")


def resolve_scope_window(parser, args):
    """--scope_window: the window of the recent scope (default scope_recent.WINDOW), refused with another scope."""
    from utils.core.masks.scope_recent import WINDOW

    if args.scope_window is not None and args.mask_scope != "recent":
        parser.error(f"argument --scope_window: not allowed with --mask_scope {args.mask_scope}: it is the window of "
                     f"the recent scope")
    args.scope_window = args.scope_window or WINDOW


def resolve_milestones(parser, args, dataset_cls):
    """The lr milestones restart at every task: none on a stream that announces no task (the lr stays --lr)."""
    where = task_free(args, dataset_cls)
    if where and args.lr_milestones:
        parser.error(f"argument --lr_milestones: not allowed on {where}: the schedule restarts at every task, and "
                     f"this stream announces none")
    args.lr_milestones = list(dataset_cls.LR_MILESTONES if args.lr_milestones is None and not where
                              else args.lr_milestones or [])


def check_task_free_buffer_scope(parser, args, dataset_cls):
    """Both buffer scopes keep classes by the task (a row's own, or those before the current one): refused under
    --mask_buffer on a stream that announces no task, except for a mask applied to the replay rows by its authors
    (LAS, Mask.REPLAY "always"), whose prior reads no scope."""
    from utils.core.masks import MASKS

    where = task_free(args, dataset_cls)
    if where and args.mask_buffer and MASKS.get(args.mask).REPLAY != "always":
        parser.error(f"argument --mask_buffer: not allowed with --mask {args.mask} on {where}, which announces no "
                     f"task: --buffer_scope {args.buffer_scope} keeps classes by the task")


def check_task_free_calibration(parser, args, dataset_cls):
    """A correction made at task ends (one that overrides Calibration.end_task or training_indices: WA, BiC) needs
    the task ends a stream without boundaries never announces."""
    from utils.core.calibrations import CALIBRATIONS
    from utils.core.calibrations.base import Calibration

    where = task_free(args, dataset_cls)
    cls = CALIBRATIONS.get(args.calibration)
    if where and (cls.end_task is not Calibration.end_task or cls.training_indices is not Calibration.training_indices):
        parser.error(f"argument --calibration: {args.calibration!r} is not allowed on {where}: it corrects at task "
                     f"ends, and this stream announces none")


def check_log_dir(parser, path):
    """--log_dir must be a folder, or a path where one can be made, that can be written into."""
    from utils.plumbing.files import folder_problem

    problem = folder_problem(path)
    if problem:
        parser.error(f"argument --log_dir: {path!r} is not allowed: {problem}")


def check_data_path(parser, path):
    """Reading needs a readable folder; write access is checked only where a download or cache needs it."""
    if os.path.exists(path) and not (os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)):
        parser.error(f"argument --data_path: {path!r} is not allowed: must be a readable folder "
                     f"(or a path where one can be made)")


def resolve_buffer(parser, args, model_cls):
    from models import MODELS

    if model_cls.NEEDS_BUFFER and args.buffer_size == 0:
        parser.error(f"argument --buffer_size: {args.buffer_size} is not allowed: "
                     f"model {args.model} replays, give a positive integer")
    if args.buffer_policy != "reservoir" and (model_cls.OWN_MEMORY_POLICY or not model_cls.NEEDS_BUFFER):
        why = "its memory has its own policy" if model_cls.NEEDS_BUFFER else "it has no buffer"
        parser.error(f"argument --buffer_policy: {args.buffer_policy!r} is not allowed with model {args.model}: {why}")
    if not model_cls.NEEDS_BUFFER:
        for flag, value in (("buffer_size", args.buffer_size), ("minibatch_size", args.minibatch_size)):
            if value:  # naming the replay models imports them all: only on this error path
                replaying = ", ".join(name for name in MODELS.names() if MODELS.get(name).NEEDS_BUFFER)
                parser.error(f"argument --{flag}: {value} is not allowed: model {args.model} has no buffer "
                             f"(models with one: {replaying})")
        args.minibatch_size = None
        return
    if args.minibatch_size is not None and args.minibatch_size > args.buffer_size:
        parser.error(f"argument --minibatch_size: {args.minibatch_size} is not allowed: a draw holds at most "
                     f"--buffer_size {args.buffer_size} samples")
    ratio = model_cls.REPLAY_RATIO
    default = args.batch_size if ratio is None else max(1, round(args.batch_size * ratio))
    args.minibatch_size = args.minibatch_size or min(default, args.buffer_size)


def check_calibration(parser, args, model_cls):
    """A correction of recency bias is for replay models, and some only for the head they are defined on."""
    from utils.core.calibrations import CALIBRATIONS

    if args.calibration == "none":
        return
    if not model_cls.NEEDS_BUFFER:
        parser.error(f"argument --calibration: {args.calibration!r} is not allowed with model {args.model}: "
                     f"a correction of recency bias is for the replay models")
    if model_cls.OWN_CLASSIFIER:
        parser.error(f"argument --calibration: {args.calibration!r} is not allowed with model {args.model}: it "
                     f"evaluates with a classifier of its own, not the head a correction adjusts")
    heads = CALIBRATIONS.get(args.calibration).HEADS
    if heads and args.head not in heads:
        parser.error(f"argument --calibration: {args.calibration!r} is not allowed with --head {args.head}: it is "
                     f"defined for the {', '.join(heads)} head")


def resolve_mask_buffer(parser, args, model_cls):
    """--mask_buffer as the mask's authors use it (Mask.REPLAY): on by default for a mask applied to the replay rows
    too, where the model has a buffer cross-entropy; refused with a form defined on the stream rows alone, and
    turned off for a mask whose authors always apply it to replay rows (that form has its own name)."""
    from utils.core.masks import MASKS

    replay = MASKS.get(args.mask).REPLAY
    if replay == "never" and args.mask_buffer:
        parser.error(f"argument --mask_buffer: not allowed with --mask {args.mask}, which adjusts the stream rows "
                     f"alone; --mask {args.mask.removesuffix('_stream')} adjusts the replay rows too")
    if replay == "always" and args.mask_buffer is False and model_cls.BUFFER_CE:
        parser.error(f"argument --no-mask_buffer: not allowed with --mask {args.mask}, which its authors apply to "
                     f"the replay rows too; --mask {args.mask}_stream is the form on the stream rows alone")
    if args.mask_buffer is None:
        args.mask_buffer = replay == "always" and model_cls.BUFFER_CE


def check_buffer_scope(parser, args, model_cls):
    if args.mask_buffer and not model_cls.BUFFER_CE:
        parser.error(f"argument --mask_buffer: not allowed with model {args.model}, which has no cross-entropy on "
                     f"buffer rows to mask")
    if args.buffer_scope != "task" and not args.mask_buffer:
        parser.error(f"argument --buffer_scope: {args.buffer_scope!r} is not allowed without --mask_buffer, "
                     f"which it applies to")


def resolve_mask_value(parser, args):
    from utils.core.masks.base import resolve_mask_value as resolve

    try:
        args.mask_value = resolve(args.mask, args.mask_value)
    except ValueError as error:
        parser.error(str(error))


def resolve_device(parser, args, argv, dataset_cls):
    """--device auto, and the precision and memory format that pay on it."""
    import torch

    from utils.speed import SPEED_FLAGS
    from utils.speed.device import CHANNELS_LAST_MIN_WIDTH, amp_refusal, channels_last_crashes, resolve_device

    args.device = resolve_device(args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"argument --device: {args.device!r} is not allowed: no CUDA device here, use cpu or auto")
    if args.device.startswith("cuda:") and int(args.device[5:]) >= torch.cuda.device_count():
        parser.error(f"argument --device: {args.device!r} is not allowed: this machine has "
                     f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    on_cpu = not args.device.startswith("cuda")
    refusal = amp_refusal(args.amp, on_cpu)
    if refusal:
        parser.error(f"argument --amp: {refusal}")
    narrow = channels_last_crashes(getattr(args, "nf", None), on_cpu)
    if args.channels_last and narrow:
        parser.error(f"argument --channels_last: not allowed with --nf {args.nf} on the CPU: torch's channels_last "
                     f"convolution backward crashes there below {CHANNELS_LAST_MIN_WIDTH} channels at odd batch "
                     f"sizes (measured with torch 2.14.1); drop --channels_last")
    if args.threads is None and on_cpu and not dataset_cls.CONVOLUTIONAL:
        args.threads = 1  # MLPs: a second thread never paid, and spins when the cores are shared (README, 'Threads')
    if args.levers != "fixed":
        from utils.reference.configs import explicit_flags

        given = sorted(explicit_flags(parser, argv) & set(SPEED_FLAGS))
        if given:
            parser.error(f"argument --levers: {args.levers!r} chooses --amp, --channels_last and --compile by "
                         f"measurement: drop --{', --'.join(given)} (or use --levers fixed)")
    elif args.channels_last is None:
        args.channels_last = dataset_cls.CONVOLUTIONAL and args.amp is None and not narrow
