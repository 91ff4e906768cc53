"""AlexNet as the lecture builds it, smaller variants that train on a CPU, and its layer table.

The full network takes a 227 x 227 x 3 image through five convolutions (96@11x11 stride 4,
256@5x5 pad 2, then three 3x3 pad 1 layers of 384, 384 and 256 filters) with three
3x3 stride-2 max-pools, then three fully connected layers 9216-4096-4096-1000 with
ReLU everywhere and dropout 0.5 before the first two of them: 62,378,344 parameters.

The variants keep that structure (5 conv + 3 pool + 3 FC) and change only what a
small image or a laptop needs: the first layer's kernel and stride, the widths
(divided by ``width_divider``), the number of classes and input channels, optional
BatchNorm after each convolution and dropout on or off.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

# Channels of the five convolutions and width of the two hidden FC layers, as in the lecture.
CONV_WIDTHS = (96, 256, 384, 384, 256)
FC_WIDTH = 4096


@dataclass(frozen=True)
class ConvPlan:
    """Kernel, stride and padding of one convolution."""
    kernel: int
    stride: int = 1
    padding: int = 0


# How the first convolution adapts to the input size; the other layers are the lecture's.
# 227: (227 - 11) / 4 + 1 = 55, as in the paper. 64: (64 - 5 + 4) / 2 + 1 = 32. 32 and 28: same size.
FIRST_CONV = {
    227: ConvPlan(11, 4, 0),
    64: ConvPlan(5, 2, 2),
    32: ConvPlan(5, 1, 2),
    28: ConvPlan(5, 1, 2),
}
INPUT_SIZES = tuple(sorted(FIRST_CONV))  # (28, 32, 64, 227)
LATER_CONVS = (ConvPlan(5, 1, 2), ConvPlan(3, 1, 1), ConvPlan(3, 1, 1), ConvPlan(3, 1, 1))
POOL_KERNEL, POOL_STRIDE = 3, 2
POOL_AFTER = (1, 2, 5)  # max-pool follows conv1, conv2 and conv5


@dataclass(frozen=True)
class AlexNetConfig:
    """Everything that fixes the architecture (and so the shapes of the weights)."""
    input_size: int = 227
    in_channels: int = 3
    num_classes: int = 1000
    width_divider: int = 1  # every conv and hidden FC width is divided by this
    batch_norm: bool = False  # BatchNorm after each conv (the conv then has no bias)
    dropout: float = 0.5  # 0 turns dropout off

    def __post_init__(self) -> None:
        if self.input_size not in FIRST_CONV:
            raise ValueError(f"Input size {self.input_size} is not supported; choose one of "
                             f"{', '.join(map(str, INPUT_SIZES))}.")
        if self.width_divider < 1 or self.in_channels < 1 or self.num_classes < 2:
            raise ValueError("width divider and input channels must be >= 1, classes >= 2.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Dropout must be in [0, 1), got {self.dropout}.")

    @property
    def conv_widths(self) -> tuple[int, ...]:
        return tuple(max(1, w // self.width_divider) for w in CONV_WIDTHS)

    @property
    def fc_width(self) -> int:
        return max(1, FC_WIDTH // self.width_divider)

    def conv_plans(self) -> tuple[ConvPlan, ...]:
        return (FIRST_CONV[self.input_size], *LATER_CONVS)

    def describe(self) -> str:
        """A short name for legends and file names, e.g. 'AlexNet 32px /4 BN'."""
        parts = [f"AlexNet {self.input_size}px"]
        if self.width_divider > 1:
            parts.append(f"/{self.width_divider}")
        if self.batch_norm:
            parts.append("BN")
        parts.append(f"drop {self.dropout:g}" if self.dropout else "no dropout")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AlexNetConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The lecture's (H1 - K + 2P) / S + 1, rounded down as every framework does."""
    return (size - kernel + 2 * padding) // stride + 1


def pool_output_size(size: int, kernel: int = POOL_KERNEL, stride: int = POOL_STRIDE) -> int:
    """The lecture's (I - Ps) / S + 1 for a pooling window Ps."""
    return (size - kernel) // stride + 1


def flat_features(config: AlexNetConfig) -> int:
    """Length of the vector entering FC-1 (9216 = 6 x 6 x 256 for the full network)."""
    size = config.input_size
    for index, plan in enumerate(config.conv_plans(), start=1):
        size = conv_output_size(size, plan.kernel, plan.stride, plan.padding)
        if index in POOL_AFTER:
            size = pool_output_size(size)
    if size < 1:
        raise ValueError(f"Input {config.input_size} shrinks to nothing before the FC layers.")
    return config.conv_widths[-1] * size * size


