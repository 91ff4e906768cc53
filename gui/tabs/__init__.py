"""The list every tab registers in. The main window builds one tab per entry, in order.

Only the standard library is imported here so that the window can appear before
torch (seconds to import) has loaded; ``preload`` names the engine modules the
tab needs, which are imported in a background thread first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TabSpec:
    key: str  # the --tab name
    title: str  # shown on the tab
    module: str  # gui module defining the tab
    class_name: str
    preload: tuple[str, ...]  # Qt-free modules to import in the background before building it
    topics: tuple[str, ...]  # the course topics it covers (Help menu), in our own words


TABS: tuple[TabSpec, ...] = (
    TabSpec(
        key="digits",
        title="Draw a digit",
        module="gui.tabs.digits_tab",
        class_name="DigitsTab",
        # torch's optimisers import torch._dynamo when first built (hundreds of modules, holding the
        # GIL for ~0.15 s): importing it here, while the app loads, keeps the first training step smooth.
        preload=("torch", "torch._dynamo", "engine.device", "engine.digits"),
        topics=(
            "Convolutional layers: small learned filters slide over the image, each producing a feature map.",
            "ReLU and max pooling: keep the strong responses, halve the resolution, gain some shift tolerance.",
            "Fully connected layers and softmax: turning features into ten class probabilities that sum to 1.",
            "Data preparation: MNIST digits are centred by their centre of mass in a 28x28 frame; "
            "a network only works on inputs prepared the same way.",
            "Training: mini-batch gradient descent with cross-entropy loss, watched through loss and accuracy.",
        ),
    ),
)

TABS += (
    TabSpec(
        key="conv",
        title="Convolution",
        module="gui.tabs.conv_tab",
        class_name="ConvTab",
        preload=("torch", "engine.conv", "engine.conv_presets", "engine.samples"),
        topics=(
            "Convolution as cross-correlation: slide a kernel, multiply element-wise, sum, add the bias.",
            "Output size: W2 = (W1 - F + 2P)/S + 1 (rounded down), D2 = K; padding and stride.",
            "Multi-channel inputs: a filter has one slice per input channel and their sums add up.",
            "Parameters of a conv layer: K x (F x F x C) + K, shared across every position.",
            "ReLU and pooling (max, average, min) after the convolution.",
            "1-D convolution: smoothing a series of readings with a weighted window.",
        ),
    ),
)

TABS += (
    TabSpec(
        key="rnn",
        title="RNN and BPTT",
        module="gui.tabs.rnn_tab",
        class_name="RNNTab",
        preload=("engine.text", "engine.rnn"),
        topics=(
            "A recurrent network reuses the same U, W and V at every time step; unrolling it in time turns it "
            "into a deep feed-forward network.",
            "Next-character prediction: one-hot inputs, softmax outputs and a loss summed over the steps; "
            "counting the weights of U, W and V.",
            "Backpropagation through time: dL/dW adds up one term for every path from a loss L_t back to an "
            "earlier state h_k.",
            "Vanishing and exploding gradients: ||dh_t/dh_k|| shrinks or grows roughly like (gamma*lambda)^(t-k), "
            "depending on the scale of W and the activation's slope.",
            "Remedies: truncated BPTT limits how far back gradients travel; gradient clipping by norm or by value "
            "stops one bad step from blowing up training.",
        ),
    ),
)

TABS += (
    TabSpec(
        key="gates",
        title="LSTM / GRU gates",
        module="gui.tabs.gates_tab",
        class_name="GatesTab",
        preload=("torch", "torch._dynamo", "engine.memory_tasks", "engine.gates"),
        topics=(
            "Gates as the whiteboard's rules: the LSTM's input gate writes, its forget gate keeps or erases, "
            "its output gate decides what is read out.",
            "The LSTM cell state c is a running sum (c = f*c + i*g), so a forget gate held near 1 carries "
            "information and its gradient across many steps.",
            "The GRU ties keeping and writing into one update gate z and reads the old state through a reset "
            "gate r; it has three weight blocks where the LSTM has four.",
            "Vanishing gradients: in a plain RNN the gradient reaching early steps shrinks geometrically, so "
            "long delays cannot be learned.",
            "Parameter counts of RNN, GRU and LSTM layers: blocks x H x (I + H + 2).",
        ),
    ),
)

TABS += (
    TabSpec(
        key="alexnet",
        title="AlexNet live",
        module="gui.tabs.alexnet_tab",
        class_name="AlexNetTab",
        preload=("torch", "torch._dynamo", "engine.alexnet", "engine.shapes", "engine.image_data",
                 "engine.alexnet_train"),
        topics=(
            "Working out a CNN's shapes by hand: (H - K + 2P) / S + 1 for a convolution, (H - Ps) / S + 1 for "
            "pooling.",
            "Counting parameters: K*K*C*N weights plus N biases per conv layer, inputs x outputs for a dense layer; "
            "pooling learns nothing. AlexNet adds up to 62,378,344, most of it in the first dense layer.",
            "Watching a deep CNN learn: first-layer filters, feature maps at every depth, per-layer gradient norms.",
            "Batch normalisation: each feature map normalised over the batch, then scaled and shifted; compare runs.",
            "Dropout: a different thinned network each batch, the whole network for validation.",
            "Reading mistakes: the confusion matrix and right or wrong validation predictions.",
        ),
    ),
)

TAB_KEYS = tuple(spec.key for spec in TABS)


def spec_for(key: str) -> TabSpec:
    for spec in TABS:
        if spec.key == key:
            return spec
    raise KeyError(f"Unknown tab {key!r}; valid tabs: {', '.join(TAB_KEYS)}")
