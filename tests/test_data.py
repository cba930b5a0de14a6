"""Tests of dataset loading (digits, image folders, TFDS by name), preparation errors and batching."""

import os

import ml_collections
import numpy as np
import pytest
import requests
import tensorflow_datasets as tfds
from PIL import Image

from efficiency.data import batching, datasets, tfds_io
from efficiency.data.digits import counts_to_uint8
from efficiency.errors import ConfigError, DataError


def _dataset_cfg(name, data_dir, **overrides):
  cfg = dict(name=name, data_dir=data_dir, path=None, image_size=None, train_split='train',
             test_split='test')
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


@pytest.fixture(autouse=True)
def _fresh_cache():
  datasets.clear_cache()
  yield
  datasets.clear_cache()


@pytest.fixture(scope='module')
def digits(tfds_dir):
  datasets.clear_cache()
  return datasets.load_dataset(_dataset_cfg('digits', tfds_dir))


def test_digits_shapes_dtypes_and_labels(digits, tfds_dir):
  assert os.path.isfile(os.path.join(tfds_dir, 'efficiency_digits', '1.0.0', 'dataset_info.json'))
  assert digits.image_shape == (8, 8, 1) and digits.num_classes == 10
  assert digits.class_names == tuple(str(d) for d in range(10))
  for split in (digits.train, digits.test):
    assert split.images.dtype == np.uint8 and split.images.shape[1:] == (8, 8, 1)
    assert split.labels.dtype == np.int32 and split.labels.shape == (len(split.images),)
    assert split.labels.min() == 0 and split.labels.max() == 9
  assert (len(digits.train.labels), len(digits.test.labels)) == (1437, 360)
  assert 'Alpaydin' in digits.citation and digits.homepage.startswith('https://') and digits.description


def test_digits_are_sklearns_images_scaled_to_uint8(digits):
  from sklearn.datasets import load_digits
  source = load_digits()
  expected = sorted(counts_to_uint8(img).tobytes() + bytes([t])
                    for img, t in zip(source.images, source.target))
  ours = sorted(img[..., 0].tobytes() + bytes([t]) for split in (digits.train, digits.test)
                for img, t in zip(split.images, split.labels))
  assert ours == expected
  assert digits.train.images.max() == 255 and counts_to_uint8(np.array([8])) == 128


def test_digits_split_is_stratified(digits):
  all_labels = np.concatenate([digits.train.labels, digits.test.labels])
  for label in range(10):
    in_class = np.sum(all_labels == label)
    in_test = np.sum(digits.test.labels == label)
    assert abs(in_test - 0.2 * in_class) <= 1, (label, in_test, in_class)


def test_digits_are_deterministic_and_cached(digits, tfds_dir):
  cfg = _dataset_cfg('digits', tfds_dir)
  again = datasets.load_dataset(cfg)
  assert again is not digits  # the autouse fixture cleared the cache: read again from disk
  np.testing.assert_array_equal(again.train.images, digits.train.images)
  np.testing.assert_array_equal(again.test.labels, digits.test.labels)
  assert datasets.load_dataset(cfg) is again
  assert not again.train.images.flags.writeable


def test_split_slices_and_bad_split_names(digits, tfds_dir):
  half = datasets.load_dataset(_dataset_cfg('digits', tfds_dir, train_split='train[:50%]'))
  assert abs(len(half.train.labels) - len(digits.train.labels) / 2) <= 1
  np.testing.assert_array_equal(half.train.labels, digits.train.labels[:len(half.train.labels)])
  with pytest.raises(ConfigError, match=r"config\.dataset\.test_split='validation'.*train"):
    datasets.load_dataset(_dataset_cfg('digits', tfds_dir, test_split='validation'))


def test_unknown_dataset_name_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match=r"config\.dataset\.name='no_such_set'.*'digits'.*list_builders"):
    datasets.load_dataset(_dataset_cfg('no_such_set', str(tmp_path)))


def test_tfds_dataset_by_name_with_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=12):
    mnist = datasets.load_dataset(_dataset_cfg('mnist', str(tmp_path)))
  assert mnist.image_shape == (28, 28, 1) and mnist.num_classes == 10
  for split in (mnist.train, mnist.test):
    assert split.images.shape == (12, 28, 28, 1) and split.images.dtype == np.uint8
    assert split.labels.dtype == np.int32 and ((split.labels >= 0) & (split.labels < 10)).all()
  assert 'LeCun' in mnist.citation


