"""engine.gates and engine.memory_tasks: explicit LSTM/GRU cells against torch, counts, gradient flow,
memory tasks and the side-by-side training generator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from engine import gates
from engine.memory_tasks import (
    ADDING_TOLERANCE,
    DISTRACTORS,
    FIRST_SYMBOL_ALPHABET,
    RECALL,
    REMEMBER,
    MemoryTask,
    adding_batch,
    first_symbol_batch,
    text_batch,
)
from engine.text import text_task


def _torch_lstm_gates(module: nn.LSTM, xs: torch.Tensor, hs: torch.Tensor):
    """i, f, g, o from torch's documented equations, given torch's own hidden states hs (T, H)."""
    h_prev = torch.cat([torch.zeros_like(hs[:1]), hs[:-1]])
    pre = F.linear(xs, module.weight_ih_l0, getattr(module, "bias_ih_l0", None)) + \
        F.linear(h_prev, module.weight_hh_l0, getattr(module, "bias_hh_l0", None))
    i, f, g, o = pre.chunk(4, dim=1)
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)


def _run_torch(module, xs: np.ndarray):
    """module's outputs for one sequence xs (T, I), honouring batch_first."""
    x = torch.from_numpy(xs)
    x = x[None] if module.batch_first else x[:, None]
    with torch.no_grad():
        out, state = module(x)
    return (out[0] if module.batch_first else out[:, 0]), state


def check_lstm(input_size, hidden, steps, batch_first, bias, seed):
    torch.manual_seed(seed)
    module = nn.LSTM(input_size, hidden, batch_first=batch_first, bias=bias).double()
    xs = np.random.default_rng(seed).normal(size=(steps, input_size)) * 2
    out, (_h_n, c_n) = _run_torch(module, xs)
    trace = gates.lstm_trace(gates.from_torch(module), xs)
    for name in ("i", "f", "g", "o", "c", "h"):
        assert getattr(trace, name).shape == (steps, hidden)
    np.testing.assert_allclose(trace.h, out.numpy(), atol=1e-10, rtol=0)
    np.testing.assert_allclose(trace.c[-1], c_n[0, 0].numpy(), atol=1e-10, rtol=0)
    with torch.no_grad():
        i, f, g, o = _torch_lstm_gates(module, torch.from_numpy(xs), out)
    for mine, theirs in ((trace.i, i), (trace.f, f), (trace.g, g), (trace.o, o)):
        np.testing.assert_allclose(mine, theirs.numpy(), atol=1e-10, rtol=0)
    # Every c_t, not only the last: the cell recursion with torch's gates.
    c_prev = np.vstack([np.zeros(hidden), trace.c[:-1]])
    np.testing.assert_allclose(trace.c, f.numpy() * c_prev + i.numpy() * g.numpy(), atol=1e-10, rtol=0)


def check_gru(input_size, hidden, steps, batch_first, bias, seed):
    torch.manual_seed(seed)
    module = nn.GRU(input_size, hidden, batch_first=batch_first, bias=bias).double()
    xs = np.random.default_rng(seed).normal(size=(steps, input_size)) * 2
    out, h_n = _run_torch(module, xs)
    trace = gates.gru_trace(gates.from_torch(module), xs)
    for name in ("z", "r", "n", "h"):
        assert getattr(trace, name).shape == (steps, hidden)
    np.testing.assert_allclose(trace.h, out.numpy(), atol=1e-10, rtol=0)
    np.testing.assert_allclose(trace.h[-1], h_n[0, 0].numpy(), atol=1e-10, rtol=0)
    # The gates from torch's documented equations, driven by torch's own hidden states.
    h_prev = torch.cat([torch.zeros(1, hidden, dtype=torch.float64), out[:-1]])
    x = torch.from_numpy(xs)
    with torch.no_grad():
        gi = F.linear(x, module.weight_ih_l0, getattr(module, "bias_ih_l0", None))
        gh = F.linear(h_prev, module.weight_hh_l0, getattr(module, "bias_hh_l0", None))
        (i_r, i_z, i_n), (h_r, h_z, h_n_part) = gi.chunk(3, 1), gh.chunk(3, 1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n_part)
    for mine, theirs in ((trace.r, r), (trace.z, z), (trace.n, n)):
        np.testing.assert_allclose(mine, theirs.numpy(), atol=1e-10, rtol=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 15), st.booleans(), st.booleans(), st.integers(0, 999))
def test_lstm_trace_matches_torch(input_size, hidden, steps, batch_first, bias, seed):
    check_lstm(input_size, hidden, steps, batch_first, bias, seed)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 15), st.booleans(), st.booleans(), st.integers(0, 999))
def test_gru_trace_matches_torch(input_size, hidden, steps, batch_first, bias, seed):
    check_gru(input_size, hidden, steps, batch_first, bias, seed)


