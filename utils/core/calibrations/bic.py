import torch
import torch.nn.functional as F

from utils.core.calibrations import register_calibration
from utils.core.calibrations.base import Calibration
from utils.core.tasks import task_of_classes
from utils.plumbing.parser import fraction, positive_int


@register_calibration("bic")
class BiasCorrection(Calibration):
    """BiC, bias correction (Wu et al., CVPR 2019): after each task t ≥ 1, with the network frozen, fit
    α, β of α·z + β on task t's logits to a class-balanced validation set; the evaluation reads the
    corrected logits of the newest task's classes. As Mammoth's `models/bic.py` runs the fit: (β, α)
    start at (0, 1), Adam at lr 0.001, --bic_epochs passes, CE over the seen classes; the correction of
    a task is dropped when the next one is fitted.

    The validation set: --bic_split of each new class's training images, held out of training from the
    task's start, and as many images of each old class copied from the buffer. A reservoir buffer has no
    part kept out of replay, so unlike the paper's exemplar split the old classes' images were trained on."""
    HEADS = ("linear",)

    def __init__(self, split=0.1, epochs=250):
        self.split, self.epochs = split, epochs
        self.held_out = None  # the current task's held-out (images, labels)
        self.factors = None  # (task, α, β) of the newest fitted task
        self.sizes = []  # validation images per fitted task, new and old classes together

    @classmethod
    def from_args(cls, args):
        return cls(split=args.bic_split, epochs=args.bic_epochs)

    @staticmethod
    def add_args(parser):
        parser.add_argument("--bic_split", type=fraction, default=0.1,
                            help="fraction of each new class's training images held out for BiC's validation "
                                 "set (default: 0.1, Mammoth's valset_split)")
        parser.add_argument("--bic_epochs", type=positive_int, default=250,
                            help="Adam passes over the validation set to fit α, β (default: 250, Mammoth's)")

    def training_indices(self, indices, dataset, task, seed):
        """The task's training indices without the held-out ones (from task 1 on), which are kept."""
        if task == 0:
            return indices
        generator = torch.Generator().manual_seed(seed * 1000 + task)  # the same split on a resume
        labels = dataset.splits.train_labels[indices].cpu()
        held = []
        for c in labels.unique():
            members = torch.nonzero(labels == c).flatten()
            count = max(1, round(self.split * len(members)))
            held.append(members[torch.randperm(len(members), generator=generator)[:count]])
        held = torch.cat(held).to(indices.device)
        keep = torch.ones(len(indices), dtype=torch.bool, device=indices.device)
        keep[held] = False
        self.held_out = (dataset.splits.train_images[indices[held]], dataset.splits.train_labels[indices[held]])
        return indices[keep]

    def end_task(self, model, task):
        if task == 0:
            return
        images, labels = self.validation_set(model, task)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = model.net(model.normalize(images)).float()[:, :(task + 1) * model.classes_per_task]
        newest = task_of_classes(logits.shape[1], model.classes_per_task, logits.device) == task
        factors = torch.tensor([0.0, 1.0], device=logits.device, requires_grad=True)  # β, α
        optimizer = torch.optim.Adam([factors], lr=0.001)
        for _ in range(self.epochs):
            optimizer.zero_grad()
            F.cross_entropy(self.corrected(logits, newest, factors), labels).backward()
            optimizer.step()
        model.train(was_training)
        self.factors = (task, factors.detach())
        self.sizes.append(len(labels))

    def validation_set(self, model, task):
        """The held-out new-class images and, per old class, as many buffer images (fewer if it lacks them)."""
        images, labels = self.held_out
        per_class = max(1, len(labels) // model.classes_per_task)
        buffered = model.buffer.labels[:model.buffer.size]
        old = [torch.nonzero(buffered == c).flatten()[:per_class] for c in range(task * model.classes_per_task)]
        old = torch.cat(old)
        return torch.cat([images, model.buffer.images[old]]), torch.cat([labels, buffered[old]])

    @staticmethod
    def corrected(logits, newest, factors):
        return torch.where(newest, factors[1] * logits + factors[0], logits)

    def adjust(self, logits, model):
        if self.factors is None:
            return logits
        task, factors = self.factors
        newest = task_of_classes(logits.shape[1], model.classes_per_task, logits.device) == task
        return self.corrected(logits, newest, factors.to(logits.device))

    def state_dict(self):
        return {"factors": self.factors, "sizes": self.sizes}

    def load_state_dict(self, state):
        self.factors, self.sizes = state["factors"], state["sizes"]

    def summary(self):
        return {"validation_images": self.sizes,
                "newest_factors": None if self.factors is None else
                {"task": self.factors[0], "beta": float(self.factors[1][0]), "alpha": float(self.factors[1][1])}}
