from torch import nn


class MLP(nn.Module):
    """Two hidden ReLU layers over the flattened image (Mammoth's MNIST network, 100 units)."""

    def __init__(self, n_inputs, n_classes, hidden=100):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, hidden), nn.ReLU(),
                                      nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
