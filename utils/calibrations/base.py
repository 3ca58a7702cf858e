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

    def end_task(self, model, task):
        """Called after `task`'s training (and the model's own end_task), before its evaluation."""

    def adjust(self, logits, model):
        """The logits the evaluation reads (the model in eval mode); unchanged by default."""
        return logits
