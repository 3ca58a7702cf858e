"""LUCIR (Hou et al., "Learning a Unified Classifier Incrementally via Rebalancing", CVPR 2019) as Mammoth's `lucir`.

The details follow aimagelab/mammoth `models/lucir.py` at HEAD (e75a491; not marked verified in its
REPRODUCIBILITY.md) and at its tag tpami2023 (30d9d03), which agree but where said:

- the head (`LucirHead`, Mammoth's `CustomClassifier`): σ · cos(f, w_c) over every class of every task, the class
  vectors in one block per task, each initialised U(±1/√D) and trained only during its own task, σ one learned
  scale initialised to 1 (backbone/heads.py's cosine head has a fixed scale, so this one lives here). From the
  second task on, the new block is imprinted before training: each new class's vector is the normalised mean of
  the L2-normalised features of its training images (augmented as for training, the network in eval mode), scaled
  to the mean norm of the old classes' vectors (--imprint_weights);
- the loss: the cross-entropy of σ · cos over every class (future blocks included), plus from the second task on
  λ · (1 − cos(f, f_old)) averaged over the rows (less-forget constraint: `F.cosine_embedding_loss` against the
  features of the network frozen at the previous task's end, in eval mode), λ = --lamda_base · √t at task t (t old
  tasks: the authors' λ_base · √(old classes / new classes) with equal tasks), and --lamda_mr times the margin
  ranking loss on the unscaled cosines: for each row of an old class, max(0, m − cos_y + cos_k) for each of the K
  largest cosines among the classes from the current task on (Mammoth takes them over every later block, the future
  ones included; the authors' code over the classes seen), averaged over those rows × K, 0 in a batch with none;
- the exemplars join each task's training data (Mammoth's `icarl_replay`; `joined_training_data` here, as iCaRL's);
  the memory is refilled at each task end as iCaRL's (models/icarl.py: herding on unnormalised features, old classes
  cut to an equal share);
- after the herding, class-balanced finetuning on the memory: --fitting_epochs passes over the shuffled, augmented
  buffer in batches of --batch_size, SGD on the head alone at --lr_finetune, multiplied by 0.1 after the 10th
  batch (Mammoth's MultiStepLR at milestone 10 stepped every batch), BatchNorm statistics left alone, the loss the
  training loss (plain cross-entropy, the margin ranking term from the second task on). The less-forget term, which
  does not reach the head, is left out of it: the updates are the same.

λ: tpami2023 sets λ = λ_base · √t after task t − 1 ends, so task t trains with √t, as the authors' code. Since the
refactor that counts tasks after `end_task` (HEAD), Mammoth computes √(t − 1) there, so task 1 trains with λ = 0;
this file follows tpami2023 and the authors. Mammoth's SGD has momentum and weight decay flags (0 by default); the
suite's is plain SGD for every model.

The mask: the stream cross-entropy (every row of the batch, exemplars included) goes through `self.stream_loss`, as
in every model; `none` is Mammoth's. The less-forget and margin ranking terms and the finetuning never see it.
"""
import argparse
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from backbone.heads import HeadError
from models import register_model
from models.base import ContinualModel
from models.icarl import herd_into_buffer
from models.xder import frozen_bn_stats
from utils.core.nme import class_means, embed
from utils.plumbing.parser import non_negative_float, non_negative_int, positive_float, positive_int

FINETUNE_MILESTONE = 10  # batches of finetuning after which its lr is divided by 10 (Mammoth's ft_lr_strat)


class LucirHead(nn.Module):
    """σ · cos(f, w_c) for every class, w in one block of classes_per_task rows per task, σ learned."""

    def __init__(self, in_features, classes_per_task, n_tasks):
        super().__init__()
        self.in_features, self.out_features = in_features, classes_per_task * n_tasks
        bound = 1 / math.sqrt(in_features)
        self.blocks = nn.ParameterList(nn.Parameter(torch.empty(classes_per_task, in_features).uniform_(-bound, bound))
                                       for _ in range(n_tasks))
        self.sigma = nn.Parameter(torch.ones(1))
        self.train_only(0)

    def train_only(self, task):
        """Only `task`'s block (and σ) receives gradients."""
        for index, block in enumerate(self.blocks):
            block.requires_grad_(index == task)

    def cosine(self, features):
        return F.normalize(features, dim=1) @ F.normalize(torch.cat(list(self.blocks)), dim=1).t()

    def forward(self, features):
        return self.sigma * self.cosine(features)


def less_forget(features, old_features):
    """mean over rows of 1 − cos(f, f_old)."""
    return F.cosine_embedding_loss(features, old_features, torch.ones(len(features), device=features.device))


def margin_ranking(cosine, labels, n_old, k, margin):
    """Mean over the rows of an old class (labels < n_old) × their K hardest classes from n_old on of
    max(0, margin − cos_y + cos_k); 0 when no row is of an old class. No host read."""
    true = cosine.gather(1, labels[:, None])
    hardest = cosine[:, n_old:].topk(min(k, cosine.shape[1] - n_old), dim=1).values
    hinge = (margin - true + hardest).clamp(min=0)
    old = (labels < n_old).to(cosine.dtype)
    return (hinge.sum(1) * old).sum() / (old.sum() * hardest.shape[1]).clamp(min=1)


