"""Do two training runs' results agree? Compares two workdirs file by file, timings left out.

  python experiments/compare_runs.py W_before W_after

- `results.json`: every value, except keys named `seconds` (or ending in `_seconds`);
- `metrics.jsonl`: every record, except `seconds`, `val_seconds` and `users_per_s`;
- `predictions*.tsv` and `per_user_*.npz`: byte for byte / array for array.

Prints one line per file, then each run's median validation time per epoch, and exits 1 when
anything differs (0 when all agree).
"""

from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

TIMING = ("seconds", "val_seconds", "users_per_s")


def _flat(value, prefix: str = "") -> dict:
  if isinstance(value, dict):
    out = {}
    for k, v in value.items():
      out.update(_flat(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: value}


def _untimed(record: dict) -> dict:
  return {k: v for k, v in _flat(record).items()
          if k.rsplit(".", 1)[-1] not in TIMING and not k.endswith("_seconds")}


def _compare_json(a: str, b: str) -> list[str]:
  fa, fb = (_untimed(json.load(open(p))) for p in (a, b))
  return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
          if fa.get(k) != fb.get(k)]


def _compare_jsonl(a: str, b: str) -> list[str]:
  ra, rb = ([_untimed(json.loads(line)) for line in open(p)] for p in (a, b))
  out = [f"{len(ra)} records -> {len(rb)}"] if len(ra) != len(rb) else []
  for i, (x, y) in enumerate(zip(ra, rb)):
    out += [f"record {i + 1} {k}: {x.get(k)!r} -> {y.get(k)!r}"
            for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
  return out


def _compare_npz(a: str, b: str) -> list[str]:
  with np.load(a) as x, np.load(b) as y:
    return [f"{k} differs" for k in sorted(set(x) | set(y))
            if k not in x or k not in y or not np.array_equal(x[k], y[k])]


def _compare_bytes(a: str, b: str) -> list[str]:
  with open(a, "rb") as x, open(b, "rb") as y:
    return [] if x.read() == y.read() else ["contents differ"]


def main(argv=None) -> int:
  args = sys.argv[1:] if argv is None else argv
  if len(args) != 2 or not all(os.path.isdir(d) for d in args):
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    print(f"error: give two workdirs, got {args}", file=sys.stderr)
    return 2
  a, b = args
  names = {"results.json": _compare_json, "metrics.jsonl": _compare_jsonl}
  for pattern, fn in (("predictions*.tsv", _compare_bytes), ("per_user_*.npz", _compare_npz)):
    for path in sorted(glob.glob(os.path.join(a, pattern)) + glob.glob(os.path.join(b, pattern))):
      names.setdefault(os.path.basename(path), fn)
  differ = 0
  for name, fn in names.items():
    pa, pb = os.path.join(a, name), os.path.join(b, name)
    if not (os.path.exists(pa) and os.path.exists(pb)):
      print(f"{name}: only in {a if os.path.exists(pa) else b}")
      differ += 1
      continue
    lines = fn(pa, pb)
    differ += bool(lines)
    print(f"{name}: " + ("identical" if not lines else f"{len(lines)} differences, first: "
                         + "; ".join(lines[:3])))
  for path in (a, b):
    records = [json.loads(line) for line in open(os.path.join(path, "metrics.jsonl"))] if (
        os.path.exists(os.path.join(path, "metrics.jsonl"))) else []
    val = [r["val_seconds"] for r in records if "val_seconds" in r]
    if val:
      print(f"timings of {path} (not compared): {len(records)} epochs, median validation "
            f"{np.median(val):.3f} s, epochs {sum(r.get('seconds', 0.0) for r in records):.1f} s")
  print("all identical (timings left out)" if not differ else f"{differ} files differ")
  return 1 if differ else 0


if __name__ == "__main__":
  sys.exit(main())
