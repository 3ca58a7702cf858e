"""TensorBoard event files of a run (--log_dir): the per-step diagnostics every --log_every steps and
the per-task accuracies; a resumed run purges the events written after its checkpoint, so its curves
continue with no duplicated or missing steps."""
from utils.core.metrics import recency_bias


class EventLog:
    """The run's writer into --log_dir, or one that writes nothing without it."""

    def __init__(self, args, purge_step):
        self.every, self.writer = args.log_every, None
        if args.log_dir:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(args.log_dir, purge_step=purge_step)

    def task(self, step, class_il, task_il, predictions):
        """After each task: every evaluated task's accuracies and the recency bias."""
        if self.writer is None:
            return
        for j, (class_value, task_value) in enumerate(zip(class_il, task_il)):
            if class_value is not None:
                self.writer.add_scalar(f"acc_class_il/task{j + 1}", class_value, step)
                self.writer.add_scalar(f"acc_task_il/task{j + 1}", task_value, step)
        bias = recency_bias(predictions["counts"])
        if bias is not None:
            self.writer.add_scalar("eval/recency_bias", bias, step)
        self.writer.flush()

    def curve(self, step, class_il):
        """Each --eval_every point: every seen task's Class-IL accuracy on its subset."""
        if self.writer is None:
            return
        for j, value in enumerate(class_il):
            if value is not None:
                self.writer.add_scalar(f"stream_acc/task{j + 1}", value, step)

    def step(self, step, model):
        """Every --log_every steps: the window's diagnostics (one device-to-host read) and the lr."""
        if self.writer is None or step % self.every:
            return
        for name, value in model.diagnostics.read_window().items():
            self.writer.add_scalar(name, value, step)
        self.writer.add_scalar("lr", model.opt.param_groups[0]["lr"], step)

    def close(self):
        if self.writer is not None:
            self.writer.close()
