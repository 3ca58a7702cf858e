"""Classifier heads a backbone can end with: its own linear layer, a cosine-similarity head, or one of two
fixed classifiers whose class vectors never train (a regular simplex; a non-negative orthogonal one)."""
import math

import torch
from torch import nn


class HeadError(ValueError):
    """A head that cannot be built on this backbone; the message is the one line users see."""


class CosineClassifier(nn.Module):
    """scale · cos(feature, w_c) for every class c: no bias, outputs in [-scale, scale].

    The head of ER-ACE's original code (Caccia et al. 2022, as ported to Mammoth), scale 10; `eps` is
    added to both norms so that a zero feature or weight row gives 0, not NaN."""

    def __init__(self, in_features, out_features, scale=10.0, eps=1e-5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.scale, self.eps = scale, eps
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's initialisation

    def forward(self, features):
        unit_features = features / (features.norm(dim=1, keepdim=True) + self.eps)
        unit_weights = self.weight / (self.weight.norm(dim=1, keepdim=True) + self.eps)
        return self.scale * unit_features @ unit_weights.t()


def simplex_vertices(n_classes):
    """[C, C−1]: the vertices of a regular simplex centred at 0, each of unit norm, so that every pair
    has cosine −1/(C−1) (the fixed classifier of Pernici et al. 2021, "Regular Polytope Networks")."""
    corners = torch.eye(n_classes, dtype=torch.float64)  # the standard simplex in R^C
    centred = corners - corners.mean(0)
    basis = torch.linalg.svd(centred, full_matrices=False).Vh[:n_classes - 1]  # its (C−1)-dim affine hull
    vertices = centred @ basis.T
    return (vertices / vertices.norm(dim=1, keepdim=True)).float()


class SimplexClassifier(nn.Module):
    """Fixed regular-simplex classifier: logits = features · w_c, the class vectors w_c the simplex's
    vertices in the first C−1 feature dimensions (the rest of the features get weight 0); no bias, no
    trained parameter. Pernici et al. fix the last layer so; Mammoth's `rpc` model instead trains an
    ordinary linear layer and applies the simplex only at inference, which this head does not copy."""

    def __init__(self, in_features, out_features):
        super().__init__()
        if in_features < out_features - 1:
            raise HeadError(f"needs at least {out_features - 1} features for {out_features} classes, the backbone "
                            f"gives {in_features} (widen it, e.g. a larger --nf)")
        self.in_features, self.out_features = in_features, out_features
        weight = torch.zeros(out_features, in_features)
        weight[:, :out_features - 1] = simplex_vertices(out_features)
        self.register_buffer("weight", weight)

    def forward(self, features):
        return features @ self.weight.t()


def fixed_orthogonal_weight(in_features, out_features, generator=None):
    """[C, D]: the fixed non-negative orthogonal class vectors of Kim et al. (ICLR 2024, the FNO
    classifier, khyong/FNO-classifier `fno_contid/utils/orth.py`): a random permutation of the D
    feature indices split into C disjoint blocks (the D mod C leftover indices one each to random
    classes), each row 1 on its block, then scaled to unit norm."""
    if in_features < out_features:
        raise HeadError(f"needs at least {out_features} features for {out_features} classes, the backbone gives "
                        f"{in_features} (widen it, e.g. a larger --nf)")
    order = torch.randperm(in_features, generator=generator)
    size = in_features // out_features
    weight = torch.zeros(out_features, in_features)
    for c in range(out_features):
        weight[c, order[c * size:(c + 1) * size]] = 1.0
    leftover = order[out_features * size:]
    owners = torch.randperm(out_features, generator=generator)[:len(leftover)]
    weight[owners, leftover] = 1.0
    return weight / weight.norm(dim=1, keepdim=True)


class FixedOrthogonalClassifier(nn.Module):
    """FNO head: logits = w · features · B_cᵀ with B the fixed non-negative orthogonal class vectors (a
    buffer, never trained) and w one trainable scalar, as in the authors' code; no bias."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("base", fixed_orthogonal_weight(in_features, out_features))
        self.scale = nn.Parameter(torch.ones(1))

    def reset_parameters(self):
        """The trainable scale back to 1; the fixed class vectors stay (they never train)."""
        nn.init.ones_(self.scale)

    def forward(self, features):
        return features @ (self.scale * self.base).t()


FIXED = {"cosine": CosineClassifier, "rpc": SimplexClassifier, "fno": FixedOrthogonalClassifier}


def with_head(backbone, kind):
    """`backbone` with its `classifier` replaced by a `kind` head (one of backbone.HEADS) of the same shape."""
    if kind in FIXED:
        linear = backbone.classifier
        backbone.classifier = FIXED[kind](linear.in_features, linear.out_features)
    return backbone
