"""Convolution and pooling as the lecture defines them (cross-correlation, like PyTorch),
the output-size arithmetic, and the term-by-term explanation of one output value.

All array work is vectorised through ``torch.nn.functional`` in float64; only
``explain`` loops, over the single window it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
POOL_MODES = ("max", "avg", "min")


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or a (height, width) pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def output_size(n: int, f: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output length along one axis: floor((n + 2P - D(F-1) - 1) / S) + 1, i.e. (n - F + 2P)/S + 1 for D = 1.

    Raises ValueError with a readable reason when no output position exists.
    """
    if n < 1:
        raise ValueError(f"The input must be at least 1 pixel wide (got {n}).")
    if f < 1:
        raise ValueError(f"The kernel must be at least 1 x 1 (got F = {f}).")
    if stride < 1:
        raise ValueError(f"Stride S = {stride} would never move the window: use S >= 1.")
    if dilation < 1:
        raise ValueError(f"Dilation {dilation} is impossible: use 1 (no gaps) or more.")
    if padding < 0:
        raise ValueError(f"Padding P = {padding} cannot be negative.")
    span = dilation * (f - 1) + 1
    padded = n + 2 * padding
    if span > padded:
        what = f"kernel ({f}" + (f", spanning {span} with dilation {dilation})" if dilation > 1 else ")")
        raise ValueError(f"The {what} is larger than the padded input ({n} + 2 x {padding} = {padded}): "
                         "it fits nowhere. Use a smaller kernel or more padding.")
    return (padded - span) // stride + 1


def conv_params(in_channels: int, out_channels: int, f: int, bias: bool = True) -> int:
    """K * (F * F * C) + K: every filter has F*F weights per input channel, plus one bias."""
    return out_channels * (f * f * in_channels) + (out_channels if bias else 0)


@dataclass(frozen=True)
class SizeReport:
    """The size formula filled in for the current settings (or why it cannot be)."""
    ok: bool
    error: str = ""
    h1: int = 0
    w1: int = 0
    c: int = 0
    k: int = 0
    f: int = 0
    padding: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    dilation: int = 1
    h2: int = 0
    w2: int = 0
    params: int = 0
    macs: int = 0  # multiply-adds: every output value needs F*F*C of them
    lines: tuple[str, ...] = field(default=())  # the worked formulas, one per line


def _axis_line(axis: str, n: int, f: int, p: int, s: int, d: int) -> str:
    span = d * (f - 1) + 1
    num = n - span + 2 * p
    f_text = f"{span}" if d == 1 else f"{span} (F with dilation {d}: {d}(F-1)+1)"
    exact = num / s + 1
    out = num // s + 1
    head = f"{axis}2 = ({axis}1 - F + 2P)/S + 1 = ({n} - {f_text} + 2x{p})/{s} + 1"
    if num % s:
        return f"{head} = floor({num}/{s}) + 1 = {out}   (S does not divide {num}: {exact:.2f} rounds down)"
    return f"{head} = {out}"


def size_report(h: int, w: int, c: int, k: int, f: int, padding=0, stride=1, dilation: int = 1,
                bias: bool = True) -> SizeReport:
    """Output shape, parameters and multiply-adds, with the formulas written out; never raises."""
    try:
        ph, pw = _pair(padding, "padding")
        sh, sw = _pair(stride, "stride")
        h2 = output_size(h, f, ph, sh, dilation)
        w2 = output_size(w, f, pw, sw, dilation)
    except ValueError as exc:
        return SizeReport(ok=False, error=str(exc), h1=h, w1=w, c=c, k=k, f=f)
    params = conv_params(c, k, f, bias)
    macs = h2 * w2 * k * f * f * c
    lines = (
        _axis_line("W", w, f, pw, sw, dilation),
        _axis_line("H", h, f, ph, sh, dilation),
        f"D2 = K = {k}",
        f"Parameters = K x (F x F x C) + K = {k} x ({f} x {f} x {c})" + (f" + {k}" if bias else "")
        + f" = {params:,}",
        f"Multiply-adds = H2 x W2 x K x F x F x C = {h2} x {w2} x {k} x {f} x {f} x {c} = {macs:,}",
    )
    return SizeReport(True, "", h, w, c, k, f, (ph, pw), (sh, sw), dilation, h2, w2, params, macs, lines)


