"""PyTorch twins of the toolkit's CNN, MobileNet and ResNet families, layer for layer.

Same layers, channels, strides, BatchNorm settings (eps 1e-5, running-average
momentum 0.1 = Flax's 0.9), ReLU, global average pooling and linear head, so
parameter counts and FLOPs match the Flax models exactly. The one difference:
PyTorch's `padding=1` pads a stride-2 3x3 conv on both sides where Flax's SAME
pads (0, 1) on even inputs; output sizes and costs are the same.

Only the benchmarks import torch.
"""

from __future__ import annotations

import torch
from torch import nn

from efficiency.models.cnn import conv_plan


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 groups: int = 1) -> nn.Sequential:
  """conv (no bias) -> BatchNorm -> ReLU, as `layers.ConvBNReLU`."""
  return nn.Sequential(
      nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                groups=groups, bias=False),
      nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1),
      nn.ReLU(inplace=True))


class TorchCNN(nn.Module):
  """`efficiency.models.cnn.CNN` (batch_norm=True) in PyTorch."""

  def __init__(self, in_channels: int, num_classes: int, width: int, depth: int,
               max_downsamples: int = 3):
    super().__init__()
    layers, channels = [], in_channels
    for out_channels, stride in conv_plan(width, depth, max_downsamples):
      layers.append(conv_bn_relu(channels, out_channels, 3, stride))
      channels = out_channels
    self.features = nn.Sequential(*layers)
    self.head = nn.Linear(channels, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.head(self.features(x).mean(dim=(2, 3)))


class TorchMobileNet(nn.Module):
  """`efficiency.models.mobilenet.MobileNet` in PyTorch."""

  def __init__(self, in_channels: int, num_classes: int, width: int, depth: int,
               max_downsamples: int = 3):
    super().__init__()
    layers, channels = [conv_bn_relu(in_channels, width, 3, 1)], width
    for out_channels, stride in conv_plan(width, depth, max_downsamples, first_downsample=0):
      layers.append(conv_bn_relu(channels, channels, 3, stride, groups=channels))
      layers.append(conv_bn_relu(channels, out_channels, 1, 1))
      channels = out_channels
    self.features = nn.Sequential(*layers)
    self.head = nn.Linear(channels, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.head(self.features(x).mean(dim=(2, 3)))


class TorchBasicBlock(nn.Module):
  """`efficiency.models.resnet.BasicBlock`: two 3x3 conv-BN, shortcut (identity or 1x1 conv-BN)."""

  def __init__(self, in_channels: int, out_channels: int, stride: int):
    super().__init__()
    self.body = nn.Sequential(
        conv_bn_relu(in_channels, out_channels, 3, stride),
        nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1))
    projects = stride != 1 or in_channels != out_channels
    self.shortcut = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)) if projects else nn.Identity()

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(self.body(x) + self.shortcut(x))


class TorchResNet(nn.Module):
  """`efficiency.models.resnet.ResNet` in PyTorch."""

  def __init__(self, in_channels: int, num_classes: int, width: int, depth: int,
               stages: int = 3):
    super().__init__()
    blocks, channels = [conv_bn_relu(in_channels, width, 3, 1)], width
    for stage in range(stages):
      out_channels = width * 2**stage
      for block in range(depth):
        blocks.append(TorchBasicBlock(channels, out_channels, 2 if stage and not block else 1))
        channels = out_channels
    self.features = nn.Sequential(*blocks)
    self.head = nn.Linear(channels, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.head(self.features(x).mean(dim=(2, 3)))


TWINS = {'cnn': TorchCNN, 'mobilenet': TorchMobileNet, 'resnet': TorchResNet}


def create_twin(family: str, *, in_channels: int, num_classes: int, width: int,
                depth: int) -> nn.Module:
  """The PyTorch twin of registry family `family` ('cnn', 'mobilenet' or 'resnet')."""
  return TWINS[family](in_channels, num_classes, width, depth)
