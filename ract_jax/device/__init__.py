"""Device-side plumbing shared by training and evaluation: the `data` mesh and device batches.

  parallel.py  the 1-D `data` mesh, replicated placement, pmap-style per-device functions
  batches.py   the interaction CSR on device and every batch built inside jit from it
"""