def _as_chw(x: np.ndarray, dtype=np.float64) -> np.ndarray:  # -> (C, H, W)
    x = np.asarray(x, dtype)
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3:
        return x
    raise ValueError(f"Input must be (H, W) or (C, H, W), got shape {x.shape}")


def _as_kcff(w: np.ndarray, channels: int, dtype=np.float64) -> np.ndarray:  # -> (K, C, F, F)
    w = np.asarray(w, dtype)
    if w.ndim == 2:
        w = np.broadcast_to(w, (channels, *w.shape))[None] if channels > 1 else w[None, None]
    elif w.ndim == 3:
        w = w[None]
    elif w.ndim != 4:
        raise ValueError(f"Kernel must be (F, F), (C, F, F) or (K, C, F, F), got shape {w.shape}")
    if w.shape[1] != channels:
        raise ValueError(f"The filter has {w.shape[1]} channel slice(s) but the input has {channels} channel(s): "
                         "a filter needs one slice per input channel.")
    return np.ascontiguousarray(w)


_NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _check_padding(shape: tuple[int, int], ph: int, pw: int, padding_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"Unknown padding mode {padding_mode!r}; choose one of {', '.join(PADDING_MODES)}.")
    if ph < 0 or pw < 0:
        raise ValueError("Padding cannot be negative.")
    h, w = shape
    if padding_mode == "reflect" and (ph >= h or pw >= w):
        raise ValueError(f"Reflect padding of {max(ph, pw)} needs an input larger than that "
                         f"({h} x {w}): use less padding or another mode.")
    if padding_mode == "circular" and (ph > h or pw > w):
        raise ValueError("Circular padding cannot wrap around more than once: use less padding.")


def pad(x: np.ndarray, padding=0, padding_mode: str = "zeros") -> np.ndarray:  # (C, H, W) -> (C, H+2P, W+2P)
    """The input with its border added, as the convolution sees it (float inputs keep their dtype).

    The modes are PyTorch's: zeros, reflect (mirror without repeating the edge), replicate
    (repeat the edge), circular (wrap around).
    """
    arr = np.asarray(x)
    chw = _as_chw(arr, arr.dtype if arr.dtype.kind == "f" else np.float64)
    ph, pw = _pair(padding, "padding")
    _check_padding(chw.shape[1:], ph, pw, padding_mode)
    if ph == 0 and pw == 0:
        return chw.copy()
    return np.pad(chw, ((0, 0), (ph, ph), (pw, pw)), mode=_NUMPY_PAD_MODES[padding_mode])


def _padded_index(index: int, n: int, p: int, padding_mode: str) -> int | None:
    """Which input pixel sits at ``index`` of the padded axis (None: a zero of zero padding)."""
    i = index - p
    if 0 <= i < n:
        return i
    if padding_mode == "zeros":
        return None
    if padding_mode == "replicate":
        return min(max(i, 0), n - 1)
    if padding_mode == "circular":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i  # reflect


def conv2d(x: np.ndarray, w: np.ndarray, bias=None, stride=1, padding=0, dilation=1,
           padding_mode: str = "zeros", dtype=np.float64) -> np.ndarray:
    """Cross-correlation of x (H, W) or (C, H, W) with w (F, F), (C, F, F) or (K, C, F, F).

    Returns (H2, W2) for a single 2-D filter, else (K, H2, W2). ``bias`` is a number or (K,).
    A 2-D filter on a multi-channel input is applied to every channel and summed.
    float64 (the default) is exact for the lecture's integers; pass ``dtype=np.float32``
    for large images, where it is about 4x faster (PyTorch's float64 path is unoptimised).
    """
    chw = _as_chw(x, dtype)
    single = np.ndim(w) == 2
    kcff = _as_kcff(w, chw.shape[0], dtype)
    k, _, fh, fw = kcff.shape
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    output_size(chw.shape[1], fh, ph, sh, dh)  # raises a readable error for impossible settings
    output_size(chw.shape[2], fw, pw, sw, dw)
    _check_padding(chw.shape[1:], ph, pw, padding_mode)
    if padding_mode == "zeros":  # F.conv2d pads with zeros itself, without a padded copy
        source, conv_padding = torch.from_numpy(chw)[None], (ph, pw)
    else:
        source, conv_padding = torch.from_numpy(pad(chw, (ph, pw), padding_mode))[None], (0, 0)
    b = None
    if bias is not None:
        b = torch.as_tensor(np.broadcast_to(np.asarray(bias, dtype), (k,)).copy())
    out = F.conv2d(source, torch.from_numpy(kcff), b, stride=(sh, sw), padding=conv_padding,
                   dilation=(dh, dw))[0].numpy()
    return out[0] if single else out