@pytest.mark.parametrize("input_size,hidden,steps", [(9, 32, 82), (16, 64, 200), (3, 128, 40)])
def test_larger_cells_match_torch(input_size, hidden, steps):
    check_lstm(input_size, hidden, steps, True, True, 1)
    check_gru(input_size, hidden, steps, False, True, 2)


@pytest.mark.smoke
def test_from_torch_reads_float32_modules_and_copies():
    module = nn.LSTM(3, 4)
    params = gates.from_torch(module)
    assert params.w_ih.dtype == np.float64 and params.w_ih.shape == (16, 3) and params.w_hh.shape == (16, 4)
    np.testing.assert_array_equal(params.b_hh, module.bias_hh_l0.detach().double().numpy())
    with torch.no_grad():
        module.weight_ih_l0.zero_()
    assert np.abs(params.w_ih).sum() > 0  # a copy, not a view of the live weights
    assert (params.input_size, params.hidden_size) == (3, 4)
    assert isinstance(gates.from_torch(nn.GRU(2, 5, batch_first=True)), gates.GRUParams)


@pytest.mark.parametrize("module,error", [
    (nn.RNN(3, 4), TypeError),
    (nn.LSTM(3, 4, num_layers=2), ValueError),
    (nn.GRU(3, 4, bidirectional=True), ValueError),
    (nn.LSTM(3, 4, proj_size=2), ValueError),
])
def test_from_torch_refuses_what_it_cannot_trace(module, error):
    with pytest.raises(error):
        gates.from_torch(module)


