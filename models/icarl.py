"""iCaRL (Rebuffi et al., CVPR 2017) as Mammoth's `icarl`.

The details follow aimagelab/mammoth `models/icarl.py` at its tag neurips2020 (commit cb9a36d), the code behind the DER
paper's (Buzzega et al. 2020) S-MNIST iCaRL figure, which is the figure the suite reproduces
(`python -m utils.reproduce der-smnist`); Mammoth's HEAD (e75a491), marked verified in its REPRODUCIBILITY.md for
the iCaRL paper's own CIFAR-100 setting, differs where noted:

- the loss is one binary cross-entropy with logits, a mean over the batch's rows × the classes seen so far: the old
  classes' targets are the sigmoid outputs of the network as it was at the end of the previous task (frozen, in
  eval mode, on the same augmented inputs), the current task's classes' targets the one-hot labels (the paper's
  distillation + classification loss). HEAD takes the mean over every class, the future ones with target 0;
- the exemplars join the training data: from the second task on, the buffer's samples are added to the task's
  training set and shuffled in with it, so every epoch goes once over task ∪ memory in batches of --batch_size
  (Mammoth's `begin_task` concatenates them to the task's dataset; here `joined_training_data`, read by the
  training loop). That is not the same as a buffer part concatenated to every step, which would fix each batch's
  share of exemplars and the epoch's length;
- at the end of each task the memory becomes class-balanced: capacity // classes seen per class, the old classes cut
  to their first (best-herded) entries, each new class filled by herding on the unnormalised features of the task's
  non-augmented images, the network in eval mode (HEAD herds L2-normalised features);
- `--wd_reg` adds wd_reg · Σ θ² over every parameter of the network (HEAD calls it --opt_wd, default 1e-5);
- the evaluation classifies by the nearest mean of exemplars: −‖f(x) − μ_c‖² on the unnormalised features, μ_c the
  mean feature of class c's exemplars (utils/core/nme.py; HEAD normalises the features and the means and averages
  each exemplar with its horizontal flip). The means are computed at the first evaluation forward after the network
  or the memory changed, and kept until then. Before the memory holds anything (the untrained network of
  --eval_future, --eval_every points during the first task) the head's logits are read.

The mask. iCaRL's loss is a sigmoid cross-entropy, not a softmax; the mask applies to its classification part.
Every row of a batch, exemplars included, is a stream row here. The logits go through the mask over the classes
`--mask_scope` keeps (each row's label kept), and the one-hot part (the current task's classes) reads the masked
logits; the distillation part (the old classes) reads the unmasked logits, so that `none` is Mammoth's loss exactly.
Entries set to −∞ count as the lowest finite number, where the cross-entropy with target 0 is exactly 0 with a zero
gradient (−∞ itself gives NaN). With the task scope only the exemplars' rows have masked entries on the current task:
`ninf` takes the current classes out of an exemplar's sigmoid loss (no push down, no gradient), `general` puts the
constant m there (a constant softplus(m), no gradient), `stopgrad` sg(z) + m (its value shifted, no gradient);
`balanced` adds log n_j (the task's and the buffer's class counts, the joined data's) and `las`/`las_stream`
τ · log π_j to the current task's logits before the sigmoid; `lode` (scope new) masks nothing of the current task
and adds its old-vs-new softmax term over every row of the batch, exemplars included. The scope `ace` masks, on every
row, the current classes absent from the batch that have been trained on.
"""
import copy

import torch
import torch.nn.functional as F

from models import register_model
from models.base import ContinualModel
from utils.core.masks.functional import SCOPES, at_least_fp32, label_kept, masked_logits
from utils.core.nme import class_means, embed, nme_logits
from utils.plumbing.parser import non_negative_float


def herding(features, k):
    """Indices of min(k, n) rows of `features` [n, D], chosen one after another: each the row not yet chosen whose
    addition brings the mean of the chosen rows nearest (L2) to the mean of all rows (Rebuffi et al.'s herding, as
    Mammoth's `fill_buffer` runs it)."""
    target = features.mean(0)
    running = torch.zeros_like(target)
    taken = torch.zeros(len(features), dtype=torch.bool, device=features.device)
    chosen = []
    for i in range(min(k, len(features))):
        cost = (target - (features + running) / (i + 1)).norm(dim=1).masked_fill(taken, float("inf"))
        pick = cost.argmin()
        chosen.append(pick)
        running += features[pick]
        taken[pick] = True
    return torch.stack(chosen) if chosen else torch.zeros(0, dtype=torch.long, device=features.device)


