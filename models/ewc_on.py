"""Online EWC (Schwarz et al., "Progress & Compress", ICML 2018; EWC: Kirkpatrick et al., PNAS 2017) as Mammoth's
`ewc_on`.

As aimagelab/mammoth `models/ewc_on.py` computes it at its tag neurips2020 (commit cb9a36d, the DER paper's figures; the
same maths at e75a491, which adds the penalty's gradient in closed form): the loss is CE + λ · Σ_k F_k (θ_k − θ*_k)²
over every parameter of the network (no ½), from the second task on. At each task end, with the network as training
leaves it (training mode: BatchNorm layers normalise each single sample by itself and update their running
statistics, as Mammoth's do), one sample at a time over the task's training images, augmented as its training loader
gives them (in the loop's order: Mammoth's loader shuffles, which matters only to those statistics), F_new = Σ_i
p(y_i | x_i) · (∇_θ log p(y_i | x_i))² / (⌈N / B⌉ · B): the squared gradient of the true label's log-likelihood (the
empirical Fisher), each weighted by that label's probability, and divided by the number of batches times
--batch_size rather than by N (Mammoth's `len(train_loader) * batch_size`). Then F ← γ·F + F_new (F_new alone after
the first task) and θ* ← θ. The papers' Fisher is the squared gradient's expectation under the model's own
predictive distribution, averaged over the N samples, and their penalty has a ½; this file follows the code, which
produced the published numbers.

The mask: the stream cross-entropy goes through it (the default `none` is Mammoth's plain CE over all classes); the
mask decides which classes compete in the softmax and so the gradient the CE gives, and through the trained weights
the Fisher of the next task end, but the Fisher itself is always the plain log-softmax's, and the penalty never sees
the mask.
"""
import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from models import register_model
from models.base import ContinualModel
from utils.plumbing.parser import non_negative_float


@register_model("ewc_on")
class EwcOn(ContinualModel):
    """Online EWC (Schwarz et al. 2018): CE_mask(stream) + λ·Σ F (θ − θ*)², F a decayed running sum (γ) of each
    task's empirical Fisher computed at its end as Mammoth's ewc_on does, θ* the weights at the last task end."""
    TASK_FREE_REFUSAL = "its Fisher information and anchor weights are taken at every task end"

    @staticmethod
    def add_args(parser):
        parser.add_argument("--e_lambda", type=non_negative_float, default=10.0,
                            help="weight λ of the penalty (default: 10, the DER release's seq-cifar10 value; 90 on "
                                 "seq-mnist)")
        parser.add_argument("--gamma", type=non_negative_float, default=1.0,
                            help="decay γ of the past tasks' Fisher at each task end (default: 1.0, every DER "
                                 "release config)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weights = parameters_to_vector(self.net.parameters()).detach()
        self.register_buffer("fisher", torch.zeros_like(weights))  # buffers: checkpoints carry them
        self.register_buffer("anchor", weights.clone())

    def penalty(self):
        """Σ_k F_k (θ_k − θ*_k)² over the network's parameters."""
        return (self.fisher * (parameters_to_vector(self.net.parameters()) - self.anchor).square()).sum()

    def observe(self, images, labels):
        logits = self.net(self.augment(images))
        terms = {"ce": self.stream_loss(logits, labels)}
        if self.task > 0:
            terms["ewc"] = self.args.e_lambda * self.penalty()
        return self.step(terms, logits, labels)

    def end_task(self, task, images, labels):
        self.fisher.mul_(self.args.gamma).add_(self.empirical_fisher(images, labels))
        self.anchor.copy_(parameters_to_vector(self.net.parameters()).detach())

    def empirical_fisher(self, images, labels):
        """Σ_i p(y_i|x_i) · (∇ log p(y_i|x_i))² over the samples, one at a time, / (⌈N / B⌉ · B)."""
        parameters = list(self.net.parameters())
        total = torch.zeros_like(self.fisher)
        batch = self.args.batch_size
        for chunk, chunk_labels in zip(images.split(batch), labels.split(batch)):
            for x, y in zip(self.augment(chunk), chunk_labels):
                log_likelihood = F.log_softmax(self.net(x[None]), dim=1)[0, y]
                gradients = torch.autograd.grad(log_likelihood, parameters)
                total += log_likelihood.detach().exp() * parameters_to_vector(gradients).square()
        return total / (-(-len(labels) // batch) * batch)
