"""What a run tells its user: the banner, one line per epoch, `metrics.jsonl`, `config.json`,
`results.json`; and the per-epoch summaries behind them. Only process 0 writes or prints."""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from absl import logging

from ract_jax import metrics
from ract_jax.device import parallel


def _fmt_time(seconds: float) -> str:
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.generic,)):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return x


class Records:
  """Logging and the workdir's record files.

  Lines go to stdout (plain, for people) on process 0 only; warnings also to absl's log.

  Args:
    workdir: where `config.json`, `metrics.jsonl` and `results.json` go.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.main = jax.process_index() == 0
    if self.main:
      os.makedirs(workdir, exist_ok=True)
    self._stage_times: dict[str, list[float]] = {}
    self.summaries = None  # Optional TensorBoard writer of the metrics rows (train/summaries.py).

  def log(self, msg: str, *args) -> None:
    if not self.main:
      return
    print(msg % args if args else msg, flush=True)

  def warn(self, msg: str) -> None:
    if self.main:
      logging.warning(msg)

  def write_json(self, name: str, obj) -> None:
    if not self.main:
      return
    path = os.path.join(self.workdir, name)
    with open(path + ".tmp", "w") as f:
      json.dump(_jsonable(obj), f, indent=2, sort_keys=False)
    os.replace(path + ".tmp", path)

  def read_json(self, name: str, default=None):
    path = os.path.join(self.workdir, name)
    if not os.path.exists(path):
      return default
    with open(path) as f:
      return json.load(f)

  def append_metrics(self, row: dict) -> None:
    """Appends one line to `metrics.jsonl` with a single write (a kill leaves at most a torn last
    line, which `read_metrics` drops)."""
    if not self.main:
      return
    fd = os.open(os.path.join(self.workdir, "metrics.jsonl"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      os.write(fd, (json.dumps(_jsonable(row)) + "\n").encode())
    finally:
      os.close(fd)
    if self.summaries is not None:
      self.summaries.write(_jsonable(row))

  def read_metrics(self) -> list[dict]:
    """The rows of `metrics.jsonl`; a torn last line (a run killed mid-write) is dropped with a
    warning naming the file; a damaged line elsewhere is an error naming file and line."""
    path = os.path.join(self.workdir, "metrics.jsonl")
    if not os.path.exists(path):
      return []
    with open(path, "rb") as f:
      lines = f.read().split(b"\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    rows = []
    for i in filled:
      try:
        rows.append(json.loads(lines[i]))
      except ValueError:
        if i != filled[-1]:
          raise ValueError(f"{path}: line {i + 1} is not JSON; the records of this workdir are "
                           "damaged (restore the file or use another --workdir).") from None
        self.warn(f"{path}: dropped its torn last line {i + 1} (the run was killed while writing "
                  "it); that epoch is replayed.")
    return rows

  def truncate_metrics_after(self, global_epoch: int, metric: str,
                             since: int = 0) -> tuple[float, dict]:
    """On resume: drops records of epochs after the restored checkpoint (they will be redone).

    Returns the best validation `metric` so far among epochs >= `since` and that epoch's validation
    metrics.
    """
    keep = [r for r in self.read_metrics() if r.get("global_epoch", -1) <= global_epoch]
    if self.main:
      path = os.path.join(self.workdir, "metrics.jsonl")
      with open(path + ".tmp", "w") as f:
        for r in keep:
          f.write(json.dumps(r) + "\n")
      os.replace(path + ".tmp", path)
    best = None
    for r in keep:  # Strictly greater: ties keep the earliest epoch, as training does.
      if r.get("global_epoch", -1) < since:
        continue
      if best is None or r["val"][metric] > best["val"][metric]:
        best = r
    return (best["val"][metric], best["val"]) if best else (-np.inf, {})

  def banner(self, mesh, data, config, param_counts: dict) -> None:
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    self.log("=" * 78)
    self.log("ract_jax: Ranking-Critical Training (Lobel et al., ICLR 2020)")
    self.log("processes %d (this is %d) | devices %d (%s), local %d | mesh %s",
             jax.process_count(), jax.process_index(), len(devices), ", ".join(kinds),
             jax.local_device_count(), dict(mesh.shape))
    from ract_jax.data import describe
    self.log("%s", describe(data))
    pad = parallel.padded_batch_size(config.batch_size, mesh) - config.batch_size
    batch = f"{config.batch_size}" + (f" (+{pad} masked rows: {mesh.devices.size} devices x "
                                      f"{parallel.local_batch_size(config.batch_size, mesh)})"
                                      if pad else "")
    self.log("actor %s (%s) %s params | critic %s params | batch %s | schedule %d / %d / %d epochs",
             config.actor.kind, config.actor.shape, f"{param_counts['actor']:,}",
             f"{param_counts['critic']:,}", batch, config.schedule.actor_epochs,
             config.schedule.critic_epochs, config.schedule.ac_epochs)
    self.log("workdir %s | config %s (every key; printed here with --verbosity=1)", self.workdir,
             os.path.join(self.workdir, "config.json"))
    if logging.get_verbosity() >= 1:
      self.log("config:\n%s", config)
    self.log("=" * 78)

  def closing(self, results: dict) -> None:
    """The end of a run: where its files are and the one-line headline (`headline`)."""
    if not self.main:
      return
    names = sorted(os.listdir(self.workdir))
    files = [n + ("/" if os.path.isdir(os.path.join(self.workdir, n)) else "") for n in names
             if not n.startswith(".") and not n.endswith(".tmp")]
    self.log("=" * 78)
    self.log("done: %s", self.workdir)
    self.log("files: %s", ", ".join(files))
    if "model/" in files:
      self.log("model/: the selected model in portable form; recommend with `python -m "
               "ract_jax.recommend --workdir=%s --input=FILE --output=OUT`", self.workdir)
    final = "ft" if "ft" in results else "ract"
    self.log("%s", headline(results, self._per_user("actor"), self._per_user(final), final=final))

  def _per_user(self, name: str) -> dict | None:
    path = os.path.join(self.workdir, f"per_user_test_{name}.npz")
    if not os.path.exists(path):
      return None
    with np.load(path) as z:
      return {k: z[k] for k in z.files}

  def epoch_time(self, stage: str, seconds: float) -> None:
    self._stage_times.setdefault(stage, []).append(seconds)

  def eta(self, stage: str, left_in_stage: int, left_after: dict[str, int]) -> tuple[str, str]:
    """(stage ETA, total ETA) from the median wall time per epoch (training without compilation,
    plus validation) of each stage so far (first excluded)."""

    def per_epoch(s):
      t = self._stage_times.get(s) or self._stage_times.get(stage) or [0.0]
      t = t[1:] if len(t) > 1 else t
      return float(np.median(t))

    stage_left = per_epoch(stage) * left_in_stage
    total = stage_left + sum(per_epoch(s) * n for s, n in left_after.items())
    return _fmt_time(stage_left), _fmt_time(total)


class ChunkProgress:
  """`on_chunk` for `loops.Epoch`: logs a progress line every `every` seconds inside long epochs.

  Called after each chunk is dispatched; it then waits for the chunk before it (so one chunk is
  always queued on the device: no pipeline bubble) and times the steps finished so far. The clock
  starts at construction, i.e. after the epoch's compilation (`loops.Epoch.compile`).

  Args:
    log: `log(msg)`.
    label: what the line starts with, e.g. "actor  epoch 3/150".
    n_rows: users per epoch; steps: steps per epoch; batch_size: users per step.
    every: seconds between lines (> 0).
  """

  def __init__(self, log, label: str, n_rows: int, steps: int, batch_size: int, every: float):
    self.log, self.label, self.every = log, label, every
    self.n_rows, self.steps, self.batch_size = n_rows, steps, batch_size
    self.start = self.last = now()
    self._pending = None

  def __call__(self, done: int, sums) -> None:
    pending, self._pending = self._pending, (done, sums)
    if pending is None:
      return
    jax.block_until_ready(pending[1])
    t = now()
    if t - self.last < self.every:
      return
    self.last = t
    users = min(pending[0] * self.batch_size, self.n_rows)
    rate = users / max(t - self.start, 1e-9)
    self.log(f"{self.label}  step {pending[0]}/{self.steps} ({100 * pending[0] / self.steps:.0f}%)"
             f"  {rate:,.0f} users/s  epoch ETA {_fmt_time((self.n_rows - users) / rate)}")


def chunk_progress(log, label: str, n_rows: int, steps: int, batch_size: int,
                   progress_cfg) -> ChunkProgress | None:
  """The progress callback of an epoch, or None when `config.progress.seconds` is 0."""
  if not progress_cfg.seconds:
    return None
  return ChunkProgress(log, label, n_rows, steps, batch_size, float(progress_cfg.seconds))


def epoch_summary(stage: str, sums: dict) -> dict:
  """An epoch's training metrics from its per-step sums (host numpy arrays `[steps]`).

  Stage 1: mean NLL and KL per user and the last beta. Stages 2-3: the critic's MSE, its mean and
  spread, its Pearson r with the oracle over the epoch's users, and the mean actor loss.
  """
  tot = {k: float(np.sum(v)) for k, v in sums.items()}
  n = max(tot["users"], 1.0)
  if "beta" in sums:  # Stage 1.
    return {"nll": tot["nll"] / n, "kl": tot["kl"] / n, "beta": float(np.asarray(sums["beta"])[-1])}
  if "mse" not in sums:  # Stage 3 on an L2R loss (no critic).
    return {"loss": tot["loss"] / n}
  mean_p = tot["pred"] / n
  r = metrics.pearson_from_sums(n, tot["pred"], tot["target"], tot["pred_sq"], tot["target_sq"],
                                tot["pred_target"])
  return {"mse": tot["mse"] / n, "nll": tot["nll"] / n, "critic_mean": mean_p,
          "critic_std": float(np.sqrt(max(tot["pred_sq"] / n - mean_p**2, 0.0))), "critic_r": r,
          "target_mean": tot["target"] / n}


def first_bad_step(sums: dict):
  """(step, name) of the first non-finite per-step value, or None."""
  for name, v in sums.items():
    bad = np.flatnonzero(~np.isfinite(np.asarray(v)))
    if bad.size:
      return int(bad[0]), name
  return None


def epoch_line(row: dict, eta_stage: str, eta_total: str) -> str:
  """The line printed after each epoch (stage, k/K, losses, users/s, ETA, validation metrics)."""
  val = row["val"]
  if "beta" in row:
    losses = f"nll {row['nll']:.2f}  kl {row['kl']:.2f}  beta {row['beta']:.4f}"
  elif "mse" not in row:
    losses = f"L2R loss {row['loss']:.4f}"
  else:
    losses = (f"mse {row['mse']:.5f}  critic std {row['critic_std']:.4f}  r {row['critic_r']:.3f}"
              f"  nll {row['nll']:.2f}")
  best = next(v for key, v in row.items() if key.startswith("best_val_"))
  text = (f"val ndcg@100 {val['ndcg@100']:.4f} r@20 {val['recall@20']:.4f} r@50 "
          f"{val['recall@50']:.4f} (best {best:.4f})")
  if "critic_r" in val:
    text += f" critic r {val['critic_r']:.3f}"
  return (f"{row['stage']:<6} epoch {row['epoch']:3d}/{row['epochs']}  {losses} | "
          f"{row['users_per_s']:,.0f} users/s  ETA {eta_stage} (total {eta_total}) | {text}")


def comparison_table(results: dict) -> str:
  """The test metrics of every model in the layout of the paper's Table 1 (Markdown)."""
  order = ["ract", "ft", "actor", "ease", "popularity"]
  names = {"ract": "RaCT", "ft": "actor fine-tuned on the L2R loss", "actor": "pre-trained actor",
           "ease": "EASE", "popularity": "popularity"}
  models = [m for m in order if m in results] + [m for m in results if m not in order]
  lines = ["| method | Recall@20 | Recall@50 | NDCG@100 |", "|---|---|---|---|"]
  for m in models:
    t = results[m].get("test", {})
    if "ndcg@100" not in t:
      continue
    cells = [f"{t[k]:.4f} ± {t.get(k + '_se', float('nan')):.4f}"
             for k in ("recall@20", "recall@50", "ndcg@100")]
    lines.append(f"| {names.get(m, m)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def headline(results: dict, actor: dict | None, ract: dict | None,
             metric: str = "ndcg@100", final: str = "ract") -> str:
  """One line: the actor's and RaCT's test `metric` and the paired 95% interval of the per-user
  difference RaCT - actor (`metrics.paired_difference`, users with held-out items).

  Args:
    results: the content of `results.json`.
    actor, ract: the per-user test values (`per_user_test_<name>.npz`), None when absent.
    final: the final model's name in `results`: 'ract', or 'ft' (an L2R fine-tuning).
  """
  if final not in results or actor is None or ract is None:
    test = results.get("actor", {}).get("test", {})
    if metric not in test:
      return "headline: no test result."
    return (f"headline: test {metric.upper()} of the actor {test[metric]:.4f} "
            f"(± {test.get(metric + '_se', float('nan')):.4f}); stages 2-3 did not run.")
  keep = (actor["n_heldout"] > 0) & (ract["n_heldout"] > 0)
  p = metrics.paired_difference(actor[metric][keep], ract[metric][keep])
  before, after = results["actor"]["test"][metric], results[final]["test"][metric]
  # Stages 1-2 leave the actor as pre-trained: a best epoch there means no stage-3 epoch beat it.
  same = results[final].get("diagnostics", {}).get("best_stage") in ("actor", "critic")
  label = "RaCT" if final == "ract" else "fine-tuned"
  return (f"headline: test {metric.upper()} actor {before:.4f} -> {label} {after:.4f}: paired "
          f"difference {p['mean']:+.4f}, 95% interval [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] "
          f"over {p['n']} users ({p['n_better']} better, {p['n_worse']} worse)" +
          ("; no stage-3 epoch beat the pre-trained actor on validation, so RaCT is that actor"
           if same else ""))


def now() -> float:
  return time.perf_counter()