@torch.no_grad()
def herd_into_buffer(model, task, images, labels):
    """The class-balanced memory at the end of `task`: capacity // classes seen per class, the old classes cut to
    their first entries, each of the task's classes filled by herding on the features of its uint8 `images` (the
    network in eval mode, evaluation transform)."""
    buffer = model.buffer
    n_seen = (task + 1) * model.classes_per_task
    if task > 0:
        buffer.shrink_to_share(n_seen)
    was_training = model.training
    model.eval()
    features = embed(model.net, images, model.normalize)
    model.train(was_training)
    share = buffer.capacity // n_seen
    members = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    chosen = torch.cat([rows[herding(features[rows], share)] for rows in members])
    buffer.append(images[chosen], labels[chosen])


def binary_cross_entropy_sum(logits, targets):
    """Σ of the sigmoid cross-entropy with logits; −∞ logits taken as the lowest finite number (0 loss and 0
    gradient with target 0, where −∞ gives NaN)."""
    lowest = torch.finfo(logits.dtype).min
    return F.binary_cross_entropy_with_logits(logits.clamp(min=lowest), targets, reduction="sum")


@register_model("icarl")
class ICarl(ContinualModel):
    """iCaRL (Rebuffi et al. 2017): sigmoid cross-entropy with the previous network's outputs as targets on the old
    classes, exemplars joined to each task's data, herded class-balanced memory, nearest-mean-of-exemplars
    evaluation; Mammoth's neurips2020 code (see the module docstring)."""
    NEEDS_BUFFER = True
    JOINS_EXEMPLARS = True
    OWN_MEMORY_POLICY = True  # herding into class-balanced shares at every task end
    OWN_CLASSIFIER = True  # evaluates with the nearest mean of exemplars
    TASK_FREE_REFUSAL = ("it herds its exemplars and freezes its distillation teacher at every task end, and joins "
                         "the exemplars to each task's data")

    @staticmethod
    def add_args(parser):
        parser.add_argument("--wd_reg", type=non_negative_float, default=1e-5,
                            help="weight of the L2 term Σ θ² over the network's parameters (default: 1e-5, the DER "
                                 "release's seq-cifar10 value; 0 on seq-mnist)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.old_net = copy.deepcopy(self.net).requires_grad_(False)  # a submodule: checkpoints carry it
        self.means = self.present = None

    def train(self, mode=True):
        """The old network stays in eval mode (Mammoth copies the network in eval mode)."""
        super().train(mode)
        self.old_net.eval()
        return self

    def forward(self, x):
        """Training: the network's logits; evaluation: −squared distance of the features to each class's mean
        exemplar feature (−∞ for a class with none), the head's logits while the memory is empty."""
        if self.training or self.buffer.is_empty():
            return super().forward(x)
        if self.means is None:
            size = self.buffer.size
            features = embed(self.net, self.buffer.images[:size], self.normalize)
            self.means, self.present = class_means(features, self.buffer.labels[:size], self.n_classes)
        return nme_logits(self.net.features(x), self.means, self.present)

    def observe(self, images, labels):
        self.means = None  # the network changes
        inputs = self.augment(images)
        logits = self.net(inputs)
        old_logits = None
        if self.task > 0:
            with torch.no_grad():
                old_logits = self.old_net(inputs)
        terms = self.classification_terms(logits, labels, old_logits)
        if self.args.wd_reg:
            terms["wd"] = self.args.wd_reg * sum(p.square().sum() for p in self.net.parameters())
        return self.step(terms, logits, labels)

    def classification_terms(self, logits, labels, old_logits):
        """{"ce": the one-hot part on the current task's classes (masked logits), "kd": the distillation part on the
        old classes (from the task's second on)}, each a sum over its entries divided by rows × classes seen, so
        that their sum is the mean binary cross-entropy over the classes seen."""
        n_old, n_seen = self.task * self.classes_per_task, (self.task + 1) * self.classes_per_task
        position = self.position()
        keep = label_kept(SCOPES[self.args.mask_scope](labels, position), labels)
        observed = self.diagnostics.observe_stream(logits, self.task)
        masked = masked_logits(observed, keep, self.mask)
        self.diagnostics.observe_masked(masked, keep)
        entries = len(labels) * n_seen
        one_hot = (labels[:, None] == torch.arange(n_old, n_seen, device=labels.device)).to(masked.dtype)
        ce = binary_cross_entropy_sum(masked[:, n_old:n_seen], one_hot) / entries
        extra = self.mask.extra_loss(at_least_fp32(observed), labels, position)
        terms = {"ce": ce if extra is None else ce + extra}
        if old_logits is not None:
            current = at_least_fp32(observed[:, :n_old])
            targets = torch.sigmoid(old_logits[:, :n_old]).to(current.dtype)
            terms["kd"] = binary_cross_entropy_sum(current, targets) / entries
        return terms

    @torch.no_grad()
    def end_task(self, task, images, labels):
        """Freeze the network as the next task's old network, then herd the memory."""
        self.old_net.load_state_dict(self.net.state_dict())
        herd_into_buffer(self, task, images, labels)
        self.means = None

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        self.means = None  # computed again from the restored network and memory
