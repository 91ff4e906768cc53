"""engine.rnn: the lecture's RNN, BPTT with per-path maps, the Jacobian bound, clipping, training, sampling.

Torch autograd in float64 is the oracle for every gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import rnn
from engine.text import STOP, text_task

TORCH_ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


def random_model(n, d, k, activation="tanh", scale=1.2, seed=0, init="small"):
    """A model with non-zero biases too, so their gradients are checked."""
    model = rnn.VanillaRNN.random(n, d, k, scale=scale, seed=seed, init=init, activation=activation)
    rng = np.random.default_rng(seed + 100)
    return model.with_params({**model.params(), "b": rng.standard_normal(d) * 0.3,
                              "c": rng.standard_normal(k) * 0.3})


def torch_bptt(model, inputs, targets, truncate=None):
    """Loss and autograd gradients; with ``truncate=K`` each loss L_t starts from h_{t-K} detached.

    So L_t reaches h_k only for t - k < K: the gradient of truncated BPTT, computed independently.
    """
    P = {name: torch.tensor(value, requires_grad=True) for name, value in model.params().items()}
    act = TORCH_ACT[model.activation]
    x = F.one_hot(torch.tensor(inputs), model.n).double()  # (T, n)
    zero = torch.zeros(model.d, dtype=torch.float64)

    def cell(h, t):
        return act(x[t] @ P["U"] + h @ P["W"] + P["b"])

    states = []
    h = zero
    for t in range(len(inputs)):
        h = cell(h, t)
        states.append(h)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(len(inputs)):
        if truncate is None:
            h_t = states[t]
        else:
            start = t - truncate  # h_start is a constant for this loss
            h = states[start].detach() if start >= 0 else zero
            for j in range(max(start + 1, 0), t + 1):
                h = cell(h, j)
            h_t = h
        logits = h_t @ P["V"] + P["c"]
        total = total + F.cross_entropy(logits[None], torch.tensor([int(targets[t])]), reduction="sum")
    total.backward()
    return total.item(), {name: p.grad.numpy() for name, p in P.items()}


def assert_grads_match(result, oracle_grads, rtol=1e-8):
    for name, expected in oracle_grads.items():
        got = result.grads[name]
        assert got.shape == expected.shape, name
        scale = max(np.abs(expected).max(), 1e-300)
        assert np.abs(got - expected).max() <= rtol * scale, (name, np.abs(got - expected).max(), scale)


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
@pytest.mark.parametrize("truncate", [None, 1, 2, 5, 50])
@pytest.mark.parametrize("sizes", [(4, 3, 4, 6), (7, 16, 5, 20), (3, 40, 3, 33)])
def test_gradients_equal_autograd(activation, truncate, sizes):
    n, d, k, T = sizes
    rng = np.random.default_rng(T + d)
    model = random_model(n, d, k, activation, seed=d)
    inputs, targets = rng.integers(0, n, T), rng.integers(0, k, T)
    result = rnn.bptt(model, inputs, targets, truncate=truncate)
    loss, grads = torch_bptt(model, inputs, targets, truncate)
    assert result.loss == pytest.approx(loss, rel=1e-12)
    assert_grads_match(result, grads)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(1, 12), T=st.integers(1, 15), seed=st.integers(0, 10_000),
       activation=st.sampled_from(rnn.ACTIVATIONS), scale=st.floats(0.1, 3.0),
       truncate=st.one_of(st.none(), st.integers(1, 16)))
def test_gradients_equal_autograd_property(n, d, T, seed, activation, scale, truncate):
    rng = np.random.default_rng(seed)
    model = random_model(n, d, n, activation, scale=scale, seed=seed)
    inputs, targets = rng.integers(0, n, T), rng.integers(0, n, T)
    result = rnn.bptt(model, inputs, targets, truncate=truncate)
    assert_grads_match(result, torch_bptt(model, inputs, targets, truncate)[1])


@pytest.mark.smoke
def test_dl_dh_map_matches_autograd_per_loss():
    """Entry [t, k] is ||dL_t/dh_k||: checked for every t with its own autograd call."""
    rng = np.random.default_rng(3)
    model = random_model(5, 6, 5, "tanh", scale=1.5, seed=3)
    T = 9
    inputs, targets = rng.integers(0, 5, T), rng.integers(0, 5, T)
    result = rnn.bptt(model, inputs, targets)
    P = {name: torch.tensor(v, requires_grad=True) for name, v in model.params().items()}
    x = F.one_hot(torch.tensor(inputs), 5).double()
    states, h = [], torch.zeros(6, dtype=torch.float64)
    for t in range(T):
        h = torch.tanh(x[t] @ P["U"] + h @ P["W"] + P["b"])
        h.retain_grad()
        states.append(h)
    for t in range(T):
        for s in states:
            s.grad = None
        loss_t = F.cross_entropy((states[t] @ P["V"] + P["c"])[None], torch.tensor([int(targets[t])]),
                                 reduction="sum")
        loss_t.backward(retain_graph=True)
        for k in range(T):
            expected = 0.0 if k > t else float(states[k].grad.norm())
            assert result.dL_dh_norms[t, k] == pytest.approx(expected, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
def test_path_terms_sum_to_dl_dw_and_their_norms_are_the_map(activation, truncate):
    rng = np.random.default_rng(7)
    T, d = 10, 5
    model = random_model(4, d, 4, activation, seed=7)
    inputs, targets = rng.integers(0, 4, T), rng.integers(0, 4, T)
    result = rnn.bptt(model, inputs, targets, truncate=truncate, keep_paths=True)
    total = np.zeros((d, d))
    per_k = np.zeros((T, d, d))
    for t in range(T):
        for k in range(t + 1):
            term = result.path_term(t, k)
            total += term
            per_k[k] += term
            assert np.linalg.norm(term) == pytest.approx(result.path_contrib[t, k], rel=1e-10, abs=1e-300)
    np.testing.assert_allclose(total, result.grads["W"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(per_k, axis=(1, 2)), result.per_k_contrib, rtol=1e-10, atol=1e-300)
    assert np.all(np.triu(result.path_contrib, 1) == 0)
    assert np.all(result.path_contrib[:, 0] == 0)  # h_{-1} = 0: step 0 has no explicit W term


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 25), window=st.integers(1, 30), seed=st.integers(0, 1000))
def test_truncation_cuts_exactly_the_long_paths(T, window, seed):
    rng = np.random.default_rng(seed)
    model = random_model(3, 4, 3, scale=1.0, seed=seed)
    inputs, targets = rng.integers(0, 3, T), rng.integers(0, 3, T)
    full = rnn.bptt(model, inputs, targets)
    cut = rnn.bptt(model, inputs, targets, truncate=window)
    lag = np.subtract.outer(np.arange(T), np.arange(T))
    kept = (lag >= 0) & (lag < window)
    np.testing.assert_allclose(cut.dL_dh_norms[kept], full.dL_dh_norms[kept], rtol=1e-12)
    assert np.all(cut.dL_dh_norms[~kept] == 0) and np.all(cut.path_contrib[~kept] == 0)
    assert np.array_equal(cut.cut_mask(), lag >= window)
    assert np.all(np.triu(full.dL_dh_norms, 1) == 0)
    assert np.all(np.diag(full.dL_dh_norms) > 0)  # every loss depends on its own step
    if window >= T:
        for name in rnn.PARAM_NAMES:
            np.testing.assert_allclose(cut.grads[name], full.grads[name], rtol=1e-12, atol=1e-15)


def test_maps_off_gives_the_same_gradients():
    rng = np.random.default_rng(0)
    model = random_model(4, 8, 4)
    inputs, targets = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
    for truncate in (None, 4):
        a = rnn.bptt(model, inputs, targets, truncate, maps=True)
        b = rnn.bptt(model, inputs, targets, truncate, maps=False)
        for name in rnn.PARAM_NAMES:
            np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=1e-12, atol=1e-15)
        assert not b.dL_dh_norms.any()


@pytest.mark.smoke
def test_small_w_vanishes_large_w_explodes():
    task = rnn.make_task(rnn.PRESETS["one sentence"])
    n, T = len(task.vocab), len(task.inputs)
    ratios = []
    for scale in (0.2, 1.0, 3.0):
        model = rnn.VanillaRNN.random(n, 16, n, scale=scale, seed=0, init="orthogonal")
        m = rnn.bptt(model, task.inputs, task.targets).dL_dh_norms
        ratios.append(m[T - 1, 0] / m[T - 1, T - 1])
    assert ratios[0] < 1e-20 < ratios[1] < 1 < ratios[2]


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
@pytest.mark.parametrize("init", rnn.INITS)
def test_jacobian_norms_against_autograd_and_below_the_bound(activation, init):
    rng = np.random.default_rng(1)
    T, d = 12, 6
    model = random_model(4, d, 4, activation, scale=1.4, init=init, seed=2)
    inputs = rng.integers(0, 4, T)
    curve = rnn.jacobian_curve(model, inputs)
    assert curve.gamma == rnn.GAMMA[activation]
    assert curve.lam == pytest.approx(np.linalg.norm(model.W, 2))
    assert curve.radius == pytest.approx(1.4)
    np.testing.assert_allclose(curve.bound, (curve.gamma * curve.lam) ** np.arange(T), rtol=1e-12)
    assert np.all(curve.norms <= curve.bound * (1 + 1e-9) + 1e-300)  # the lecture's inequality
    # The oracle: autograd's Jacobian of h_{T-1} with respect to each earlier h_k.
    P = {name: torch.tensor(v) for name, v in model.params().items()}
    act = TORCH_ACT[activation]
    x = F.one_hot(torch.tensor(inputs), 4).double()
    states, h = [], torch.zeros(d, dtype=torch.float64)
    for t in range(T):
        h = act(x[t] @ P["U"] + h @ P["W"] + P["b"])
        states.append(h)
    for lag in range(T):
        k = T - 1 - lag

        def run_from(h_k, k=k):
            h = h_k
            for t in range(k + 1, T):
                h = act(x[t] @ P["U"] + h @ P["W"] + P["b"])
            return h

        jac = torch.autograd.functional.jacobian(run_from, states[k].detach())
        assert curve.norms[lag] == pytest.approx(float(torch.linalg.matrix_norm(jac, 2)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_jacobian_curve_for_large_hidden_sizes_and_long_texts(activation):
    """d > 64 uses power iteration; scaled products keep huge and tiny norms exact in the log."""
    rng = np.random.default_rng(5)
    T, d = 150, 100
    inputs = rng.integers(0, 6, T)
    for scale in (0.3, 3.0):
        model = rnn.VanillaRNN.random(6, d, 6, scale=scale, seed=5, init="orthogonal", activation=activation)
        curve = rnn.jacobian_curve(model, inputs, max_points=40)
        assert len(curve.lags) == 40 and curve.lags[0] == 0 and curve.lags[-1] == T - 1
        # The oracle: the same products in plain float64 with an SVD, where they stay representable.
        fwd = rnn.forward(model, inputs, inputs)
        fprime = rnn._derivative(fwd.a, fwd.h, activation)
        product = np.eye(d)
        expected = {0: 1.0}
        for lag in range(1, T):
            product = (product * fprime[T - lag]) @ model.W.T
            expected[lag] = np.linalg.norm(product, 2)
        for lag, norm in zip(curve.lags, curve.norms):
            if 1e-250 < expected[lag] < 1e250:
                assert norm == pytest.approx(expected[lag], rel=1e-3)  # power iteration, from below
                assert norm <= expected[lag] * (1 + 1e-9)
        assert np.all(curve.norms <= curve.bound * (1 + 1e-6))


def test_random_init_sets_the_spectral_radius_and_rescaling_keeps_direction():
    for init in rnn.INITS:
        model = rnn.VanillaRNN.random(5, 9, 5, scale=0.7, seed=4, init=init)
        assert rnn.spectral_radius(model.W) == pytest.approx(0.7)
        bigger = model.with_w_radius(2.0)
        assert rnn.spectral_radius(bigger.W) == pytest.approx(2.0)
        np.testing.assert_allclose(bigger.W / 2.0, model.W / 0.7)
        np.testing.assert_array_equal(bigger.U, model.U)
    orth = rnn.VanillaRNN.random(3, 8, 3, scale=1.0, init="orthogonal")
    np.testing.assert_allclose(orth.W @ orth.W.T, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(rnn.VanillaRNN.random(3, 4, 3, scale=0.5, init="identity").W, 0.5 * np.eye(4))
    a, b = rnn.VanillaRNN.random(3, 4, 3, seed=1), rnn.VanillaRNN.random(3, 4, 3, seed=1)
    np.testing.assert_array_equal(a.W, b.W)


def test_shapes_and_limits_are_checked_with_clear_messages():
    with pytest.raises(ValueError, match="expected"):
        rnn.VanillaRNN(np.zeros((4, 3)), np.zeros((3, 2)), np.zeros((3, 4)), np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="Unknown activation"):
        rnn.VanillaRNN.random(3, 3, 3, activation="softplus")
    with pytest.raises(ValueError, match="between 1 and 256"):
        rnn.VanillaRNN.random(3, 257, 3)
    with pytest.raises(ValueError, match="Unknown initialisation"):
        rnn.VanillaRNN.random(3, 3, 3, init="zeros")
    with pytest.raises(ValueError, match="T = 200"):
        rnn.make_task("x" * 201)
    assert len(rnn.make_task("y" * 200).inputs) == 200
    with pytest.raises(ValueError, match="empty"):
        rnn.make_task("")
    model = rnn.VanillaRNN.random(3, 3, 3)
    with pytest.raises(ValueError, match="window"):
        rnn.bptt(model, [0, 1], [1, 2], truncate=0)
    with pytest.raises(ValueError, match="outside"):
        rnn.bptt(model, [0, 3], [1, 2])
    with pytest.raises(ValueError, match="targets"):
        rnn.bptt(model, [0, 1, 2], [1, 2])


def test_parameter_count_reproduces_the_lecture_quiz():
    assert rnn.parameter_count(14, 7, 2, biases=False) == {"U": 98, "W": 49, "V": 14, "total": 161}
    counts = rnn.parameter_count(4, 8, 4)
    assert counts["total"] == 4 * 8 + 8 * 8 + 8 * 4 + 8 + 4
    model = rnn.VanillaRNN.random(4, 8, 4)
    assert counts["total"] == sum(p.size for p in model.params().values())


def test_clip_by_norm_follows_the_lecture_formula_and_matches_torch():
    rng = np.random.default_rng(0)
    grads = {name: rng.standard_normal(shape) * 10 for name, shape in
             (("U", (4, 3)), ("W", (3, 3)), ("V", (3, 4)), ("b", (3,)), ("c", (4,)))}
    original = {name: g.copy() for name, g in grads.items()}
    result = rnn.clip_by_norm(grads, 2.0)
    norm = math.sqrt(sum((g ** 2).sum() for g in original.values()))
    assert result.norm_before == pytest.approx(norm) and result.clipped
    assert result.norm_after == pytest.approx(2.0)
    for name in grads:
        np.testing.assert_allclose(result.grads[name], 2.0 / norm * original[name], rtol=1e-14)
        np.testing.assert_array_equal(grads[name], original[name])  # a new dict; the input is untouched
    tensors = [torch.tensor(g) for g in original.values()]
    for t in tensors:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_norm_(tensors, 2.0)
    for t, name in zip(tensors, original):
        np.testing.assert_allclose(result.grads[name], t.grad.numpy(), rtol=1e-5)  # torch adds 1e-6 to ||g||
    small = rnn.clip_by_norm(original, 1e6)
    assert not small.clipped and small.norm_after == small.norm_before
    assert small.grads["W"] is not original["W"]


def test_clip_by_value_matches_torch():
    rng = np.random.default_rng(1)
    grads = {"U": rng.standard_normal((3, 2)) * 3, "W": rng.standard_normal((2, 2)) * 3}
    result = rnn.clip_by_value(grads, 0.7)
    tensors = [torch.tensor(g) for g in grads.values()]
    for t in tensors:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for t, name in zip(tensors, grads):
        np.testing.assert_array_equal(result.grads[name], t.grad.numpy())
    assert result.clipped and result.norm_after < result.norm_before
    assert result.norm_after == pytest.approx(rnn.global_norm(result.grads))
    with pytest.raises(ValueError, match="positive"):
        rnn.clip_by_value(grads, 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), threshold=st.floats(1e-3, 1e3), spread=st.floats(1e-3, 1e3))
def test_clipping_properties(seed, threshold, spread):
    rng = np.random.default_rng(seed)
    grads = {"W": rng.standard_normal((3, 3)) * spread, "b": rng.standard_normal(3) * spread}
    by_norm = rnn.clip_by_norm(grads, threshold)
    assert by_norm.norm_after <= threshold * (1 + 1e-12) or not by_norm.clipped
    assert by_norm.norm_after <= by_norm.norm_before * (1 + 1e-12)
    # Clipping by norm keeps the direction.
    flat_in = np.concatenate([g.ravel() for g in grads.values()])
    flat_out = np.concatenate([g.ravel() for g in by_norm.grads.values()])
    assert abs(flat_in @ flat_out - np.linalg.norm(flat_in) * np.linalg.norm(flat_out)) <= 1e-9 * max(
        1.0, np.linalg.norm(flat_in) * np.linalg.norm(flat_out))
    by_value = rnn.clip_by_value(grads, threshold)
    assert all(np.abs(g).max() <= threshold for g in by_value.grads.values())


def test_training_deep_reaches_near_zero_loss_and_samples_it_back():
    task = rnn.make_task("deep")
    model = rnn.VanillaRNN.random(4, 8, 4, scale=0.9, seed=0)
    records = list(rnn.train(model, task, rnn.RNNTrainConfig(lr=0.2, steps=600, emit_every_s=0.0)))
    assert records[-1].done and records[-1].step == 600
    assert records[-1].loss < 0.02 < records[0].loss
    steps = np.concatenate([r.history_steps for r in records])
    np.testing.assert_array_equal(steps, np.arange(1, 601))  # no step is lost by throttling
    loss = np.concatenate([r.history_loss for r in records])
    assert loss[-1] < loss[0] / 50
    last = records[-1]
    assert last.dL_dh_norms.shape == (4, 4) and last.path_contrib.shape == (4, 4)
    np.testing.assert_allclose(last.dL_dh_norms, rnn.bptt(last.model, task.inputs, task.targets).dL_dh_norms)
    greedy = rnn.sample(last.model, task.vocab, "d")
    assert greedy.symbols == ("e", "e", "p", STOP) and greedy.stopped and greedy.text == "eep"
    assert greedy.probs.shape == (4, 4) and np.allclose(greedy.probs.sum(1), 1)
    drawn = rnn.sample(last.model, task.vocab, "d", greedy=False, temperature=0.5, seed=1)
    assert drawn.text == "eep"  # the trained net is sure enough that sampling agrees


def test_training_is_throttled_and_records_are_independent():
    task = rnn.make_task("hello world")
    model = rnn.VanillaRNN.random(len(task.vocab), 16, len(task.vocab), seed=0)
    records = list(rnn.train(model, task, rnn.RNNTrainConfig(lr=0.05, steps=300, emit_every_s=10.0)))
    assert len(records) == 2  # the first step, then the last (the throttle holds the rest back)
    assert len(records[1].history_steps) == 299
    assert records[0].model.W is not records[1].model.W
    assert not np.array_equal(records[0].model.W, records[1].model.W)


def test_training_with_clipping_reports_both_norms():
    task = rnn.make_task("hello world")
    n = len(task.vocab)
    model = rnn.VanillaRNN.random(n, 16, n, scale=2.0, seed=0, activation="relu")
    config = rnn.RNNTrainConfig(lr=0.05, steps=20, clip_mode="norm", clip_threshold=0.5, emit_every_s=0.0)
    records = list(rnn.train(model, task, config))
    before = np.concatenate([r.history_grad_norm for r in records])
    after = np.concatenate([r.history_clipped_norm for r in records])
    assert np.all(after <= 0.5 * (1 + 1e-12)) and np.any(before > 0.5)
    np.testing.assert_allclose(after, np.minimum(before, 0.5))


def test_exploding_training_raises_an_explanation():
    task = rnn.make_task(rnn.PRESETS["one sentence"])
    n = len(task.vocab)
    model = rnn.VanillaRNN.random(n, 32, n, scale=2.5, seed=0, activation="relu")
    records = []
    with pytest.raises(FloatingPointError, match="exploded.*clipping"):
        for record in rnn.train(model, task, rnn.RNNTrainConfig(lr=1.0, steps=200)):
            records.append(record)
    # Before explaining, training hands over the curve so far and the last weights with a finite loss.
    assert records and all(math.isfinite(r.loss) for r in records)
    assert np.isfinite(records[-1].dL_dh_norms).all() and len(records[-1].history_loss) >= 1
    with pytest.raises(FloatingPointError, match="exploded"):  # even when the very last update overflows
        list(rnn.train(model, task, rnn.RNNTrainConfig(lr=1.0, steps=1)))
    # The same run with clipping by norm stays finite.
    config = rnn.RNNTrainConfig(lr=0.01, steps=30, clip_mode="norm", clip_threshold=1.0)
    assert all(math.isfinite(r.loss) for r in rnn.train(model, task, config))


def test_train_config_and_vocabulary_checks():
    with pytest.raises(ValueError, match="learning rate"):
        rnn.RNNTrainConfig(lr=0)
    with pytest.raises(ValueError, match="clipping mode"):
        rnn.RNNTrainConfig(clip_mode="sometimes")
    with pytest.raises(ValueError, match="vocabulary"):
        next(rnn.train(rnn.VanillaRNN.random(3, 4, 3), text_task("deep"), rnn.RNNTrainConfig()))


def test_sampling_stops_at_max_length_and_checks_the_prompt():
    task = rnn.make_task("deep")
    model = rnn.VanillaRNN.random(4, 8, 4, seed=0)
    out = rnn.sample(model, task.vocab, "de", max_length=3, greedy=False, seed=0)
    assert 1 <= len(out.symbols) <= 3 and out.probs.shape == (len(out.symbols), 4)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        rnn.sample(model, task.vocab, "x")
    with pytest.raises(ValueError, match="at least one character"):
        rnn.sample(model, task.vocab, "")
