#!/usr/bin/env bash
# Every actor and baseline of the paper's Tables 1 and 2 on ml-1m-implicit (H = 600), then both
# tables. These are the commands behind docs/ml1m_tables.md.
#
#   bash experiments/ml1m_tables.sh [RUNS_DIR]        # default RUNS_DIR=runs
#
# Each actor runs the full Table 5 schedule (150 / 50 / 50 epochs) of configs/ml1m_implicit.py,
# except LambdaRank: the paper compares it "using the same amount of wall-clock training time" as
# RaCT (section 5.1), and one LambdaRank step cost 22 Mult-VAE steps on a 2-core CPU when this
# was set (13-20 in later runs of `python experiments/bench_epoch.py --shapes=ml1m
# --presets=vae,lambdarank`; measure yours and scale), so its stage 1 gets
# 12 epochs (about the VAE run's 150 + 50 + 50 epochs of training time). Its loss value is also the
# critic's first feature, so every stage-2 and stage-3 step pays a full LambdaRank pass too: stage 2
# gets 15 epochs and stage 3 10 (about 25 minutes together on a 2-core CPU).
# The WMF / SLIM / CDAE grids (configs/base.py `baselines`) run once, in the first run.
# Runs are sequential; a killed run resumes from its last checkpoint when its command is rerun.
set -euo pipefail
RUNS=${1:-runs}
PY=${PYTHON:-python}
mkdir -p "$RUNS"

run() {  # run PRESET [extra flags...]
  local preset=$1; shift
  local start=$SECONDS
  $PY -m ract_jax.main --config="configs/ml1m_implicit.py:$preset" --workdir="$RUNS/$preset" "$@" \
      > "$RUNS/$preset.log" 2>&1
  echo "$preset: $((SECONDS - start)) s wall" | tee -a "$RUNS/wall.txt"
}

run vae --config.baselines.names="('popularity','ease','wmf','slim','cdae')"
for preset in vae_gaussian vae_beta0 vae_linear dae_liang dae_ract mf warp; do
  run "$preset"
done
run lambdarank --config.schedule.actor_epochs=12 --config.schedule.critic_epochs=15 \
    --config.schedule.ac_epochs=10

ALL=("$RUNS"/{vae,vae_gaussian,vae_beta0,vae_linear,dae_liang,dae_ract,mf,warp,lambdarank})
$PY experiments/table2.py "${ALL[@]}" --out "$RUNS/table2"
$PY experiments/table1.py "$RUNS"/{vae,warp,lambdarank} --out "$RUNS/table1"
