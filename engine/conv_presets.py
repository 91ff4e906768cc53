"""The lecture's worked convolution examples as data, so the playground can replay them.

Each preset holds the numbers printed in the lecture (``lecture_values``) beside the
settings; the app computes the exact results itself and, where the printed number is
rounded or wrong, says so (``discrepancies``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine import conv


@dataclass(frozen=True)
class ConvPreset:
    name: str
    description: str
    x: np.ndarray  # (C, H, W) input
    w: np.ndarray  # (K, C, F, F) filters
    bias: tuple[float, ...] = ()  # (K,) or empty for no bias
    stride: int = 1
    padding: int = 0
    pool: tuple[str, int, int] | None = None  # (mode, size, stride) applied to the input itself
    channel_names: tuple[str, ...] = ()
    # What the lecture prints: {(filter, i, j): value} for conv outputs, or the pooled grid.
    lecture_values: dict = field(default_factory=dict)
    lecture_note: str = ""  # a known slip in the lecture, explained


def _grid(text: str) -> np.ndarray:
    return np.array([[float(v) for v in row.split()] for row in text.strip().split("/")])


VERTICAL_EDGE = _grid("1 0 -1 / 1 0 -1 / 1 0 -1")
SHARPEN = _grid("0 -1 0 / -1 5 -1 / 0 -1 0")
PIXELS_105 = _grid("105 102 100 97 96 / 103 99 103 101 102 / 101 98 104 102 100 / "
                   "99 101 106 104 99 / 104 104 104 100 98")
RGB_RED = _grid("156 155 156 158 158 / 153 154 157 159 159 / 149 151 155 158 159 / "
                "146 146 149 153 158 / 145 143 143 148 158")
RGB_GREEN = _grid("167 166 167 169 169 / 164 165 168 170 170 / 160 162 166 169 170 / "
                  "156 156 159 163 168 / 155 153 153 158 168")
RGB_BLUE = _grid("163 162 163 165 165 / 160 161 164 166 166 / 156 158 162 165 166 / "
                 "155 155 158 162 167 / 154 152 152 157 167")
RGB_KERNELS = np.stack([_grid("-1 -1 1 / 0 1 -1 / 0 1 1"), _grid("1 0 0 / 1 -1 -1 / 1 0 -1"),
                        _grid("0 1 1 / 0 1 0 / 1 -1 1")])

PRESETS: tuple[ConvPreset, ...] = (
    ConvPreset(
        "5x5 input, vertical edge kernel",
        "The first worked example: a 3 x 3 vertical-edge kernel over a 5 x 5 grid, no padding.",
        _grid("7 2 3 3 8 / 4 5 3 8 4 / 3 3 2 8 4 / 2 8 7 2 7 / 5 4 4 5 4")[None], VERTICAL_EDGE[None, None],
        lecture_values={(0, 0, 0): 6},
        lecture_note="The slide writes the right column as +3x1 + 3x1 + 2x1; the kernel's -1 makes it "
                     "-3 - 3 - 2, which is how the total of 6 comes out. It also draws the 6 in the centre "
                     "of a 5 x 5 grid, but without padding the output is 3 x 3 and 6 is its top-left value."),
    ConvPreset(
        "Zero padding 1, sharpen, stride 1",
        "The 105 102 100 ... image padded with one ring of zeros, sharpened; stride 1 keeps 5 x 5.",
        PIXELS_105[None], SHARPEN[None, None], padding=1, lecture_values={(0, 0, 0): 320}),
    ConvPreset(
        "Zero padding 1, sharpen, stride 2",
        "The same image and kernel moved two pixels at a time: a 3 x 3 output.",
        PIXELS_105[None], SHARPEN[None, None], padding=1, stride=2, lecture_values={(0, 0, 0): 320},
        lecture_note="The stride-2 slide shows extra pixels (101, 99, 101) beyond the 5 x 5 image; "
                     "only the 5 x 5 part is used here, which is all the printed 320 depends on."),
    ConvPreset(
        "RGB input, 3 kernel slices, bias 1",
        "One filter with a slice per colour channel: the channel sums 308, -498 and 164 plus the bias give -25.",
        np.stack([RGB_RED, RGB_GREEN, RGB_BLUE]), RGB_KERNELS[None], bias=(1.0,), padding=1,
        channel_names=("red", "green", "blue"), lecture_values={(0, 0, 0): -25},
        lecture_note="The slides show only the top-left 5 x 5 corner of each channel; outputs away from "
                     "that corner use only these pixels here."),
    ConvPreset(
        "3x3 input, 2x2 kernel, bias 2",
        "The definition slide: a 2 x 2 kernel and a bias of 2 over a 3 x 3 input give a 2 x 2 feature map.",
        _grid("2 2 1 / 3 1 -1 / 4 3 2")[None], _grid("1 -1 / -1 0")[None, None], bias=(2.0,),
        lecture_values={(0, 0, 0): -1, (0, 0, 1): 2, (0, 1, 0): 0, (0, 1, 1): 1},
        lecture_note="The slide's written sums mix up some signs and inputs (e.g. 1*2 - 1*2 - 1*1 + 0*-1 + 2 "
                     "for the second value, whose window is 2 1 / 1 -1); the printed results -1 2 / 0 1 are right."),
    ConvPreset(
        "6x6 half-bright image, vertical edge",
        "Parameter sharing: the same edge detector finds the boundary wherever it is: columns 0 30 30 0.",
        np.hstack([np.full((6, 3), 10.0), np.zeros((6, 3))])[None], VERTICAL_EDGE[None, None],
        lecture_values={(0, r, c): v for r in range(4) for c, v in enumerate((0, 30, 30, 0))}),
    ConvPreset(
        "Max pooling 4x4, 2x2 windows, stride 2",
        "Max pooling keeps the largest value of each 2 x 2 block: 8 4 / 7 5.",
        _grid("1 4 2 1 / 5 8 3 4 / 7 6 4 5 / 1 3 1 2")[None], np.ones((1, 1, 1, 1)), pool=("max", 2, 2),
        lecture_values={"pooled": _grid("8 4 / 7 5")},
        lecture_note="One slide labels this '2x2 filters (stride 1)'; 8 4 / 7 5 is what stride 2 gives. "
                     "With stride 1 the result would be 3 x 3: 8 8 4 / 8 8 5 / 7 6 5."),
)


@dataclass(frozen=True)
class SmoothingExample:
    readings: np.ndarray  # (N,) x_0 ... x_N-1
    weights: np.ndarray  # (A,) oldest first: w_-6 ... w_0
    lecture_values: tuple[float, ...]  # s_6, s_7, ... as printed


SMOOTHING = SmoothingExample(
    readings=np.array([1.00, 1.10, 1.20, 1.40, 1.70, 1.80, 1.90, 2.10, 2.20, 2.40, 2.50, 2.70]),
    weights=np.array([0.01, 0.01, 0.02, 0.02, 0.04, 0.4, 0.5]),
    lecture_values=(1.80, 1.96, 2.11, 2.16, 2.28, 2.42),
)


@dataclass(frozen=True)
class ParameterExample:
    """The 'Why convolutions?' count: six 5x5 filters on a 32x32x3 image."""
    h: int = 32
    w: int = 32
    channels: int = 3
    filters: int = 6
    f: int = 5
    lecture_params: int = 156

    def note(self) -> str:
        exact = conv.conv_params(self.channels, self.filters, self.f)
        one = conv.conv_params(1, self.filters, self.f)
        return (f"The lecture counts {self.lecture_params} = 6 x (5 x 5 + 1), which holds for a 1-channel input "
                f"({one}); on a 3-channel image each filter is 5 x 5 x 3, so the count is "
                f"6 x (5 x 5 x 3 + 1) = {exact}.")


PARAMETER_EXAMPLE = ParameterExample()


def discrepancies(preset: ConvPreset, outputs: np.ndarray | None, pooled: np.ndarray | None) -> list[str]:
    """Where the computed value differs from the printed one, a line saying both."""
    lines = []
    for key, printed in preset.lecture_values.items():
        if key == "pooled":
            if pooled is not None and not np.allclose(pooled, printed):
                lines.append(f"The lecture prints {printed.tolist()}; the exact result is {pooled.tolist()}.")
            continue
        k, i, j = key
        if outputs is not None and abs(outputs[k, i, j] - printed) > 1e-9:
            lines.append(f"The lecture prints {printed} at ({i}, {j}); the exact value is {outputs[k, i, j]:g}.")
    return lines


def smoothing_discrepancies(example: SmoothingExample = SMOOTHING) -> list[str]:
    exact = conv.smooth1d(example.readings, example.weights)
    a = len(example.weights) - 1
    return [f"s_{a + n}: the lecture prints {printed:.2f}, the exact value is {value:.4f}"
            for n, (printed, value) in enumerate(zip(example.lecture_values, exact))
            if abs(round(value, 2) - printed) > 1e-9]
