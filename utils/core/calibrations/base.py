"""The calibration base class: a correction that acts after each task (on the model) or on the logits of
the evaluation, never on the training loss."""


class Calibration:
    """Subclasses override end_task() and/or adjust() (or logits(), to classify from more than the head's logits).
    HEADS: the heads it is defined for (None: any). REPLACES_HEAD: the evaluation reads another classifier than
    the head, so the loop also evaluates the head and records its accuracy beside."""
    HEADS = None
    REPLACES_HEAD = False

    @classmethod
    def from_args(cls, args):
        return cls()

    @staticmethod
    def add_args(parser):
        """Flags of this calibration (none by default)."""

    def training_indices(self, indices, dataset, task, seed):
        """The indices of the task's training images the model trains on (all of them by default; a
        correction that needs held-out data keeps some back)."""
        return indices

    def end_task(self, model, task):
        """Called after `task`'s training (and the model's own end_task), before its evaluation."""

    def logits(self, model, images):
        """The evaluation's logits of normalised `images` (the model in eval mode): the head's, adjusted."""
        return self.adjust(model.net(images), model)

    def adjust(self, logits, model):
        """The logits the evaluation reads (the model in eval mode); unchanged by default."""
        return logits

    def state_dict(self):
        """What a checkpoint must keep of this correction (nothing by default)."""
        return {}

    def load_state_dict(self, state):
        """Restore what state_dict() returned."""

    def summary(self):
        """What the results line records of this correction (None: nothing)."""
        return None
