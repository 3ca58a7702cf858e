"""utils/core/tasks.py: the task of a class, and the class order (--class_order fixed | seed)."""
from types import SimpleNamespace

import numpy as np
import torch

from datasets import DATASETS
from tests.helpers import run_main
from utils.core.tasks import class_order, relabel, task_of, task_of_classes


def test_task_of_a_label_and_of_every_class():
    assert task_of(7, 2) == 3
    assert task_of_classes(6, 2, "cpu").tolist() == [0, 0, 1, 1, 2, 2]


def test_a_seeded_order_is_a_permutation_drawn_from_the_seed_alone():
    assert class_order(10, "fixed", 5).tolist() == list(range(10))
    state = torch.get_rng_state()
    first, again, other = (class_order(10, "seed", s) for s in (3, 3, 4))
    assert torch.equal(state, torch.get_rng_state())  # no global generator consumed
    assert sorted(first.tolist()) == list(range(10)) and first.tolist() == again.tolist()
    assert first.tolist() != other.tolist() and first.tolist() != list(range(10))


def test_relabel_gives_each_class_its_position_in_the_order():
    order = np.array([3, 0, 2, 1])
    labels = torch.tensor([0, 1, 2, 3, 3])
    assert relabel(labels, order).tolist() == [1, 3, 2, 0, 0]
    assert order[relabel(labels, order).numpy()].tolist() == labels.tolist()  # back to the original


def test_each_task_of_a_seeded_order_holds_the_orders_classes():
    dataset = DATASETS.get("seq-digits")(SimpleNamespace(class_order="seed", seed=7))
    original = dataset.load_splits()
    dataset.prepare("cpu")
    order = dataset.class_order
    for task in range(dataset.N_TASKS):
        indices = dataset.task_indices(task, train=False)
        classes = set(original.test_labels[indices].tolist())
        assert classes == set(order[2 * task:2 * task + 2].tolist())
    assert torch.equal(torch.as_tensor(order)[dataset.splits.train_labels], original.train_labels)


def test_a_run_with_a_seeded_order_differs_from_the_fixed_one(tmp_path):
    flags = ("--model", "er", "--buffer_size", "20", "--n_epochs", "1")
    fixed = run_main(tmp_path / "fixed", *flags)
    shuffled = run_main(tmp_path / "seed", *flags, "--class_order", "seed")
    assert fixed["args"]["class_order"] == "fixed" and shuffled["args"]["class_order"] == "seed"
    assert fixed["key_hash"] != shuffled["key_hash"]
    assert fixed["class_il"]["matrix"] != shuffled["class_il"]["matrix"]
