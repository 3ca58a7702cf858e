"""The learning rate within a task: restarted at --lr, multiplied by --lr_gamma at each milestone."""
import torch


def task_scheduler(optimizer, args, state=None):
    """With milestones, MultiStepLR multiplying the lr by --lr_gamma at each (per task). A new task restarts
    the lr at --lr; `state` restores a checkpointed scheduler instead."""
    if state is None:
        for group in optimizer.param_groups:
            group["lr"] = args.lr
    if not args.lr_milestones:
        return None
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, args.lr_milestones, gamma=args.lr_gamma)
    if state is not None:
        scheduler.load_state_dict(state)
    return scheduler
