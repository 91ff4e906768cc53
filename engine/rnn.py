"""A vanilla RNN and backpropagation through time (BPTT), written out as the lecture derives it.

The model, with row vectors as in the lecture:

    a_t = x_t U + h_{t-1} W + b        h_t = f(a_t)          (f: tanh, sigmoid or ReLU; h_{-1} = 0)
    o_t = h_t V + c                    y_t = softmax(o_t)     L = sum_t L_t,  L_t = -log y_t[target_t]

BPTT here keeps every path apart: for each loss L_t and each earlier state h_k it knows dL_t/dh_k,
so the T x T map of ||dL_t/dh_k|| and the share of every (t, k) path in dL/dW come out of a single
backward sweep. The sweep holds one row per loss (a (T, d) matrix) and multiplies all of them by the
step's Jacobian at once, so its cost is T matrix products of (T, d) x (d, d), not T separate passes.

Only numpy is used, in float64; the tests compare every number with torch autograd.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from engine.text import LECTURE_EXAMPLE, TextTask, Vocabulary, text_task

ACTIVATIONS = ("tanh", "sigmoid", "relu")
INITS = ("small", "orthogonal", "identity")
CLIP_MODES = ("none", "norm", "value")
PARAM_NAMES = ("U", "W", "V", "b", "c")
MAX_STEPS = 200  # longest sequence T the app accepts
MAX_HIDDEN = 256  # largest hidden size d the app accepts
LOG_TINY = -700.0  # ln of the smallest length worth adding (e^-700 ~ 1e-304, still a normal float64)

# The bound on |f'(a)| that the lecture calls gamma: tanh' <= 1, sigmoid' <= 1/4, ReLU' <= 1.
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0}

PRESETS: dict[str, str] = {
    "deep (lecture)": LECTURE_EXAMPLE,
    "deeper": "deeper",
    "deepest": "deepest",
    "hello world": "hello world",
    "one sentence": "the quick brown fox jumps over the lazy dog.",
    "a few sentences": ("a recurrent net reads one letter at a time. it keeps a memory in its hidden state. "
                        "the same weights are used at every step, so errors flow back through all of them."),
}


def _activate(a: np.ndarray, activation: str) -> np.ndarray:
    if activation == "tanh":
        return np.tanh(a)
    if activation == "sigmoid":
        # The two-branch form never evaluates exp of a large positive number.
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if activation == "relu":
        return np.maximum(a, 0.0)
    raise ValueError(f"Unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}.")


def _derivative(a: np.ndarray, h: np.ndarray, activation: str) -> np.ndarray:
    """f'(a), written with the already computed h = f(a) where that is cheaper."""
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "sigmoid":
        return h * (1.0 - h)
    return (a > 0).astype(np.float64)


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class VanillaRNN:
    """The lecture's RNN. Arrays are never modified in place, so a model can be handed between threads."""
    U: np.ndarray  # (n, d) input -> hidden
    W: np.ndarray  # (d, d) hidden -> hidden, shared by every step
    V: np.ndarray  # (d, k) hidden -> output
    b: np.ndarray  # (d,)
    c: np.ndarray  # (k,)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        arrays = {name: np.asarray(getattr(self, name), np.float64) for name in PARAM_NAMES}
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        n, d = arrays["U"].shape if arrays["U"].ndim == 2 else (None, None)
        expected = {"U": (n, d), "W": (d, d), "V": (d, arrays["V"].shape[-1]), "b": (d,),
                    "c": (arrays["V"].shape[-1],)}
        for name, shape in expected.items():
            if n is None or arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}; expected {shape} "
                                 "(U n x d, W d x d, V d x k, b d, c k).")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}.")

    @property
    def n(self) -> int:
        return self.U.shape[0]

    @property
    def d(self) -> int:
        return self.U.shape[1]

    @property
    def k(self) -> int:
        return self.V.shape[1]

    def params(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def with_params(self, params: dict[str, np.ndarray]) -> VanillaRNN:
        return replace(self, **{name: params[name] for name in PARAM_NAMES})

    def with_activation(self, activation: str) -> VanillaRNN:
        return replace(self, activation=activation)

    def with_w_radius(self, radius: float) -> VanillaRNN:
        """The same model with W rescaled so that its spectral radius is ``radius``."""
        current = spectral_radius(self.W)
        if not np.isfinite(current) or current <= 0:
            raise ValueError("W is zero or not finite, so it cannot be rescaled; press Reset for new weights.")
        return replace(self, W=self.W * (radius / current))

    @classmethod
    def random(cls, n: int, d: int, k: int, scale: float = 0.9, seed: int = 0, init: str = "small",
               activation: str = "tanh") -> VanillaRNN:
        """Random weights; W is drawn by ``init`` and scaled so its spectral radius equals ``scale``.

        small: Gaussian entries; orthogonal: a random rotation (all singular values equal);
        identity: the identity matrix. U and V are small Gaussians, the biases zero.
        """
        _check_sizes(n, d, k)
        if not scale > 0:
            raise ValueError(f"The W scale must be positive, got {scale}.")
        rng = np.random.default_rng(seed)
        if init == "small":
            W = rng.standard_normal((d, d))
        elif init == "orthogonal":
            q, r = np.linalg.qr(rng.standard_normal((d, d)))
            W = q * np.sign(np.diag(r))  # sign fix: a uniformly random orthogonal matrix
        elif init == "identity":
            W = np.eye(d)
        else:
            raise ValueError(f"Unknown initialisation {init!r}; choose one of {', '.join(INITS)}.")
        W = W * (scale / spectral_radius(W))
        U = rng.standard_normal((n, d)) * 0.5
        V = rng.standard_normal((d, k)) / math.sqrt(d)
        return cls(U, W, V, np.zeros(d), np.zeros(k), activation)


def _check_sizes(n: int, d: int, k: int) -> None:
    if not 1 <= d <= MAX_HIDDEN:
        raise ValueError(f"The hidden size d must be between 1 and {MAX_HIDDEN}; got {d}.")
    if n < 1 or k < 1:
        raise ValueError(f"The input size n and the output size k must be at least 1; got n={n}, k={k}.")


def spectral_radius(W: np.ndarray) -> float:
    """The largest |eigenvalue| of W: how much W stretches a vector per step in the long run."""
    return float(np.max(np.abs(np.linalg.eigvals(W)))) if np.all(np.isfinite(W)) else math.inf


def spectral_norm(W: np.ndarray) -> float:
    """The largest singular value of W (the lecture's lambda = ||W||): the most it can stretch in one step."""
    return float(np.linalg.norm(W, 2)) if np.all(np.isfinite(W)) else math.inf


def parameter_count(n: int, d: int, k: int, biases: bool = True) -> dict[str, int]:
    """Weights per matrix and the total. The lecture's quiz: n=14, d=7, k=2, no biases -> 161."""
    counts = {"U": n * d, "W": d * d, "V": d * k}
    if biases:
        counts |= {"b": d, "c": k}
    counts["total"] = sum(counts.values())
    return counts


def make_task(text: str) -> TextTask:
    """The next-character task for ``text``, with the app's limits checked and explained."""
    if not text:
        raise ValueError("The text is empty: type at least one character.")
    if len(text) > MAX_STEPS:
        raise ValueError(f"The text has {len(text)} characters; the unrolled network is limited to "
                         f"T = {MAX_STEPS} steps. Shorten it.")
    return text_task(text)


# ---------------------------------------------------------------- forward pass

@dataclass(frozen=True)
class ForwardResult:
    a: np.ndarray  # (T, d) pre-activations
    h: np.ndarray  # (T, d) hidden states
    probs: np.ndarray  # (T, k) softmax outputs
    step_loss: np.ndarray  # (T,) -log probs[t, target_t]

    @property
    def loss(self) -> float:
        return float(self.step_loss.sum())


def _check_ids(ids: np.ndarray, size: int, what: str) -> np.ndarray:
    ids = np.asarray(ids, np.int64).reshape(-1)
    if ids.size == 0:
        raise ValueError(f"The {what} sequence is empty.")
    if ids.min() < 0 or ids.max() >= size:
        raise ValueError(f"A {what} id is outside 0..{size - 1}.")
    return ids


def forward(model: VanillaRNN, inputs: np.ndarray, targets: np.ndarray) -> ForwardResult:
    inputs = _check_ids(inputs, model.n, "input")
    targets = _check_ids(targets, model.k, "target")
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets.")
    T, d = len(inputs), model.d
    a, h = np.empty((T, d)), np.empty((T, d))
    x_U = model.U[inputs]  # (T, d): a one-hot x_t times U picks row inputs[t] of U
    prev = np.zeros(d)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            a[t] = x_U[t] + prev @ model.W + model.b
            prev = h[t] = _activate(a[t], model.activation)
        logits = h @ model.V + model.c  # (T, k)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    step_loss = -log_probs[np.arange(T), targets]
    return ForwardResult(a, h, np.exp(log_probs), step_loss)


# ---------------------------------------------------------------- BPTT

@dataclass(frozen=True)
class BPTTResult:
    loss: float
    grads: dict[str, np.ndarray] = field(repr=False)  # same keys and shapes as the parameters
    dL_dh_norms: np.ndarray = field(repr=False)  # (T, T) [t, k] = ||dL_t/dh_k||, zero for k > t and cut paths
    path_contrib: np.ndarray = field(repr=False)  # (T, T) [t, k] = ||(t, k) term of dL/dW||_F
    per_k_contrib: np.ndarray = field(repr=False)  # (T,) ||sum over t of the (t, k) terms||_F
    dL_dh_total: np.ndarray = field(repr=False)  # (T,) ||dL/dh_k|| (all losses together)
    forward: ForwardResult = field(repr=False)
    truncate: int | None = None
    path_deltas: np.ndarray | None = field(default=None, repr=False)  # (T, T, d) dL_t/da_k, if kept

    @property
    def T(self) -> int:
        return len(self.dL_dh_norms)

    def cut_mask(self) -> np.ndarray:  # (T, T) bool
        """True for the paths that truncation removed (k <= t, t - k >= window)."""
        lag = np.arange(self.T)[:, None] - np.arange(self.T)[None, :]
        if self.truncate is None:
            return np.zeros((self.T, self.T), bool)
        return lag >= self.truncate

    def path_term(self, t: int, k: int) -> np.ndarray:  # (d, d)
        """The (t, k) term of dL/dW: h_{k-1}^T (dL_t/dh_k * f'(a_k)). Needs ``keep_paths=True``."""
        if self.path_deltas is None:
            raise ValueError("Run bptt(..., keep_paths=True) to keep the individual path terms.")
        h_prev = self.forward.h[k - 1] if k > 0 else np.zeros(self.forward.h.shape[1])
        return np.outer(h_prev, self.path_deltas[t, k])

    @property
    def grad_norm(self) -> float:
        return global_norm(self.grads)


def _check_truncate(truncate: int | None) -> None:
    if truncate is not None and (int(truncate) != truncate or truncate < 1):
        raise ValueError(f"The truncation window must be a whole number of steps >= 1; got {truncate}.")


def bptt(model: VanillaRNN, inputs: np.ndarray, targets: np.ndarray, truncate: int | None = None,
         maps: bool = True, keep_paths: bool = False) -> BPTTResult:
    """Loss, gradients and the per-path maps by backpropagation through time.

    ``truncate=K`` keeps only the paths from L_t back to h_k with t - k < K (each loss looks back
    K steps, the explicit dependence at step k included); the gradients are those of that truncated
    BPTT. ``maps=False`` skips the norm maps (training uses that; the maps are then zero).
    """
    _check_truncate(truncate)
    fwd = forward(model, inputs, targets)
    targets = np.asarray(targets, np.int64).reshape(-1)
    inputs = np.asarray(inputs, np.int64).reshape(-1)
    T, d = fwd.h.shape
    window = T if truncate is None else min(int(truncate), T)
    with np.errstate(all="ignore"):  # overflow and log(0) are expected here: they become inf and 0
        d_out = fwd.probs.copy()
        d_out[np.arange(T), targets] -= 1.0  # (T, k) dL_t/do_t = y_t - onehot(target_t)
        direct = d_out @ model.V.T  # (T, d) dL_t/dh_t, the loss's own step
        fprime = _derivative(fwd.a, fwd.h, model.activation)  # (T, d)
        h_prev = np.vstack([np.zeros((1, d)), fwd.h[:-1]])  # (T, d) h_{k-1}, h_{-1} = 0
        h_prev_norm = np.linalg.norm(h_prev, axis=1)  # (T,)
        log_h_prev = np.log(h_prev_norm)  # -inf for h_{-1} = 0
        W_T = model.W.T
        delta = np.empty((T, d))  # (T, d) dL/da_k summed over the kept paths
        dh_norms = np.zeros((T, T)) if maps else None
        contrib = np.zeros((T, T)) if maps else None
        deltas = np.zeros((T, T, d)) if keep_paths else None
        dh_total = np.zeros(T)
        simple = not maps and not keep_paths and window >= T
        carry = np.zeros(d)
        for k in range(T - 1 if simple else -1, -1, -1):
            # Without maps or a window, all losses can travel together: the textbook recursion
            # dL/dh_k = dL_k/dh_k + dL/dh_{k+1} diag(f'(a_{k+1})) W^T, O(T d^2) instead of O(T^2 d^2).
            total_h = direct[k] + carry
            dh_total[k] = math.sqrt(total_h @ total_h)
            delta[k] = total_h * fprime[k]
            carry = delta[k] @ W_T
        # The per-path sweep. Row t of rows_all holds dL_t/dh_k for the losses t = k .. k + live - 1
        # that still reach h_k (the row of the loss one step beyond a truncation window is simply
        # never read again), stored as rows[t] * e^log_scale[t]. Whenever a row's length leaves
        # [1e-150, 1e150] it is rescaled to length 1 and the factor moves into log_scale: a product of
        # many Jacobians then never underflows or overflows (and tiny subnormal numbers, which make
        # floating point ~100x slower, never enter the matrix products).
        rows_all = np.zeros((T, d))
        log_scale = np.zeros(T)
        for k in range(-1 if simple else T - 1, -1, -1):
            live = min(window, T - k)  # the losses t = k .. k + live - 1 still reach h_k
            rows_all[k] = direct[k]  # the loss of step k itself joins here
            log_scale[k] = 0.0
            rows, logs = rows_all[k: k + live], log_scale[k: k + live]
            row_len = np.sqrt(np.einsum("ij,ij->i", rows, rows))
            rescale = ((row_len < 1e-150) | (row_len > 1e150)) & (row_len > 0)
            if rescale.any():
                rows[rescale] /= row_len[rescale, None]
                logs[rescale] += np.log(row_len[rescale])
                row_len[rescale] = 1.0
            true_log = logs + np.log(row_len)  # ln ||dL_t/dh_k||
            # Below e^-700 a path adds nothing a float64 sum could hold: it counts as exactly 0.
            factor = np.where(true_log > LOG_TINY, np.exp(logs), 0.0)
            total_h = factor @ rows  # dL/dh_k summed over the kept losses
            dh_total[k] = math.sqrt(total_h @ total_h)
            delta[k] = total_h * fprime[k]
            path_dir = rows * fprime[k]  # (live, d) dL_t/da_k up to the factor e^log_scale[t]
            if maps:
                dh_norms[k: k + live, k] = np.exp(true_log)
                path_len = np.sqrt(np.einsum("ij,ij->i", path_dir, path_dir))
                contrib[k: k + live, k] = np.exp(logs + np.log(path_len) + log_h_prev[k])
            if keep_paths:
                deltas[k: k + live, k] = path_dir * factor[:, None]
            if k > 0:
                # Through the Jacobian dh_k/dh_{k-1} = diag(f'(a_k)) W^T: one product for every loss at once.
                keep = min(live, window - 1)  # the loss t = k - 1 + window cannot reach h_{k-1}
                np.matmul(path_dir[:keep], W_T, out=rows_all[k: k + keep])
        grads = {
            "U": np.zeros_like(model.U),
            "W": h_prev.T @ delta,
            "V": fwd.h.T @ d_out,
            "b": delta.sum(axis=0),
            "c": d_out.sum(axis=0),
        }
        np.add.at(grads["U"], inputs, delta)  # x_k is one-hot: dL/dU row inputs[k] gets delta_k
        if maps:
            per_k = np.linalg.norm(delta, axis=1) * h_prev_norm
        else:
            per_k = np.zeros(T)
            dh_norms = contrib = np.zeros((T, T))
    return BPTTResult(fwd.loss, grads, dh_norms, contrib, per_k, dh_total, fwd, truncate, deltas)


# ---------------------------------------------------------------- ||dh_t / dh_k|| and the bound

EXACT_NORM_MAX_D = 64  # up to this size the spectral norms come from an SVD; above, power iteration


def _spectral_norms(matrices: np.ndarray, iterations: int = 30, block: int = 4) -> np.ndarray:
    """ln of the largest singular value of each matrix in a (L, d, d) stack.

    Exact (SVD) for d <= 64. Larger matrices use block power iteration on M^T M (4 vectors, then the
    exact top singular value of M restricted to them): it converges from below, to about 1e-3 in
    30 rounds, at a cost of L d^2 per vector and round instead of the SVD's L d^3 (seconds at d = 256).
    """
    if matrices.shape[-1] <= EXACT_NORM_MAX_D:
        return np.log(np.linalg.svd(matrices, compute_uv=False)[:, 0])
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((len(matrices), matrices.shape[-1], block)))[0]  # (L, d, b)
    transposed = matrices.transpose(0, 2, 1)
    for _ in range(iterations):
        basis = np.linalg.qr(transposed @ (matrices @ basis))[0]
    # Rayleigh-Ritz: the best estimate the subspace allows is the top singular value of M @ basis.
    return np.log(np.linalg.svd(matrices @ basis, compute_uv=False)[:, 0])


