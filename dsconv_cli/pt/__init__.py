"""The torch layer: the only place torch or fvcore is imported.

Building modules, timing and peaks, cross-checks, loading model targets, the op rules, the traced
forward, conversion and model timings. It imports the core and the leaves, never a layer above, and is
imported lazily by the runs, so commands that only count never load torch.
"""
