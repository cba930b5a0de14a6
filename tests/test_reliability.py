"""Bad input end to end: every schema field's error names it; corrupt or missing checkpoints and
results files, unwritable and locked workdirs and unusable data are one-line errors that leave
earlier files as they were."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest

from efficiency import config as cfg
from efficiency import training
from efficiency import workdir as wd
from efficiency.errors import ConfigError, WorkdirError
from test_cli import ROOT, TINY, error_line, run_entry


def tiny_config(tfds_dir):
  config = cfg.load_config_file(TINY)
  config.dataset.data_dir = tfds_dir
  return config


def snapshot(folder) -> dict[str, str]:
  """{relative path: sha256} of every file under `folder` but the lock (it holds the last pid)."""
  digests = {}
  for parent, _, names in os.walk(folder):
    for name in names:
      if name == '.lock':
        continue
      path = os.path.join(parent, name)
      with open(path, 'rb') as f:
        digests[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
  return digests


# ---- every field's error names the field -------------------------------------------------------

CANDIDATE_BAD_VALUES = (None, -1, 0, 10**9, 1.5, float('nan'), float('inf'), '   ',
                        'no-such-choice', 'yes')


@pytest.mark.parametrize('field', sorted(cfg.SCHEMA))
def test_every_field_error_names_the_field(field):
  base = cfg.load_config_file(os.path.join(ROOT, 'configs', 'base.py'))
  section, _, leaf = field.rpartition('.')
  refused = 0
  for value in CANDIDATE_BAD_VALUES:
    try:
      cfg.check_field(field, value)
      continue
    except ConfigError:
      refused += 1
    plain = base.to_dict()  # a ConfigDict would refuse a value of another type on assignment
    (plain[section] if section else plain)[leaf] = value
    with pytest.raises(ConfigError) as info:
      cfg.validate(ml_collections.ConfigDict(plain))
    message = str(info.value)
    assert f'config.{field}=' in message and '\n' not in message, message
    assert 'expected' in message, message
  assert refused >= 2, f'config.{field} accepts almost anything'


# ---- corrupt or missing files ------------------------------------------------------------------

@pytest.fixture(scope='module')
def trained(tfds_dir, tmp_path_factory):
  """A finished tiny training workdir (2 epochs, a checkpoint after each)."""
  workdir = str(tmp_path_factory.mktemp('trained') / 'run')
  training.train(tiny_config(tfds_dir), workdir)
  return workdir


@pytest.fixture
def copy_of(trained, tmp_path):
  copy = str(tmp_path / 'run')
  shutil.copytree(trained, copy)
  return copy


def _train_args(tfds_dir, workdir):
  return (f'--config={TINY}', f'--config.dataset.data_dir={tfds_dir}', f'--workdir={workdir}')


def test_truncated_checkpoint_is_one_line_and_kept(copy_of, tfds_dir):
  state = os.path.join(copy_of, 'checkpoints', '2', 'state')
  chunks = [os.path.join(parent, name) for parent, _, names in os.walk(state) for name in names
            if os.path.basename(parent) == 'd']  # the array data files of orbax's OCDBT store
  assert chunks
  for path in chunks:
    os.truncate(path, os.path.getsize(path) // 2)
  before = snapshot(os.path.join(copy_of, 'checkpoints'))

  line = error_line(run_entry('evaluate.py', f'--workdir={copy_of}'), only_line=False)
  assert f'checkpoint {copy_of}/checkpoints/2 cannot be restored' in line
  # Resuming an unfinished run restores the same checkpoint.
  os.remove(os.path.join(copy_of, 'result.json'))
  line = error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of)), only_line=False)
  assert f'checkpoint {copy_of}/checkpoints/2 cannot be restored' in line
  assert snapshot(os.path.join(copy_of, 'checkpoints')) == before


def test_corrupt_results_files_are_one_line_naming_the_file(copy_of, tfds_dir):
  result = os.path.join(copy_of, 'result.json')
  with open(result, 'r+') as f:
    f.truncate(40)
  line = error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of)), only_line=False)
  assert f'{result} is corrupt' in line
  os.remove(result)
  metrics = os.path.join(copy_of, 'metrics.jsonl')
  with open(metrics, 'a') as f:
    f.write('{"epoch": 3, "lo\n')
  line = error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of)), only_line=False)
  assert f'{metrics} line 3 is corrupt' in line
  config_json = os.path.join(copy_of, 'config.json')
  with open(config_json, 'w') as f:
    f.write('{"name": ')
  line = error_line(run_entry('evaluate.py', f'--workdir={copy_of}'))
  assert f'{config_json} is corrupt' in line


def test_checkpoint_of_an_older_state_format_names_it(tfds_dir, tmp_path, monkeypatch):
  # A workdir from before the optimizer state was flattened: per-array optimizer entries and
  # state format 1 (what such checkpoints read as, having no `state_format` at all).
  from efficiency.training import checkpoints, optim
  from efficiency.training import trained as trained_lib
  monkeypatch.setattr(checkpoints, 'STATE_FORMAT', 1)
  monkeypatch.setattr(trained_lib, 'make_optimizer',
                      lambda *args, **kwargs: optim.make_optimizer(*args, **kwargs, flat=False))
  workdir = str(tmp_path / 'old')
  training.train(tiny_config(tfds_dir), workdir)
  before = snapshot(os.path.join(workdir, 'checkpoints'))
  line = error_line(run_entry('evaluate.py', f'--workdir={workdir}'), only_line=False)
  assert f'checkpoint {workdir}/checkpoints/2 holds state format 1' in line
  assert 'retrain this workdir' in line and 'corrupt' not in line
  assert snapshot(os.path.join(workdir, 'checkpoints')) == before


def test_missing_checkpoint_is_one_line(copy_of):
  shutil.rmtree(os.path.join(copy_of, 'checkpoints'))
  line = error_line(run_entry('evaluate.py', f'--workdir={copy_of}'), only_line=False)
  assert f'{copy_of}/checkpoints does not exist' in line


def test_corrupt_sweep_table_is_one_line_naming_it(tmp_path):
  sweep = tmp_path / 'sweep'
  sweep.mkdir()
  (sweep / 'sweep.json').write_text('{"name": "x"}\n')
  (sweep / 'results.jsonl').write_text('{"point_id": "abc", "status": "ok"}\n{"point_id": "de\n')
  line = error_line(run_entry('benchmark.py', f'--combine={sweep}', f'--workdir={tmp_path / "c"}'))
  assert f'{sweep / "results.jsonl"} line 2 is corrupt' in line
  from efficiency.report.load import load_sweep
  os.remove(sweep / 'results.jsonl')
  (sweep / 'results.csv').write_text('point_id,status\nabc,ok\n"de,ok,1,2\n')
  with pytest.raises(WorkdirError, match='results.csv'):
    load_sweep(str(sweep))


def test_wrong_json_type_is_a_workdir_error(tmp_path):
  path = str(tmp_path / 'result.json')
  wd.write_json(path, [1, 2])
  with pytest.raises(WorkdirError, match='result.json is corrupt'):
    wd.read_json(path, required=('test',))
  with open(path, 'w') as f:
    f.write('[1]\n')
  with pytest.raises(WorkdirError, match='line 1 is corrupt'):
    wd.read_jsonl(path)


# ---- workdirs: unwritable, locked; earlier results untouched ----------------------------------

def test_unwritable_workdir_is_one_line(tmp_path):
  a_file = tmp_path / 'a_file'
  a_file.write_text('not a folder')
  line = error_line(run_entry('train.py', f'--config={TINY}', f'--workdir={a_file}/sub'))
  assert f'--workdir={a_file}/sub is not writable' in line
  line = error_line(run_entry('train.py', f'--config={TINY}', f'--workdir={a_file}'))
  assert f'--workdir={a_file} is a file' in line


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into a read-only folder anyway')
def test_read_only_workdir_is_refused(tmp_path):
  read_only = tmp_path / 'read_only'
  read_only.mkdir(mode=0o500)
  with pytest.raises(WorkdirError, match='is not writable'):
    wd.ensure_writable(str(read_only))


def test_second_process_on_a_workdir_is_refused(copy_of, tfds_dir):
  os.remove(os.path.join(copy_of, 'result.json'))
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time\nfrom efficiency import workdir as wd\n'
       'with wd.locked(sys.argv[1]):\n  print("locked", flush=True)\n  time.sleep(120)\n', copy_of],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    before = snapshot(copy_of)
    line = error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of)), only_line=False)
    assert f'--workdir={copy_of} is in use by process {holder.pid}' in line
    assert snapshot(copy_of) == before
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with wd.locked(copy_of):  # the kernel dropped the killed holder's lock
    pass


def test_bad_input_leaves_a_finished_workdir_untouched(copy_of, tfds_dir):
  before = snapshot(copy_of)
  error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of), '--config.model.width=0'))
  line = error_line(run_entry('train.py', *_train_args(tfds_dir, copy_of),
                              '--config.model.width=5'), only_line=False)
  assert 'holds a run of another config (differs in model.width)' in line
  assert snapshot(copy_of) == before


def test_missing_teacher_workdir_names_the_field(tfds_dir, tmp_path):
  config = tiny_config(tfds_dir)
  config.train.teacher_workdir = str(tmp_path / 'no_teacher')
  with pytest.raises(ConfigError, match=r"config\.train\.teacher_workdir='.*no_teacher' is not "
                     'allowed'):
    training.train(config, str(tmp_path / 'student'))


# ---- data that cannot be used ------------------------------------------------------------------

def _image_folder(root, classes=('a', 'b'), per_class=6):
  from PIL import Image
  rng = np.random.default_rng(0)
  for name in classes:
    os.makedirs(os.path.join(root, name))
    for index in range(per_class):
      Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
          os.path.join(root, name, f'{index}.png'))


def test_unusable_image_folder_is_one_line(tmp_path):
  folder = str(tmp_path / 'images')
  _image_folder(folder)
  bad = os.path.join(folder, 'a', '3.png')
  with open(bad, 'wb') as f:
    f.write(b'not a png')
  args = (f'--config={TINY}', '--config.dataset.name=image_folder',
          f'--config.dataset.path={folder}', f'--config.dataset.data_dir={tmp_path / "tfds"}',
          '--config.train.batch_size=4')
  line = error_line(run_entry('train.py', *args, f'--workdir={tmp_path / "a"}'), only_line=False)
  assert f'cannot read image {bad!r}' in line
  os.remove(bad)
  os.makedirs(os.path.join(folder, 'empty_class'))
  line = error_line(run_entry('train.py', *args, f'--workdir={tmp_path / "b"}'), only_line=False)
  assert "class 'empty_class'" in line and 'has no PNG/JPEG images' in line


def test_dataset_that_needs_a_download_fails_fast_offline(tmp_path):
  start = time.perf_counter()
  try:
    done = run_entry('train.py', f'--config={TINY}', '--config.dataset.name=mnist',
                     f'--config.dataset.data_dir={tmp_path / "empty"}',
                     f'--workdir={tmp_path / "w"}', timeout=15)
  except subprocess.TimeoutExpired:
    pytest.fail(f'no error within {time.perf_counter() - start:.0f}s')
  line = error_line(done, only_line=False)
  assert "Dataset 'mnist'" in line and 'config.dataset.data_dir' in line


def test_dataset_prepared_meanwhile_by_another_process_is_read(tmp_path):
  from efficiency.data import datasets, tfds_io
  from efficiency.data.digits import EfficiencyDigits
  data_dir = str(tmp_path / 'tfds')
  # This process looks at the data directory first and finds nothing prepared ...
  waiting = EfficiencyDigits(data_dir=data_dir, file_format=tfds_io.FILE_FORMAT)
  # ... while another one prepares the dataset (as two sweep shards or runs starting at once do).
  datasets.load_dataset(tiny_config(data_dir).dataset)
  dataset = datasets._read_builder(waiting, 'digits', data_dir, 'train', 'test')
  assert dataset.train.labels.shape[0] == 1437
