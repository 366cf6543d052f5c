"""MiniFASNet V2 and V1SE (Minivision Silent-Face-Anti-Spoofing) rebuilt from their weights.

Written for this project from the published architecture: a pruned MobileFaceNet on an
80x80 input. Stem (3x3 stride-2 conv, 3x3 depthwise), then bottlenecks (1x1 expand ->
3x3 depthwise -> 1x1 linear projection) in stages 23 (stride 2), 3 (4 residual), 34
(stride 2), 4 (6 residual), 45 (stride 2), 5 (2 residual); a 1x1 conv to 512, a 5x5
depthwise conv down to 1x1, a 512->128 linear, batch norm and a 128->3 linear. Every conv
is followed by batch norm and (except projections) a per-channel PReLU. V1SE adds a
squeeze-excitation on the last block of stages 3, 4 and 5. The pruned channel widths are
read from the state dict itself, so one definition serves both files; strict loading
checks that every tensor is used and has the expected shape.

Two builds: `TorchMiniFASNet` (PyTorch, loads the state dict as published: the reference)
and `build_keras` (tf_keras, batch norms folded, for the TFLite converter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_SIZE = 80
NUM_CLASSES = 3
# (stage name, blocks, residual, stride of its depthwise conv)
STAGES = (
    ("conv_23", 1, False, 2),
    ("conv_3", 4, True, 1),
    ("conv_34", 1, False, 2),
    ("conv_4", 6, True, 1),
    ("conv_45", 1, False, 2),
    ("conv_5", 2, True, 1),
)
BN_EPS = 1e-5  # PyTorch's BatchNorm default, which the published models used


@dataclass(frozen=True)
class Variant:
    name: str  # the publisher's class name
    short: str  # in our file names and roles
    weights_file: str
    context_scale: float  # face box scale of the input crop, from the file name
    squeeze_excite: bool


VARIANTS = (
    Variant("MiniFASNetV2", "v2", "2.7_80x80_MiniFASNetV2.pth", 2.7, False),
    Variant("MiniFASNetV1SE", "v1se", "4_0_0_80x80_MiniFASNetV1SE.pth", 4.0, True),
)


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The published state dict as numpy arrays, without DataParallel's `module.` prefix."""
    import torch

    raw = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v.detach().cpu().numpy() for k, v in raw.items()}


def block_names(squeeze_excite: bool) -> list[tuple[str, bool, int, bool]]:
    """(state-dict prefix, residual, stride, has SE) for every bottleneck, in order."""
    names = []
    for stage, blocks, residual, stride in STAGES:
        for index in range(blocks):
            prefix = f"{stage}.model.{index}" if residual else stage
            has_se = squeeze_excite and residual and index == blocks - 1
            names.append((prefix, residual, stride, has_se))
    return names


# -- PyTorch reference -----------------------------------------------------------------