class AlexNet(nn.Module):
    """The lecture's AlexNet (defaults) or one of its variants (``AlexNet(AlexNetConfig(...))``).

    ``features`` holds conv1..conv5 (each followed by bn, relu) and pool1..pool3;
    ``classifier`` holds fc1..fc3 with dropout before fc1 and fc2, as in the paper.
    """

    def __init__(self, config: AlexNetConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or AlexNetConfig(**overrides)
        self.config = config
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = config.in_channels
        for index, (plan, width) in enumerate(zip(config.conv_plans(), config.conv_widths), start=1):
            layers[f"conv{index}"] = nn.Conv2d(channels, width, plan.kernel, plan.stride, plan.padding,
                                               bias=not config.batch_norm)
            if config.batch_norm:
                layers[f"bn{index}"] = nn.BatchNorm2d(width)
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
            if index in POOL_AFTER:
                layers[f"pool{POOL_AFTER.index(index) + 1}"] = nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)
            channels = width
        self.features = nn.Sequential(layers)
        head: OrderedDict[str, nn.Module] = OrderedDict()
        widths = (flat_features(config), config.fc_width, config.fc_width, config.num_classes)
        for index in range(1, 4):
            if index < 3 and config.dropout > 0:
                head[f"drop{index}"] = nn.Dropout(config.dropout)
            head[f"fc{index}"] = nn.Linear(widths[index - 1], widths[index])
            if index < 3:
                head[f"relu{index + 5}"] = nn.ReLU(inplace=True)
        self.classifier = nn.Sequential(head)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation suits ReLU layers: activations keep their scale through depth,
        # so even the variant without BatchNorm starts learning at once.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        last = self.classifier.fc3
        nn.init.normal_(last.weight, std=0.01)  # start with near-uniform class probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))

    def conv_layers(self) -> list[tuple[str, nn.Conv2d]]:
        return [(n, m) for n, m in self.features.named_children() if isinstance(m, nn.Conv2d)]

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """conv1..conv5 and fc1..fc3, in order: the layers whose gradients the tab plots."""
        fcs = [(n, m) for n, m in self.classifier.named_children() if isinstance(m, nn.Linear)]
        return self.conv_layers() + fcs

    def conv_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output (after BatchNorm and ReLU) of every conv layer, keyed conv1..conv5."""
        out, pending = {}, None
        for name, module in self.features.named_children():
            x = module(x)
            if name.startswith("conv"):
                pending = name
            elif name.startswith("relu") and pending is not None:
                out[pending] = x
                pending = None
        return out


def first_layer_filters(model: AlexNet) -> np.ndarray:  # -> (F, C, K, K) float32
    return model.features.conv1.weight.detach().float().cpu().numpy().copy()


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) in [0, 255] -> float in about [-1, 1], the scale every layer expects."""
    return images.float().sub_(127.5).div_(127.5)


# ---------------------------------------------------------------- the layer table

@dataclass(frozen=True)
class LayerRow:
    """One row of the lecture's parameter table."""
    name: str  # "Input Image", "Conv-1", "MaxPool-1", "FC-1", "Output"...
    output_shape: tuple[int, ...]  # (C, H, W) for images, (N,) for vectors, as torch orders them
    weights: int
    biases: int
    params: int
    formula: str = ""  # how the shape and the weights were worked out, in the lecture's notation

    @property
    def shape_text(self) -> str:
        """The lecture's notation: '55 x 55 x 96' (H x W x C) or '4096 x 1'."""
        if len(self.output_shape) == 3:
            c, h, w = self.output_shape
            return f"{h} × {w} × {c}"
        return f"{self.output_shape[0]} × 1"


def layer_table(model: AlexNet, input_shape: tuple[int, int, int] | None = None) -> list[LayerRow]:
    """The lecture's table for ``model`` at ``input_shape`` (C, H, W), pooling rows included.

    Shapes come from the formulas (not from running the network) so each row can show
    its working; the tests check them against the shapes torch produces.
    """
    config = model.config
    c, h, w = input_shape or (config.in_channels, config.input_size, config.input_size)
    if h != w:
        raise ValueError(f"AlexNet takes square images; got {h} x {w}.")
    rows = [LayerRow("Input Image", (c, h, w), 0, 0, 0, "the image itself: no weights")]
    size = h
    conv_index = pool_index = 0
    for name, module in model.features.named_children():
        if isinstance(module, nn.Conv2d):
            conv_index += 1
            k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]
            n_out = module.out_channels
            new = conv_output_size(size, k, s, p)
            weights = module.weight.numel()
            biases = module.bias.numel() if module.bias is not None else 0
            bias_text = f"B = N = {biases:,}" if biases else "no bias (BatchNorm's β replaces it)"
            formula = (f"({size} − {k} + 2·{p}) / {s} + 1 = {new};  "
                       f"W = K²·C·N = {k}²·{c}·{n_out} = {weights:,};  {bias_text}")
            size, c = new, n_out
            rows.append(LayerRow(f"Conv-{conv_index}", (c, size, size), weights, biases, weights + biases, formula))
        elif isinstance(module, nn.BatchNorm2d):
            gamma = module.weight.numel() if module.weight is not None else 0
            beta = module.bias.numel() if module.bias is not None else 0
            rows.append(LayerRow(f"BatchNorm-{conv_index}", (c, size, size), gamma, beta, gamma + beta,
                                 f"one γ and one β per feature map: 2 · {c} = {gamma + beta:,}"))
        elif isinstance(module, nn.MaxPool2d):
            pool_index += 1
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            new = pool_output_size(size, k, s)
            rows.append(LayerRow(f"MaxPool-{pool_index}", (c, new, new), 0, 0, 0,
                                 f"({size} − {k}) / {s} + 1 = {new}; depth stays {c}; nothing to learn"))
            size = new
    inputs = c * size * size
    fc_index = 0
    for name, module in model.classifier.named_children():
        if isinstance(module, nn.Linear):
            fc_index += 1
            if module.in_features != inputs:
                raise ValueError(f"{name} expects {module.in_features} inputs but the conv part gives "
                                 f"{inputs}; this model was built for another input size.")
            weights, biases = module.weight.numel(), module.bias.numel()
            source = f"{size}·{size}·{c}" if fc_index == 1 else f"{inputs}"
            formula = (f"W = inputs · outputs = {source} · {module.out_features} = {weights:,};  "
                       f"B = {biases:,}")
            rows.append(LayerRow(f"FC-{fc_index}", (module.out_features,), weights, biases, weights + biases,
                                 formula))
            inputs = module.out_features
    rows.append(LayerRow("Output", (inputs,), 0, 0, 0, "softmax over the classes: no weights"))
    return rows


def total_params(rows: list[LayerRow]) -> int:
    return sum(r.params for r in rows)
