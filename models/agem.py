"""A-GEM (Chaudhry et al., "Efficient Lifelong Learning with A-GEM", ICLR 2019) as Mammoth's `models/agem.py`
(aimagelab/mammoth, tag neurips2020, the DER paper's release; the step is the same at tpami2023 and e75a491).

The step's gradient g is the stream cross-entropy's (through the mask); a draw of the memory gives the reference
gradient g_ref of its cross-entropy (augmented, as Mammoth's `get_data(..., transform=self.transform)`), and where
g·g_ref < 0 the update takes g − (g·g_ref / g_ref·g_ref) g_ref instead, the projection of the paper's eq. 11.
"""
import torch

from models import register_model
from models.base import ContinualModel


def project(gradient, reference):
    """(g − (g·r / r·r) r where g·r < 0 else g, whether it was projected), for flat vectors g and r, decided on the
    device: no host read. A reference that is not finite leaves g as it is (its constraint is undefined)."""
    dot, norm = gradient @ reference, reference @ reference
    violated = (dot < 0) & torch.isfinite(norm)
    return torch.where(violated, gradient - dot / norm * reference, gradient), violated


def flat(gradients, parameters):
    """The gradients of `parameters` as one vector, zeros where a parameter has none."""
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten()
                      for g, p in zip(gradients, parameters)])


@register_model("agem")
class AGem(ContinualModel):
    """A-GEM (Chaudhry et al. 2019): the stream gradient projected so that it never raises the loss of a memory
    draw; the memory gets buffer_size // n_tasks random samples of each task at its end.

    As Mammoth's code at the DER release (neurips2020; at tpami2023 and e75a491 the task end reservoir-inserts the
    task's first training batch instead, --batch_size samples whatever the buffer size): at each task end
    `not_aug_dataloader(buffer_size // N_TASKS)` hands one shuffled batch of that many non-augmented samples of the
    task, which the reservoir buffer stores in order (it is never full then); no draw before the first task ends.
    The reference gradient's cross-entropy is a buffer cross-entropy (`--mask_buffer` masks it), the stream's goes
    through the mask; the projection is decided on the device (Mammoth reads g·g_ref to the host), between the
    backward and the optimizer step (`before_update`)."""
    NEEDS_BUFFER = True
    BUFFER_CE = True
    OWN_MEMORY_POLICY = True
    TASK_FREE_REFUSAL = "its memory is filled at task ends (agem_r, its reservoir form, runs without tasks)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference = None  # the step's g_ref (flat), between observe and before_update

    def replay_view(self, images):
        """What the network sees of the drawn images: an augmented view (Mammoth's agem draws with its transform)."""
        return self.augment(images)

    def observe(self, images, labels):
        draw = self.draw()
        logits = self.net(self.augment(images))
        terms = {"ce": self.stream_loss(logits, labels)}
        if draw is not None:
            self.reference = self.reference_gradient(draw)
        return self.step(terms, logits, labels)

    def trained_parameters(self):
        return [p for p in self.net.parameters() if p.requires_grad]

    def reference_gradient(self, draw):
        """g_ref: the gradient of the draw's cross-entropy (its own forward, as Mammoth's), flat; .grad untouched."""
        loss = self.buffer_loss(self.net(self.replay_view(draw.images)), draw.labels)
        parameters = self.trained_parameters()
        return flat(torch.autograd.grad(loss, parameters, allow_unused=True), parameters)

    def before_update(self):
        """Replace g by its projection where it conflicts with g_ref (nothing before the memory has entries); as
        Mammoth's overwrite_grad, parameters without a gradient keep none."""
        if self.reference is None:
            return
        parameters = self.trained_parameters()
        projected, violated = project(flat([p.grad for p in parameters], parameters), self.reference)
        for parameter, part in zip(parameters, projected.split([p.numel() for p in parameters])):
            if parameter.grad is not None:
                parameter.grad.copy_(part.view_as(parameter))
        if self.diagnostics.active:
            self.diagnostics.record(("agem/projected",), violated.float()[None])
        self.reference = None

    @torch.no_grad()
    def end_task(self, task, images, labels):
        """buffer_size // n_tasks samples of the task, drawn uniformly without replacement, appended to the memory."""
        chosen = torch.randperm(len(labels), device=labels.device)[:self.buffer.capacity // self.n_tasks]
        self.buffer.append(images[chosen], labels[chosen])
