"""The project's backbones written in PyTorch, layer for layer as src/models,
for the side-by-side benchmarks (bench/torch_bench.py)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class CifarResNet(nn.Module):
    def __init__(self, depth=56, num_classes=10, in_ch=3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, cout in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        h = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


class VGG16BN(nn.Module):
    def __init__(self, num_classes=10, in_ch=3):
        super().__init__()
        layers, cin = [], in_ch
        for i, c in enumerate([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]):
            layers += [nn.Conv2d(cin, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU()]
            if i in (1, 3, 6, 9, 12):
                layers.append(nn.MaxPool2d(2))
            cin = c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 512), nn.Dropout(0.5), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride, p):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.drop = nn.Dropout(p)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        h = self.drop(self.conv1(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    def __init__(self, depth=32, widen=4, num_classes=10, in_ch=3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1)
        blocks, cin = [], 16
        for stage, cout in enumerate([16 * widen, 32 * widen, 64 * widen]):
            for b in range(n):
                blocks.append(WideBlock(cin, cout, 2 if stage > 0 and b == 0 else 1, 0.3))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        h = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


class MobileNet(nn.Module):
    CFG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

    def __init__(self, num_classes=10, in_ch=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        layers, cin = [], 32
        for cout, s in self.CFG:
            layers += [nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
                       nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        h = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def create(arch, num_classes=10, in_ch=3):
    if arch.startswith("resnet"):
        return CifarResNet(int(arch[6:]), num_classes, in_ch)
    return {"vgg16bn": lambda: VGG16BN(num_classes, in_ch), "wrn32_4": lambda: WideResNet(32, 4, num_classes, in_ch),
            "mobilenet": lambda: MobileNet(num_classes, in_ch)}[arch]()
