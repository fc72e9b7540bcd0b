#!/usr/bin/env bash
# One-shot accelerator check (issue 13), under 8 minutes on one GPU. From the repository root:
#
#   OUT=/some/dir bash experiments/gpu_check.sh          # on the GPU machine
#   GPU_CHECK_SMALL=1 OUT=/tmp/gc bash experiments/gpu_check.sh   # shrunk: checks the script on a CPU
#   (timeouts x6 there; GPU_CHECK_TIMEOUT_SCALE sets the factor, PYTHON the interpreter)
#
# Parts, each under its own `timeout`, each writing to $OUT; a failing part does not stop the others:
#   0 env    Python / JAX / devices / nvidia-smi; installs the carried ml_collections wheel
#            (experiments/wheels/, --no-deps, no index) when it is missing; lists missing modules.
#   a tests  a fast subset of the test suite, on the default (GPU) backend.
#   b bench  experiments/bench_epoch.py --shapes=ml20m,msd: floor at this device's measured matmul
#            rate and memory bandwidth, our stages against the dense reference.
#   c msd    a short MSD-shaped synthetic run of all three stages (41,140 items, ~59 items per user,
#            fewer users), extrapolated to the full 75/50/25-epoch MSD schedule by
#            experiments/msd_estimate.py (compile excluded).
# $OUT/summary.txt has one line per part with its exit status (124: timed out) and the key numbers.
# No `pip install -e .` (no internet there): the repository is put on PYTHONPATH instead.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
SMALL=${GPU_CHECK_SMALL:-0}
# Multiplies every part's timeout (the GPU-sized limits are far too short for a small, loaded CPU).
TSCALE=${GPU_CHECK_TIMEOUT_SCALE:-$([ "$SMALL" = 1 ] && echo 6 || echo 1)}
# Big outputs (the run's checkpoints, processed data) stay here; only small files go to $OUT.
WORK=${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/ract_gpu_check}
mkdir -p "$WORK"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
START=$(date +%s)

log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$SUMMARY"; }

# part NAME SECONDS CMD...: runs CMD under `timeout`, output to $OUT/NAME.log, status to the summary.
part() {
  local name=$1 limit=$(( $2 * TSCALE ))
  shift 2
  log "part $name: start (timeout ${limit}s)"
  timeout --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  log "part $name: exit $rc$([ $rc = 124 ] && echo ' (timed out)')"
  return 0
}

# ---- 0: environment. ----------------------------------------------------------------------------
if ! $PY -c "import ml_collections" 2> /dev/null; then
  wheel=$(ls "$ROOT"/experiments/wheels/ml_collections-*.whl 2> /dev/null | head -n 1)
  if [ -n "$wheel" ]; then
    $PY -m pip install --no-deps --no-index "$wheel" > "$OUT/pip.log" 2>&1 \
      || $PY -m pip install --user --no-deps --no-index "$wheel" >> "$OUT/pip.log" 2>&1
    log "installed $(basename "$wheel"): exit $?"
    if ! $PY -c "import ml_collections" 2> /dev/null; then  # A pure-Python wheel imports as a zip.
      export PYTHONPATH=$PYTHONPATH:$wheel
      log "pip could not install it: $wheel put on PYTHONPATH instead"
    fi
  else
    log "ml_collections missing and no wheel under experiments/wheels/"
  fi
fi
$PY - > "$OUT/env.txt" 2>&1 << 'EOF'
import importlib, platform
print("python", platform.python_version())
missing = []
for name in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy", "scipy", "pandas",
             "absl", "ml_collections", "yaml", "pytest"):
  try:
    m = importlib.import_module(name)
    print(f"{name} {getattr(m, '__version__', '?')}")
  except Exception as e:  # noqa: BLE001
    missing.append(name)
    print(f"{name} MISSING ({e})")
import jax
print("backend", jax.default_backend(), "devices", jax.devices())
print("MISSING:", " ".join(missing) or "none")
EOF
(nvidia-smi || true) >> "$OUT/env.txt" 2>&1
log "env: $(grep '^backend' "$OUT/env.txt" | head -c 200); $(grep '^MISSING' "$OUT/env.txt")"

# ---- a: the fast test subset, on the accelerator. -----------------------------------------------
TESTS="tests/test_metrics.py tests/test_losses.py tests/test_actors.py tests/test_sparse_layer.py
       tests/test_batches.py tests/test_critic.py tests/test_steps.py"
if [ "$SMALL" = 1 ]; then TESTS="tests/test_sparse_layer.py tests/test_losses.py"; fi
if $PY -c "import pytest" 2> /dev/null; then
  # shellcheck disable=SC2086
  # The tests compare with float64 numpy at float32 tolerances: true float32 matmuls (GPUs default
  # to TF32), as on the CPU where the suite is written.
  JAX_DEFAULT_MATMUL_PRECISION=highest part tests 110 $PY -m pytest -q -p no:cacheprovider $TESTS
  log "tests: $(tail -n 1 "$OUT/tests.log")"
else
  log "part tests: skipped, pytest is not installed here"
fi

# ---- b: bench_epoch on the ML-20M and MSD shapes. -----------------------------------------------
BENCH_ARGS="--shapes=ml20m,msd --steps=20 --repeats=3"
if [ "$SMALL" = 1 ]; then BENCH_ARGS="--shapes=ml20m,msd --scale=0.02 --steps=2 --repeats=1"; fi
# shellcheck disable=SC2086
part bench 150 $PY experiments/bench_epoch.py $BENCH_ARGS --json "$OUT/bench.json"
grep -E "^(ml20m|msd):|floor|stage|dense_reference" "$OUT/bench.log" >> "$SUMMARY"

# ---- c: MSD-shaped synthetic run of the three stages, extrapolated. ------------------------------
# 40,000 users (~1/14 of MSD) x MSD's 41,140 items and ~58.8 items per user (33.6M / 571,355);
# 4,000 held-out users each for validation and test; 3 / 2 / 2 epochs (the first of each compiles).
USERS=40000 ITEMS=41140 HELD=4000 EPOCHS="3 2 2"
if [ "$SMALL" = 1 ]; then USERS=1500 ITEMS=800 HELD=150 EPOCHS="2 2 2"; fi
set -- $EPOCHS
rm -rf "$WORK/msd_run"
part msd 170 $PY -m ract_jax.main --config=configs/default.py --workdir="$WORK/msd_run" \
  --config.data.name=msd-shaped --config.data.processed_dir="$WORK/msd_processed_$USERS" \
  --config.data.synthetic.n_users=$USERS --config.data.synthetic.n_items=$ITEMS \
  --config.data.synthetic.mean_items_per_user=58.8 --config.data.heldout_users=$HELD \
  --config.data.min_user_count=5 \
  --config.actor.anneal_cap=0.1 --config.actor.anneal_epochs=75 \
  --config.schedule.actor_epochs="$1" --config.schedule.critic_epochs="$2" \
  --config.schedule.ac_epochs="$3" --config.baselines.names='("popularity",)'
mkdir -p "$OUT/msd_run"
cp "$WORK"/msd_run/{metrics.jsonl,results.json,config.json} "$OUT/msd_run/" 2> /dev/null
part msd_estimate 20 $PY experiments/msd_estimate.py --workdir="$WORK/msd_run" \
  --json "$OUT/msd_estimate.json"
cat "$OUT/msd_estimate.log" >> "$SUMMARY"
log "done in $(( $(date +%s) - START )) s; outputs in $OUT"
