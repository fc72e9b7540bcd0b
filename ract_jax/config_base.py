"""The shared base of every dataset config (`configs/<name>.py` files build on it).

Each dataset file (`configs/ml20m.py`, `configs/msd.py`, ...) calls `get_base_config()` and overrides
what differs; `load("configs/msd.py:smoke")` reads such a file by path, as `--config=` does. Defaults reproduce the RaCT paper (Lobel et al. 2020, Tables 4 and 5) on the Liang et al.
(2018) strong-generalisation protocol; where the authors' code differs, a key below selects it and its
comment says which behaviour the default reproduces.

Every key here can be set from the command line, e.g. `--config.schedule.actor_epochs=10`.
"""

import ml_collections
from ml_collections import config_dict


def get_base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Which reading a config follows where the paper's text and the authors' code differ: 'paper' or
  # 'authors' (set by the `:paper` / `:authors` variant, see PROFILES and docs/profiles.md).
  c.profile = "paper"
  c.seed = 98765  # The authors' global seed (np.random.seed / tf.set_random_seed).

  # ---- Data: raw files -> Liang protocol -> processed directory. -------------------------------
  c.data = d = ml_collections.ConfigDict()
  d.name = "synthetic"  # Used for the cache folder name and in logs.
  # Raw format: ml20m | netflix | msd | ml1m | ml100k | delimited | adjacency | synthetic.
  d.format = "synthetic"
  d.raw_path = ""  # File or folder of the raw download.
  d.processed_dir = ""  # '' -> $RACT_JAX_CACHE (or ~/.cache/ract_jax)/processed/<name>-<key>.
  d.heldout_users = 10_000  # H: validation users = test users = H (paper Table 3).
  # Keep rows with rating > threshold (strictly; Liang's 3.5 for ML-20M/Netflix). None keeps all.
  d.rating_threshold = config_dict.placeholder(float)
  d.min_item_count = 0  # First: keep items with >= this many rows (MSD: 200). 0 disables.
  d.min_user_count = 5  # Then: keep users with >= this many rows (MSD: 20).
  d.split_seed = 98765  # Liang's seed for the user permutation and for each 80/20 split.
  d.heldout_fraction = 0.2  # int(fraction * n) of a held-out user's items are to be predicted.
  d.min_items_to_split = 5  # Held-out users with fewer items keep them all as fold-in.
  # Generic formats (delimited / adjacency).
  d.delimiter = ","  # 'tab', 'space', 'whitespace' or a literal delimiter.
  d.header = False  # The delimited file's first line is a header.
  d.user_col = 0
  d.item_col = 1
  d.rating_col = -1  # -1: no rating column.
  d.id_type = "int"  # 'int' (ids sort numerically) or 'str' (ids sort as strings, like MSD).
  # Synthetic data (format 'synthetic'): deterministic by seed.
  d.synthetic = s = ml_collections.ConfigDict()
  s.n_users = 3000
  s.n_items = 1000
  s.mean_items_per_user = 40.0  # Log-normal user activity with this mean.
  s.activity_sigma = 0.8
  s.popularity_exponent = 1.0  # Zipf-like item popularity.
  s.rank = 16  # Low-rank taste structure.
  s.taste_strength = 2.0
  s.seed = 0

  # ---- Actor (stage 1: MLE pre-training). --------------------------------------------------------
  c.actor = a = ml_collections.ConfigDict()
  a.kind = "multvae"  # multvae (variational) | multdae (denoising autoencoder).
  # ract: I-600-(200 mu, 200 logvar)-600-I; liang: I-600-400(split)-600-I (DAE: I-200-I);
  # linear: no hidden layer, no non-linearity (Table 2 "VAE (Linear)", the authors' MF/WARP AE).
  a.shape = "ract"
  # The per-user training loss (ract_jax/losses.py), also the critic's first feature (eq. 5):
  # multinomial | gaussian | weighted_sq | warp | lambdarank.
  a.loss = "multinomial"
  a.positive_weight = 5.0  # weighted_sq: weight of observed items (the authors' MF: 5).
  a.warp_rank = "violations"  # warp: r_i = violating negatives ('position': overall rank).
  a.warp_margin = 1.0
  a.deterministic = False  # VAE with a delta posterior at mu (Table 2 "VAE (beta = 0)").
  a.hidden_dim = 600  # Table 4.
  a.latent_dim = 200  # Table 4.
  a.keep_prob = 0.5  # Bernoulli mask b ~ Ber(0.5) on the input (eq. 2).
  # The first layer's input: 'l2' (eq. 2: l2-normalised row, dropout rescaled by 1/keep_prob) or
  # 'binary' (the raw masked 0/1 row EASE is defined on; the item-item actor).
  a.input_norm = "l2"
  # The actor's starting point: 'random' (Table 4's initialisers) or 'ease' (the item-item actor's
  # B = EASE's closed form at the lambda chosen on validation over config.baselines.ease_lambdas;
  # then stage 1 may be skipped with schedule.actor_epochs=0).
  a.init = "random"
  a.item_item_scale = 1.0  # item_item: tau in logits = tau * x B (the NLL's temperature only).
  a.learning_rate = 1e-3  # Adam.
  # The first layer's form (the same numbers up to float summation order): 'sparse' (a gather over
  # the batch's entries), 'dense' (the [B, M] input built inside jit, one matmul) or 'auto': dense
  # when the training data's density (interactions / users x items) is >= dense_above_density.
  a.first_layer = "auto"
  # Measured on CPU (first layer alone, B 500, M 3,690; BUILD.md): sparse wins up to 10-20%, dense
  # at 40%; the sparse form wins on every dataset here (ML-1M 4.5%, ML-20M 0.36%, MSD 0.14%).
  a.dense_above_density = 0.15
  # The actor's matmuls: 'default' (the backend's own float32 choice: float32 on CPU, TF32 on recent
  # NVIDIA GPUs), 'highest' (true float32) or 'tf32'. 'bf16' was measured and is refused (it lost
  # 0.0033 test NDCG@100 on ml-1m-implicit; actors/base.py NOT_OFFERED).
  a.matmul_precision = "default"
  a.l2 = 0.0  # Weight decay added to the loss (the VAE has none; DAE: see configs).
  a.l2_on_biases = False  # RaCT's DAE regularises biases too; Liang's only weights.
  # beta schedule (eq. 4): 'epochs' follows Table 5 (anneal over `anneal_epochs`, then fixed);
  # 'steps' is the authors' code: min(cap, step / total_anneal_steps).
  a.anneal_schedule = "epochs"
  a.anneal_cap = 0.2  # Table 5 beta_max.
  a.anneal_epochs = 100  # Table 5 "# epochs for annealing".
  a.total_anneal_steps = 200_000

  # ---- Critic (stages 2 and 3). -------------------------------------------------------------------
  c.critic = k = ml_collections.ConfigDict()
  # 'features': eq. 5's feature critic. 'naive': section 3's critic on [pi_p, x_p] (2M inputs, one
  # hidden layer of `naive_hidden`), which the paper reports failed; for comparison only.
  k.kind = "features"
  k.naive_hidden = 100
  k.hidden_dims = (100, 100, 10)  # Table 4, ReLU; then 1 sigmoid.
  k.learning_rate = 1e-4
  k.l2 = 1e-4  # Authors: 1e-4 * sum(theta^2) / batch_size, biases included.
  # 'batchnorm': normalise the 3 features as Table 4 says (running statistics at evaluation);
  # 'none': the authors' code exactly (their batch norm was frozen at the identity).
  k.normalize = "batchnorm"
  k.bn_debias = True  # Bias-correct the running statistics (False: plain TF moving averages).
  k.metric = "ndcg"  # Oracle target: ndcg | recall (Table 6).
  k.k = 100
  k.use_seen = True  # |H1| feature (Figure 5 ablation).
  k.use_unseen = True  # |H0| feature.
  # Extra features after the paper's three (beyond the paper; each off unless listed), names of
  # critic.features.FEATURES: nll_seen, nll_unseen (the multinomial NLL on the input / the items
  # to predict), entropy (of the softmax), margin (k-th minus (k+1)-th score, k = critic.k, input
  # items excluded), top_std (std of the top-k scores). E.g. ("nll_unseen", "margin").
  k.features = ()
  k.seed = 0  # Critic initialisation stream (folded into config.seed); vary to test init seeds.
  # After stage 2, a critic whose training-batch Pearson r with the oracle (the last critic epoch's
  # `critic_r`) is below this gets a WEAK CRITIC warning naming schedule.min_critic_steps; with
  # `stop_if_weak` the run stops there instead (its stage-2 state is saved). 0 disables.
  k.min_train_r = 0.3
  k.stop_if_weak = False

  # ---- Stage 3 (alternating actor-critic). --------------------------------------------------------
  c.ac = ml_collections.ConfigDict()
  c.ac.actor_learning_rate = 2e-6
  c.ac.elbo_weight = 0.0  # Authors: pure -critic, no ELBO term.
  # How the critic normalises its features inside the actor's objective (eq. 7): 'eval' uses its
  # running statistics (a fixed affine map, as the authors' frozen batch norm was), 'train' the
  # current batch's statistics. The critic's own MSE step always uses the batch's statistics.
  c.ac.critic_mode = "eval"
  # What the actor follows in stage 3. 'critic': eq. 7 (RaCT). A ranking loss of `losses.LOSSES`
  # ('warp', 'lambdarank'): Table 1's L2R rows, i.e. the pre-trained actor fine-tuned on that loss in
  # place of the critic (the authors' MultiVAEWithPhase4WARP / ...LambdaRank, `main_warp_critic.py`,
  # `main_lambdarank_critic.py`): no critic, no KL, no L2, Adam at `ac.actor_learning_rate` (theirs
  # 1e-3, fresh), and the model is selected among these epochs only (their second `train()` call
  # restarts the best score). Presets `vae_warp_ft` / `vae_lambdarank_ft` set it.
  c.ac.objective = "critic"

  # ---- Schedule (Table 5, ML-20M by default). -----------------------------------------------------
  c.schedule = ml_collections.ConfigDict()
  c.schedule.actor_epochs = 150
  c.schedule.critic_epochs = 50
  c.schedule.ac_epochs = 50
  # Stage 2 runs at least this many critic steps: its epochs are raised to
  # ceil(min_critic_steps / steps per epoch) (logged). 500 = Table 5's 50 epochs on ML-1M (10 steps
  # each); ML-20M (2,340) is unaffected. On ml-100k (2 steps per epoch) 50 epochs left the critic's
  # training r at 0.26, 500 steps at 0.55 (docs/profiles.md). 0 disables.
  c.schedule.min_critic_steps = 500

  c.batch_size = 500  # Users per step, global across devices.
  # A workdir whose stage 1 finished (its actor_best/): skip stage 1 and start stages 2-3 from that
  # actor, e.g. for critic seeds or the Figure 5 ablations on one pre-trained actor.
  c.pretrained_actor = ""

  # ---- Evaluation. --------------------------------------------------------------------------------
  c.eval = e = ml_collections.ConfigDict()
  e.batch_size = 2000  # Liang's evaluation batch; does not change metrics.
  e.ndcg_ks = (10, 20, 50, 100, 200)
  e.recall_ks = (10, 20, 50, 100)
  # Users with no held-out items: 'skip' leaves them out of every mean (Liang's mean would be NaN);
  # 'zero' counts them as 0, as the authors' code does (IDCG floored at 0.1).
  e.empty_users = "skip"

  # ---- Baselines evaluated beside the actor. ------------------------------------------------------
  c.baselines = b = ml_collections.ConfigDict()
  b.names = ("popularity", "ease")
  # EASE's lambda, chosen on validation NDCG@100 with one eigendecomposition for the whole grid:
  # 16 log-spaced values from 1 to 1e5 (ract_jax.baselines.ease_search.DEFAULT_LAMBDAS).
  b.ease_lambdas = (1.0, 2.15, 4.64, 10.0, 21.5, 46.4, 100.0, 215.0, 464.0, 1000.0, 2150.0, 4640.0,
                    10000.0, 21500.0, 46400.0, 100000.0)
  # A hard cap on EASE's items; below it, EASE is also skipped (with a message, before training)
  # when its dense M x M matrices would not fit in the memory free at the time (BUILD.md).
  b.ease_max_items = 100_000
  # The search's decomposition: float32 (False; about twice as fast on a CPU, and every lambda within
  # ease_search.RECHECK_NDCG of the best is re-validated with the closed form) or float64 on the host.
  b.ease_float64 = False
  # Table 1's other baselines (add them to `names`); every tuple is a grid searched on validation.
  b.wmf = ml_collections.ConfigDict(dict(k=(100,), alpha=(1.0, 2.0, 5.0), lam=(10.0, 30.0, 100.0),
                                         iters=(10,)))
  b.slim = ml_collections.ConfigDict(dict(l1=(1.0, 5.0), l2=(500.0,), iters=(300,)))
  b.slim_max_items = 25_000  # SLIM solves a dense M x M problem.
  b.cdae = ml_collections.ConfigDict(dict(hidden=(200,), epochs=(30,), corruption=(0.5,)))

  # ---- Checkpoints (none of these keys changes results). ------------------------------------------
  c.checkpoint = ml_collections.ConfigDict()
  # The full resumable state is saved at the end of each stage, every `every_minutes` of wall time
  # (0: after every epoch) and on SIGTERM / SIGINT; a resumed run replays the epochs after it.
  c.checkpoint.every_minutes = 10.0
  c.checkpoint.keep = 2  # Full states kept; the older one is the fall-back of a damaged latest one.
  c.checkpoint.async_save = True  # Write while the next epoch runs.

  # ---- Progress inside epochs (none of these keys changes results). -------------------------------
  c.progress = ml_collections.ConfigDict()
  # A line with users/s and the epoch's ETA every `seconds` inside long epochs (0: none).
  c.progress.seconds = 30.0
  # Dispatches of one compiled chunk of steps per epoch (train/loops.py; bit-identical for any
  # value): 0 = auto (up to 16 chunks of >= 16 steps; 1 when progress.seconds is 0), 1 = one scan.
  c.progress.epoch_chunks = 0
  # TensorBoard scalars of every epoch's record in <workdir>/tensorboard/ (train/summaries.py):
  # 'auto' = when a writer package is installed (tensorboardX, torch + tensorboard, flax +
  # tensorflow), 'off', or one of those names (then required).
  c.progress.tensorboard = "auto"

  # ---- Runtime. -----------------------------------------------------------------------------------
  c.distributed = False  # Call jax.distributed.initialize() (SLURM / TPU pods / multi-host).
  # With distributed=True: where the processes meet. Empty / 0 / -1 values come from the
  # environment (SLURM, Open MPI, TPU pods; JAX_COORDINATOR_ADDRESS), e.g. for a run of two
  # processes on one machine: coordinator_address='127.0.0.1:PORT', num_processes=2, process_id=i.
  c.cluster = ml_collections.ConfigDict()
  c.cluster.coordinator_address = ""  # host:port of process 0.
  c.cluster.num_processes = 0
  c.cluster.process_id = -1
  # Cross-process collectives of JAX's CPU backend ('gloo' or 'mpi'; '' = JAX's default, none).
  c.cluster.cpu_collectives = "gloo"
  c.cluster.initialization_timeout = 300  # Seconds to wait for every process to join.
  # A process that sends no heartbeat for this long is dead: the others then stop with an error
  # (they would otherwise wait in a collective for ever).
  c.cluster.heartbeat_seconds = 100
  # A finished workdir re-run prints its results and exits; True re-runs the final test evaluation.
  c.reevaluate = False
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a config for tests: tiny model, few epochs, small batches."""
  c.actor.hidden_dim = 32
  c.actor.latent_dim = 8
  c.critic.hidden_dims = (16, 16, 4)
  c.schedule.actor_epochs = 2
  c.schedule.critic_epochs = 1 if c.ac.objective == "critic" else 0  # An L2R fine-tuning has none.
  c.schedule.ac_epochs = 1
  c.schedule.min_critic_steps = 0
  c.actor.anneal_epochs = 1
  c.batch_size = 64
  c.eval.batch_size = 128
  c.baselines.ease_lambdas = (100.0, 500.0)
  return c


# The actors of the paper's Table 2, selected with a config variant, e.g.
# `--config=configs/ml1m_implicit.py:warp` or `:smoke,dae_liang` (the `paper` profile's form of each;
# the `authors` profile changes some, see AUTHORS_ACTORS and docs/profiles.md).
ACTOR_PRESETS = {
    "vae": {},  # Mult-VAE, RaCT's shape (the default).
    "vae_gaussian": {"loss": "gaussian"},
    "vae_beta0": {"deterministic": True, "anneal_cap": 0.0},
    "vae_linear": {"shape": "linear"},
    # Liang's DAE: I-200-I, L2 lam * sum(w^2) with lam = 0.01 / batch (weights only).
    "dae_liang": {"kind": "multdae", "shape": "liang", "l2": 0.01 / 500},
    # RaCT's DAE: I-600-200-600-I, L2 1e-5 on all parameters (main_dae.py).
    "dae_ract": {"kind": "multdae", "shape": "ract", "l2": 1e-5, "l2_on_biases": True},
    # The authors' MF: a linear I-200-I AE, weighted squared error (positives x5), reg 1e-4.
    "mf": {"kind": "multdae", "shape": "linear", "loss": "weighted_sq", "l2": 1e-4,
           "l2_on_biases": True},
    # Table 2's WARP actor from scratch: the linear I-200-I AE trained with the paper's eq. 9 as
    # written (margin 1, r_i = the violating negatives, Weston et al.'s rank), no L2. The authors'
    # WarpEncoder (margin 0, r_i = overall sorted position, L2 1e-5 on all parameters, main_warp.py,
    # warp_utils.ErrorVectorCreator) is `warp,authors`.
    "warp": {"kind": "multdae", "shape": "linear", "loss": "warp"},
    # LambdaRank for NDCG on the VAE's architecture (the loss replaces the NLL, KL kept).
    "lambdarank": {"loss": "lambdarank"},
    # Beyond the paper (issue 14): the item-item actor started from EASE, raw 0/1 input, the 80/20
    # split of evaluation as its dropout; stage 1 may be skipped (schedule.actor_epochs=0).
    "item_item": {"kind": "item_item", "shape": "full", "input_norm": "binary", "init": "ease",
                  "keep_prob": 0.8, "item_item_scale": 5.0, "learning_rate": 1e-5},
    # The same with B = B0 + U V, B0 (EASE) frozen, U V of rank latent_dim trained.
    "item_item_lowrank": {"kind": "item_item", "shape": "lowrank", "latent_dim": 32,
                          "input_norm": "binary", "init": "ease", "keep_prob": 0.8,
                          "item_item_scale": 5.0, "learning_rate": 1e-5},
}

# Table 1's WARP and LambdaRank rows: a Mult-VAE pre-trained as usual (stage 1), then fine-tuned on
# the L2R loss in place of the critic (stage 3 with `ac.objective`, no stage 2): the authors'
# `MultiVAEWithPhase4WARP` / `...LambdaRank` (main_warp_critic.py: 50 epochs; main_lambdarank_critic.py:
# 25), fresh Adam at their actor learning rate 1e-3, the model selected among these epochs.
FINETUNE_PRESETS = {
    "vae_warp_ft": {"ac.objective": "warp", "ac.actor_learning_rate": 1e-3,
                    "schedule.critic_epochs": 0, "schedule.ac_epochs": 50},
    "vae_lambdarank_ft": {"ac.objective": "lambdarank", "ac.actor_learning_rate": 1e-3,
                          "schedule.critic_epochs": 0, "schedule.ac_epochs": 25},
}

# Where the paper's text and the authors' code differ, a profile picks one (docs/profiles.md gives
# the reason and the source of every key). `paper` is the defaults above.
PROFILES = {
    "paper": {},
    "authors": {
        "critic.normalize": "none",  # Their batch norm was frozen at the identity.
        "actor.anneal_schedule": "steps",  # beta = min(cap, step / 200000) per batch (training.py).
        "eval.empty_users": "zero",  # IDCG floored at 0.1: no held-out items -> 0 in the mean.
    },
}

# With the `authors` profile, an actor preset becomes the authors' script for that actor.
AUTHORS_ACTORS = {
    "warp": {"actor.warp_margin": 0.0, "actor.warp_rank": "position", "actor.l2": 1e-5,
             "actor.l2_on_biases": True},  # WarpEncoder, main_warp.py.
    "vae_warp_ft": {"actor.warp_margin": 0.0, "actor.warp_rank": "position"},  # Phase 4: no L2.
    "vae_gaussian": {"actor.loss": "weighted_sq", "actor.positive_weight": 2.0},  # GaussianVAE.
    # main_linear_vae.py runs VWMF: weighted squared error (x5), max_kl 0.05.
    "vae_linear": {"actor.loss": "weighted_sq", "actor.positive_weight": 5.0,
                   "actor.anneal_cap": 0.05},
}


def _set_keys(c: ml_collections.ConfigDict, values: dict) -> None:
  for dotted, value in values.items():
    block, key = dotted.rsplit(".", 1)
    target = c
    for part in block.split("."):
      target = target[part]
    setattr(target, key, value)


def apply_variant(c: ml_collections.ConfigDict, arg, name: str) -> ml_collections.ConfigDict:
  """Applies a config variant string: comma-separated tokens in any order.

  Tokens: 'smoke', actor presets (`ACTOR_PRESETS`), fine-tuning presets (`FINETUNE_PRESETS`) and
  at most one profile (`PROFILES`: 'paper', the default, or 'authors'), e.g.
  `configs/ml1m_implicit.py:vae_warp_ft,authors`. Presets apply first in their order, then the
  profile, then the profile's form of each preset given (`AUTHORS_ACTORS`). The profile's name is
  kept in `config.profile`.

  Raises:
    ValueError: an unknown token or two profiles (the message lists the valid ones).
  """
  tokens = [t for t in (arg or "").split(",") if t]
  known = {"smoke"} | set(ACTOR_PRESETS) | set(FINETUNE_PRESETS) | set(PROFILES)
  for token in tokens:
    if token not in known:
      raise ValueError(f"configs/{name}.py: unknown variant {token!r}; use 'smoke', one profile of "
                       f"{sorted(PROFILES)} and/or presets of "
                       f"{sorted(ACTOR_PRESETS) + sorted(FINETUNE_PRESETS)} (e.g. "
                       f"--config=configs/{name}.py:smoke,vae_warp_ft,authors).")
  profiles = [t for t in tokens if t in PROFILES]
  if len(profiles) > 1:
    raise ValueError(f"configs/{name}.py: variants {profiles} name two profiles; give one.")
  for token in tokens:
    if token in ACTOR_PRESETS:
      _set_keys(c, {f"actor.{k}": v for k, v in ACTOR_PRESETS[token].items()})
    elif token in FINETUNE_PRESETS:
      _set_keys(c, FINETUNE_PRESETS[token])
  c.profile = profiles[0] if profiles else "paper"
  _set_keys(c, PROFILES[c.profile])
  if c.profile == "authors":
    for token in tokens:
      _set_keys(c, AUTHORS_ACTORS.get(token, {}))
  return c


def is_smoke(arg) -> bool:
  return "smoke" in (arg or "").split(",")


def fixture(relative: str) -> str:
  """Absolute path of a raw-format fixture shipped in `tests/fixtures/` (used by `:smoke` variants)."""
  import os
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "fixtures",
                      relative)


def shared_data(relative: str) -> str:
  """Absolute path under `../shared/data/` beside the repository (the real MovieLens samples)."""
  import os
  return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                       os.pardir, "shared", "data", relative))


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads a config file by path, as `--config=PATH[:ARG]` does: `get_config(ARG)` of that file.

  Args:
    spec: `path/to/file.py` or `path/to/file.py:arg` (e.g. `configs/ml1m_implicit.py:smoke,warp`).

  Returns:
    The ConfigDict (unlocked).
  """
  import importlib.util
  import os
  path, _, arg = spec.partition(":")
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(path):
    raise ValueError(f"--config={spec}: no config file at {path}.")
  module_spec = importlib.util.spec_from_file_location(
      "ract_jax_config_" + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def check_arg(arg, name: str) -> None:
  """Validates a variant string before anything is built (see `apply_variant`)."""
  apply_variant(get_base_config(), arg, name)
