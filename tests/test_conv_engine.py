"""engine.conv against torch.nn.functional, and every lecture example number for number."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine import conv
from engine import conv_presets as P


@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 14), w=st.integers(1, 14), c=st.integers(1, 3), k=st.integers(1, 3),
       f=st.integers(1, 5), p=st.integers(0, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       d=st.integers(1, 3), mode=st.sampled_from(conv.PADDING_MODES), seed=st.integers(0, 10_000))
def test_conv2d_matches_torch(h, w, c, k, f, p, sh, sw, d, mode, seed):
    span = d * (f - 1) + 1
    assume(span <= h + 2 * p and span <= w + 2 * p)
    assume(mode != "reflect" or (p < h and p < w))
    assume(mode != "circular" or (p <= h and p <= w))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(c, h, w))
    wt = rng.normal(size=(k, c, f, f))
    b = rng.normal(size=k)
    ours = conv.conv2d(x, wt, b, stride=(sh, sw), padding=p, dilation=d, padding_mode=mode)
    layer = torch.nn.Conv2d(c, k, f, stride=(sh, sw), padding=p, dilation=d, padding_mode=mode).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(wt))
        layer.bias.copy_(torch.from_numpy(b))
        ref = layer(torch.from_numpy(x)[None])[0].numpy()
    assert ours.shape == ref.shape == (k, conv.output_size(h, f, p, sh, d), conv.output_size(w, f, p, sw, d))
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), f=st.integers(1, 8), p=st.integers(0, 4), s=st.integers(1, 5), d=st.integers(1, 3))
def test_output_size_matches_torch_shapes_or_explains(n, f, p, s, d):
    x = torch.zeros(1, 1, n, n)
    try:
        expected = F.conv2d(x, torch.zeros(1, 1, f, f), stride=s, padding=p, dilation=d).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv.output_size(n, f, p, s, d)
        return
    assert conv.output_size(n, f, p, s, d) == expected


@settings(max_examples=60, deadline=None)
@given(h=st.integers(2, 12), w=st.integers(2, 12), size=st.integers(1, 4), stride=st.integers(1, 4),
       mode=st.sampled_from(conv.POOL_MODES), seed=st.integers(0, 1000))
def test_pool2d_matches_torch(h, w, size, stride, mode, seed):
    assume(size <= h and size <= w)
    x = np.random.default_rng(seed).normal(size=(2, h, w))
    t = torch.from_numpy(x)[None]
    ref = {"max": lambda: F.max_pool2d(t, size, stride), "avg": lambda: F.avg_pool2d(t, size, stride),
           "min": lambda: -F.max_pool2d(-t, size, stride)}[mode]()[0].numpy()
    np.testing.assert_allclose(conv.pool2d(x, size, stride, mode), ref, rtol=1e-12)
    assert conv.pool2d(x[0], size, stride, mode).shape == ref.shape[1:]


def test_shapes_for_2d_and_3d_filters():
    x = np.ones((3, 6, 6))
    assert conv.conv2d(x[0], np.ones((3, 3))).shape == (4, 4)
    assert conv.conv2d(x, np.ones((3, 3, 3))).shape == (1, 4, 4)
    assert conv.conv2d(x, np.ones((2, 3, 3, 3)), bias=[1, 2]).shape == (2, 4, 4)
    np.testing.assert_allclose(conv.conv2d(x, np.ones((3, 3)))[0], 27)  # a 2-D filter sums over channels


def test_impossible_settings_explain_themselves():
    with pytest.raises(ValueError, match="never move"):
        conv.output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="one slice per input channel"):
        conv.conv2d(np.ones((3, 5, 5)), np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="Reflect padding"):
        conv.pad(np.ones((3, 3)), 3, "reflect")
    report = conv.size_report(4, 4, 1, 1, 7)
    assert not report.ok and "fits nowhere" in report.error


def test_explain_sums_to_the_output_and_lists_every_product():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(3, 7, 6)), rng.normal(size=(2, 3, 3, 3)), rng.normal(size=2)
    out = conv.conv2d(x, w, b, stride=2, padding=1, dilation=1)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            e = conv.explain(x, w, b, i, j, stride=2, padding=1, filter_index=1)
            assert len(e.terms) == 3 and all(len(t) == 9 for t in e.terms)
            assert e.total == pytest.approx(out[1, i, j])
    with pytest.raises(ValueError, match="outside"):
        conv.explain(x, w, b, 9, 0, stride=2, padding=1)


def test_params_formula_and_lecture_quiz():
    assert conv.conv_params(3, 6, 5) == 456
    assert conv.conv_params(1, 6, 5) == 156
    assert conv.conv_params(256, 256, 3, bias=False) == 256 * 256 * 9
    assert "456" in P.PARAMETER_EXAMPLE.note() and "156" in P.PARAMETER_EXAMPLE.note()
    torch_count = sum(p.numel() for p in torch.nn.Conv2d(3, 6, 5).parameters())
    assert torch_count == 456


def test_size_report_floor_and_lines():
    r = conv.size_report(5, 5, 3, 2, 3, padding=1, stride=2)
    assert (r.h2, r.w2, r.params) == (3, 3, 56)
    assert r.lines[0] == "W2 = (W1 - F + 2P)/S + 1 = (5 - 3 + 2x1)/2 + 1 = 3"
    r = conv.size_report(6, 6, 1, 1, 3, stride=4)
    assert "floor(3/4) + 1 = 1" in r.lines[0]


@pytest.mark.smoke
@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.name)
def test_every_lecture_preset_reproduces_the_printed_numbers(preset):
    if preset.pool is not None:
        mode, size, stride = preset.pool
        pooled = conv.pool2d(preset.x[0], size, stride, mode)
        np.testing.assert_array_equal(pooled, preset.lecture_values["pooled"])
        assert P.discrepancies(preset, None, pooled) == []
        return
    out = conv.conv2d(preset.x, preset.w, preset.bias or None, preset.stride, preset.padding)
    for (k, i, j), printed in preset.lecture_values.items():
        assert out[k, i, j] == printed
    assert P.discrepancies(preset, out, None) == []


def test_rgb_channel_sums_are_the_lecture_ones():
    p = next(p for p in P.PRESETS if p.name.startswith("RGB"))
    e = conv.explain(p.x, p.w, p.bias, 0, 0, padding=1)
    assert e.channel_sums == (308, -498, 164) and e.total == -25
    assert e.lines(["red", "green", "blue"])[-1] == "output[0, 0] = 308 + (-498) + 164 + 1 (bias) = -25"


def test_sharpen_explanation_reads_like_the_lecture():
    e = conv.explain(P.PIXELS_105, P.SHARPEN, None, 0, 0, padding=1)
    assert e.lines()[0] == "0*0 + 0*-1 + 0*0 + 0*-1 + 105*5 + 102*-1 + 0*0 + 103*-1 + 99*0 = 320"


def test_smoothing_matches_torch_and_flags_the_slide():
    ex = P.SMOOTHING
    s = conv.smooth1d(ex.readings, ex.weights)
    ref = np.convolve(ex.readings, ex.weights[::-1], mode="valid")  # true convolution flips the kernel
    np.testing.assert_allclose(s, ref)
    assert s[0] == pytest.approx(1.811)
    terms = conv.smooth1d_terms(ex.readings, ex.weights, 6)
    assert terms[0] == (1.90, 0.5) and terms[-1] == (1.00, 0.01)
    notes = P.smoothing_discrepancies()
    assert any(n.startswith("s_6: the lecture prints 1.80, the exact value is 1.8110") for n in notes)


def test_kernel_presets():
    for name in conv.KERNEL_NAMES:
        k = conv.make_kernel(name, 5)
        assert k.ndim == 2 and k.shape[0] == k.shape[1]
    assert conv.make_kernel("Gaussian", 7).sum() == pytest.approx(1)
    assert conv.make_kernel("Laplacian edge").tolist() == [[1, 1, 1], [1, -8, 1], [1, 1, 1]]
    np.testing.assert_allclose(conv.normalise(np.full((3, 3), 2.0)).sum(), 1)
    np.testing.assert_allclose(np.abs(conv.normalise(conv.make_kernel("Sobel x"))).sum(), 1)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), p=st.integers(0, 3), mode=st.sampled_from(conv.PADDING_MODES),
       seed=st.integers(0, 1000))
def test_pad_matches_torch_and_explain_reads_the_padded_values(h, w, p, mode, seed):
    assume(mode != "reflect" or (p < h and p < w))
    assume(mode != "circular" or (p <= h and p <= w))
    x = np.random.default_rng(seed).normal(size=(2, h, w))
    torch_mode = "constant" if mode == "zeros" else mode
    ref = F.pad(torch.from_numpy(x)[None], (p, p, p, p), mode=torch_mode)[0].numpy()
    np.testing.assert_array_equal(conv.pad(x, p, mode), ref)
    wt = np.ones((1, 2, 3, 3))
    assume(3 <= h + 2 * p and 3 <= w + 2 * p)
    e = conv.explain(x, wt, None, 0, 0, padding=p, padding_mode=mode)
    np.testing.assert_allclose([t.value for t in e.terms[0]], ref[0, :3, :3].ravel())


def test_float32_path_for_images():
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 64))
    w = np.random.default_rng(2).normal(size=(3, 3, 3, 3))
    fast = conv.conv2d(x, w, padding=1, dtype=np.float32)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, conv.conv2d(x, w, padding=1), rtol=1e-4, atol=1e-2)
