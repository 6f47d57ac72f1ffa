"""Autotuning (issue 13): find a model's tunable workloads, measure candidate
configurations in isolated worker processes, search with a learned cost model,
and keep the results in a tuning database (schedule/database.py) that later
compiles apply.

    tasks.py       the model's workloads, each with a one-node model to measure
    measure.py     compile and time one candidate (runs in a worker)
    pool.py        the worker processes: a crash or a hang loses one candidate
    ray_pool.py    the same as Ray tasks (`tinyc tune --ray`): builds anywhere, timing
                   on the nodes offering the resource tinyc-target:<target>
    cost_model.py  the gradient-boosted model (LightGBM) or a random fallback
    search.py      evolutionary search over a knob space, ranked by the model
    tuner.py       the driver: budget, resume, the log, the summary
"""

from .tuner import TuneOptions, TuneSummary, tune

__all__ = ["TuneOptions", "TuneSummary", "tune"]
