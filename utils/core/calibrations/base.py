"""The calibration base class: a correction that acts after each task (on the model) or on the logits of
the evaluation, never on the training loss."""


class Calibration:
    """Subclasses override end_task() and/or adjust(). HEADS: the heads it is defined for (None: any)."""
    HEADS = None

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