def test_trace_checks_the_input_shape():
    params = gates.from_torch(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        gates.lstm_trace(params, np.zeros((5, 2)))


def test_previous_state_starts_at_zero():
    params = gates.from_torch(nn.LSTM(2, 3))
    trace = gates.lstm_trace(params, np.ones((4, 2)))
    h0, c0 = trace.previous_state(0)
    assert not h0.any() and not c0.any()
    h2, c2 = trace.previous_state(3)
    np.testing.assert_array_equal(h2, trace.h[2])
    np.testing.assert_array_equal(c2, trace.c[2])
    gtrace = gates.gru_trace(gates.from_torch(nn.GRU(2, 3)), np.ones((4, 2)))
    assert not gtrace.previous_state(0).any()
    np.testing.assert_array_equal(gtrace.previous_state(2), gtrace.h[1])


@pytest.mark.parametrize("input_size,hidden,output", [(9, 32, 4), (2, 1, 1), (27, 100, 27)])
def test_parameter_counts_match_torch(input_size, hidden, output):
    counts = {c.kind: c for c in gates.parameter_counts(input_size, hidden, output)}
    head = sum(p.numel() for p in nn.Linear(hidden, output).parameters())
    for kind, layer in (("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)):
        recurrent = sum(p.numel() for p in layer(input_size, hidden).parameters())
        assert counts[kind].recurrent == recurrent
        assert counts[kind].output == head
        assert counts[kind].total == recurrent + head
        model = gates.SequenceModel(kind, input_size, hidden, output)
        assert counts[kind].total == sum(p.numel() for p in model.parameters())
        assert counts[kind].worked.endswith(f"= {recurrent + head}")
    assert counts["lstm"].blocks == 4 and counts["lstm"].formula.startswith("4·H·(I + H + 2)")
    assert counts["gru"].blocks == 3 and counts["gru"].formula.startswith("3·H·(I + H + 2)")
    assert counts["rnn"].blocks == 1 and counts["rnn"].formula.startswith("H·(I + H + 2)")
    assert counts["lstm"].recurrent == 4 * counts["rnn"].recurrent


# ---------------------------------------------------------------- models and gradient flow

@pytest.mark.parametrize("kind", gates.MODEL_KINDS)
def test_step_states_match_the_fused_layer(kind):
    torch.manual_seed(0)
    model = gates.SequenceModel(kind, 5, 6, 3).double()
    x = torch.randn(11, 5, dtype=torch.float64)
    with torch.no_grad():
        fused, _ = model.rnn(x[None])
        stepped = torch.stack(model.step_states(x))
    torch.testing.assert_close(stepped, fused[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", gates.MODEL_KINDS)
def test_gradient_norms_match_autograd_from_each_step(kind):
    """||dL_T/dh_k||: rerun the fused torch layer from step k+1 with h_k (and c_k) as leaves."""
    task = MemoryTask("first_symbol", 6)
    model = gates.build_models(task, 7, seed=3, kinds=(kind,))[kind].double()
    sequence = task.example(seed=5)
    norms = gates.gradient_norms(model, sequence)
    assert norms.shape == (sequence.length,)
    x = torch.from_numpy(sequence.inputs)  # (1, T, I)
    target = torch.from_numpy(sequence.targets)
    with torch.no_grad():
        states, _ = model.rnn(x)
        if kind == "lstm":  # c_k of each step, from running prefixes
            cells = [model.rnn(x[:, : k + 1])[1][1] for k in range(sequence.length)]
    for k in (0, 2, sequence.length - 2, sequence.length - 1):
        h_k = states[:, k].clone()[None].requires_grad_(True)  # (1, 1, H)
        rest = x[:, k + 1:]
        if rest.shape[1] == 0:
            last = h_k[0]
        elif kind == "lstm":
            last = model.rnn(rest, (h_k, cells[k]))[0][:, -1]
        else:
            last = model.rnn(rest, h_k)[0][:, -1]
        F.cross_entropy(model.head(last), target).backward()
        assert norms[k] == pytest.approx(float(h_k.grad.norm()), rel=1e-9, abs=1e-300)


def test_gradient_flow_vanishes_faster_for_the_vanilla_rnn():
    task = MemoryTask("first_symbol", 40)
    models = gates.build_models(task, 32, seed=0)
    flow = gates.gradient_flow(models, task.example(seed=1))
    assert flow.models == gates.MODEL_KINDS and len(flow.labels) == 42
    decay = {k: flow.of(k)[0] / flow.of(k)[-1] for k in flow.models}  # first step relative to the last
    assert decay["rnn"] < 1e-3 * decay["lstm"]
    assert decay["rnn"] < 1e-3 * decay["gru"]


def test_traces_of_the_models_use_their_weights():
    task = MemoryTask("first_symbol", 5)
    models = gates.build_models(task, 8, seed=0)
    xs = task.example().inputs[0]
    lstm, gru = gates.traces(models, xs)
    with torch.no_grad():
        torch_h = models["lstm"].rnn(torch.from_numpy(xs).float()[None])[0][0].numpy()
    np.testing.assert_allclose(lstm.h, torch_h, atol=1e-5)
    assert gru.h.shape == (7, 8)
    # The gated cells start out keeping their memory (the forget / update bias) and writing little.
    assert lstm.f.mean() > 0.85 and gru.z.mean() > 0.85
    assert lstm.i.mean() < 0.15


# ---------------------------------------------------------------- memory tasks

def test_first_symbol_sequences():
    batch = first_symbol_batch(np.random.default_rng(0), 50, 7)
    assert batch.inputs.shape == (50, 9, len(FIRST_SYMBOL_ALPHABET)) and batch.target_kind == "class_last"
    np.testing.assert_array_equal(batch.inputs.sum(-1), 1.0)  # one-hot
    for labels, target in zip(batch.step_labels, batch.targets):
        assert labels[0] == REMEMBER[target]
        assert all(s in DISTRACTORS for s in labels[1:-1]) and labels[-1] == RECALL
    assert set(batch.targets) == set(range(len(REMEMBER)))
    assert first_symbol_batch(np.random.default_rng(0), 3, 0).length == 2


def test_adding_problem_sequences():
    batch = adding_batch(np.random.default_rng(1), 200, 10)
    assert batch.inputs.shape == (200, 12, 2) and batch.target_kind == "value_last"
    markers = batch.inputs[..., 1]
    np.testing.assert_array_equal(markers.sum(1), 2)
    assert (markers[:, :6].sum(1) == 1).all() and (markers[:, 6:].sum(1) == 1).all()  # one in each half
    np.testing.assert_allclose(batch.targets, (batch.inputs[..., 0] * markers).sum(1))
    assert batch.step_labels[0][int(np.argmax(markers[0]))].endswith("*")


def test_text_windows_follow_the_text():
    text = "hello world, hello gates"
    task = text_task(text)
    batch = text_batch(np.random.default_rng(2), 20, 4, task)
    assert batch.inputs.shape == (20, 6, len(task.vocab)) and batch.target_kind == "class_every"
    for labels, targets in zip(batch.step_labels, batch.targets):
        window = "".join(labels)
        following = task.vocab.decode(targets)
        assert following[:-1] == list(labels[1:])  # each target is the next input
        assert window + following[-1] in text + "<stop>"  # and the last one comes after the window
    with pytest.raises(ValueError, match="longer text"):
        text_batch(np.random.default_rng(0), 1, 40, task)


def test_memory_task_sizes_and_validation():
    assert (MemoryTask("first_symbol").input_size, MemoryTask("first_symbol").output_size) == (9, 4)
    assert (MemoryTask("adding").input_size, MemoryTask("adding").output_size) == (2, 1)
    text = MemoryTask("text", 5, "abcabcabd")
    assert text.input_size == text.output_size == 5  # a, b, c, d, <stop>
    assert MemoryTask("first_symbol").chance_accuracy == 0.25
    assert 0 < MemoryTask("adding").chance_accuracy < 0.1
    assert text.chance_accuracy == pytest.approx(3 / 9)  # 'b' follows a three times
    for kind in ("first_symbol", "adding", "text"):
        assert "%" in MemoryTask(kind, 3).describe()
        example = MemoryTask(kind, 3).example(seed=4)
        np.testing.assert_array_equal(example.inputs, MemoryTask(kind, 3).example(seed=4).inputs)
    with pytest.raises(ValueError, match="Unknown task"):
        MemoryTask("copy")
    with pytest.raises(ValueError, match="negative"):
        MemoryTask("adding", -1)
    with pytest.raises(ValueError, match="longer text"):
        MemoryTask("text", 50, "too short")


# ---------------------------------------------------------------- training side by side

def _train(config):
    records = list(gates.train_side_by_side(config))
    return records[:-1], records[-1]


def test_gated_cells_learn_a_short_delay_and_records_are_plain():
    config = gates.SideBySideConfig(task=MemoryTask("first_symbol", 4), hidden_size=16, steps=250, batch_size=32,
                                    lr=1e-2, emit_every_s=0.0, num_threads=1)
    progress, result = _train(config)
    assert len(progress) == config.steps  # emit_every_s=0: one record per step
    last = progress[-1]
    assert last.step == config.steps and last.fraction == 1.0 and last.models == gates.MODEL_KINDS
    for record in progress[::50]:
        assert all(isinstance(v, float) for v in record.losses + record.accuracies)
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.step = 0
    assert isinstance(result, gates.SideBySideResult)
    assert result.accuracy_of("gru") > 0.95 and result.accuracy_of("lstm") > 0.95
    assert all(isinstance(v, np.ndarray) for state in result.state_dicts for v in state.values())
    models = result.build_models()
    batch = config.task.sample(np.random.default_rng(99), 256)
    assert gates.evaluate(models["lstm"], batch)[1] > 0.95


def test_records_are_throttled():
    config = gates.SideBySideConfig(task=MemoryTask("adding", 3), hidden_size=4, steps=60, batch_size=8,
                                    emit_every_s=60.0)
    progress, result = _train(config)
    assert [r.step for r in progress] == [60]  # only the final step gets through a long throttle
    assert len(result.eval_accuracies) == 3


def test_text_task_trains_every_step():
    config = gates.SideBySideConfig(task=MemoryTask("text", 6, "the cat sat on the mat"), hidden_size=8, steps=20,
                                    batch_size=4, emit_every_s=0.0, models=("rnn", "lstm"))
    progress, result = _train(config)
    assert result.models == ("rnn", "lstm") and progress[-1].models == ("rnn", "lstm")
    assert 0.0 <= progress[-1].accuracy_of("lstm") <= 1.0


def test_nan_loss_raises_a_readable_error(monkeypatch):
    task = MemoryTask("first_symbol", 3)
    real_sample = MemoryTask.sample

    def poisoned(self, rng, batch_size):
        batch = real_sample(self, rng, batch_size)
        return dataclasses.replace(batch, inputs=batch.inputs * np.nan)

    monkeypatch.setattr(MemoryTask, "sample", poisoned)
    config = gates.SideBySideConfig(task=task, hidden_size=4, steps=5, batch_size=4)
    with pytest.raises(FloatingPointError, match="vanilla RNN's loss became nan at step 1.*learning rate"):
        list(gates.train_side_by_side(config))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        list(gates.train_side_by_side(gates.SideBySideConfig(hidden_size=0)))


def test_adding_accuracy_uses_the_tolerance():
    outputs = torch.tensor([[[1.0]], [[0.5]]])  # (B=2, T=1, O=1)
    targets = torch.tensor([1.0 + ADDING_TOLERANCE / 2, 0.5 + 2 * ADDING_TOLERANCE])
    loss, correct = gates._loss_and_correct(outputs, targets, "value_last")
    assert correct.tolist() == [1.0, 0.0]
    assert float(loss) == pytest.approx(((ADDING_TOLERANCE / 2) ** 2 + (2 * ADDING_TOLERANCE) ** 2) / 2)


def test_answer_and_keep_gate_summary():
    task = MemoryTask("first_symbol", 5)
    models = gates.build_models(task, 8, seed=0)
    sequence = task.example(seed=2)
    probs = gates.answer(models["gru"], sequence)
    assert probs.shape == (4,) and probs.sum() == pytest.approx(1.0)
    lstm, gru = gates.traces(models, sequence.inputs[0])
    keep = gates.keep_gate_over_delay(lstm, gru)
    assert keep["lstm"] == pytest.approx(lstm.f[1:-1].mean()) and keep["gru"] == pytest.approx(gru.z[1:-1].mean())
    adding = MemoryTask("adding", 4)
    value = gates.answer(gates.build_models(adding, 4, kinds=("rnn",))["rnn"], adding.example())
    assert value.shape == (1,)
