"""The simulator: a policy, a population and a fleet, on a virtual clock.

`demand` and `demand_load` read the demand file, `trace` reads request traces, `workload` draws
every request as numpy arrays, `fleet_model` serves them with continuous batching, `run` is the
event loop in which the real limiter decides every request, `metrics` summarises what happened
and `report` writes it as HTML with plots, CSV and JSON. docs/simulate.md describes the model.
"""