@register_model("lucir")
class Lucir(ContinualModel):
    """LUCIR (Hou et al. 2019): cosine head with a learned scale, less-forget constraint on the features, margin
    ranking against the hard new classes, exemplars joined to each task's data, herded class-balanced memory and
    finetuning of the head on it at every task end; Mammoth's code (see the module docstring)."""
    NEEDS_BUFFER = True  # the finetuning and the joined exemplars
    JOINS_EXEMPLARS = True
    OWN_MEMORY_POLICY = True  # herding into class-balanced shares at every task end
    TASK_FREE_REFUSAL = ("its head grows and its teacher is frozen at every task start, and it herds and finetunes "
                         "on a balanced set at every task end")
    DEFAULT_HEAD = "cosine"

    @staticmethod
    def add_args(parser):
        parser.add_argument("--lamda_base", type=non_negative_float, default=5.0,
                            help="λ_base of the less-forget constraint, weighted λ_base · √t at task t (default: 5.0, "
                                 "Mammoth's)")
        parser.add_argument("--lamda_mr", type=non_negative_float, default=1.0,
                            help="weight of the margin ranking loss (default: 1.0, Mammoth's)")
        parser.add_argument("--k_mr", type=positive_int, default=2,
                            help="K hardest new classes of the margin ranking loss (default: 2, Mammoth's)")
        parser.add_argument("--mr_margin", type=non_negative_float, default=0.5,
                            help="margin of the margin ranking loss (default: 0.5, Mammoth's)")
        parser.add_argument("--fitting_epochs", type=non_negative_int, default=20,
                            help="epochs of class-balanced finetuning of the head on the buffer at each task end "
                                 "(default: 20, Mammoth's; 0: none)")
        parser.add_argument("--lr_finetune", type=positive_float, default=0.01,
                            help="lr of the finetuning, divided by 10 after its 10th batch (default: 0.01, Mammoth's)")
        parser.add_argument("--imprint_weights", action=argparse.BooleanOptionalAction, default=True,
                            help="imprint each new task's class vectors from its features (default: on, Mammoth's)")

    def __init__(self, backbone, args, dataset, device):
        if args.head != "cosine":
            raise HeadError("is not allowed with model lucir: it has its own cosine head with a learned scale "
                            "(--head cosine, the default)")
        super().__init__(backbone, args, dataset, device)
        features = self.net.net.classifier.in_features
        self.net.net.classifier = LucirHead(features, self.classes_per_task, self.n_tasks).to(device)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=args.lr)
        self.old_net = copy.deepcopy(self.net).requires_grad_(False)  # a submodule: checkpoints carry it

    @property
    def head(self):
        return self.net.net.classifier

    def train(self, mode=True):
        """The old network stays in eval mode (Mammoth copies the network in eval mode)."""
        super().train(mode)
        self.old_net.eval()
        return self

    def prepare_task(self, task, images, labels):
        """From the second task on: only the new block trains, imprinted from the task's images first."""
        if task == 0:
            return
        self.head.train_only(task)
        if self.args.imprint_weights:
            self.imprint(task, images, labels)

    @torch.no_grad()
    def imprint(self, task, images, labels):
        """Each new class's vector: the normalised mean of its images' unit features (augmented views, eval mode),
        times the mean norm of the old classes' vectors."""
        blocks = self.head.blocks
        old_norm = torch.cat(list(blocks[:task])).norm(dim=1).mean()
        was_training = self.training
        self.eval()
        features = F.normalize(embed(self.net, images, self.augment), dim=1)
        self.train(was_training)
        means, _ = class_means(features, labels - task * self.classes_per_task, self.classes_per_task)
        blocks[task].copy_(F.normalize(means, dim=1) * old_norm)

    def observe(self, images, labels):
        inputs = self.augment(images)
        features = self.net.features(inputs)
        cosine = self.head.cosine(features)
        logits = self.head.sigma * cosine
        terms = {"ce": self.stream_loss(logits, labels)}
        if self.task > 0:
            with torch.no_grad():
                old_features = self.old_net.features(inputs)
            weight = self.args.lamda_base * math.sqrt(self.task)
            terms["less_forget"] = weight * less_forget(features, old_features)
            terms["margin"] = self.args.lamda_mr * self.margin_term(cosine, labels)
        return self.step(terms, logits, labels)

    def margin_term(self, cosine, labels):
        return margin_ranking(cosine, labels, self.task * self.classes_per_task, self.args.k_mr, self.args.mr_margin)

    def end_task(self, task, images, labels):
        """Freeze the network as the next task's old network, herd the memory, finetune the head on it."""
        self.old_net.load_state_dict(self.net.state_dict())
        herd_into_buffer(self, task, images, labels)
        if self.args.fitting_epochs:
            self.finetune()

    def finetune(self):
        head, buffer = self.head, self.buffer
        opt = torch.optim.SGD(head.parameters(), lr=self.args.lr_finetune)
        schedule = torch.optim.lr_scheduler.MultiStepLR(opt, [FINETUNE_MILESTONE], gamma=0.1)
        with frozen_bn_stats(self.net):
            for _ in range(self.args.fitting_epochs):
                for batch in torch.randperm(buffer.size, device=self.device).split(self.args.batch_size):
                    labels = buffer.labels[batch]
                    with torch.no_grad():
                        features = self.net.features(self.augment(buffer.images[batch]))
                    cosine = head.cosine(features)
                    loss = F.cross_entropy(head.sigma * cosine, labels)
                    if self.task > 0:
                        loss = loss + self.args.lamda_mr * self.margin_term(cosine, labels)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    schedule.step()

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        self.head.train_only(self.task)