def pool2d(x: np.ndarray, size, stride=None, mode: str = "max") -> np.ndarray:
    """Max, average or min pooling of (H, W) or (C, H, W) over size x size windows (stride defaults to size).

    Float inputs keep their dtype; anything else is computed in float64."""
    if mode not in POOL_MODES:
        raise ValueError(f"Unknown pooling {mode!r}; choose one of {', '.join(POOL_MODES)}.")
    arr = np.asarray(x)
    arr = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    two_d = arr.ndim == 2
    chw = _as_chw(arr, arr.dtype)
    kh, kw = _pair(size, "pool size")
    sh, sw = _pair(stride if stride is not None else size, "pool stride")
    output_size(chw.shape[1], kh, 0, sh)
    output_size(chw.shape[2], kw, 0, sw)
    t = torch.from_numpy(chw)[None]
    if mode == "max":
        out = F.max_pool2d(t, (kh, kw), (sh, sw))
    elif mode == "avg":
        out = F.avg_pool2d(t, (kh, kw), (sh, sw))
    else:
        out = -F.max_pool2d(-t, (kh, kw), (sh, sw))
    out = out[0].numpy()
    return out[0] if two_d else out


@dataclass(frozen=True)
class Term:
    row: int  # position in the padded input
    col: int
    value: float
    weight: float

    @property
    def product(self) -> float:
        return self.value * self.weight


@dataclass(frozen=True)
class Explanation:
    """Every product behind one output value, per channel, then the bias."""
    i: int
    j: int
    filter_index: int
    terms: tuple[tuple[Term, ...], ...]  # per channel
    channel_sums: tuple[float, ...]
    bias: float
    total: float
    window: tuple[int, int, int, int]  # top, left, height, width in the padded input

    def lines(self, channel_names=None) -> list[str]:
        """The sums written out as in the lecture: w x value + ... = sum, then the channels and bias."""
        out = []
        names = channel_names or [f"channel {c + 1}" for c in range(len(self.terms))]
        for name, terms, total in zip(names, self.terms, self.channel_sums):
            products = " + ".join(f"{_fmt(t.value)}*{_fmt(t.weight)}" for t in terms)
            prefix = f"{name}: " if len(self.terms) > 1 else ""
            out.append(f"{prefix}{products} = {_fmt(total)}")
        parts = [_fmt(s) if s >= 0 or k == 0 else f"({_fmt(s)})" for k, s in enumerate(self.channel_sums)]
        if len(self.terms) > 1 or self.bias != 0:
            bias_part = f" + {_fmt(self.bias)} (bias)" if self.bias != 0 or len(self.terms) > 1 else ""
            out.append(f"output[{self.i}, {self.j}] = {' + '.join(parts)}{bias_part} = {_fmt(self.total)}")
        else:
            out.append(f"output[{self.i}, {self.j}] = {_fmt(self.total)}")
        return out


def _fmt(v: float) -> str:
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.6g}"


