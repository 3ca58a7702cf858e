from torch import nn


class MLP(nn.Module):
    """Two hidden ReLU layers of 100 units over the flattened image, built as Mammoth's MNIST network
    (`BaseMNISTMLP`, the network of the DER paper's S-MNIST figures): every Linear layer initialised with
    Xavier-uniform weights, U(−a, a) with a = √(6 / (fan_in + fan_out)), and zero biases (Mammoth's
    `backbone/__init__.py`, `xavier`, applied in `reset_parameters`; the same at its `neurips2020` tag and at
    e75a491), not PyTorch's default Kaiming-uniform weights and uniform biases."""

    def __init__(self, n_inputs, n_classes, hidden=100):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, hidden), nn.ReLU(),
                                      nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)
        self.reset_parameters()

    def reset_parameters(self):
        """The constructor's initialisation again: Xavier-uniform weights and zero biases of every Linear layer, a
        head that replaced the classifier (backbone/heads.py) by its own reset (GDumb's fresh network)."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
            elif layer is self.classifier and hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    def forward(self, x):
        return self.classifier(self.features(x))