class _FailingBuilder:
  """Stands in for a TFDS builder whose preparation fails with `error`."""
  name = 'fake_set'

  def __init__(self, tmp_path, error):
    self.data_path = tmp_path / 'fake_set' / '1.0.0'
    self.error = error

  def is_prepared(self):
    return False

  def download_and_prepare(self, file_format):
    assert file_format == 'array_record'
    raise self.error


def _missing(module):
  error = ModuleNotFoundError(f"No module named '{module}'")
  error.name = module
  return error


@pytest.mark.parametrize('error,message', [
    (_missing('tensorflow'), r"pip install 'efficiency\[tensorflow\]'"),
    (_missing('importlib_resources'), r"needs the Python package 'importlib_resources'"),
    (requests.exceptions.ConnectionError('Name or service not known'), r'cannot be downloaded.*tfds build'),
])
def test_preparation_failures_become_data_errors(tmp_path, error, message):
  wrapped = RuntimeError('In <Image> with name "image"')
  wrapped.__cause__ = error  # TFDS wraps the real cause
  with pytest.raises(DataError, match=message):
    tfds_io.prepare(_FailingBuilder(tmp_path, wrapped), 'fake_set', str(tmp_path))


def test_other_preparation_failures_are_not_hidden(tmp_path):
  with pytest.raises(ZeroDivisionError):
    tfds_io.prepare(_FailingBuilder(tmp_path, ZeroDivisionError('bug')), 'fake_set', str(tmp_path))


# Image folders ----------------------------------------------------------------------------------


def _write_folder(root, with_split_folders=False):
  """Two classes, 5 images each: PNG and JPEG, RGB of different sizes, one grayscale."""
  rng = np.random.default_rng(0)
  for label, name in enumerate(['cat', 'dog']):
    for i in range(5):
      folder = root / (('test' if i == 4 else 'train') if with_split_folders else '') / name
      folder.mkdir(parents=True, exist_ok=True)
      height, width = 10 + i, 12 + 2 * i
      if label == 0 and i == 0:
        Image.fromarray(rng.integers(0, 256, (height, width), np.uint8)).save(folder / f'{i}.png')
      else:
        pixels = np.full((height, width, 3), 40 + 100 * label, np.uint8)
        Image.fromarray(pixels).save(folder / (f'{i}.jpg' if i % 2 else f'{i}.png'))
  (root / 'notes.txt').write_text('not an image')


def test_image_folder_mixed_formats_modes_and_sizes(tmp_path):
  _write_folder(tmp_path / 'pets')
  cfg = _dataset_cfg('image_folder', str(tmp_path / 'data'), path=str(tmp_path / 'pets'), image_size=6)
  pets = datasets.load_dataset(cfg)
  assert pets.class_names == ('cat', 'dog') and pets.num_classes == 2
  assert pets.image_shape == (6, 6, 3)  # RGB because one image is RGB
  assert pets.train.images.shape == (8, 6, 6, 3) and pets.test.images.shape == (2, 6, 6, 3)
  assert sorted(pets.test.labels.tolist()) == [0, 1]  # stratified: one per class
  dogs = pets.train.images[pets.train.labels == 1]
  assert np.abs(dogs.astype(int) - 140).max() <= 3  # flat colour survives decoding and resizing


def test_image_folder_sizes_must_match_without_image_size(tmp_path):
  _write_folder(tmp_path / 'pets')
  with pytest.raises(DataError, match=r'config\.dataset\.image_size'):
    datasets.load_dataset(_dataset_cfg('image_folder', str(tmp_path), path=str(tmp_path / 'pets')))


def test_image_folder_train_test_subfolders_and_grayscale(tmp_path):
  root = tmp_path / 'digits'
  for split, count in (('train', 3), ('test', 2)):
    for name in ('a', 'b'):
      (root / split / name).mkdir(parents=True)
      for i in range(count):
        Image.fromarray(np.full((5, 7), 10 * i, np.uint8)).save(root / split / name / f'{i}.png')
  folder = datasets.load_dataset(_dataset_cfg('image_folder', str(tmp_path / 'data'), path=str(root)))
  assert folder.image_shape == (5, 7, 1)
  assert (len(folder.train.labels), len(folder.test.labels)) == (6, 4)


