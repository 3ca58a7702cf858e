"""The results line of a run: its fields, declared once, and how a finished run fills them."""
import math

from utils.plumbing.environment import git_revision

FLAG_FIELDS = ("model", "dataset", "mask", "mask_value", "mask_buffer", "buffer_size", "seed")
# what the loop returns
OUTCOME_FIELDS = ("class_il", "task_il", "train_time_s", "skipped_steps", "recency_bias", "old_accuracy",
                  "new_accuracy", "task_confusion", "diagnostics", "online_accuracy", "anytime_accuracy", "a_auc",
                  "min_acc", "wc_acc", "stability_gap", "eval_curve", "calibration_fit")
LAUNCH_FIELDS = ("time_s", "git", "run_id", "started_at", "key_hash", "environment", "data_provenance", "levers",
                 "config_source")
RECORD_FIELDS = FLAG_FIELDS + ("args",) + OUTCOME_FIELDS + LAUNCH_FIELDS
SWEEP_FIELDS = ("sweep", "key", "sweep_key_hash")  # added to a line that a sweep wrote


def json_safe(value):
    """JSON has no infinities or NaN: such floats are stored as the strings "-inf", "inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def build_record(args, outcome, time_s, identity, environment, key_hash, data_provenance=None, levers=None,
                 config_source=None):
    """The results line of a run; `outcome` is what the training loop returned (OUTCOME_FIELDS),
    `identity` its run id and start time, `config_source` the citation of the --config entry it ran."""
    flags = vars(args)
    launch = {"time_s": time_s, "git": git_revision(), "run_id": identity["run_id"],
              "started_at": identity["started_at"], "key_hash": key_hash, "environment": environment,
              "data_provenance": data_provenance, "levers": levers, "config_source": config_source}
    return json_safe({**{name: flags[name] for name in FLAG_FIELDS}, "args": flags,
                      **{name: outcome[name] for name in OUTCOME_FIELDS}, **launch})