@dataclass(frozen=True)
class JacobianCurve:
    """||dh_t/dh_k|| (spectral norm) for the chains that end at the last step t = T - 1, against t - k."""
    lags: np.ndarray  # (L,) t - k, from 0 to T - 1
    norms: np.ndarray  # (L,) ||dh_{T-1}/dh_{T-1-lag}||_2
    bound: np.ndarray  # (L,) (gamma * lambda) ** lag
    gamma: float
    lam: float  # spectral norm of W
    radius: float  # spectral radius of W


def jacobian_curve(model: VanillaRNN, inputs: np.ndarray, targets: np.ndarray | None = None,
                   max_points: int | None = None) -> JacobianCurve:
    """Spectral norms of the Jacobian products dh_t/dh_k = prod_j diag(f'(a_j)) W^T, t the last step.

    The chains ending at the last step are the longest ones, so every lag 0..T-1 appears once.
    ``max_points`` keeps the singular value decompositions (the costly part for large d) to that
    many evenly spaced lags; the product itself is always carried through every step.
    """
    inputs = np.asarray(inputs, np.int64).reshape(-1)
    fwd = forward(model, inputs, np.zeros_like(inputs) if targets is None else targets)
    T, d = fwd.h.shape
    fprime = _derivative(fwd.a, fwd.h, model.activation)
    lags = np.arange(T)
    if max_points is not None and T > max_points:
        lags = np.unique(np.linspace(0, T - 1, max(2, max_points)).round().astype(np.int64))
    wanted = set(lags.tolist())
    products = np.empty((len(lags), d, d))  # each product divided by e^log_scale
    log_scale = np.zeros(len(lags))
    with np.errstate(all="ignore"):
        product, product_log = np.eye(d), 0.0
        products[0] = product
        slot = 1
        for lag in range(1, int(lags[-1]) + 1):
            j = T - lag  # dh_{T-1}/dh_{j-1} = dh_{T-1}/dh_j @ diag(f'(a_j)) W^T
            product = (product * fprime[j]) @ model.W.T
            # Keep the entries near 1 (no overflow, no slow subnormals); the size goes into product_log.
            biggest = float(np.abs(product).max())
            if biggest > 0 and np.isfinite(biggest):
                product /= biggest
                product_log += math.log(biggest)
            if lag in wanted:
                products[slot], log_scale[slot] = product, product_log
                slot += 1
        finite = np.isfinite(products).all(axis=(1, 2))  # a model with inf weights has no norms to show
        log_norms = np.full(len(lags), np.nan)
        if finite.any():
            log_norms[finite] = _spectral_norms(products[finite])
        norms = np.exp(log_norms + log_scale)
        gamma, lam = GAMMA[model.activation], spectral_norm(model.W)
        bound = np.power(gamma * lam, lags.astype(np.float64))
    return JacobianCurve(lags, norms, bound, gamma, lam, spectral_radius(model.W))


