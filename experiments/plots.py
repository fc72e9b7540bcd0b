"""Figures 3, 4, 7 and 8 of the RaCT paper (Lobel et al., ICLR 2020) from one finished training run.

Reads the workdir W of `python -m ract_jax.main --config=configs/<name>.py --workdir=W` and writes:
  learning_curve.png         validation NDCG@100 over global epochs of all three stages, stages
                             shaded, the best epoch marked (Figure 3; from `metrics.jsonl`);
  scatter_nll_vs_ndcg.png    NLL vs NDCG@100 of the test users, one panel per model present (the
                             pre-trained actor, as the paper's F.2, and the final RaCT model), r in
                             the titles (Figure 4a);
  scatter_critic_vs_ndcg.png the critic's estimate vs NDCG@100 of the test users of the final
                             model, r in the title (Figure 4b);
  ndcg_at_r.png              test NDCG@R before (actor) and after (RaCT) (Figure 7);
  ndcg_by_activity.png       test NDCG@100 vs user activity (fold-in + held-out items) and its mean
                             per activity group, before and after (Figure 8).
A figure whose inputs are missing is skipped with a note.

Usage (from the repository root; needs matplotlib: `.venv/bin/pip install matplotlib`, or the
package's `plots` extra):
  python experiments/plots.py W                 # PNGs into W
  python experiments/plots.py W --out figs/ --activity-edges 250,500,750 --max-activity 1000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Sequence

import numpy as np


def _load_report_module():
  """experiments/report.py, loaded by path (works as a script and when imported by tests)."""
  name = "ract_experiments_report"
  if name in sys.modules:
    return sys.modules[name]
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


report = _load_report_module()

STAGE_STYLE = {  # stage -> (label, shade colour)
    "actor": ("stage 1: actor pre-training", "#dbe9f6"),
    "critic": ("stage 2: critic pre-training", "#fde9d4"),
    "ac": ("stage 3: actor-critic", "#ddf0dd"),
}
BEFORE_COLOR, AFTER_COLOR = "tab:blue", "tab:red"


def pyplot():
  """matplotlib.pyplot on the Agg backend; exits with a clear message when matplotlib is missing."""
  try:
    import matplotlib
  except ImportError:
    raise SystemExit("plots.py needs matplotlib: `.venv/bin/pip install matplotlib` "
                     "(or install the package with its `plots` extra: pip install -e '.[plots]')")
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  pyplot().close(fig)
  return path


def plot_learning_curve(metrics: Sequence[dict], path: str, title: str = "",
                        results: dict | None = None) -> str | None:
  """Figure 3: validation NDCG@100 per global epoch (1-based), stages shaded, best marked.

  The star is the trainer's selected epoch when `results` says which (`report.selected_row`),
  else the first best. A dotted line marks the best value reached in stage 1 (the pre-trained
  actor's plateau). Returns the path written, or None without rows.
  """
  rows = [r for r in metrics if r.get("val", {}).get("ndcg@100") is not None]
  if not rows:
    return None
  plt = pyplot()
  x = np.array([r["global_epoch"] + 1 for r in rows])
  y = np.array([r["val"]["ndcg@100"] for r in rows], np.float64)
  stages = [r.get("stage", "actor") for r in rows]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for stage, (label, color) in STAGE_STYLE.items():
    xs = x[[s == stage for s in stages]]
    if xs.size:
      ax.axvspan(xs.min() - 0.5, xs.max() + 0.5, color=color, alpha=0.8, lw=0, label=label)
  ax.plot(x, y, "-", color="k", lw=1.2, marker="." if x.size <= 60 else None,
          label="validation NDCG@100")
  actor_y = y[[s == "actor" for s in stages]]
  if actor_y.size and len(set(stages)) > 1:
    ax.axhline(actor_y.max(), color=BEFORE_COLOR, ls=":", lw=1,
               label=f"best stage-1 (actor) {actor_y.max():.4f}")
  b = report.selected_row(rows, results or {})
  if b is not None:
    ax.plot([b["global_epoch"] + 1], [b["val"]["ndcg@100"]], "*", color=AFTER_COLOR, ms=14,
            label=f"best {b['val']['ndcg@100']:.4f} (epoch {b['global_epoch'] + 1}, {b['stage']})")
  ax.set_xlabel("epoch (all stages, 1-based)")
  ax.set_ylabel("validation NDCG@100")
  ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
  lo, hi = np.nanmin(y), np.nanmax(y)
  pad = 0.05 * (hi - lo) if hi > lo else 0.01
  ax.set_ylim(lo - pad, hi + 3 * pad)
  ax.set_title(title or "Validation NDCG@100 over training (Figure 3)")
  ax.legend(loc="lower right", fontsize=8)
  return _save(fig, path)


def _point_style(n: int) -> dict:
  """Marker size and alpha for a scatter of n points (big dots for a few, faint ones for many)."""
  return {"s": float(np.clip(20000.0 / max(n, 1), 3.0, 25.0)),
          "alpha": float(np.clip(300.0 / max(n, 1), 0.25, 0.8))}


def _scatter(ax, x, y, xlabel: str, title: str, color: str) -> float:
  r = report.pearson(x, y)
  ax.scatter(x, y, color=color, lw=0, **_point_style(len(x)))
  ax.set_xlabel(xlabel)
  ax.set_ylabel("test NDCG@100")
  ax.set_title(f"{title}: r = {r:.3f}")
  return r


def plot_scatter_nll(actor: dict | None, ract: dict | None, path: str) -> str | None:
  """Figure 4a: per-test-user NLL vs NDCG@100, one panel per model present, Pearson r in titles."""
  panels = [(n, d, c) for n, d, c in (("pre-trained actor", actor, BEFORE_COLOR),
                                        ("RaCT (final)", ract, AFTER_COLOR))
            if d is not None and "nll" in d]
  if not panels:
    return None
  plt = pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
  for ax, (name, d, color) in zip(axes[0], panels):
    d = report._with_heldout(d)
    _scatter(ax, d["nll"], d["ndcg@100"], "NLL (fold-in + held-out items)", name, color)
  fig.suptitle("NLL vs NDCG@100 on test users (Figure 4a)")
  return _save(fig, path)


def plot_scatter_critic(ract: dict | None, path: str) -> str | None:
  """Figure 4b: the final critic's estimate vs NDCG@100 per test user, Pearson r in the title."""
  if ract is None or "critic" not in ract:
    return None
  plt = pyplot()
  d = report._with_heldout(ract)
  fig, ax = plt.subplots(figsize=(5, 4.2))
  r = _scatter(ax, d["critic"], d["ndcg@100"], "critic output", "RaCT critic", AFTER_COLOR)
  lo = float(min(np.min(d["critic"]), np.min(d["ndcg@100"])))
  hi = float(max(np.max(d["critic"]), np.max(d["ndcg@100"])))
  ax.plot([lo, hi], [lo, hi], "--", color="gray", lw=0.8, label="y = x")
  ax.legend(loc="upper left", fontsize=8)
  ax.set_title(f"Critic vs NDCG@100 on test users (Figure 4b): r = {r:.3f}", fontsize=10)
  return _save(fig, path)


def plot_ndcg_at_r(rows: Sequence[dict], path: str) -> str | None:
  """Figure 7: test NDCG@R per cut-off R, actor dashed, RaCT squares (± standard errors)."""
  if not rows:
    return None
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.2))
  rs = np.array([r["R"] for r in rows])
  for side, name, style, color in (("before", "pre-trained actor", "--o", BEFORE_COLOR),
                                   ("after", "RaCT", "s", AFTER_COLOR)):
    if all(r[side] is not None for r in rows):
      ax.errorbar(rs, [r[side] for r in rows], yerr=[r[side + "_se"] for r in rows], fmt=style,
                  color=color, capsize=3, ms=6, label=name)
  for r in rows:
    if r["gain"] is not None:
      ax.annotate(f"{r['gain']:+.4f}", (r["R"], max(r["before"], r["after"])),
                  textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
  ax.set_xscale("log")
  ax.set_xticks(rs)
  ax.set_xticklabels([str(r) for r in rs])
  ax.set_xlabel("R: cut-off value in NDCG@R")
  ax.set_ylabel("test NDCG@R")
  ax.set_title("NDCG@R before and after RaCT (Figure 7)")
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_ndcg_by_activity(actor: dict | None, ract: dict | None, path: str,
                          edges: Sequence[int] = report.PAPER_ACTIVITY_EDGES,
                          activity: str = "total", max_activity: int | None = None) -> str | None:
  """Figure 8: (a) test NDCG@100 vs activity per user, (b) mean NDCG@100 per activity group.

  `max_activity` limits the scatter's x range (the paper shows <= 1000); groups use all users.
  """
  groups = report.activity_groups(actor, ract, edges, activity)
  if not groups:
    return None
  plt = pyplot()
  if actor is not None and ract is not None:
    actor, ract = report.align(actor, ract)
  else:
    actor = report._with_heldout(actor) if actor is not None else None
    ract = report._with_heldout(ract) if ract is not None else None
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
  for d, name, marker, color in ((actor, "pre-trained actor", "o", BEFORE_COLOR),
                                 (ract, "RaCT", "s", AFTER_COLOR)):
    if d is None:
      continue
    a = report.user_activity(d, activity)
    keep = a <= max_activity if max_activity else np.ones_like(a, bool)
    ax1.scatter(a[keep], d["ndcg@100"][keep], marker=marker, color=color, lw=0, label=name,
                **_point_style(int(keep.sum())))
  for e in edges:
    ax1.axvline(e, color="gray", ls=":", lw=0.8)
  what = {"total": "fold-in + held-out", "foldin": "fold-in", "heldout": "held-out"}[activity]
  ax1.set_xlabel(f"# interactions ({what} items)")
  ax1.set_ylabel("test NDCG@100")
  ax1.set_title("(a) per user")
  ax1.legend(fontsize=8, markerscale=3)
  pos = np.arange(len(groups))
  for side, name, style, color in (("before", "pre-trained actor", "--o", BEFORE_COLOR),
                                   ("after", "RaCT", "-s", AFTER_COLOR)):
    ys = [g[side] if g[side] is not None else np.nan for g in groups]
    if not all(np.isnan(ys)):
      ax2.errorbar(pos, ys, yerr=[g[side + "_se"] or 0.0 for g in groups], fmt=style,
                   color=color, capsize=3, label=name)
  ax2.set_xticks(pos)
  ax2.set_xticklabels([f"{g['group']}\n(n={g['n']})" for g in groups], fontsize=8)
  ax2.set_xlabel("# interactions (group)")
  ax2.set_ylabel("mean test NDCG@100")
  ax2.set_title("(b) mean per group")
  ax2.legend(fontsize=8)
  fig.suptitle("NDCG@100 by user activity (Figure 8)")
  return _save(fig, path)


def learning_curve_title(workdir: str) -> str:
  """The learning curve's title from the run's `config.json`: its dataset and actor (the workdir's
  name is the user's own label, not something to publish)."""
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      dataset = json.load(f).get("data", {}).get("name", "")
  except (OSError, ValueError, AttributeError):
    dataset = ""
  what = ", ".join(x for x in (dataset, report.actor_display_name(workdir)) if x)
  return f"Validation NDCG@100 over the three stages (Figure 3): {what}"


def make_plots(workdir: str, out_dir: str | None = None,
               edges: Sequence[int] = report.PAPER_ACTIVITY_EDGES, activity: str = "total",
               max_activity: int | None = None) -> dict[str, str | None]:
  """Writes every figure whose inputs exist; returns {file name: path written or None (skipped)}."""
  pyplot()  # Fail early, with the message, when matplotlib is missing.
  out_dir = out_dir or workdir
  os.makedirs(out_dir, exist_ok=True)
  metrics = report.load_metrics(workdir)
  actor = report.load_per_user(workdir, "actor")
  ract = report.load_per_user(workdir, "ract")
  p = lambda name: os.path.join(out_dir, name)
  return {
      "learning_curve.png": plot_learning_curve(
          metrics, p("learning_curve.png"), learning_curve_title(workdir),
          report.load_results(workdir)),
      "scatter_nll_vs_ndcg.png": plot_scatter_nll(actor, ract, p("scatter_nll_vs_ndcg.png")),
      "scatter_critic_vs_ndcg.png": plot_scatter_critic(ract, p("scatter_critic_vs_ndcg.png")),
      "ndcg_at_r.png": plot_ndcg_at_r(report.ndcg_at_r(actor, ract), p("ndcg_at_r.png")),
      "ndcg_by_activity.png": plot_ndcg_by_activity(actor, ract, p("ndcg_by_activity.png"), edges,
                                                    activity, max_activity),
  }


def main(argv: Sequence[str] | None = None) -> dict[str, str | None]:
  """Command line: writes the PNGs and prints what was written or skipped."""
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("workdir", help="training workdir")
  ap.add_argument("--out", default=None, help="output folder (default: the workdir)")
  ap.add_argument("--activity-edges", type=report.parse_edges, default=report.PAPER_ACTIVITY_EDGES,
                  help="activity group edges (default 250,500,750)")
  ap.add_argument("--activity", choices=("total", "foldin", "heldout"), default="total")
  ap.add_argument("--max-activity", type=int, default=None,
                  help="x limit of the activity scatter (the paper shows <= 1000)")
  args = ap.parse_args(argv)
  if not os.path.isdir(args.workdir):
    ap.error(f"not a directory: {args.workdir}")
  written = make_plots(args.workdir, args.out, args.activity_edges, args.activity,
                       args.max_activity)
  for name, path in written.items():
    print(f"wrote {path}" if path else f"skipped {name} (its inputs are missing)")
  return written


if __name__ == "__main__":
  main()
