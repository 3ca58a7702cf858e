"""Published reference figures (published_results.json beside this file, each entry citing its paper and
table) and the reference table rendered from them (`python -m utils.published`; docs/reference-results.md)."""
import json
import os

from tabulate import tabulate

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published_results.json")
SOURCE_LABELS = {"der2020-table2": "DER Table 2", "xder2022-table1": "X-DER Table I"}


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


def reference_table(entries):
    """Markdown: dataset, buffer, model, published Class-IL, Task-IL and forgetting, source."""
    rows = [[e["dataset"], e["buffer_size"] or "–", e["model"], figure(e, "class_il"), figure(e, "task_il"),
             figure(e, "class_il_forgetting"), SOURCE_LABELS.get(e["source"], e["source"])] for e in entries]
    return tabulate(rows, headers=["dataset", "buffer", "model", "Class-IL", "Task-IL", "forgetting", "source"],
                    tablefmt="github", disable_numparse=True)
