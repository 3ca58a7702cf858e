"""Supervised contrastive loss (Khosla et al. 2020), used by X-DER on its future heads."""
import torch


def supcon_loss(features, labels, temperature, base_temperature=None):
    """Sum over the N samples of the mean over their V views (anchors a) of
    −(τ/τ_b) · mean_{p ∈ P(a)} log( exp(f_a·f_p/τ) / Σ_{k≠a} exp(f_a·f_k/τ) ),
    P(a) = the other views with the anchor's label. features: [N, V, D], already L2-normalised.
    Averaging over the views is the scale of Mammoth's SupConLoss with reduction "sum" (which X-DER's
    λ was tuned with); summing over all N·V anchors would multiply λ by V.
    """
    base_temperature = temperature if base_temperature is None else base_temperature
    n, views, _ = features.shape
    flat = features.transpose(0, 1).reshape(n * views, -1)
    flat_labels = labels.repeat(views)
    logits = flat @ flat.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    not_self = ~torch.eye(n * views, dtype=torch.bool, device=features.device)
    positives = (flat_labels[:, None] == flat_labels[None, :]) & not_self
    log_prob = logits - torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
    mean_positive = (log_prob * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -(temperature / base_temperature) * mean_positive.view(views, n).mean(0).sum()
