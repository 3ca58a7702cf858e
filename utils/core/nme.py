"""The nearest-mean-of-exemplars classifier (iCaRL, Rebuffi et al. 2017): each class is represented by the mean
feature of its stored exemplars, and an image goes to the class whose mean is nearest (squared Euclidean distance
of the backbone's features, unnormalised, as Mammoth's `icarl.py` computes it at its neurips2020 tag)."""
import torch

EMBED_BATCH = 512


@torch.no_grad()
def embed(net, images, normalize):
    """Features of uint8 `images` (normalised first) in chunks, the network as it is (call it in eval mode)."""
    return torch.cat([net.features(normalize(chunk)) for chunk in images.split(EMBED_BATCH)])


def class_means(features, labels, n_classes):
    """([C, D] mean feature of each class, [C] bool: the class has at least one sample); absent classes' rows 0."""
    sums = torch.zeros(n_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=n_classes).to(features.dtype)
    return sums / counts.clamp(min=1)[:, None], counts > 0


def nme_logits(features, means, present):
    """−‖f − μ_c‖² for every class c (so argmax is the nearest mean); −inf for a class with no exemplar."""
    distances = (features[:, None, :] - means[None, :, :]).square().sum(2)
    return torch.where(present, -distances, torch.full_like(distances, float("-inf")))
