"""Datasets as numpy arrays, the config-driven input pipeline, and batching."""

from efficiency.data.batching import batches, epoch_order, num_batches, shard_for_process
from efficiency.data.datasets import OWN_DATASETS, Dataset, Split, clear_cache, load_dataset
from efficiency.data.transforms import (ANTIALIASED_METHODS, RESIZE_METHODS, NormStats, area_matrix,
                                        center_crop, method_label, normalization_stats, output_shape,
                                        preprocess, resize, scale_to_unit)

__all__ = [
    'ANTIALIASED_METHODS', 'OWN_DATASETS', 'RESIZE_METHODS', 'Dataset', 'NormStats', 'Split',
    'area_matrix', 'batches', 'center_crop', 'clear_cache', 'epoch_order', 'load_dataset',
    'method_label', 'normalization_stats', 'num_batches', 'output_shape', 'preprocess', 'resize',
    'scale_to_unit', 'shard_for_process',
]
