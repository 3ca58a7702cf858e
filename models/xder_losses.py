"""X-DER's own loss terms (Boschini et al. 2022): the supervised contrastive consistency on the future
heads (Khosla et al. 2020) and, in its seq-cifar100 configuration in Mammoth, similarity-preserving
distillation (Tung & Mori 2019, ICCV). Only models/xder.py uses them."""
import torch
import torch.nn.functional as F


def supcon_loss(features, labels, temperature):
    """Sum over the N samples of the mean over their V views (anchors a) of
    −mean_{p ∈ P(a)} log( exp(f_a·f_p/τ) / Σ_{k≠a} exp(f_a·f_k/τ) ),
    P(a) = the other views with the anchor's label. features: [N, V, D], already L2-normalised.
    Averaging over the views is the scale of Mammoth's SupConLoss with reduction "sum" (which X-DER's
    λ was tuned with); summing over all N·V anchors would multiply λ by V.
    """
    n, views, _ = features.shape
    flat = features.transpose(0, 1).reshape(n * views, -1)
    flat_labels = labels.repeat(views)
    logits = flat @ flat.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    not_self = ~torch.eye(n * views, dtype=torch.bool, device=features.device)
    positives = (flat_labels[:, None] == flat_labels[None, :]) & not_self
    log_prob = logits - torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
    mean_positive = (log_prob * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -mean_positive.view(views, n).mean(0).sum()


def similarity_preserving_loss(a, b):
    """||G(a) − G(b)||²_F / n² over the last two dims, G(z) = z zᵀ with each row scaled to unit norm.

    a and b are [..., n, d] (d may differ) and broadcast over the leading dims; returns [...]."""
    def gram(z):
        return F.normalize(z @ z.transpose(-1, -2), dim=-1)

    n = a.shape[-2]
    return (gram(a.float()) - gram(b.float())).pow(2).sum(dim=(-1, -2)) / n ** 2
