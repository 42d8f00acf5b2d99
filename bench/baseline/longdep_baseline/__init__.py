"""PyTorch baseline for `longdep bench`: LADM's CDS and ProLong's LDS computed the way the reference code does.

formulas.py is plain Python (no torch): the loop structure, the LDS arithmetic, the samples file, statistics.
reference.py needs torch and transformers: the model runs.
"""
