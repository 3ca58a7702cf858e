"""Evaluation after a task: Class-IL and Task-IL accuracy of every evaluated task, from exact counts."""
import torch

from utils.metrics import accuracy
from utils.tasks import task_of

EVAL_BATCH = 512


@torch.inference_mode()
def evaluate(model, dataset, last_trained, future=False):
    """Class-IL and Task-IL accuracy (%, exact from counts) on each task's test split after training
    `last_trained` (−1: untrained); tasks after it are evaluated only with `future` (else None).
    Class-IL: argmax over the classes of tasks 0..max(last_trained, j); Task-IL: argmax within task j's
    classes. Also the seen tasks' Class-IL task-confusion counts and correct counts. The forward is the
    training one (precision, memory format), without autograd."""
    was_training = model.training
    model.eval()
    cpt, splits, n_tasks = dataset.N_CLASSES_PER_TASK, dataset.splits, dataset.N_TASKS
    n_evaluated = n_tasks if future else last_trained + 1
    class_il, task_il = [None] * n_tasks, [None] * n_tasks
    confusion, correct, totals = [], [], []
    for task in range(n_evaluated):
        indices = dataset.task_indices(task, train=False)
        logits = torch.cat([model(dataset.normalize(splits.test_images[chunk]))
                            for chunk in indices.split(EVAL_BATCH)])
        labels = splits.test_labels[indices]
        n_visible = (max(last_trained, task) + 1) * cpt
        predicted = logits[:, :n_visible].argmax(1)
        class_correct = (predicted == labels).sum()
        task_correct = (logits[:, task * cpt:(task + 1) * cpt].argmax(1) + task * cpt == labels).sum()
        class_il[task], task_il[task] = accuracy(class_correct, len(labels)), accuracy(task_correct, len(labels))
        if task <= last_trained:
            confusion.append(torch.bincount(task_of(predicted, cpt), minlength=last_trained + 1).tolist())
            correct.append(int(class_correct))
            totals.append(len(labels))
    model.train(was_training)
    return class_il, task_il, {"counts": confusion, "correct": correct, "totals": totals}
