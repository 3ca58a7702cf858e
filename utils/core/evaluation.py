"""Evaluation: after a task, Class-IL and Task-IL accuracy of every evaluated task from exact counts; and,
with --eval_every, the seen tasks' accuracy on a fixed class-balanced test subset during training."""
import torch

from utils.core.metrics import accuracy
from utils.core.tasks import task_of

EVAL_BATCH = 512


def predictions(model, dataset, indices, task, n_visible):
    """(Class-IL predictions among the first n_visible classes, Task-IL predictions within `task`'s
    classes, labels) of the test images at `indices`."""
    cpt, splits = dataset.N_CLASSES_PER_TASK, dataset.splits
    logits = torch.cat([model(dataset.normalize(splits.test_images[chunk])) for chunk in indices.split(EVAL_BATCH)])
    return (logits[:, :n_visible].argmax(1), logits[:, task * cpt:(task + 1) * cpt].argmax(1) + task * cpt,
            splits.test_labels[indices])


@torch.inference_mode()
def evaluate(model, dataset, last_trained, future=False):
    """Class-IL and Task-IL accuracy (%, exact from counts) on each task's test split after training
    `last_trained` (−1: untrained); tasks after it are evaluated only with `future` (else None).
    Class-IL: argmax over the classes of tasks 0..max(last_trained, j); Task-IL: argmax within task j's
    classes. Also the seen tasks' Class-IL task-confusion counts and correct counts. The forward is the
    training one (precision, memory format), without autograd."""
    was_training = model.training
    model.eval()
    cpt, n_tasks = dataset.N_CLASSES_PER_TASK, dataset.N_TASKS
    n_evaluated = n_tasks if future else last_trained + 1
    class_il, task_il = [None] * n_tasks, [None] * n_tasks
    confusion, correct, totals = [], [], []
    for task in range(n_evaluated):
        indices = dataset.task_indices(task, train=False)
        predicted, within, labels = predictions(model, dataset, indices, task, (max(last_trained, task) + 1) * cpt)
        class_correct = (predicted == labels).sum()
        class_il[task] = accuracy(class_correct, len(labels))
        task_il[task] = accuracy((within == labels).sum(), len(labels))
        if task <= last_trained:
            confusion.append(torch.bincount(task_of(predicted, cpt), minlength=last_trained + 1).tolist())
            correct.append(int(class_correct))
            totals.append(len(labels))
    model.train(was_training)
    return class_il, task_il, {"counts": confusion, "correct": correct, "totals": totals}


def evaluation_subsets(dataset, per_task, seed):
    """{task: test indices}: `per_task` images of each task, an equal share per class, drawn once by a
    generator of their own seeded with `seed` (the training's RNG streams are not touched); the whole test
    split where per_task is 0 or above it."""
    generator = torch.Generator().manual_seed(seed)
    labels = dataset.splits.test_labels.cpu()
    subsets = {}
    for task in range(dataset.N_TASKS):
        indices = dataset.task_indices(task, train=False).cpu()
        if per_task and per_task < len(indices):
            per_class = max(1, per_task // dataset.N_CLASSES_PER_TASK)
            chosen = [members[torch.randperm(len(members), generator=generator)[:per_class]]
                      for members in (indices[labels[indices] == c] for c in labels[indices].unique())]
            indices = torch.cat(chosen).sort().values
        subsets[task] = indices.to(dataset.splits.test_labels.device)
    return subsets


@torch.inference_mode()
def evaluate_seen(model, dataset, current, subsets):
    """Class-IL and Task-IL accuracy (%) of tasks 0..current on their subsets (None for later tasks), the
    Class-IL argmax over the seen classes; the model in eval mode, so BatchNorm statistics stay as they are."""
    was_training = model.training
    model.eval()
    class_il, task_il = [None] * dataset.N_TASKS, [None] * dataset.N_TASKS
    for task in range(current + 1):
        predicted, within, labels = predictions(model, dataset, subsets[task], task,
                                                (current + 1) * dataset.N_CLASSES_PER_TASK)
        class_il[task] = accuracy((predicted == labels).sum(), len(labels))
        task_il[task] = accuracy((within == labels).sum(), len(labels))
    model.train(was_training)
    return class_il, task_il
