"""Image classifier families (CNN, ResNet, MobileNet, MLP), each sized by width and depth.

Build one from a config with `create_model(config.model, num_classes=..., in_channels=...,
rngs=nnx.Rngs(seed))`; add your own family with `@register('name')`. Inputs are NHWC
float32 of any square size; outputs are logits (N, num_classes). Families with BatchNorm
start in training mode: call `model.eval()` before evaluating or measuring.
"""

from efficiency.models.cnn import CNN
from efficiency.models.mlp import MLP
from efficiency.models.mobilenet import MobileNet
from efficiency.models.registry import (MODEL_FAMILIES, check_model_config, create_model,
                                        family_info, family_kwargs, register)
from efficiency.models.resnet import ResNet

__all__ = ['CNN', 'MLP', 'MODEL_FAMILIES', 'MobileNet', 'ResNet', 'check_model_config',
           'create_model', 'family_info', 'family_kwargs', 'register']
