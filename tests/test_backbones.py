"""The backbones as the reference code builds them: the MLP's initialisation against Mammoth's procedure, computed
independently (default Linear layers, then each Linear's weight drawn from U(−a, a), a = √3·√(2/(fan_in + fan_out)),
and its bias zeroed, in module order)."""
import math

import torch
from torch import nn

from backbone.mlp import MLP


def mammoths_mlp(n_inputs, n_classes, hidden=100):
    layers = [nn.Linear(n_inputs, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, n_classes)]
    for layer in layers:
        fan_out, fan_in = layer.weight.shape
        a = math.sqrt(3.0) * math.sqrt(2.0 / (fan_in + fan_out))
        layer.weight.data.uniform_(-a, a)
        layer.bias.data.fill_(0.0)
    return layers


def test_the_mlp_is_initialised_as_mammoths_mnist_network():
    torch.manual_seed(3)
    ours = MLP(784, 10)
    torch.manual_seed(3)
    reference = mammoths_mlp(784, 10)
    mine = [ours.features[1], ours.features[3], ours.classifier]
    for layer, expected in zip(mine, reference):
        assert torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias)
    assert torch.equal(ours.classifier.bias, torch.zeros(10))
    assert ours.features[1].weight.abs().max() <= math.sqrt(6 / (784 + 100))
