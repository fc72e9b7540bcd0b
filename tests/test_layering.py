"""The package's shape stays as drawn in docs/architecture.md: layers only import downwards, and no
module imports itself back through a circle (imports inside functions count too)."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "ract_jax")

# Lowest first. A module may import from its own layer or any layer below, never above.
LAYERS = (
    ("ract_jax.config_base", "ract_jax.metrics", "ract_jax.losses"),  # pure definitions
    ("ract_jax.data",),  # host-side data: raw files -> Liang split -> processed directory
    ("ract_jax.device",),  # the mesh, device CSR and device batches
    ("ract_jax.actors", "ract_jax.critic"),  # models: pure functions of parameters
    ("ract_jax.evaluate", "ract_jax.baselines", "ract_jax.model_io"),  # evaluation, reference
    # models, the saved model's format
    ("ract_jax.train",),  # the three stages, state, checkpoints, records
    ("ract_jax.main", "ract_jax.recommend", "ract_jax.export", "ract_jax.evaluate_model",
     "ract_jax.histories"),
)


def _modules() -> dict[str, str]:
  out = {}
  for folder, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(folder, f)
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
  return out


def _imports(name: str, path: str, modules: dict) -> set[str]:
  """The package modules `name` imports (a `from pkg import x` names module pkg.x if there is one)."""
  tree = ast.parse(open(path, encoding="utf-8").read(), path)
  is_pkg = path.endswith("__init__.py")
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name.startswith("ract_jax")}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # Relative import.
        parts = name.split(".")[:len(name.split(".")) - node.level + (1 if is_pkg else 0)]
        base = ".".join(parts + ([base] if base else []))
      if not base.startswith("ract_jax"):
        continue
      for a in node.names:
        out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
  return {m for m in out if m in modules and m != name}


def _layer(module: str) -> int:
  for i, prefixes in enumerate(LAYERS):
    if any(module == p or module.startswith(p + ".") for p in prefixes):
      return i
  raise AssertionError(f"{module} is in no layer of tests/test_layering.py: add it to LAYERS "
                       "(and to docs/architecture.md).")


def test_every_module_imports_only_its_own_layer_or_below():
  modules = _modules()
  upward = []
  for name, path in modules.items():
    if name == "ract_jax":
      continue
    for dep in _imports(name, path, modules):
      if dep != "ract_jax" and _layer(dep) > _layer(name):
        upward.append(f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})")
  assert not upward, "\n".join(upward)


def test_no_import_circle():
  modules = _modules()
  graph = {name: _imports(name, path, modules) for name, path in modules.items()}
  state, stack, circles = {}, [], []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for dep in sorted(graph[node]):
      if state.get(dep) == "open":
        circles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
      elif dep not in state:
        visit(dep)
    stack.pop()
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node)
  assert not circles, "\n".join(circles)


def test_files_stay_small():
  long = {name: n for name, path in _modules().items()
          if (n := sum(1 for _ in open(path, encoding="utf-8"))) > 420}
  assert not long, f"modules over ~400 lines (one idea per file): {long}"


def test_the_layering_check_catches_an_upward_import(tmp_path):
  """The checker itself: an evaluation module importing the trainer is reported."""
  path = tmp_path / "evaluate.py"
  path.write_text("from ract_jax.train import trainer\n")
  modules = dict(_modules(), **{"ract_jax.evaluate": str(path)})
  deps = _imports("ract_jax.evaluate", str(path), modules)
  assert "ract_jax.train.trainer" in deps
  assert _layer("ract_jax.train.trainer") > _layer("ract_jax.evaluate")


# Inside ract_jax/data, each module imports only modules before it, and none imports JAX.
DATA_LAYERS = ["errors", "csr", "textio", "blockio", "atomic_dir", "formats", "protocol", "processed",
          "store", "prepare"]


def _data_imports(path: str) -> set:
  tree = ast.parse(open(path).read())
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ract_jax.data"):
      rest = node.module.split(".")[2:]
      out |= {rest[0]} if rest else {a.name for a in node.names}
    elif isinstance(node, ast.Import):
      out |= {a.name.split(".")[2] for a in node.names if a.name.startswith("ract_jax.data.")}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
      assert not any(n == "jax" or n.startswith("jax.") for n in names), (path, names)
  return out


def test_data_layers_import_one_way():
  root = os.path.join(ROOT, "ract_jax", "data")
  found = set()
  for dirpath, _, files in os.walk(root):
    for f in files:
      if not f.endswith(".py") or (dirpath == root and f == "__init__.py"):
        continue
      rel = os.path.relpath(os.path.join(dirpath, f), root)
      layer = rel.split(os.sep)[0].removesuffix(".py")
      found.add(layer)
      for dep in _data_imports(os.path.join(dirpath, f)) - {layer}:
        assert dep in DATA_LAYERS and DATA_LAYERS.index(dep) < DATA_LAYERS.index(layer), (rel, dep)
  assert found == set(DATA_LAYERS)
