"""Scope `recent`: a stream row keeps the classes of the stream rows of the last W training steps, the current one
included (W = --scope_window).

A reading of the `task` scope for a stream that announces no task: on a task stream whose tasks last more than W
steps it keeps the current task's classes present in the last W batches (after a switch, for W steps, the previous
task's too); on a blurry or gradual stream it follows the classes that are arriving. Only stream rows are counted
(a replay draw would bring back every class in the buffer). The counts are the model's (utils/core/label_counts.py,
keep_recent(W, stream=True)), read into Position.recent before the loss: no host read.
"""
WINDOW = 10  # --scope_window's default


def recent_classes(labels, position):
    """keep[i, c] iff class c had a stream row in the last W steps (position.recent, bool [C])."""
    return position.recent.expand(len(labels), position.n_classes)
