"""CDAE (Wu, DuBois, Zheng & Ester, "Collaborative Denoising Auto-Encoders for Top-N Recommender
Systems", WSDM 2016), as Liang et al. (2018) ran it, under strong generalisation.

Model (Wu et al., eq. 5-6). For user u with binary row x_u `[M]` and input corrupted by dropout
(each entry dropped with probability q = `corruption`, kept ones scaled by 1 / (1 - q)):

  z_u = tanh(x~_u W + V_u + b)     `[H]`   (V_u: the per-user embedding, the "C" in CDAE)
  y_u = tanh(z_u W' + b')          `[M]`

Loss and training follow Liang et al. (2018, section 4.4), whose CDAE numbers RaCT's Table 1
copies: user-level mini-batches (whole rows, batch 500) instead of Wu et al.'s (user, item)
sampling; bottleneck H = 200; tanh at both the bottleneck and the output; a *weighted* square loss
"equivalent to the square loss with negative sampling used in the original paper", here

  l_u = sum_i c_i (x_ui - y_ui)^2,   c_i = 1 if x_ui = 1 else `neg_weight`

(the expected square loss when each zero is kept as a sampled negative with probability
`neg_weight`); Adam; weight decay chosen over {0.01, 0.1, ..., 100}. The objective minimised is

  mean_u [ l_u + wd/2 ||V_u||^2 ] + wd/2 (||W||^2 + ||W'||^2)

(biases not decayed), estimated on each mini-batch.

Strong generalisation (held-out users). A held-out user has no learned V_u. Liang et al. state that
"the cdae also requires additional optimization to obtain the latent factor for unseen users"
(section 3) and that the held-out users' fold-in 80% is used "to learn the necessary user-level
representations" (section 4.3); they do not give the procedure. Here `scores` does that
optimisation: V_u starts at 0 and takes `fold_in_steps` Adam steps (rate `fold_in_lr`) on
`l_u + wd/2 ||V_u||^2` with the uncorrupted fold-in row as both input and target and every network
weight fixed. `fold_in_steps = 0` gives the zero-embedding variant (V_u = 0, the mean of the
embeddings' prior). Source of the quotes: the text of Liang et al. (WWW 2018) as stored in a public
repository (read through the search tool), not the authors' code, which does not include CDAE.

Training runs on the device: the training CSR lives there (`ract_jax.data.batches`), each epoch is
one jitted `lax.scan` over user batches, each batch's dense `[B, M]` rows are scattered inside it.
Cost per epoch O(n_users M H) flops; memory O(B M + (M + n_users) H).

Measured on ML-1M (all ratings as implicit; 4,840 training users, 3,690 items; 600 validation
users), 2-core CPU: 30 epochs take ~50 s. Validation NDCG@100 with the defaults (wd = 0.1,
neg_weight = 0.5, q = 0.5, H = 200, lr 1e-3): 0.475 with the fold-in optimisation (50 steps),
0.465 with the zero embedding; with wd = 0.01, neg_weight = 1: 0.456 folded in, 0.471 zero
embedding; neg_weight = 0.1 or 0.02 was much worse (<= 0.43). EASE (lam 500) gives 0.474 there. The
fold-in therefore changes NDCG by about +-0.01 depending on the regularisation; sweep
`fold_in_steps` in {0, 50} with the weight decay.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from ract_jax.device import batches
from ract_jax.data.csr import CSR

DEFAULT_HIDDEN = 200
DEFAULT_EPOCHS = 30
DEFAULT_LR = 1e-3
DEFAULT_CORRUPTION = 0.5
DEFAULT_NEG_WEIGHT = 0.5
DEFAULT_WEIGHT_DECAY = 0.1
DEFAULT_BATCH_SIZE = 500
DEFAULT_FOLD_IN_STEPS = 50
DEFAULT_FOLD_IN_LR = 0.05

_NET = ("enc_w", "enc_b", "dec_w", "dec_b")


def init_params(key, n_items: int, n_users: int, hidden: int) -> dict:
  """Glorot-uniform weights, zero biases, zero user embeddings (float32 dict)."""
  k1, k2 = jax.random.split(key)
  glorot = jax.nn.initializers.glorot_uniform()
  return {
      "enc_w": glorot(k1, (n_items, hidden), jnp.float32),
      "enc_b": jnp.zeros((hidden,), jnp.float32),
      "dec_w": glorot(k2, (hidden, n_items), jnp.float32),
      "dec_b": jnp.zeros((n_items,), jnp.float32),
      "user_emb": jnp.zeros((n_users, hidden), jnp.float32),
  }


def decode(net, pre_hidden, user_vec):
  """Output `tanh(tanh(pre_hidden + user_vec) W' + b')`, `[B, M]`."""
  z = jnp.tanh(pre_hidden + user_vec)
  return jnp.tanh(z @ net["dec_w"] + net["dec_b"])


def user_loss(y, x, neg_weight):
  """Per-user weighted square loss `sum_i c_i (x_i - y_i)^2`, `[B]`."""
  c = jnp.where(x > 0, 1.0, neg_weight)
  return jnp.sum(c * (x - y)**2, axis=-1)


def _batch_loss(params, x_in, x, users, valid, neg_weight, weight_decay):
  """Mini-batch estimate of the objective (module docstring)."""
  v = params["user_emb"][jnp.where(valid, users, 0)]
  pre = x_in @ params["enc_w"] + params["enc_b"]
  y = decode(params, pre, v)
  per_user = user_loss(y, x, neg_weight) + 0.5 * weight_decay * jnp.sum(v * v, axis=-1)
  n = jnp.maximum(jnp.sum(valid), 1)
  data = jnp.sum(jnp.where(valid, per_user, 0.0)) / n
  reg = 0.5 * weight_decay * (jnp.sum(params["enc_w"]**2) + jnp.sum(params["dec_w"]**2))
  return data + reg, data


@functools.partial(jax.jit, static_argnames=("n_items", "cap", "tx"), donate_argnums=(0, 1))
def _epoch(params, opt_state, key, csr, hyper, *, n_items, cap, tx):
  """One pass over the training users (a fresh permutation), as one `lax.scan`."""
  corruption, neg_weight, weight_decay = hyper
  k_perm, k_drop = jax.random.split(key)
  n_users = params["user_emb"].shape[0]
  batch_size = cap[1]
  order = batches.epoch_order(k_perm, n_users, batch_size)

  def step(carry, inp):
    params, opt_state = carry
    users, i = inp
    entries = batches.gather_entries(csr, users, cap[0])
    x = batches.dense_rows(entries, n_items)
    keep = jax.random.bernoulli(jax.random.fold_in(k_drop, i), 1.0 - corruption, x.shape)
    x_in = jnp.where(keep, x / (1.0 - corruption), 0.0)
    valid = entries.user_valid
    (_, data), grads = jax.value_and_grad(_batch_loss, has_aux=True)(
        params, x_in, x, users, valid, neg_weight, weight_decay)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), data

  steps = jnp.arange(order.shape[0])
  (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (order, steps))
  return params, opt_state, jnp.mean(losses)


def fit(train: CSR, hidden: int = DEFAULT_HIDDEN, epochs: int = DEFAULT_EPOCHS,
        lr: float = DEFAULT_LR, corruption: float = DEFAULT_CORRUPTION,
        neg_weight: float = DEFAULT_NEG_WEIGHT, weight_decay: float = DEFAULT_WEIGHT_DECAY,
        batch_size: int = DEFAULT_BATCH_SIZE, fold_in_steps: int = DEFAULT_FOLD_IN_STEPS,
        fold_in_lr: float = DEFAULT_FOLD_IN_LR, seed: int = 0, log=None,
        return_train_state: bool = False):
  """Trains CDAE on the training users with Adam.

  Args:
    train: training users' histories, binary `[n_users, M]` CSR.
    hidden: bottleneck size H (Liang et al.: 200).
    epochs: passes over the training users.
    lr: Adam learning rate.
    corruption: input dropout probability q in [0, 1) (kept entries scaled by 1 / (1 - q)).
    neg_weight: loss weight of the zeros (the ones weigh 1).
    weight_decay: L2 weight `wd` on W, W' and the user embeddings (module docstring).
    batch_size: users per Adam step (Liang et al.: 500).
    fold_in_steps: Adam steps on a held-out user's embedding in `scores` (0: zero embedding).
    fold_in_lr: their learning rate.
    seed: PRNG seed (initialisation, epoch orders, dropout).
    log: optional `print`-like callable, called once per epoch with the mean batch loss.
    return_train_state: also return the full trained parameters (with the training users'
      embeddings `user_emb` `[n_users, H]`).

  Returns:
    `params`: dict of float32 arrays: the network (`enc_w` `[M, H]`, `enc_b` `[H]`, `dec_w`
    `[H, M]`, `dec_b` `[M]`) and the scalars `scores` needs (`neg_weight`, `weight_decay`,
    `fold_in_lr`, and int32 `fold_in_steps`). With `return_train_state`, `(params, full)`.

  Complexity: O(epochs * n_users * M * H) flops.
  """
  if not 0.0 <= corruption < 1.0:
    raise ValueError(f"CDAE corruption must be in [0, 1), got {corruption}")
  n_users, m = train.n_rows, train.n_items
  key = jax.random.PRNGKey(seed)
  key, k_init = jax.random.split(key)
  params = init_params(k_init, m, n_users, hidden)
  tx = optax.adam(lr)
  opt_state = tx.init(params)
  csr = batches.to_device_csr(train)
  cap = (batches.entry_capacity(train, batch_size), int(batch_size))
  hyper = (jnp.float32(corruption), jnp.float32(neg_weight), jnp.float32(weight_decay))
  for ep in range(int(epochs)):
    key, k_ep = jax.random.split(key)
    params, opt_state, loss = _epoch(params, opt_state, k_ep, csr, hyper, n_items=m, cap=cap,
                                     tx=tx)
    if log is not None:
      log(f"cdae epoch {ep + 1}/{epochs}  loss {float(loss):.4f}")
  out = {name: params[name] for name in _NET}
  out.update(neg_weight=jnp.float32(neg_weight), weight_decay=jnp.float32(weight_decay),
             fold_in_lr=jnp.float32(fold_in_lr), fold_in_steps=jnp.int32(fold_in_steps))
  return (out, params) if return_train_state else out


def fold_in(params, fold_in_dense) -> jax.Array:
  """Held-out users' embeddings: `fold_in_steps` Adam steps from 0 on `l_u + wd/2 ||v||^2`.

  The network is fixed; input and target are the uncorrupted fold-in rows. Jittable (the step
  count is a traced scalar, so a `while_loop`).

  Args:
    params: `fit`'s dict.
    fold_in_dense: 0/1 `[B, M]`.

  Returns:
    float32 `[B, H]`.
  """
  x = jnp.asarray(fold_in_dense).astype(jnp.float32)
  pre = x @ params["enc_w"] + params["enc_b"]
  neg_weight, wd, lr = params["neg_weight"], params["weight_decay"], params["fold_in_lr"]

  def loss(v):
    y = decode(params, pre, v)
    return jnp.sum(user_loss(y, x, neg_weight) + 0.5 * wd * jnp.sum(v * v, axis=-1))

  grad = jax.grad(loss)
  b1, b2, eps = 0.9, 0.999, 1e-8

  def body(t, state):
    v, mom, sec = state
    g = grad(v)  # Users are independent: the sum's gradient is each user's own.
    mom = b1 * mom + (1 - b1) * g
    sec = b2 * sec + (1 - b2) * g * g
    tf = (t + 1).astype(jnp.float32)
    step = lr * (mom / (1 - b1**tf)) / (jnp.sqrt(sec / (1 - b2**tf)) + eps)
    return v - step, mom, sec

  z = jnp.zeros(pre.shape, jnp.float32)
  v, _, _ = jax.lax.fori_loop(0, params["fold_in_steps"], body, (z, z, z))
  return v


def scores(params, fold_in_dense) -> jax.Array:
  """CDAE outputs for held-out users, their embeddings folded in from the batch (jittable).

  Args:
    params: `fit`'s dict.
    fold_in_dense: 0/1 `[B, M]` fold-in batch (the caller masks fold-in items to -inf afterwards).

  Returns:
    float32 `[B, M]` (tanh outputs in (-1, 1)).

  Complexity: O((1 + 2 fold_in_steps) B M H) flops.
  """
  x = jnp.asarray(fold_in_dense).astype(jnp.float32)
  v = fold_in(params, x)
  pre = x @ params["enc_w"] + params["enc_b"]
  return decode(params, pre, v)
