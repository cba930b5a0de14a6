r"""The machine's ceilings through XLA: peak float32 matmul GFLOP/s and streaming memory bandwidth.

  python benchmarks/ceilings.py [--seconds=5] [--repeats=3]

Runs `efficiency.measure.ceilings.measure_ceilings` `--repeats` times (each
about `--seconds`) and prints each run and the best, which is what the
roofline uses. The sweep runner calls the same function once per machine
with its default 2 s budget.
"""

from __future__ import annotations

import argparse

import common


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seconds', type=float, default=5.0)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  from efficiency.measure.ceilings import measure_ceilings
  print(common.header('Machine ceilings through XLA', args), flush=True)
  rows, runs = [], []
  for repeat in range(args.repeats):
    result = measure_ceilings(args.seconds)
    runs.append(result)
    rows.append([repeat + 1, f"{result['peak_flops_per_s'] / 1e9:.1f}",
                 f"{result['bandwidth_bytes_per_s'] / 1e9:.1f}", result['matmul_size'],
                 f"{result['seconds']:.1f}", ' '.join(result['notes'])])
  peak = max(r['peak_flops_per_s'] for r in runs)
  bandwidth = max(r['bandwidth_bytes_per_s'] for r in runs)
  rows.append(['best', f'{peak / 1e9:.1f}', f'{bandwidth / 1e9:.1f}', '', '',
               f'ridge point {peak / bandwidth:.1f} FLOPs/byte'])
  print(common.table(['run', 'peak GFLOP/s', 'bandwidth GB/s', 'matmul n', 'seconds', 'notes'],
                     rows))
  print(common.load_line())


if __name__ == '__main__':
  main()