# ---------------------------------------------------------------- everything the tab shows at once

@dataclass(frozen=True)
class Analysis:
    """BPTT maps, the Jacobian curve and the clipped gradient of one model on one text."""
    model: VanillaRNN = field(repr=False)
    result: BPTTResult = field(repr=False)
    curve: JacobianCurve = field(repr=False)
    clipped: ClipResult = field(repr=False)
    clip_mode: str = "none"
    seconds: float = 0.0


def analyse(model: VanillaRNN, task: TextTask, truncate: int | None = None, clip_mode: str = "none",
            clip_threshold: float = 1.0, curve_points: int | None = 100) -> Iterator[Analysis]:
    """One Analysis, as a generator so the GUI can run it in its background worker."""
    start = time.perf_counter()
    result = bptt(model, task.inputs, task.targets, truncate, maps=True)
    curve = jacobian_curve(model, task.inputs, task.targets, max_points=curve_points)
    clipped = clip(result.grads, clip_mode, clip_threshold)
    yield Analysis(model, result, curve, clipped, clip_mode, time.perf_counter() - start)


# ---------------------------------------------------------------- clipping

@dataclass(frozen=True)
class ClipResult:
    grads: dict[str, np.ndarray] = field(repr=False)  # new arrays; the input dict is untouched
    norm_before: float  # global L2 norm of all gradients together
    norm_after: float
    clipped: bool  # whether anything changed


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """The L2 norm of all gradients together, as if they were one long vector."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(math.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))


def clip_by_norm(grads: dict[str, np.ndarray], threshold: float) -> ClipResult:
    """The lecture's rule on the global L2 norm: if ||g|| > threshold, g <- threshold / ||g|| * g.

    All gradients are scaled by the same factor (the direction of the step is kept).
    """
    if not threshold > 0:
        raise ValueError(f"The clipping threshold must be positive; got {threshold}.")
    before = global_norm(grads)
    if before > threshold and math.isfinite(before):
        factor = threshold / before
        new = {name: g * factor for name, g in grads.items()}
        return ClipResult(new, before, global_norm(new), True)
    return ClipResult({name: g.copy() for name, g in grads.items()}, before, before, False)


def clip_by_value(grads: dict[str, np.ndarray], threshold: float) -> ClipResult:
    """Every component is clamped to [-threshold, +threshold] (the direction can change)."""
    if not threshold > 0:
        raise ValueError(f"The clipping threshold must be positive; got {threshold}.")
    new = {name: np.clip(g, -threshold, threshold) for name, g in grads.items()}
    before, after = global_norm(grads), global_norm(new)
    clipped = any(bool(np.any(np.abs(g) > threshold)) for g in grads.values())
    return ClipResult(new, before, after, clipped)


def clip(grads: dict[str, np.ndarray], mode: str, threshold: float) -> ClipResult:
    if mode == "norm":
        return clip_by_norm(grads, threshold)
    if mode == "value":
        return clip_by_value(grads, threshold)
    if mode == "none":
        norm = global_norm(grads)
        return ClipResult({name: g.copy() for name, g in grads.items()}, norm, norm, False)
    raise ValueError(f"Unknown clipping mode {mode!r}; choose one of {', '.join(CLIP_MODES)}.")


# ---------------------------------------------------------------- training

@dataclass(frozen=True)
class RNNTrainConfig:
    lr: float = 0.1
    steps: int = 500
    clip_mode: str = "none"  # none, norm or value
    clip_threshold: float = 1.0
    truncate: int | None = None
    emit_every_s: float = 0.1  # throttle: at most one record per this many seconds (and the last step)
    stop_loss: float = 0.0  # stop early once the loss is at or below this (0: run all steps)

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"The learning rate must be positive; got {self.lr}.")
        if self.steps < 1:
            raise ValueError(f"Train for at least one step; got {self.steps}.")
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"Unknown clipping mode {self.clip_mode!r}; choose one of {', '.join(CLIP_MODES)}.")
        if self.clip_mode != "none" and not self.clip_threshold > 0:
            raise ValueError(f"The clipping threshold must be positive; got {self.clip_threshold}.")
        _check_truncate(self.truncate)


@dataclass(frozen=True)
class RNNTrainRecord:
    """One throttled progress record: plain floats and numpy copies, safe to pass between threads."""
    step: int  # gradient steps done
    steps: int
    loss: float  # loss of the model in this record
    grad_norm: float  # before clipping
    clipped_norm: float  # after clipping (the step actually taken)
    model: VanillaRNN = field(repr=False)  # the weights after `step` steps (never modified later)
    dL_dh_norms: np.ndarray = field(repr=False)  # (T, T) for the model in this record
    path_contrib: np.ndarray = field(repr=False)  # (T, T)
    per_k_contrib: np.ndarray = field(repr=False)  # (T,)
    dL_dh_total: np.ndarray = field(repr=False)  # (T,)
    history_steps: np.ndarray = field(repr=False)  # (S,) every step since the last record
    history_loss: np.ndarray = field(repr=False)  # (S,)
    history_grad_norm: np.ndarray = field(repr=False)  # (S,) before clipping
    history_clipped_norm: np.ndarray = field(repr=False)  # (S,) after clipping
    done: bool = False

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps)


def _exploded_message(step: int, what: str, value: float, config: RNNTrainConfig) -> str:
    advice = ("Turn on gradient clipping (by norm, e.g. threshold 1), lower the W scale "
              "or the learning rate, then press Reset and train again.")
    if config.clip_mode != "none":
        advice = ("Even clipped steps were too large: lower the clipping threshold, the learning rate "
                  "or the W scale, then press Reset and train again.")
    return (f"At step {step} the {what} became {value}. The gradients exploded: the product of "
            f"Jacobians dh_t/dh_k grew so large that the weights jumped to numbers the computer cannot "
            f"hold. {advice}")


def train(model: VanillaRNN, task: TextTask, config: RNNTrainConfig) -> Iterator[RNNTrainRecord]:
    """Full-batch gradient descent on one text, yielding throttled records (the last with done=True).

    NaN or infinity in the loss or the gradients raises FloatingPointError with an explanation.
    """
    if len(task.vocab) != model.n or len(task.vocab) != model.k:
        raise ValueError(f"The model reads {model.n} and predicts {model.k} symbols, but the text's "
                         f"vocabulary has {len(task.vocab)}; press Reset to build a matching network.")
    steps_log: list[int] = []
    loss_log: list[float] = []
    norm_log: list[float] = []
    clipped_log: list[float] = []
    last_emit = -math.inf
    record_cost = 0.0

    def record(step: int, current: VanillaRNN, done: bool) -> RNNTrainRecord | None:
        """The record for ``current``, or None when its loss is not finite (the caller then fails)."""
        snapshot = bptt(current, task.inputs, task.targets, config.truncate, maps=True)
        if not math.isfinite(snapshot.loss):
            return None
        out = RNNTrainRecord(
            step, config.steps, snapshot.loss, norm_log[-1] if norm_log else snapshot.grad_norm,
            clipped_log[-1] if clipped_log else snapshot.grad_norm, current,
            snapshot.dL_dh_norms.copy(), snapshot.path_contrib.copy(), snapshot.per_k_contrib.copy(),
            snapshot.dL_dh_total.copy(), np.array(steps_log, np.int64),
            np.array(loss_log), np.array(norm_log), np.array(clipped_log), done)
        steps_log.clear(), loss_log.clear(), norm_log.clear(), clipped_log.clear()
        return out

    def fail(step: int, what: str, value: float, last_good: VanillaRNN) -> Iterator[RNNTrainRecord]:
        """Hand over the curve so far and the last weights whose loss was finite, then explain."""
        if steps_log:
            out = record(step - 1, last_good, False)
            if out is not None:
                yield out
        raise FloatingPointError(_exploded_message(step, what, value, config))

    last_good = model
    for step in range(1, config.steps + 1):
        result = bptt(model, task.inputs, task.targets, config.truncate, maps=False)
        if not math.isfinite(result.loss):
            yield from fail(step, "loss", result.loss, last_good)
        norm = result.grad_norm
        if not math.isfinite(norm):
            yield from fail(step, "gradient norm", norm, last_good)
        last_good = model
        clipped = clip(result.grads, config.clip_mode, config.clip_threshold)
        with np.errstate(over="ignore", invalid="ignore"):
            new_params = {name: value - config.lr * clipped.grads[name] for name, value in model.params().items()}
        if not all(np.isfinite(p).all() for p in new_params.values()):
            yield from fail(step, "weights", math.inf, last_good)
        model = model.with_params(new_params)
        steps_log.append(step)
        loss_log.append(result.loss)  # the loss before this step's update
        norm_log.append(norm)
        clipped_log.append(clipped.norm_after)
        finished = step == config.steps or result.loss <= config.stop_loss
        now = time.perf_counter()
        # The maps of a record cost a full BPTT sweep: keep them to about a quarter of the time.
        if finished or now - last_emit >= max(config.emit_every_s, 3.0 * record_cost):
            out = record(step, model, finished)
            record_cost = time.perf_counter() - now
            if out is not None:  # otherwise the next step finds the non-finite loss and explains it
                last_emit = now
                yield out
                if finished:
                    return
    # Only reached when the very last update made the loss overflow.
    yield from fail(config.steps + 1, "loss", math.nan, last_good)


# ---------------------------------------------------------------- sampling

@dataclass(frozen=True)
class SampleResult:
    symbols: tuple[str, ...]  # the generated symbols (the prompt not included; <stop> included if reached)
    probs: np.ndarray  # (L, k) the distribution each symbol was drawn from
    stopped: bool  # True when <stop> ended the text, False when max_length did

    @property
    def text(self) -> str:
        return "".join(s for s in self.symbols if len(s) == 1)


def sample(model: VanillaRNN, vocab: Vocabulary, prompt: str, max_length: int = 50, greedy: bool = True,
           temperature: float = 1.0, seed: int | None = None) -> SampleResult:
    """Generate text: read ``prompt``, then repeatedly pick a symbol and feed it back as the next input.

    greedy picks the most probable symbol; otherwise it is drawn from softmax(logits / temperature).
    Generation ends at <stop> or after ``max_length`` symbols.
    """
    if not prompt:
        raise ValueError("Type at least one character to start from.")
    if len(vocab) != model.n or len(vocab) != model.k:
        raise ValueError("The vocabulary does not match the network; press Reset first.")
    if not greedy and not temperature > 0:
        raise ValueError(f"The temperature must be positive; got {temperature}.")
    ids = vocab.encode(prompt)
    rng = np.random.default_rng(seed)
    h = np.zeros(model.d)
    symbols, dists = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for token in ids[:-1]:
            h = _activate(model.U[token] + h @ model.W + model.b, model.activation)
        token = int(ids[-1])
        for _ in range(max_length):
            h = _activate(model.U[token] + h @ model.W + model.b, model.activation)
            logits = h @ model.V + model.c
            scaled = logits if greedy else logits / temperature
            p = np.exp(scaled - scaled.max())
            p /= p.sum()
            if not np.all(np.isfinite(p)):
                raise FloatingPointError("The network's outputs are not finite numbers; press Reset.")
            token = int(np.argmax(p)) if greedy else int(rng.choice(len(p), p=p))
            symbols.append(vocab.symbols[token])
            dists.append(p)
            if token == vocab.stop:
                return SampleResult(tuple(symbols), np.array(dists), True)
    return SampleResult(tuple(symbols), np.array(dists).reshape(-1, model.k), False)
