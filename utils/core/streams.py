"""The order of a run's training stream (--stream), which reorders the training split without changing what is in it,
and whether the stream announces its tasks to the model.

- `tasks`: the dataset's tasks one after another, each reshuffled every epoch by the training generator, announced
  (begin_task / end_task) unless the dataset declares BOUNDARIES = False.
- `blurry`: i-Blurry-N-M (Koh et al., ICLR 2022, "Online Continual Learning on Class Incremental Blurry Task
  Configuration with Anytime Inference", §3), never announced.
- `gradual`: consecutive tasks interleaved around each boundary with MOA's sigmoid mixing probability, never
  announced.

A dataset with an order of its own (ContinualDataset.stream_order, e.g. MNIST-360) streams that order (the command
line refuses --stream blurry or gradual for it). A built order is drawn once from a generator of its own seeded
with --seed (the training generator and the global RNG are never touched) and holds every training sample exactly
once; the loop trains its segments one after another in that order, every epoch the same order.
"""
from typing import NamedTuple, Optional

import torch

from utils.core.tasks import task_of


class Stream(NamedTuple):
    """`announced`: the loop calls the model's begin_task / end_task / calibrate; `segments`: index tensors into the
    training split, one per segment, each trained in its order (None: the dataset's tasks, reshuffled every
    epoch)."""
    announced: bool
    segments: Optional[list]


def announces_tasks(args, dataset):
    """Whether the run's stream tells the model where each task begins and ends."""
    return args.stream == "tasks" and dataset.BOUNDARIES


def has_own_order(dataset_cls):
    """Whether the dataset streams a fixed order of its own (it overrides ContinualDataset.stream_order)."""
    from datasets.base import ContinualDataset

    return dataset_cls.stream_order is not ContinualDataset.stream_order


def build_stream(args, dataset):
    """The run's Stream, from the dataset's prepared splits (labels in the run's class order)."""
    generator = torch.Generator().manual_seed(args.seed)
    segments = dataset.stream_order(generator)
    labels, n_tasks, per_task = dataset.splits.train_labels, dataset.N_TASKS, dataset.N_CLASSES_PER_TASK
    if segments is None and args.stream == "blurry":
        segments = blurry_segments(labels, n_tasks, per_task, args.blurry_disjoint, args.blurry_mix, generator)
    elif segments is None and args.stream == "gradual":
        segments = gradual_segments(labels, n_tasks, per_task, args.transition_width, generator)
    return Stream(announces_tasks(args, dataset), segments)


def disjoint_classes(n_tasks, classes_per_task, percent, generator):
    """Bool [C]: round(percent % of the C classes), as evenly spread over the tasks as they divide (the tasks that
    take one more drawn at random), each task's drawn at random among its own classes."""
    n_classes = n_tasks * classes_per_task
    total = round(percent * n_classes / 100)
    per_task = torch.full((n_tasks,), total // n_tasks)
    per_task[torch.randperm(n_tasks, generator=generator)[:total % n_tasks]] += 1
    chosen = torch.zeros(n_classes, dtype=torch.bool)
    for task in range(n_tasks):
        picked = torch.randperm(classes_per_task, generator=generator)[:int(per_task[task])]
        chosen[task * classes_per_task + picked] = True
    return chosen


def blurry_segments(labels, n_tasks, classes_per_task, disjoint, mix, generator):
    """i-Blurry-N-M with N = `disjoint`, M = `mix` (percent), segment t nominally the dataset's task t.

    N % of the classes are disjoint: all their samples in their own task's segment. Every other class is blurry:
    its task is its major one, and M % of its samples (drawn at random) go into one pool that is shuffled and dealt
    in equal parts to all the segments, its own included. That is how the authors' released splits are made
    (naver-ai/i-Blurry, collections/cifar10/cifar10_split5_n50_m10_rand1_task*.json: each task holds 10,000
    samples; a blurry class keeps about 4,600 of its 5,000 in its major task and about 100 in each other one), so on
    average M·(T−1)/T % of a blurry class's samples lie outside its task (the paper's "M % in other tasks" counted
    before the dealing). Within a segment the order is a random permutation."""
    device = labels.device
    labels = labels.cpu()
    blurry = ~disjoint_classes(n_tasks, classes_per_task, disjoint, generator)
    own = [[] for _ in range(n_tasks)]
    pool = []
    for label in range(n_tasks * classes_per_task):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        moved = round(mix * len(members) / 100) if blurry[label] else 0
        pool.append(members[:moved])
        own[label // classes_per_task].append(members[moved:])
    pool = torch.cat(pool)
    dealt = pool[torch.randperm(len(pool), generator=generator)].tensor_split(n_tasks)
    segments = []
    for task in range(n_tasks):
        members = torch.cat(own[task] + [dealt[task]])
        segments.append(members[torch.randperm(len(members), generator=generator)].to(device))
    return segments


def sigmoid_mixing(position, boundary, width):
    """MOA's probability that the sample at `position` comes from the concept after a drift at `boundary` of width
    `width`: 1 / (1 + exp(−4 (position − boundary) / width)) (Bifet et al. 2009, MOA's ConceptDriftStream, which
    CapyMOA's GradualDrift(position, width) uses)."""
    return torch.sigmoid(4 * (torch.as_tensor(position, dtype=torch.float64) - boundary) / width)


def gradual_segments(labels, n_tasks, classes_per_task, width, generator):
    """Consecutive tasks interleaved around each boundary: around the boundary p between task t−1 and t, the sample
    at stream position x comes from task t with probability sigmoid_mixing(x, p, W), W = `width` × the mean task
    length in samples (MOA's gradual drift, with a fixed pool of samples instead of two infinite generators).

    Each sample gets the place it has in the sharp task-by-task stream (its task's samples in random order) plus
    logistic noise of scale W/4, and the stream is the samples sorted by that time: where two tasks of equal density
    meet, the share of the later one at time x is the logistic CDF at (x − p)/(W/4), the sigmoid above, and every
    sample stays in the stream exactly once. With W above a task's length more than two tasks mix. Segment t is the
    stream cut at the sharp stream's boundaries: the positions of task t, around its middle task t's samples."""
    device = labels.device
    tasks = task_of(labels.cpu(), classes_per_task)
    by_task = [torch.nonzero(tasks == task).flatten() for task in range(n_tasks)]
    sharp = torch.cat([members[torch.randperm(len(members), generator=generator)] for members in by_task])
    scale = width * len(sharp) / n_tasks / 4
    uniform = torch.rand(len(sharp), generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    time = torch.arange(len(sharp), dtype=torch.float64) + 0.5 + scale * torch.logit(uniform)
    stream = sharp[torch.argsort(time, stable=True)]
    return [segment.to(device) for segment in stream.split([len(members) for members in by_task])]


def nominal_tasks(n_segments, n_tasks):
    """The dataset's task each segment stands for in the accuracy matrix and the measurements: segment s of S is task
    ⌊s·T/S⌋ (s itself where S = T)."""
    return [segment * n_tasks // n_segments for segment in range(n_segments)]
