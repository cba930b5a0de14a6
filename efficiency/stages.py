"""Wall time per named stage (data, compile, train, evaluate, measure), so slow parts show."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator


class StageTimer:
  """Accumulates seconds per stage: `with timer('train'): ...`; `timer.seconds` is a dict."""

  def __init__(self):
    self.seconds: dict[str, float] = {}

  @contextlib.contextmanager
  def __call__(self, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

  def add(self, stage: str, seconds: float) -> None:
    self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

  def line(self) -> str:
    return ', '.join(f'{k} {v:.2f}s' for k, v in self.seconds.items())