def test_changed_folder_is_prepared_again(tmp_path):
  _write_folder(tmp_path / 'pets')
  cfg = _dataset_cfg('image_folder', str(tmp_path / 'data'), path=str(tmp_path / 'pets'), image_size=6)
  before = datasets.load_dataset(cfg)
  Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / 'pets' / 'dog' / 'new.png')
  after = datasets.load_dataset(cfg)  # same config, new content: neither cache nor old copy is reused
  def total(dataset):
    return len(dataset.train.labels) + len(dataset.test.labels)
  assert total(after) == total(before) + 1
  assert len(os.listdir(tmp_path / 'data' / 'efficiency_image_folder')) == 2


@pytest.mark.parametrize('damage,culprit', [
    ('garbage', 'dog/3.jpg'),      # not an image at all: caught while indexing
    ('truncated', 'dog/2.png'),    # valid header, missing pixels: caught while decoding
])
def test_corrupt_image_error_names_the_file(tmp_path, damage, culprit):
  _write_folder(tmp_path / 'pets')
  path = tmp_path / 'pets' / culprit
  if damage == 'garbage':
    path.write_bytes(b'not really a jpeg')
  else:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  cfg = _dataset_cfg('image_folder', str(tmp_path / 'data'), path=str(tmp_path / 'pets'), image_size=6)
  with pytest.raises(DataError, match=culprit.replace('.', r'\.')):
    datasets.load_dataset(cfg)


def test_folder_errors_name_the_problem(tmp_path):
  data_dir = str(tmp_path / 'data')
  with pytest.raises(DataError, match=r'config\.dataset\.path=.*missing.*not an existing folder'):
    datasets.load_dataset(_dataset_cfg('image_folder', data_dir, path=str(tmp_path / 'missing')))
  (tmp_path / 'flat').mkdir()
  Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / 'flat' / 'x.png')
  with pytest.raises(DataError, match='no class subfolders'):
    datasets.load_dataset(_dataset_cfg('image_folder', data_dir, path=str(tmp_path / 'flat')))
  _write_folder(tmp_path / 'pets')
  (tmp_path / 'pets' / 'bird').mkdir()
  with pytest.raises(DataError, match="class 'bird'"):
    datasets.load_dataset(_dataset_cfg('image_folder', data_dir, path=str(tmp_path / 'pets'), image_size=6))
  with pytest.raises(ConfigError, match=r'config\.dataset\.path=None'):
    datasets.load_dataset(_dataset_cfg('image_folder', data_dir))


# Batching ---------------------------------------------------------------------------------------


def test_batches_are_deterministic_and_cover_every_example_once():
  images, labels = np.arange(50)[:, None] * np.ones((1, 3)), np.arange(50)
  def epoch(seed, index):
    return [b for b in batching.batches(images, labels, 8, seed=seed, epoch=index, shuffle=True,
                                        drop_remainder=False)]
  first = epoch(0, 3)
  assert [len(b[1]) for b in first] == [8] * 6 + [2]
  assert sorted(np.concatenate([b[1] for b in first]).tolist()) == list(range(50))
  for batch_images, batch_labels in first:
    np.testing.assert_array_equal(batch_images[:, 0], batch_labels)  # pairs stay together
  again = epoch(0, 3)
  assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
  def order(batches):
    return np.concatenate([labels for _, labels in batches])
  assert not np.array_equal(order(epoch(0, 4)), order(first))  # a new epoch reshuffles
  assert not np.array_equal(order(epoch(1, 3)), order(first))  # so does a new seed


def test_drop_remainder_and_in_order_eval():
  images, labels = np.zeros((50, 2)), np.arange(50)
  train = list(batching.batches(images, labels, 8, seed=0, epoch=0, shuffle=True, drop_remainder=True))
  assert len(train) == 6 == batching.num_batches(50, 8, True)
  assert all(len(b[1]) == 8 for b in train)
  evaluation = list(batching.batches(images, labels, 8, seed=0, epoch=0, shuffle=False, drop_remainder=False))
  assert len(evaluation) == 7 == batching.num_batches(50, 8, False)
  np.testing.assert_array_equal(np.concatenate([b[1] for b in evaluation]), labels)


def test_shard_for_process_partitions_the_data():
  images, labels = np.arange(11)[:, None], np.arange(11)
  shards = [batching.shard_for_process(images, labels, i, 3) for i in range(3)]
  assert sorted(np.concatenate([s[1] for s in shards]).tolist()) == list(range(11))
  assert [len(s[1]) for s in shards] == [4, 4, 3]
  even = [batching.shard_for_process(images, labels, i, 3, equal_sizes=True) for i in range(3)]
  assert [len(s[1]) for s in even] == [3, 3, 3]
  with pytest.raises(ValueError):
    batching.shard_for_process(images, labels, 3, 3)
