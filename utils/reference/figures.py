"""Published reference figures (published_results.json beside this file, each entry citing its paper and
table) and the reference table rendered from them (`python -m utils.published`; docs/reference-results.md)."""
import json
import os

from tabulate import tabulate

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published_results.json")
SOURCE_LABELS = {"der2020-table2": "DER Table 2", "xder2022-table1": "X-DER Table I",
                 "der2020-release": "DER release"}


def load_published(path=DATA_FILE):
    """(entries, {source key: citation})."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["entries"], data["_sources"]


def figure(entry, name):
    value = entry.get(name)
    if value is None:
        return "–"
    std = entry.get(f"{name}_std")
    return f"{value:.2f}" if std is None else f"{value:.2f} ± {std:.2f}"


def in_the_suite(entry):
    """Whether the suite has the entry's model and dataset and runs that model there (a published row of a method or
    benchmark it does not have yet stays in the data for when it lands; a model that needs announced tasks does not
    run on a dataset without them)."""
    from datasets import DATASETS
    from models import MODELS

    if entry["model"] not in MODELS.names() or entry["dataset"] not in DATASETS.names():
        return False
    return DATASETS.get(entry["dataset"]).BOUNDARIES or MODELS.get(entry["model"]).TASK_FREE_REFUSAL is None


def reference_table(entries):
    """Markdown: dataset, buffer, model, published Class-IL, Task-IL, forgetting and accuracy (MNIST-360's one
    figure), source, and "not in the suite" where the suite lacks the model or the dataset."""
    rows = [[e["dataset"], e["buffer_size"] or "–", e["model"], figure(e, "class_il"), figure(e, "task_il"),
             figure(e, "class_il_forgetting"), figure(e, "accuracy"), SOURCE_LABELS.get(e["source"], e["source"]),
             "" if in_the_suite(e) else "not in the suite"] for e in entries]
    return tabulate(rows, headers=["dataset", "buffer", "model", "Class-IL", "Task-IL", "forgetting", "accuracy",
                                   "source", "suite"], tablefmt="github", disable_numparse=True)