def explain(x, w, bias, i: int, j: int, stride=1, padding=0, dilation=1, padding_mode: str = "zeros",
            filter_index: int = 0) -> Explanation:
    """The terms of output (i, j) of filter ``filter_index``: the window, its products and sums."""
    chw = _as_chw(x)
    kcff = _as_kcff(w, chw.shape[0])
    _, channels, fh, fw = kcff.shape
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    ph, pw = _pair(padding, "padding")
    _check_padding(chw.shape[1:], ph, pw, padding_mode)
    h2 = output_size(chw.shape[1], fh, ph, sh, dh)
    w2 = output_size(chw.shape[2], fw, pw, sw, dw)
    if not (0 <= i < h2 and 0 <= j < w2):
        raise ValueError(f"Output position ({i}, {j}) is outside the {h2} x {w2} output.")
    b = float(np.broadcast_to(np.asarray(0.0 if bias is None else bias, np.float64), (kcff.shape[0],))[filter_index])
    rows = [i * sh + a * dh for a in range(fh)]  # positions in the padded input
    cols = [j * sw + q * dw for q in range(fw)]
    src_rows = [_padded_index(r, chw.shape[1], ph, padding_mode) for r in rows]
    src_cols = [_padded_index(c, chw.shape[2], pw, padding_mode) for c in cols]
    terms, sums = [], []
    for c in range(channels):  # one window: the only loop in this module
        channel_terms = tuple(
            Term(rows[a], cols[q],
                 0.0 if src_rows[a] is None or src_cols[q] is None else float(chw[c, src_rows[a], src_cols[q]]),
                 float(kcff[filter_index, c, a, q]))
            for a in range(fh) for q in range(fw))
        terms.append(channel_terms)
        sums.append(float(sum(t.product for t in channel_terms)))
    window = (i * sh, j * sw, dh * (fh - 1) + 1, dw * (fw - 1) + 1)
    return Explanation(i, j, filter_index, tuple(terms), tuple(sums), b, float(sum(sums) + b), window)


# ------------------------------------------------------------------ 1-D: the lecture's sensor smoothing

def smooth1d(x, w) -> np.ndarray:  # (N,), (A,) -> (N - A + 1,)
    """s_t = sum_a x[t - a] * w[a] for every t with a full window (t = A-1 ... N-1).

    ``w`` is given oldest-first as in the lecture's table (w_-6 ... w_0), so the newest
    reading x_t meets the last weight.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    if w.size == 0 or x.size < w.size:
        raise ValueError(f"Need at least as many readings ({x.size}) as weights ({w.size}).")
    return F.conv1d(torch.from_numpy(x)[None, None], torch.from_numpy(w)[None, None])[0, 0].numpy()


def smooth1d_terms(x, w, t: int) -> list[tuple[float, float]]:
    """(reading, weight) pairs that make s_t, newest reading first as the lecture writes s_6."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    a_max = w.size - 1
    if not a_max <= t < x.size:
        raise ValueError(f"s_{t} needs readings x_{t - a_max} ... x_{t}.")
    return [(float(x[t - a]), float(w[a_max - a])) for a in range(w.size)]


# ------------------------------------------------------------------ kernels

def _fixed(rows) -> np.ndarray:
    return np.asarray(rows, np.float64)


FIXED_KERNELS = {
    "sharpen": _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "Laplacian edge": _fixed([[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
    "vertical edge": _fixed([[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
    "horizontal edge": _fixed([[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
    "Sobel x": _fixed([[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
    "Sobel y": _fixed([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
    "emboss": _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
}
SIZED_KERNELS = ("identity", "box blur", "Gaussian", "random")
KERNEL_NAMES = SIZED_KERNELS[:3] + tuple(FIXED_KERNELS) + SIZED_KERNELS[3:]


def make_kernel(name: str, size: int = 3, seed: int = 0) -> np.ndarray:  # -> (F, F)
    """A named kernel. Identity, box, Gaussian and random take any odd or even size;
    the edge and sharpen kernels are 3 x 3 by definition."""
    if name in FIXED_KERNELS:
        return FIXED_KERNELS[name].copy()
    if not 1 <= size <= 11:
        raise ValueError("Kernel size must be between 1 and 11.")
    if name == "identity":
        k = np.zeros((size, size))
        k[(size - 1) // 2, (size - 1) // 2] = 1.0
        return k
    if name == "box blur":
        return np.full((size, size), 1.0 / (size * size))
    if name == "Gaussian":
        sigma = max(size / 6.0, 0.5)  # the kernel spans about +-3 sigma
        ax = np.arange(size) - (size - 1) / 2
        g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma ** 2))
        return g / g.sum()
    if name == "random":
        return np.round(np.random.default_rng(seed).uniform(-1, 1, (size, size)), 2)
    raise ValueError(f"Unknown kernel {name!r}; choose one of {', '.join(KERNEL_NAMES)}.")


def normalise(kernel: np.ndarray) -> np.ndarray:
    """Scale so the weights sum to 1 (keeps brightness); zero-sum kernels (edges) get sum |w| = 1."""
    k = np.asarray(kernel, np.float64)
    total = k.sum()
    if abs(total) > 1e-12:
        return k / total
    magnitude = np.abs(k).sum()
    return k / magnitude if magnitude > 0 else k.copy()
