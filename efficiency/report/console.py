"""Short human-readable summaries of training and evaluation results for the terminal."""

from __future__ import annotations


def _per_class(per_class: list) -> str:
  return ' '.join('-' if a is None else f'{a:.2f}' for a in per_class)


def format_evaluation(result: dict) -> str:
  lines = [f'test accuracy (top-1): {result["accuracy"]:.4f} on {result["num_examples"]} examples']
  if result.get('input_shape'):
    lines[0] += f' at input {"x".join(map(str, result["input_shape"]))}'
  if result.get('loss') is not None:
    lines.append(f'test loss: {result["loss"]:.4f}')
  lines.append(f'per-class accuracy: {_per_class(result["per_class_accuracy"])}')
  lines.append('confusion matrix (rows: true class, columns: predicted):')
  lines += ['  ' + ' '.join(f'{v:4d}' for v in row) for row in result['confusion_matrix']]
  return '\n'.join(lines)


def format_train_result(result: dict) -> str:
  stages = ', '.join(f'{k} {v:.1f}s' for k, v in result.get('stage_seconds', {}).items())
  head = (f'trained {result["epochs"]} epochs in {result["train_seconds"]:.1f}s on '
          f'{result["device_count"]} device(s); stages: {stages}')
  return head + '\n' + format_evaluation(result['test'])
