"""Similarity-preserving knowledge distillation (Tung & Mori 2019, "Similarity-Preserving Knowledge
Distillation", ICCV), the distance-preserving term of X-DER's seq-cifar100 configuration in Mammoth."""
import torch.nn.functional as F


def similarity_preserving_loss(a, b):
    """||G(a) − G(b)||²_F / n² over the last two dims, G(z) = z zᵀ with each row scaled to unit norm.

    a and b are [..., n, d] (d may differ) and broadcast over the leading dims; returns [...]."""
    def gram(z):
        return F.normalize(z @ z.transpose(-1, -2), dim=-1)

    n = a.shape[-2]
    return (gram(a.float()) - gram(b.float())).pow(2).sum(dim=(-1, -2)) / n ** 2
