"""Scope `batch`: a stream row keeps the classes present in the incoming batch, and no other.

This is the asymmetric cross-entropy of ER-ACE as its paper states it for a stream without tasks (Caccia et al.,
"New Insights on Reducing Abrupt Representation Change in Online Continual Learning", ICLR 2022, §4: the incoming
data's loss over the classes of the incoming mini-batch). The authors' code (pclucas14/AML, methods/er_ace.py, and
Mammoth's models/er_ace.py after it) also keeps every class from the largest seen label on, so that classes not
yet seen stay in the softmax: that is the `ace` scope (utils/core/masks/functional.py, "present or never seen").
`batch` leaves that part out, so it needs no record of the classes seen and no task: it is the same on any stream.
"""
import torch


def batch_classes(labels, position):
    """keep[i, c] iff class c is the label of some row of the batch."""
    present = torch.zeros(position.n_classes, dtype=torch.bool, device=labels.device).index_fill_(0, labels, True)
    return present.expand(len(labels), position.n_classes)
