"""The capacity planner: catalogs of GPUs and models, the serving model of a replica, fleets.

`catalog` holds the hardware and architecture numbers, `throughput` turns a tensor-parallel
replica into tokens/s, `fit` calibrates its efficiency factors on measurements, and `fleet`
reads the fleet file shared by `gigawatt plan` and `gigawatt simulate`. Formulas and the fit's
residuals are in docs/capacity.md.
"""
