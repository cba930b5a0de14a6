"""sweep.json: what the report needs to know besides the table (see the contract in WORKSPACE.md).

Times are summed from every finished point's stages.json, so a resumed or
sharded sweep reports what each point cost when it was computed. A point
declared by several studies counts toward the first that declared it. Points
trained at once by worker processes overlap in time, so the study times can add
up to more than the sweep's wall time (`run_seconds`, with `train_workers`).
"""

from __future__ import annotations

import os
from typing import Any

from efficiency import workdir as wd
from efficiency.config import to_dict
from efficiency.sweeps import expand as expand_module
from efficiency.sweeps.expand import Point, point_dir
from efficiency.sweeps.methods import method_descriptions


def dataset_info(dataset, dataset_cfg) -> dict[str, Any]:
  """The dataset section from an efficiency.data Dataset and the config's dataset section."""
  return dict(
      name=dataset.name, description=dataset.description, citation=dataset.citation,
      homepage=dataset.homepage, train_examples=int(dataset.train.labels.shape[0]),
      test_examples=int(dataset.test.labels.shape[0]), num_classes=int(dataset.num_classes),
      image_shape=list(dataset.image_shape), split=dataset_cfg.test_split, metric='top-1 accuracy')


def model_families(points: list[Point]) -> dict[str, dict]:
  from efficiency.models import registry
  names = dict.fromkeys(p.config.model.name for p in points)
  return {name: registry.family_info(name) for name in names}


def point_times(workdir: str, points: list[Point]) -> tuple[dict, dict]:
  """({study: {stage: seconds}}, {study: seconds}) over the finished points' stages.json."""
  stage_seconds: dict[str, dict[str, float]] = {}
  study_seconds: dict[str, float] = {}
  for point in points:
    path = os.path.join(point_dir(workdir, point.point_id), 'stages.json')
    if not os.path.exists(path):
      continue
    stages = wd.read_json(path)
    study = point.study
    totals = stage_seconds.setdefault(study, {})
    for stage, seconds in stages.items():
      if stage != 'total':
        totals[stage] = totals.get(stage, 0.0) + float(seconds)
    study_seconds[study] = study_seconds.get(study, 0.0) + float(stages.get('total', 0.0))
  return stage_seconds, study_seconds


def hardware_reports(workdir: str, points: list[Point]) -> dict[str, dict]:
  """{hardware_id: hardware report} from the points' measure.json files."""
  reports = {}
  for point in points:
    path = os.path.join(point_dir(workdir, point.point_id), 'measure.json')
    if os.path.exists(path):
      record = wd.read_json(path)
      if record.get('hardware_id') and record.get('hardware'):
        reports[record['hardware_id']] = record['hardware']
  return reports


def this_machine_ceilings(known: dict[str, Any]) -> dict[str, Any]:
  """`known` plus this machine's measured ceilings (peak matmul FLOP/s, memory bandwidth), measured
  once per machine and workdir (~2 s); a failure is recorded with its reason."""
  from efficiency.measure import hardware_id
  from efficiency.measure.ceilings import measure_ceilings
  machine = hardware_id()
  if machine in known:
    return known
  try:
    measured = measure_ceilings()
  except Exception as error:  # noqa: BLE001 - recorded, not swallowed
    measured = dict(peak_flops_per_s=None, bandwidth_bytes_per_s=None,
                    error=f'{type(error).__name__}: {error}')
  return dict(known, **{machine: measured})


def build(config, workdir: str, points: list[Point], *, dataset, command: str) -> dict[str, Any]:
  """The sweep.json object; hardware and ceilings already in the workdir's sweep.json are kept
  (shards on other machines add theirs)."""
  path = os.path.join(workdir, 'sweep.json')
  previous = wd.read_json(path) if os.path.exists(path) else {}
  studies = expand_module.study_descriptions(config)
  labels = [method for point in points for _, method in point.memberships]
  stage_seconds, study_seconds = point_times(workdir, points)
  hardware = dict(previous.get('hardware') or {})
  hardware.update(hardware_reports(workdir, points))
  return dict(
      name=config.name, command=command, base_point=points[0].point_id,
      studies=studies, methods=method_descriptions(list(config.sweep or []), labels),
      dataset=dataset_info(dataset, config.dataset), model_families=model_families(points),
      base_config=to_dict(points[0].config), hardware=hardware,
      ceilings=this_machine_ceilings(dict(previous.get('ceilings') or {})),
      stage_seconds=stage_seconds,
      study_seconds=study_seconds, points=len(points))


def write(workdir: str, meta: dict[str, Any]) -> None:
  wd.write_json(os.path.join(workdir, 'sweep.json'), meta)
