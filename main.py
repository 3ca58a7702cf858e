"""Front door: python main.py --model der --mask general --buffer_size 20 [--help]."""
import os
import shlex
import sys
import time
import warnings

from utils.args import ArgumentParser, add_experiment_args

PROG = "main.py"
DEFAULT_DATASET = "seq-digits"


def build_parser(argv):
    """The full parser: shared flags plus those of the model, dataset and mask named in argv."""
    from datasets import DATASETS
    from models import MODELS
    from utils.masks import MASKS

    registries = ((MODELS, "--model"), (DATASETS, "--dataset"), (MASKS, "--mask"))
    preparser = ArgumentParser(add_help=False)
    for _, flag in registries:
        preparser.add_argument(flag)
    preparser.add_argument("-h", "--help", action="store_true")
    named, _ = preparser.parse_known_args(argv)
    if named.dataset is None and not named.help:
        named.dataset = DEFAULT_DATASET  # a bare --help imports nothing heavy
    parser = ArgumentParser(prog=PROG, description="Replay-based class-incremental learning with softmax masking.",
                            epilog="Add --model NAME --help to see that model's flags (likewise --dataset, --mask).")
    add_experiment_args(parser, MODELS.names(), DATASETS.names(), MASKS.names(), DEFAULT_DATASET)
    classes = []
    for registry, flag in registries:
        name = getattr(named, flag[2:])
        cls = registry.get(name) if name in registry.names() else None
        if cls is not None:
            cls.add_args(parser.add_argument_group(f"{registry.kind} {name}"))
        classes.append(cls)
    return parser, classes


def resolve_defaults(parser, args, argv, model_cls, dataset_cls):
    """Fill unset flags from --config, then the model and dataset; refuse what cannot run."""
    import torch

    from utils.config import ConfigError, apply_config

    if args.resume and not args.checkpoint_dir:
        parser.error("argument --resume: needs --checkpoint_dir, the folder of the run's checkpoints")
    if model_cls.NEEDS_BUFFER and args.buffer_size == 0:
        parser.error(f"argument --buffer_size: {args.buffer_size} is not allowed: "
                     f"model {args.model} replays, give a positive integer")
    if args.config:
        try:
            args.config_source = apply_config(parser, args, argv)
        except ConfigError as error:
            parser.error(f"argument --config: {error}")
    path = args.data_path
    if os.path.exists(path) and not (os.path.isdir(path) and os.access(path, os.R_OK | os.W_OK | os.X_OK)):
        parser.error(f"argument --data_path: {path!r} is not allowed: must be a readable, writable folder "
                     f"(or a path where one can be made)")
    args.mask = args.mask or model_cls.DEFAULT_MASK
    args.mask_scope = args.mask_scope or model_cls.DEFAULT_SCOPE
    args.n_epochs = args.n_epochs or dataset_cls.N_EPOCHS
    args.batch_size = args.batch_size or dataset_cls.BATCH_SIZE
    args.lr = args.lr or dataset_cls.LR
    args.lr_milestones = list(dataset_cls.LR_MILESTONES if args.lr_milestones is None else args.lr_milestones)
    args.minibatch_size = args.minibatch_size or args.batch_size
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"argument --device: {args.device!r} is not allowed: no CUDA device here, use cpu or auto")
    if args.amp == "fp16" and not args.device.startswith("cuda"):
        parser.error("argument --amp: 'fp16' is not allowed on the CPU: use --amp bf16 (or --device cuda)")


def one_line_warnings(message, category, filename, lineno, line=None):
    return f"warning: {message}\n"


def parse_args(argv):
    """Validated args with every default resolved, and the model and dataset classes."""
    parser, (model_cls, dataset_cls, _) = build_parser(argv)
    args = parser.parse_args(argv)
    resolve_defaults(parser, args, argv, model_cls, dataset_cls)
    return args, model_cls, dataset_cls


def fail(message, status):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def make_deterministic():
    """Deterministic kernels everywhere, no cuDNN autotuning (costs speed on GPU)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args, model_cls, dataset_cls = parse_args(argv)
    warnings.formatwarning = one_line_warnings

    from datasets.base import DataError
    from utils.checkpoint import CheckpointError, check_same_run, load_latest
    from utils.results import append_record, build_record, format_table, json_safe
    from utils.training import Interrupted, NumericsError, Trainer, set_seed

    start = time.perf_counter()
    if args.deterministic:
        make_deterministic()
    set_seed(args.seed)
    resume_state = None
    try:
        if args.resume:
            resume_state, path = load_latest(args.checkpoint_dir)
            check_same_run(resume_state["args"], json_safe(vars(args)))
            print(f"resuming from {path}")
        dataset = dataset_cls(args)
        dataset.prepare(args.device)
    except CheckpointError as error:
        return fail(f"--resume: {error}", 2)
    except DataError as error:
        return fail(f"--dataset {args.dataset}: {error}", 2)
    model = model_cls(dataset.get_backbone(), args, dataset, args.device)
    try:
        outcome = Trainer(model, dataset, args).run(resume_state)
    except NumericsError as error:
        return fail(str(error), 3)
    except Interrupted as stop:
        directory = os.path.dirname(stop.path)
        command = [a for a in argv if a != "--resume"]
        if not args.checkpoint_dir:
            command += ["--checkpoint_dir", directory]
        print(f"{PROG}: interrupted; checkpoint written to {stop.path}; resume with: python {PROG} "
              f"{shlex.join(command + ['--resume'])}", file=sys.stderr)
        return stop.status
    record = build_record(args, outcome, time.perf_counter() - start)
    append_record(args.results_path, record)
    print(f"\n{args.model} | {args.dataset} | mask {args.mask} (m={args.mask_value}, scope {args.mask_scope}) | "
          f"buffer {args.buffer_size} | seed {args.seed} | train {outcome['train_time_s']:.1f} s")
    print(format_table(record))
    return 0

if __name__ == "__main__":
    sys.exit(main())
