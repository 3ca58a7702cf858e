"""Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017) as Mammoth's `si`.

As aimagelab/mammoth `models/si.py` computes it at its tag neurips2020 (commit cb9a36d), the code behind the DER paper's
figures: the loss is CE + c · Σ_k Ω_k (θ_k − θ*_k)² over every parameter of the network (no penalty on the first
task); each step the gradient of that whole loss is clipped to [−1, 1] element-wise, the SGD step taken with it, and
the path integral grows by ω_k += lr · g_k², g the clipped gradient. At each task end Ω_k += ω_k / ((θ_k − θ*_k)²
+ ξ), then θ* ← θ (the initial weights before the first task) and ω ← 0.

The paper's ω_k is −Σ g_k Δθ_k with g the gradient of the task's loss alone (without the penalty) and Δθ the step
actually taken; Mammoth adopted that form in 3ff5aaf (2024-09-04), after the published numbers. With plain SGD and no
penalty the two agree where no clipping happens (Δθ = −lr·g). The lr is the optimizer's at the step (--lr unless
--lr_milestones lower it; Mammoth reads --lr, having no schedule then). Under --amp fp16 the gradients are unscaled
before the clipping, and a step the scaler skips still adds its clipped squares.

The mask: the stream cross-entropy goes through it (the default `none` is Mammoth's plain CE over all classes). The
mask changes the CE's gradient, so it changes both the training step and the importance: the path integral
accumulates the masked loss's gradient (under `ninf` with the task scope the old classes' output weights get no CE
gradient, so their ω comes from the penalty alone). The penalty itself never sees the mask.
"""
import torch
from torch.nn.utils import clip_grad_value_, parameters_to_vector

from models import register_model
from models.base import ContinualModel
from utils.plumbing.parser import non_negative_float, positive_float

CLIP = 1.0  # Mammoth's clip_grad_value_ bound


@register_model("si")
class Si(ContinualModel):
    """Synaptic Intelligence (Zenke et al. 2017): CE_mask(stream) + c·Σ Ω (θ − θ*)², Ω each parameter's path
    integral of the loss over the past tasks over its squared move plus ξ, accumulated each step as Mammoth's si."""
    TASK_FREE_REFUSAL = "its importances are consolidated and its anchor weights taken at every task end"

    @staticmethod
    def add_args(parser):
        parser.add_argument("--c", type=non_negative_float, default=0.5,
                            help="weight c of the surrogate loss (default: 0.5, the DER release's seq-cifar10 "
                                 "value; 1.0 on seq-mnist)")
        parser.add_argument("--xi", type=positive_float, default=1.0,
                            help="damping ξ of the importance's denominator (default: 1.0, the DER release's "
                                 "seq-cifar10 value; 0.9 on seq-mnist)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weights = parameters_to_vector(self.net.parameters()).detach()
        self.register_buffer("anchor", weights.clone())  # θ*: buffers, so checkpoints carry them
        self.register_buffer("omega", torch.zeros_like(weights))  # Ω
        self.register_buffer("path", torch.zeros_like(weights))  # ω, this task's path integral

    def penalty(self):
        """Σ_k Ω_k (θ_k − θ*_k)² over the network's parameters."""
        return (self.omega * (parameters_to_vector(self.net.parameters()) - self.anchor).square()).sum()

    def observe(self, images, labels):
        logits = self.net(self.augment(images))
        terms = {"ce": self.stream_loss(logits, labels)}
        if self.task > 0:
            terms["si"] = self.args.c * self.penalty()
        return self.step(terms, logits, labels)

    def before_update(self):
        """Clip the gradients to [−CLIP, CLIP] and add lr · g² to the path integral (on the device)."""
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        parameters = list(self.net.parameters())
        clip_grad_value_(parameters, CLIP)
        gradients = parameters_to_vector([p.grad for p in parameters])
        self.path.add_(gradients.square(), alpha=self.opt.param_groups[0]["lr"])

    @torch.no_grad()
    def end_task(self, task, images, labels):
        weights = parameters_to_vector(self.net.parameters())
        self.omega.add_(self.path / ((weights - self.anchor).square() + self.args.xi))
        self.anchor.copy_(weights)
        self.path.zero_()
