"""Entry points given bad flags, overrides or config values: one line `error: ...` naming the flag
or field, exit status 2, no traceback (unless --verbose), and nothing written."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, 'configs', 'tiny.py')


def run_entry(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='true',
             EFFICIENCY_CACHE=os.environ.get('EFFICIENCY_CACHE', os.path.join(
                 ROOT, '.pytest_cache', 'efficiency')))
  return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def error_line(done: subprocess.CompletedProcess, *, only_line: bool = True) -> str:
  """The `error: ...` line of a run that failed as a user error; checks the exit and traceback."""
  assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
  assert 'Traceback' not in done.stderr, done.stderr[-3000:]
  lines = done.stderr.strip().splitlines()
  if only_line:
    assert len(lines) == 1, done.stderr[-3000:]
  assert lines[-1].startswith('error: '), lines[-1]
  return lines[-1]


BAD_COMMAND_LINES = {
    'unknown override': (['--config.model.widht=3'],
                         ['--config.model.widht=3', 'did you mean config.model.width?']),
    'unknown section': (['--config.trian.epochs=3'],
                        ['--config.trian.epochs=3', 'did you mean config.train.epochs?']),
    'malformed integer': (['--config.train.epochs=abc'],
                          ['--config.train.epochs=abc', 'expected an integer in [1, 100000]']),
    'malformed number': (['--config.train.learning_rate=fast'],
                         ['--config.train.learning_rate=fast', 'expected a number in (0.0, 10.0]']),
    'malformed bool': (['--config.input.antialias=maybe'],
                       ['--config.input.antialias=maybe', 'expected True or False']),
    'section as a value': (['--config.model=3'], ['--config.model=3']),
    'unknown flag': (['--workdri=/tmp/x'], ['--workdri is not a known flag', '--workdir?']),
}


@pytest.mark.parametrize('case', sorted(BAD_COMMAND_LINES))
def test_bad_command_line_is_one_line_naming_it(case, tmp_path):
  args, fragments = BAD_COMMAND_LINES[case]
  workdir = tmp_path / 'run'
  line = error_line(run_entry('train.py', f'--config={TINY}', f'--workdir={workdir}', *args))
  for fragment in fragments:
    assert fragment in line
  assert not workdir.exists()


def test_config_file_problems_are_one_line(tmp_path):
  missing = tmp_path / 'nope.py'
  line = error_line(run_entry('train.py', f'--config={missing}', f'--workdir={tmp_path / "w"}'))
  assert f'--config={missing} does not exist' in line
  raising = tmp_path / 'raising.py'
  raising.write_text('def get_config():\n  raise ValueError("no such learning rate")\n')
  line = error_line(run_entry('train.py', f'--config={raising}', f'--workdir={tmp_path / "w"}'))
  assert f'--config={raising} cannot be loaded (ValueError: no such learning rate)' in line
  line = error_line(run_entry('train.py', f'--workdir={tmp_path / "w"}', '--config.model.width=3'))
  assert '--config.model.width needs --config=FILE' in line
  line = error_line(run_entry('train.py', f'--workdir={tmp_path / "w"}'))
  assert '--config is required' in line
  assert not (tmp_path / 'w').exists()


def test_verbose_shows_the_traceback(tmp_path):
  done = run_entry('train.py', f'--config={TINY}', f'--workdir={tmp_path}',
                   '--config.model.widht=3', '--verbose')
  assert done.returncode == 2
  assert 'Traceback' in done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith('error: --config.model.widht=3')


# Values the schema (or a registry) refuses, as overrides: (override, fragment of the message).
BAD_VALUES = [
    ('model.name=transformer', "config.model.name='transformer'"),
    ('input.resize=fancy', "config.input.resize='fancy'"),
    ('train.optimizer=adam', "config.train.optimizer='adam'"),
    ('train.schedule=linear', "config.train.schedule='linear'"),
    ('input.resolution=0', 'config.input.resolution=0'),
    ('input.resolution=-3', 'config.input.resolution=-3'),
    ('model.width=0', 'config.model.width=0'),
    ('model.width=5000', 'config.model.width=5000'),
    ('model.depth=1000', 'config.model.depth=1000'),
    ('train.batch_size=0', 'config.train.batch_size=0'),
    ('train.epochs=0', 'config.train.epochs=0'),
    ('train.learning_rate=100', 'config.train.learning_rate=100'),
    ('train.learning_rate=nan', 'config.train.learning_rate=nan'),
]


@pytest.mark.parametrize('override,fragment', BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_value_is_refused_before_any_work(override, fragment, tmp_path):
  workdir = tmp_path / 'run'
  line = error_line(run_entry('train.py', f'--config={TINY}', f'--workdir={workdir}',
                              f'--config.{override}'))
  assert fragment in line and ('expected' in line or 'allowed' in line)
  assert not workdir.exists()


def test_values_checked_against_the_data(tfds_dir, tmp_path):
  """A resolution above the native size and an unknown dataset need the data to be refused."""
  common = [f'--config={TINY}', f'--config.dataset.data_dir={tfds_dir}']
  line = error_line(run_entry('train.py', *common, f'--workdir={tmp_path / "a"}',
                              '--config.input.resolution=9'), only_line=False)
  assert 'config.input.resolution=9 is not allowed: expected at most 8' in line
  line = error_line(run_entry('train.py', *common, f'--workdir={tmp_path / "b"}',
                              '--config.dataset.name=no_such_dataset'), only_line=False)
  assert "config.dataset.name='no_such_dataset' is not allowed" in line
  for name in ('a', 'b'):
    assert not (tmp_path / name / 'config.json').exists()


def test_evaluate_overrides_are_checked(tmp_path):
  line = error_line(run_entry('evaluate.py', f'--workdir={tmp_path}',
                              '--config.input.resolutoin=6'))
  assert '--config.input.resolutoin=6' in line and 'did you mean config.input.resolution?' in line
  line = error_line(run_entry('evaluate.py', f'--workdir={tmp_path / "missing"}'))
  assert f'--workdir={tmp_path / "missing"} does not exist' in line
