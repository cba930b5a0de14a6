"""Words for the report: what each study asks, and why each method of shrinking a model was chosen.

Resize methods are described by `efficiency.data.transforms.RESIZE_METHODS`;
the ways of shrinking the model (width, depth, compound, distill) and the
combined grid are described here. A sweep group may give its own
`method_description` (a study config states its compound coefficients that way).
"""

from __future__ import annotations

STUDIES: dict[str, dict[str, str]] = {
    'base': dict(
        title='Base model',
        description='The base model as configured: accuracy, parameters, FLOPs and the full '
                    'latency distribution (first call, spread, outliers).'),
    'resolution': dict(
        title='Input resolution',
        description='Inputs downsampled below the native size by several resize methods; '
                    '"evaluate" runs the base model on them unchanged, "train" retrains a model '
                    'at each resolution.'),
    'params': dict(
        title='Parameters: width, depth, compound scaling, distillation',
        description='Fewer or more parameters at the native resolution: channels (width), layers '
                    '(depth), both together (EfficientNet-style compound scaling), and the '
                    'width-scaled models trained again with the base model as teacher.'),
    'combined': dict(
        title='Resolution x parameters',
        description='A grid of input resolutions and model scales, to see whether the cheapest '
                    'model at a given accuracy shrinks the input, the network, or both.'),
}

SHRINK_METHODS: dict[str, str] = {
    'base': 'The base model as configured, the reference every other point is compared to.',
    'width': 'Scale the channels of every layer: FLOPs fall roughly with the square of the width, '
             'parameters too, while the depth (receptive field) stays.',
    'depth': 'Remove or add layers: FLOPs and parameters fall roughly linearly, but fewer '
             'layers also means fewer downsampling steps and a smaller receptive field.',
    'compound': 'Scale depth and width together by one coefficient (EfficientNet, Tan & Le '
                '2019), which the authors found beats scaling either alone at equal FLOPs.',
    'distill': 'The width-scaled models trained again with the base model as teacher (Hinton '
               'et al. 2015): same cost as plain training of that size, possibly higher accuracy.',
    'grid': 'Every combination of the listed resolutions and model scales.',
}


def describe_method(label: str) -> str:
  """One line for a method label: a shrinking method, or a resize method label like
  'bilinear+aa' (the '+aa' suffix means antialiased)."""
  if label in SHRINK_METHODS:
    return SHRINK_METHODS[label]
  from efficiency.data.transforms import RESIZE_METHODS
  name, _, suffix = label.partition('+')
  if name in RESIZE_METHODS:
    text = RESIZE_METHODS[name]
    if suffix == 'aa':
      text += ' Used here with antialias on.'
    return text
  return ''


def method_descriptions(groups: list[dict], labels: list[str]) -> dict[str, str]:
  """{method label: one line} for every label in the sweep, a group's own words first."""
  own = {g['method']: g['method_description'] for g in groups if g.get('method_description')}
  return {label: own.get(label) or describe_method(label) for label in dict.fromkeys(labels)}
