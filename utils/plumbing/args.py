"""The flags every run has, whatever its model, dataset and mask."""
import argparse

from backbone import HEADS
from utils.core.masks import DEFAULT_MASK_VALUE, scope_names
from utils.plumbing.parser import (
    MASK_VALUE_ALLOWED,
    config_name,
    device_name,
    held_out_fraction,
    mask_value,
    non_negative_int,
    percent,
    positive_float,
    positive_int,
)


def add_experiment_args(parser, models, datasets, masks, calibrations, default_dataset):
    """Flags every run has; `models`, `datasets`, `masks`, `calibrations` are the registered names."""
    run = parser.add_argument_group("experiment")
    run.add_argument("--model", required=True, choices=models, help="continual model")
    run.add_argument("--dataset", default=default_dataset, choices=datasets,
                     help=f"benchmark (default: {default_dataset})")
    run.add_argument("--buffer_size", type=non_negative_int, default=0,
                     help="replay buffer capacity: required (> 0) for replay models, refused for models without "
                          "a buffer")
    run.add_argument("--buffer_policy", choices=("reservoir", "balanced"), default="reservoir",
                     help="what the buffer keeps: reservoir (a uniform sample of the stream) or balanced (class-"
                          "balanced reservoir sampling, CBRS: as many of each class seen as the stream allows); "
                          "refused for models whose memory has its own policy (default: reservoir)")
    run.add_argument("--minibatch_size", type=positive_int,
                     help="buffer samples per draw, at most --buffer_size (default: --batch_size or --buffer_size, "
                          "the smaller)")
    run.add_argument("--n_epochs", type=positive_int, help="epochs per task (default: the dataset's published value)")
    run.add_argument("--batch_size", type=positive_int, help="stream batch size (default: the dataset's)")
    run.add_argument("--lr", type=positive_float, help="SGD learning rate (default: the dataset's)")
    run.add_argument("--lr_milestones", type=positive_int, nargs="*",
                     help="epochs at which the lr is multiplied by --lr_gamma, restarting every task "
                          "(default: the dataset's)")
    run.add_argument("--lr_gamma", type=positive_float, default=0.1,
                     help="lr factor at each of --lr_milestones (default: 0.1)")
    run.add_argument("--head", choices=HEADS,
                     help="classifier head: linear; cosine (scale 10, no bias; ER-ACE's original head); rpc (a "
                          "fixed regular simplex); fno (fixed non-negative orthogonal class vectors, one trained "
                          "scale) (default: the model's own)")
    run.add_argument("--config", type=config_name,
                     help="best: the published hyperparameters for this model, dataset and buffer size "
                          "(utils/reference/best_configs.json); or PATH/picked.json: the configuration a tuning picked "
                          "for the run's group (python -m utils.tune); explicit flags override them")
    run.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    run.add_argument("--validation", type=held_out_fraction, default=0.0,
                     help="hold out this fraction of each class's training samples (seeded by --validation_seed) and "
                          "evaluate on them instead of the test split, which is then never read: for tuning "
                          "(python -m utils.tune) (default: 0, off: train on the whole training split, evaluate on "
                          "the test split)")
    run.add_argument("--validation_seed", type=non_negative_int, default=0,
                     help="the seed of the held-out samples' draw, the same for every run and seed (default: 0)")
    run.add_argument("--class_order", choices=("fixed", "seed"), default="fixed",
                     help="which classes form each task: fixed (the dataset's numbering, as the papers' benchmarks) "
                          "or seed (a permutation drawn from --seed, a different split into tasks per seed)")
    run.add_argument("--device", type=device_name, default="auto", help="auto (cuda if present), cpu, cuda, cuda:N")
    run.add_argument("--data_path", default="./data", help="where datasets are read and downloaded (default: ./data)")
    run.add_argument("--results_path", default="results", help="folder of results.jsonl (default: results)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--rerun", action="store_true",
                     help="run even when the results file already holds a result of this run's key (same flags "
                          "and seed), appending a second line; without it such a run does nothing")
    run.add_argument("--eval_every", type=non_negative_int, nargs="?", const=20, default=0,
                     help="every K training steps (K = 20 when given alone), evaluate the seen tasks on a fixed "
                          "test subset, for the stability gap, anytime, min- and worst-case accuracy (0: off)")
    run.add_argument("--eval_subset", type=non_negative_int, default=100,
                     help="test images per task for --eval_every, class-balanced, drawn once from --seed "
                          "(0: the whole test split)")
    run.add_argument("--eval_future", action="store_true",
                     help="also evaluate future tasks after each task, and the untrained network, for FWT "
                          "(FWT is null without it)")
    stream = parser.add_argument_group("stream (utils/core/streams.py)")
    stream.add_argument("--stream", choices=("tasks", "blurry", "gradual"), default="tasks",
                        help="the order of the training split: tasks (one after another, each begun and ended for "
                             "the model); blurry (i-Blurry-N-M, Koh et al. 2022: --blurry_disjoint %% of the classes "
                             "in their task only, --blurry_mix %% of each other class's samples dealt over all tasks); "
                             "gradual (consecutive tasks mixed around each boundary with MOA's sigmoid of width "
                             "--transition_width). blurry and gradual announce no task: models, scopes and task-end "
                             "corrections that need one are refused, a default scope that needs one becomes `batch`, "
                             "the lr never restarts (no --lr_milestones) (default: tasks)")
    stream.add_argument("--blurry_disjoint", type=percent, default=50.0,
                        help="N of --stream blurry: %% of the classes that are disjoint, each in its own task's "
                             "segment only (default: 50, i-Blurry-50-10)")
    stream.add_argument("--blurry_mix", type=percent, default=10.0,
                        help="M of --stream blurry: %% of each other class's samples pooled and dealt evenly over all "
                             "the tasks' segments, as the authors' released splits (default: 10)")
    stream.add_argument("--transition_width", type=positive_float, default=0.2,
                        help="W of --stream gradual, in task lengths: the sample at position x comes from the later "
                             "task with probability 1 / (1 + exp(-4 (x - p) / W)) around each boundary p "
                             "(default: 0.2)")
    stream.add_argument("--passes", type=positive_int, default=1,
                        help="optimisation steps on each incoming batch, each with a fresh buffer draw; the batch "
                             "enters the buffer once, after the last (the online-CL survey's 3) (default: 1)")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--amp", nargs="?", const="bf16", choices=("bf16", "fp16"),
                       help="autocast the network: bf16 (CPU and CUDA; the value when --amp is given alone) "
                            "or fp16 with a gradient scaler (CUDA only)")
    speed.add_argument("--channels_last", action=argparse.BooleanOptionalAction,
                       help="channels_last memory format for images (default: on for convolutional backbones "
                            "in fp32, where it is never slower; off under --amp and for MLPs)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    speed.add_argument("--levers", choices=("fixed", "auto", "auto-bf16"), default="fixed",
                       help="fixed: --amp, --channels_last and --compile as given; auto: time the model's own step "
                            "with each fp32 memory format (and compile where the run is long enough for it to pay) "
                            "before the run and take the fastest; auto-bf16: bf16 autocast too, where the device "
                            "runs it natively")
    speed.add_argument("--threads", type=positive_int,
                       help="torch CPU threads (default: 1 for the MLP datasets, torch's own choice, every core, "
                            "for the convolutional ones; a sweep gives each run its share)")
    logging = parser.add_argument_group("diagnostics")
    logging.add_argument("--log_dir", help="write TensorBoard event files of the per-step diagnostics and the "
                                           "per-task accuracies into this folder (default: none, no logging)")
    logging.add_argument("--diagnostics_every", type=positive_int, default=1,
                         help="record the per-step diagnostics (gradient masses, logit means, masked mass, loss terms) "
                              "on every K-th training step only; the results line's means are then over those steps "
                              "(1: every step, today's values; a larger K makes a small model's step cheaper)")
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
    mask.add_argument("--mask_scope", choices=scope_names("SCOPES"),
                      help="classes a stream row keeps: task (its own task's), ace (batch + unseen), new (the "
                           "current and later tasks'), batch (those present in the incoming batch) or recent (those "
                           "of the stream rows of the last --scope_window steps); task and new need announced tasks; "
                           "default: the mask's own where it has one, else the model's")
    mask.add_argument("--scope_window", type=positive_int,
                      help="W of --mask_scope recent: training steps whose stream classes a row keeps, the current "
                           "one included (refused with other scopes) (default: 10)")
    mask.add_argument("--calibration", choices=calibrations, default="none",
                      help="a correction of recency bias at task ends or at evaluation, for replay models "
                           "(default: none)")
    mask.add_argument("--mask_buffer", action=argparse.BooleanOptionalAction,
                      help="also mask the buffer cross-entropy terms (with --buffer_scope); default: on for a mask "
                           "its authors apply to the replay rows too (las) where the model has a buffer "
                           "cross-entropy, off otherwise")
    mask.add_argument("--buffer_scope", choices=scope_names("BUFFER_SCOPES"), default="task",
                      help="classes a buffer row keeps under --mask_buffer: task (its own task's) or past (every "
                           "task before the current one: SS-IL's replay softmax, Ahn et al. 2021) (default: task)")
