"""`write_report(workdir)`: the sweep's Markdown report with its figures, from the files alone.

Reads results.jsonl (or results.csv), sweep.json and the base point's
measure.json; writes report/report.md and report/figures/*.png|svg. Every number
in the report comes from those files; nothing is trained or measured here.
"""

from __future__ import annotations

import os

from efficiency import workdir as wd
from efficiency.report import figures as figure_style
from efficiency.report import formatting as fmt
from efficiency.report import latency_plots, plots, roofline
from efficiency.report import sections_analysis, sections_setup, sections_studies
from efficiency.report.load import Sweep, flops_column, latency_samples, load_sweep

BASE_STUDY = 'base'


def study_order(sweep: Sweep) -> list[str]:
  """Studies in sweep.json order, then any other study of the table; the base study left out."""
  declared = list(sweep.meta.get('studies') or {})
  found = list(dict.fromkeys(sweep.table['study'].dropna()))
  return [s for s in declared + [s for s in found if s not in declared] if s != BASE_STUDY]


def _latency_figures(sweep: Sweep, folder: str) -> tuple[dict[str, dict[str, str]], list[str]]:
  traces, stats, missing = {}, {}, []
  for _, row in sweep.base_rows().iterrows():
    samples, reason = latency_samples(sweep, row)
    if samples is None:
      missing.append(f'`{row["hardware_id"]}`: {reason}')
      continue
    traces[row['hardware_id']] = samples
    stats[row['hardware_id']] = row.to_dict()
  if not traces:
    return {}, missing
  return {'trace': latency_plots.plot_latency_trace(traces, folder),
          'histogram': latency_plots.plot_latency_histogram(traces, stats, folder)}, missing


def _header(sweep: Sweep, studies: list[str]) -> str:
  meta = sweep.meta
  machines = ', '.join(f'`{m}`' for m in sweep.hardware_ids) or fmt.MISSING
  lines = [f'# Efficiency report: {meta.get("name") or os.path.basename(sweep.workdir)}', '',
           'What each model costs (parameters, FLOPs, latency) and what it buys (accuracy). '
           'Every number below is read from results.jsonl / results.csv, sweep.json and the base '
           "point's measure.json in this workdir.", '']
  if meta.get('command'):
    lines += ['Reproduce with:', '', '```sh', str(meta['command']), '```', '']
  lines += [f'{fmt.plural(len(sweep.ok), "point")} succeeded and {len(sweep.failed)} failed, '
            f'on {machines}.', '']
  titles = [(s, ((meta.get('studies') or {}).get(s) or {}).get('title') or s) for s in studies]
  contents = ['Hardware', 'Task and data', 'Base model'] + [f'Study: {t}' for _, t in titles] + [
      'Pareto front and best trade-off under a budget', 'Where FLOPs and latency disagree',
      'Why these methods', 'Roofline', 'Wall time']
  lines += ['Contents: ' + ' · '.join(f'[{c}](#{_anchor(c)})' for c in contents), '']
  return '\n'.join(lines)


def _anchor(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, spaces to '-', punctuation dropped."""
  kept = ''.join(c for c in heading.lower() if c.isalnum() or c in ' -_')
  return kept.replace(' ', '-')


def _remove_stale(folder: str, written: set[str]) -> None:
  """Deletes figures of an earlier run that this run did not redraw (e.g. a removed study)."""
  for name in os.listdir(folder):
    path = os.path.join(folder, name)
    if name.endswith(('.png', '.svg')) and path not in written:
      os.remove(path)


def write_report(workdir: str) -> str:
  """Writes <workdir>/report/report.md and its figures; returns the report's path.

  Raises WorkdirError if the results table or sweep.json is missing or corrupt.
  """
  sweep = load_sweep(workdir)
  report_dir = os.path.join(sweep.workdir, 'report')
  folder = os.path.join(report_dir, 'figures')
  os.makedirs(folder, exist_ok=True)
  flops = flops_column(sweep.ok)
  colors = figure_style.method_colors([str(m) for m in sweep.table['method'].dropna()])
  studies = study_order(sweep)
  base = sweep.base_rows()

  study_figures = {}
  for study in studies:
    rows = sweep.ok[sweep.ok['study'] == study]
    title = ((sweep.meta.get('studies') or {}).get(study) or {}).get('title') or study
    study_figures[study] = (plots.plot_study(rows, base, study=study, title=title, folder=folder,
                                             flops=flops, colors=colors) if len(rows) else {})
  latency_figures, missing = _latency_figures(sweep, folder)
  roofline_figure = roofline.plot_roofline(sweep.ok, sweep.meta.get('ceilings') or {}, folder)

  written = {roofline_figure['png'], roofline_figure['svg']}
  for paths in [*latency_figures.values(), *(p for f in study_figures.values() for p in f.values())]:
    written |= set(paths.values())
  _remove_stale(folder, written)

  parts = [_header(sweep, studies), sections_setup.hardware_section(sweep),
           sections_setup.task_section(sweep), sections_setup.base_section(sweep),
           sections_setup.latency_section(sweep, latency_figures, missing, report_dir)]
  parts += [sections_studies.study_section(sweep, s, study_figures[s], report_dir, flops)
            for s in studies]
  parts += [sections_studies.tradeoff_section(sweep, flops),
            sections_analysis.agreement_section(sweep, flops),
            sections_analysis.methods_section(sweep),
            sections_analysis.roofline_section(sweep, roofline_figure, report_dir),
            sections_analysis.wall_time_section(sweep)]
  path = os.path.join(report_dir, 'report.md')
  wd.atomic_write_text(path, '\n'.join(p.rstrip() + '\n' for p in parts))
  return path
