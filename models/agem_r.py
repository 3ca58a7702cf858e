"""A-GEM-R: A-GEM (Chaudhry et al., ICLR 2019) with a reservoir memory, as Mammoth's `models/agem_r.py`
(aimagelab/mammoth, tag neurips2020, the DER paper's release; the same step at e75a491)."""
from models import register_model
from models.agem import AGem


@register_model("agem_r")
class AGemR(AGem):
    """A-GEM-R: A-GEM's projected stream gradient, its reference from a draw of a reservoir memory filled by
    every stream batch.

    As Mammoth's code: the stream batch enters the reservoir after the step (`add_data` after `opt.step()`), and
    the draw is not augmented (`get_data(minibatch_size)` with no transform, unlike agem's): here the drawn images
    are normalised as the evaluation's are (Mammoth's non-augmented images are its `not_aug_transform`'s, which
    on seq-cifar10 also leaves out the normalisation; seq-mnist has none). --buffer_policy balanced replaces the
    reservoir by class-balanced reservoir sampling.

    Task-free: the reservoir fills from the first batch, and the reference gradient is drawn from it as soon as it
    holds a sample; nothing is done at a task end."""
    OWN_MEMORY_POLICY = False
    TASK_FREE_REFUSAL = None

    def replay_view(self, images):
        return self.normalize(images)

    def observe(self, images, labels):
        loss = super().observe(images, labels)
        self.remember(images, labels)
        return loss

    def end_task(self, task, images, labels):
        """Nothing: the reservoir fills during the stream."""
