"""Makes the repository root importable (ract_jax, configs) however pytest is started."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

# Tests build several runs whose programs are identical: a persistent compilation cache lets later
# runs reuse the executables of earlier ones (XLA compiles dominate the suite's time on CPU).
import tempfile  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir",
                  os.path.join(tempfile.gettempdir(), "ract_jax_test_compilation_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
