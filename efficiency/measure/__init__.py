"""Trustworthy efficiency numbers for any JAX model: parameters, FLOPs, bytes, latency, hardware.

Works on a Flax NNX module or on any jittable function with example inputs;
nothing here depends on the rest of the toolkit. Every record states its
conventions (1 multiply-add = 2 FLOPs; MACs reported beside FLOPs) and keeps
the raw timing samples.
"""

from efficiency.measure.api import CONVENTION, measure_function, measure_model, to_jsonable
from efficiency.measure.ceilings import measure_ceilings
from efficiency.measure.hardware import hardware_id, hardware_report
from efficiency.measure.jaxpr_flops import count_jaxpr, jaxpr_cost
from efficiency.measure.latency import LatencySettings, as_settings, time_function
from efficiency.measure.module_costs import model_jaxpr_cost, module_scopes
from efficiency.measure.params import count_params
from efficiency.measure.sharded import measure_data_parallel
from efficiency.measure.stats import latency_stats
from efficiency.measure.summary import format_summary
from efficiency.measure.xla_analysis import normalize_cost_analysis, xla_cost

__all__ = [
    'CONVENTION', 'LatencySettings', 'as_settings', 'count_jaxpr', 'count_params',
    'format_summary', 'hardware_id', 'hardware_report', 'jaxpr_cost', 'latency_stats',
    'measure_ceilings', 'measure_data_parallel',
    'measure_function', 'measure_model', 'model_jaxpr_cost', 'module_scopes',
    'normalize_cost_analysis', 'time_function', 'to_jsonable', 'xla_cost',
]
