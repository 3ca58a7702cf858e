"""Learning without Forgetting (Li & Hoiem, ECCV 2016; TPAMI 2018) as Mammoth's `lwf`.

The details follow aimagelab/mammoth `models/lwf.py` at its tag neurips2020 (commit cb9a36d), the code behind the DER
paper's (Buzzega et al. 2020) LwF figures:

- at the start of every task after the first, the new task's head is warmed up: --n_epochs passes over the task's
  shuffled, augmented training batches of --batch_size, SGD at --lr on the classifier's parameters alone, the
  features taken without gradient from the network in eval mode, the cross-entropy over the new task's classes
  only (the paper's warm-up step, with as many epochs as the task trains);
- the old network's responses are then recorded once, the network after the warm-up in eval mode, on the task's
  images without augmentation and, as Mammoth's not-augmented inputs are `ToTensor()`'s [0, 1] pixels, without
  normalisation (the same as normalised on MNIST, whose mean is 0 and std 1; not on CIFAR). They are kept here as a
  frozen copy of that network (`teacher`), whose eval-mode forward gives the recorded logits again;
- the distillation term is α · (−mean_i Σ_j q_ij log p_ij) over the classes of the past tasks, q = softmax(old/T),
  p = softmax(new/T): Mammoth's `modified_kl_div(smooth(softmax(old), T), smooth(softmax(new), T))`, whose
  `smooth(s, T) = s^(1/T) / Σ s^(1/T)` is softmax(z/T) (computed here from log_softmax, which never takes the log of
  an underflowed 0). It is the cross-entropy, not the KL divergence: the teacher's entropy is added (a constant),
  and there is no T² factor. At neurips2020 T is fixed at 2 whatever --softmax_temp says (every published config
  gives 2.0); since tpami2023 the flag is read, as here;
- --wd_reg adds wd_reg · Σ θ² over every parameter of the network (neurips2020; later versions dropped the flag).

The mask: Mammoth's cross-entropy is over the classes seen so far (future classes left out); here the stream
cross-entropy goes through the mask like every model's, and `none` (the default) is the plain softmax over all
classes, which also pushes down the future classes' logits (the suite has no scope of the seen classes). `ninf`
with the task scope keeps the current task's classes alone (the old ones leave the softmax: their logits then move
only by the distillation), `general`/`stopgrad` rewrite the old and future classes' entries with m (the gradient to
them cut), `balanced` and `las` add log class counts (−∞ for every class absent from the task, so old and future
classes leave the softmax); `lode` masks the old classes (its scope `new`) and adds its old-vs-new term. The
distillation and the L2 term never see the mask. On seq-digits (10 epochs) and seq-mnist-5k (1 epoch), 3 seeds each,
Mammoth's softmax over the seen classes and `none` ended within 0.4 points of each other (Class-IL and Task-IL).
"""
import copy

import torch
import torch.nn.functional as F

from models import register_model
from models.base import ContinualModel
from utils.plumbing.parser import non_negative_float, positive_float


def distillation(old_logits, new_logits, temperature):
    """−mean over rows of Σ_j softmax(old/T)_j · log softmax(new/T)_j (Mammoth's modified_kl_div of smoothed
    softmaxes)."""
    targets = F.softmax(old_logits / temperature, dim=1)
    return -(targets * F.log_softmax(new_logits / temperature, dim=1)).sum(1).mean()


@register_model("lwf")
class Lwf(ContinualModel):
    """Learning without Forgetting (Li & Hoiem 2016): CE_mask(stream) + α·distillation of the past classes'
    softmax (temperature T) from the network as it was at the task start, after a warm-up of the new head; plus
    Mammoth's L2 term --wd_reg."""

    @staticmethod
    def add_args(parser):
        parser.add_argument("--alpha", type=non_negative_float, default=3.0,
                            help="weight α of the distillation (default: 3.0, the DER release's seq-cifar10 value; "
                                 "1.0 on seq-mnist)")
        parser.add_argument("--softmax_temp", type=positive_float, default=2.0,
                            help="temperature T of the distilled softmaxes (default: 2.0, every DER release config)")
        parser.add_argument("--wd_reg", type=non_negative_float, default=0.0005,
                            help="weight of the L2 term Σ θ² over the network's parameters (default: 0.0005, every "
                                 "DER release config)")

    TASK_FREE_REFUSAL = "it warms up the new task's head and freezes its teacher at every task start"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = copy.deepcopy(self.net).requires_grad_(False)  # a submodule: checkpoints carry it

    def prepare_task(self, task, images, labels):
        """From the second task on: warm up the new head, then freeze the network as the teacher."""
        if task == 0:
            return
        self.warm_up(images, labels)
        self.teacher.load_state_dict(self.net.state_dict())

    def warm_up(self, images, labels):
        """--n_epochs of SGD on the classifier alone, CE over the current task's classes, features from the network
        in eval mode; a fixed head (no trainable parameter) has nothing to warm up."""
        classifier = self.net.net.classifier
        parameters = [p for p in classifier.parameters() if p.requires_grad]
        if not parameters:
            return
        opt = torch.optim.SGD(parameters, lr=self.args.lr)
        first = self.task * self.classes_per_task
        self.net.eval()
        for _ in range(self.args.n_epochs):
            for batch in torch.randperm(len(labels), device=labels.device).split(self.args.batch_size):
                with torch.no_grad():
                    features = self.net.features(self.augment(images[batch]))
                logits = classifier(features)[:, first:first + self.classes_per_task]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(logits, labels[batch] - first).backward()
                opt.step()
        self.net.train()

    @torch.no_grad()
    def recorded_logits(self, images):
        """The past classes' logits Mammoth records at the task start: the teacher in eval mode on the
        non-augmented, non-normalised [0, 1] images."""
        self.teacher.eval()
        return self.teacher(images.float() / 255)[:, :self.task * self.classes_per_task]

    def observe(self, images, labels):
        logits = self.net(self.augment(images))
        terms = {"ce": self.stream_loss(logits, labels)}
        if self.task > 0:
            old = self.recorded_logits(images)
            terms["kd"] = self.args.alpha * distillation(old, logits[:, :old.shape[1]], self.args.softmax_temp)
        if self.args.wd_reg:
            terms["wd"] = self.args.wd_reg * sum(p.square().sum() for p in self.net.parameters())
        return self.step(terms, logits, labels)