def build_torch(variant: Variant, state: dict[str, np.ndarray]):  # -> torch.nn.Module
    """The network in PyTorch with the publisher's module names, the state dict loaded
    strictly (every tensor used, every shape as expected), in eval mode."""
    import torch
    from torch import nn

    class ConvBlock(nn.Module):
        """Conv (no bias) -> batch norm -> PReLU (none on projections)."""

        def __init__(self, prefix: str, depthwise: bool, stride: int, padding: int, act=True):
            super().__init__()
            out_c, in_per_group, size, _ = state[f"{prefix}.conv.weight"].shape
            in_c, groups = (out_c, out_c) if depthwise else (in_per_group, 1)
            self.conv = nn.Conv2d(in_c, out_c, size, stride, padding, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(out_c)
            self.prelu = nn.PReLU(out_c) if act else None

        def forward(self, x):
            x = self.bn(self.conv(x))
            return self.prelu(x) if self.prelu is not None else x

    class SqueezeExcite(nn.Module):
        def __init__(self, prefix):
            super().__init__()
            reduced, channels = state[f"{prefix}.fc1.weight"].shape[:2]
            self.fc1 = nn.Conv2d(channels, reduced, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(reduced)
            self.fc2 = nn.Conv2d(reduced, channels, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            w = x.mean(dim=(2, 3), keepdim=True)
            w = torch.relu(self.bn1(self.fc1(w)))
            return x * torch.sigmoid(self.bn2(self.fc2(w)))

    class Bottleneck(nn.Module):
        def __init__(self, prefix, residual, stride, has_se):
            super().__init__()
            self.conv = ConvBlock(f"{prefix}.conv", False, 1, 0)
            self.conv_dw = ConvBlock(f"{prefix}.conv_dw", True, stride, 1)
            self.project = ConvBlock(f"{prefix}.project", False, 1, 0, act=False)
            self.se_module = SqueezeExcite(f"{prefix}.se_module") if has_se else None
            self.residual = residual

        def forward(self, x):
            y = self.project(self.conv_dw(self.conv(x)))
            if self.se_module is not None:
                y = self.se_module(y)
            return x + y if self.residual else y

    class Stage(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            self.model = nn.Sequential(*blocks)

        def forward(self, x):
            return self.model(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = ConvBlock("conv1", False, 2, 1)
            self.conv2_dw = ConvBlock("conv2_dw", True, 1, 1)
            blocks: dict[str, list[nn.Module]] = {}
            for prefix, residual, stride, has_se in block_names(variant.squeeze_excite):
                blocks.setdefault(prefix.split(".")[0], []).append(
                    Bottleneck(prefix, residual, stride, has_se)
                )
            for stage, _, residual, _ in STAGES:
                module = Stage(blocks[stage]) if residual else blocks[stage][0]
                setattr(self, stage, module)
            self.conv_6_sep = ConvBlock("conv_6_sep", False, 1, 0)
            self.conv_6_dw = ConvBlock("conv_6_dw", True, 1, 0, act=False)
            embedding, width = state["linear.weight"].shape
            self.linear = nn.Linear(width, embedding, bias=False)
            self.bn = nn.BatchNorm1d(embedding)
            self.prob = nn.Linear(embedding, state["prob.weight"].shape[0], bias=False)

        def forward(self, x):
            x = self.conv2_dw(self.conv1(x))
            for stage, _, _, _ in STAGES:
                x = getattr(self, stage)(x)
            x = self.conv_6_dw(self.conv_6_sep(x)).flatten(1)
            return self.prob(self.bn(self.linear(x)))  # logits; dropout is off in eval

    net = Net()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return net.eval()


def torch_probabilities(net, bgr_crops: np.ndarray) -> np.ndarray:
    """Softmax (N, 3) for BGR uint8 crops (N, 80, 80, 3), fed as raw 0..255 floats."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(bgr_crops.astype(np.float32).transpose(0, 3, 1, 2))
        return torch.softmax(net(x), dim=1).numpy()


# -- Keras rebuild for the converter -----------------------------------------------------


def folded(state: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight (O, I, kh, kw) and the batch norm after it folded into kernel and bias
    (exact in float): returns (O, I, kh, kw) weight and (O,) bias."""
    gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
    mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
    factor = gamma / np.sqrt(var + BN_EPS)
    weight = state[conv] * factor.reshape((-1,) + (1,) * (state[conv].ndim - 1))
    return weight.astype(np.float32), (beta - mean * factor).astype(np.float32)


def build_keras(variant: Variant, state: dict[str, np.ndarray], softmax: bool = True):
    """The float network in tf_keras, NHWC, BGR 0..255 float input (1, 80, 80, 3).
    Outputs the softmax (N, 3) (logits with softmax=False)."""
    import tf_keras as keras

    layers = keras.layers

    def conv_block(x, prefix: str, depthwise: bool, stride: int, pad: int, act: bool = True):
        weight, bias = folded(state, f"{prefix}.conv.weight", f"{prefix}.bn")
        size = weight.shape[2]
        if pad:
            # explicit symmetric padding: Keras "same" pads stride-2 convs asymmetrically
            x = layers.ZeroPadding2D(pad)(x)
        if depthwise:
            layer = layers.DepthwiseConv2D(size, stride, padding="valid")
            y = layer(x)
            layer.set_weights([weight.transpose(2, 3, 0, 1), bias])  # (kh, kw, C, 1)
        else:
            layer = layers.Conv2D(weight.shape[0], size, stride, padding="valid")
            y = layer(x)
            layer.set_weights([weight.transpose(2, 3, 1, 0), bias])  # (kh, kw, I, O)
        if act:
            prelu = layers.PReLU(shared_axes=[1, 2])
            y = prelu(y)
            prelu.set_weights([state[f"{prefix}.prelu.weight"].reshape(1, 1, -1)])
        return y

    def squeeze_excite(x, prefix: str):
        w = layers.GlobalAveragePooling2D(keepdims=True)(x)
        for fc, bn, activation in (("fc1", "bn1", "relu"), ("fc2", "bn2", "sigmoid")):
            weight, bias = folded(state, f"{prefix}.{fc}.weight", f"{prefix}.{bn}")
            layer = layers.Conv2D(weight.shape[0], 1, activation=activation)
            w = layer(w)
            layer.set_weights([weight.transpose(2, 3, 1, 0), bias])
        return layers.Multiply()([x, w])

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="bgr_0_255")
    x = conv_block(inputs, "conv1", False, 2, 1)
    x = conv_block(x, "conv2_dw", True, 1, 1)
    for prefix, residual, stride, has_se in block_names(variant.squeeze_excite):
        y = conv_block(x, f"{prefix}.conv", False, 1, 0)
        y = conv_block(y, f"{prefix}.conv_dw", True, stride, 1)
        y = conv_block(y, f"{prefix}.project", False, 1, 0, act=False)
        if has_se:
            y = squeeze_excite(y, f"{prefix}.se_module")
        x = layers.Add()([x, y]) if residual else y
    x = conv_block(x, "conv_6_sep", False, 1, 0)
    x = conv_block(x, "conv_6_dw", True, 1, 0, act=False)
    x = layers.Flatten()(x)  # 1x1x512: the same order as PyTorch's flatten
    # linear -> batch norm -> prob is affine all the way: one dense layer, exact in float
    gamma, beta = state["bn.weight"], state["bn.bias"]
    factor = gamma / np.sqrt(state["bn.running_var"] + BN_EPS)
    shift = beta - state["bn.running_mean"] * factor
    linear = (state["linear.weight"] * factor[:, None]).T  # (512, 128)
    prob = state["prob.weight"].T  # (128, 3)
    dense = layers.Dense(prob.shape[1], name="logits")
    x = dense(x)
    dense.set_weights([(linear @ prob).astype(np.float32), (shift @ prob).astype(np.float32)])
    outputs = layers.Softmax(name="probabilities")(x) if softmax else x
    return keras.Model(inputs, outputs, name=variant.name)
