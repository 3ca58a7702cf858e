"""Classifier heads a backbone can end with: its own linear layer, or a cosine-similarity head."""
import math

import torch
from torch import nn


class CosineClassifier(nn.Module):
    """scale · cos(feature, w_c) for every class c: no bias, outputs in [-scale, scale].

    The head of ER-ACE's original code (Caccia et al. 2022, as ported to Mammoth), scale 10; `eps` is
    added to both norms so that a zero feature or weight row gives 0, not NaN."""

    def __init__(self, in_features, out_features, scale=10.0, eps=1e-5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.scale, self.eps = scale, eps
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's initialisation

    def forward(self, features):
        unit_features = features / (features.norm(dim=1, keepdim=True) + self.eps)
        unit_weights = self.weight / (self.weight.norm(dim=1, keepdim=True) + self.eps)
        return self.scale * unit_features @ unit_weights.t()


def with_head(backbone, kind):
    """`backbone` with its `classifier` replaced by a `kind` head (one of backbone.HEADS) of the same shape."""
    if kind == "cosine":
        linear = backbone.classifier
        backbone.classifier = CosineClassifier(linear.in_features, linear.out_features)
    return backbone
