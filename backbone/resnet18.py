"""ResNet18 with the CIFAR stem (3×3 conv, stride 1, no max-pool) of He et al. 2016, width nf, built as Mammoth's
(`backbone/ResNet18.py` at its `neurips2020` tag, `backbone/ResNetBlock.py` at e75a491): PyTorch's default
initialisation of every layer (neither sets its own), and the features averaged over the last map (Mammoth's
`avg_pool2d` over the whole map; `adaptive_avg_pool2d` to 1×1 here, the same mean)."""
import torch.nn.functional as F
from torch import nn

from utils.plumbing.parser import positive_int


def add_width_arg(parser):
    parser.add_argument("--nf", type=positive_int, default=64,
                        help="ResNet18 width: 64 standard, 20 reduced (default: 64)")


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """nf = 64 is the standard network, nf = 20 the "reduced" one of GEM and the DER papers."""

    def __init__(self, n_classes, nf=64, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU())
        layers, in_planes = [], nf
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = nf * 2 ** i
            layers += [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_planes, n_classes)

    def reset_parameters(self):
        """The constructor's initialisation again: PyTorch's default for every layer, BatchNorm's running statistics
        cleared, a head that replaced the classifier (backbone/heads.py) by its own reset (GDumb's fresh network)."""
        for layer in self.modules():
            if layer is not self and hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    def features(self, x):
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)

    def forward(self, x):
        return self.classifier(self.features(x))
