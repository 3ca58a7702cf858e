"""The loop: tasks → epochs → observe, then evaluation of every task (future ones too, for FWT)."""
import random
import time

import numpy as np
import torch
from tqdm import tqdm

from utils.metrics import summarize

EVAL_BATCH = 512
LOG_EVERY = 20


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(model, dataset, last_trained):
    """Class-IL and Task-IL accuracy (%) on each task's test split after training `last_trained`
    (−1: untrained). Class-IL: argmax over the classes of tasks 0..max(last_trained, j);
    Task-IL: argmax within task j's classes."""
    was_training = model.training
    model.eval()
    cpt, splits = dataset.N_CLASSES_PER_TASK, dataset.splits
    class_il, task_il = [], []
    for task in range(dataset.N_TASKS):
        indices = dataset.task_indices(task, train=False)
        logits = torch.cat([model(dataset.normalize(splits.test_images[chunk])).float()
                            for chunk in indices.split(EVAL_BATCH)])
        labels = splits.test_labels[indices]
        n_visible = (max(last_trained, task) + 1) * cpt
        class_il.append((logits[:, :n_visible].argmax(1) == labels).float().mean().item() * 100)
        task_il.append((logits[:, task * cpt:(task + 1) * cpt].argmax(1) + task * cpt == labels).float().mean().item() * 100)
    model.train(was_training)
    return class_il, task_il


def task_scheduler(optimizer, args):
    """Restart the lr at --lr and, with milestones, divide it by 10 at each of them (per task)."""
    for group in optimizer.param_groups:
        group["lr"] = args.lr
    if not args.lr_milestones:
        return None
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, args.lr_milestones, gamma=0.1)


def training_indices(model, dataset, task):
    if model.TRAINS_ON_SEEN_TASKS:
        return torch.nonzero(dataset.splits.train_labels // dataset.N_CLASSES_PER_TASK <= task).flatten()
    return dataset.task_indices(task)


def train(model, dataset, args, log=print):
    """Train task by task; returns the Class-IL and Task-IL summaries and the training time (s)."""
    n_tasks, splits = dataset.N_TASKS, dataset.splits
    generator = torch.Generator().manual_seed(args.seed)
    baseline_class_il, baseline_task_il = evaluate(model, dataset, -1)
    class_rows, task_rows, train_time = [], [], 0.0
    model.train()
    for task in range(n_tasks):
        start = time.perf_counter()
        indices = training_indices(model, dataset, task)
        model.begin_task(task, splits.train_labels[indices])
        scheduler = task_scheduler(model.opt, args)
        n_batches = -(-len(indices) // args.batch_size)
        bar = tqdm(total=args.n_epochs * n_batches, desc=f"Task {task + 1}/{n_tasks}",
                   disable=args.non_verbose, leave=False, dynamic_ncols=True)
        for epoch in range(args.n_epochs):
            order = indices[torch.randperm(len(indices), generator=generator).to(indices.device)]
            for step, batch in enumerate(order.split(args.batch_size)):
                loss = model.observe(splits.train_images[batch], splits.train_labels[batch])
                if not args.non_verbose and step % LOG_EVERY == 0:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
                bar.update()
            if scheduler is not None:
                scheduler.step()
        bar.close()
        model.end_task(task, splits.train_images[indices], splits.train_labels[indices])
        synchronize(model.device)
        train_time += time.perf_counter() - start
        class_il, task_il = evaluate(model, dataset, task)
        class_rows.append(class_il)
        task_rows.append(task_il)
        log(f"Task {task + 1}/{n_tasks}: mean accuracy on tasks 1-{task + 1}: "
            f"Class-IL {np.mean(class_il[:task + 1]):.2f} % | Task-IL {np.mean(task_il[:task + 1]):.2f} %")
    return {"class_il": summarize(class_rows, baseline_class_il), "task_il": summarize(task_rows, baseline_task_il),
            "train_time_s": train_time}
