"""Read dlib's ResNet face descriptor (.dat) and rebuild it as a Keras model.

dlib serialisation: integers are packed (a header byte holding the byte count, 0x80 for
negative, then little-endian bytes), strings are length-prefixed, floats outside tensors
are (int64 mantissa, int16 exponent) pairs, tensors are a version, four dims and raw
little-endian float32. The file holds the loss layer first, then every layer from the
input to the output; tag/skip layers carry no data, so the residual wiring comes from
the architecture in dlib's dnn_face_recognition_ex.cpp and is checked against the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150


class DlibReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        header = self.data[self.pos]
        size = header & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if header & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def str(self) -> str:
        size = self.int()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version} at byte {self.pos}")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
        self.pos += 4 * count
        return values.reshape(shape)

    def find(self, token: str) -> bool:
        """Move to the next length-prefixed occurrence of token; False when none is left."""
        needle = bytes([1, len(token)]) + token.encode("ascii")
        found = self.data.find(needle, self.pos)
        if found < 0:
            return False
        self.pos = found
        return True


@dataclass
class ConvLayer:
    kernel: np.ndarray  # HWIO, for Keras
    bias: np.ndarray
    stride: int
    padding: int


@dataclass
class DlibDescriptorWeights:
    mean_rgb: tuple[float, float, float]
    convs: list[ConvLayer] = field(default_factory=list)
    affines: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    pools: list[tuple[str, int, int, int]] = field(default_factory=list)  # kind, size, stride, pad
    fc: np.ndarray | None = None  # (inputs, outputs): dlib computes x @ W
    layer_tokens: list[str] = field(default_factory=list)

    @property
    def parameter_count(self) -> int:
        convs = sum(c.kernel.size + c.bias.size for c in self.convs)
        affines = sum(g.size + b.size for g, b in self.affines)
        return convs + affines + (0 if self.fc is None else self.fc.size)


LAYER_TOKENS = ("con_4", "affine_", "relu_", "max_pool_2", "avg_pool_2", "add_prev_", "fc_2")


def _next_layer(reader: DlibReader) -> str | None:
    """Advance to the nearest following layer token (file order = forward order)."""
    best: tuple[int, str] | None = None
    start = reader.pos
    for token in LAYER_TOKENS:
        reader.pos = start
        if reader.find(token) and (best is None or reader.pos < best[0]):
            best = (reader.pos, token)
    if best is None:
        return None
    reader.pos = best[0]
    return best[1]


def read_descriptor(path: Path) -> DlibDescriptorWeights:
    reader = DlibReader(path.read_bytes())
    reader.int()  # add_loss_layer version
    if reader.str() != "loss_metric_2":
        raise ValueError(f"{path}: not a dlib metric-loss network")
    if not reader.find("input_rgb_image_sized"):
        raise ValueError(f"{path}: no input_rgb_image_sized layer")
    reader.str()
    mean = (reader.float(), reader.float(), reader.float())
    rows, cols = reader.int(), reader.int()
    if (rows, cols) != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError(f"{path}: input is {rows}x{cols}, expected {CHIP_SIZE}")
    weights = DlibDescriptorWeights(mean_rgb=mean)
    while (token := _next_layer(reader)) is not None:
        reader.str()
        weights.layer_tokens.append(token)
        if token == "con_4":
            params = reader.tensor().ravel()
            filters, rows, cols = reader.int(), reader.int(), reader.int()
            stride_y, stride_x = reader.int(), reader.int()
            pad_y, pad_x = reader.int(), reader.int()
            if stride_y != stride_x or pad_y != pad_x or rows != cols:
                raise ValueError("only square kernels with equal strides/padding are expected")
            inputs = (params.size - filters) // (filters * rows * cols)
            kernel = params[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
            bias = params[filters * inputs * rows * cols :]
            weights.convs.append(ConvLayer(kernel.transpose(2, 3, 1, 0), bias, stride_y, pad_y))
        elif token == "affine_":
            params = reader.tensor().ravel()
            half = params.size // 2
            weights.affines.append((params[:half], params[half:]))
        elif token in ("max_pool_2", "avg_pool_2"):
            rows, cols, stride_y, stride_x = (reader.int() for _ in range(4))
            pad_y, pad_x = reader.int(), reader.int()
            weights.pools.append((token[:3], rows, stride_y, pad_y))
        elif token == "fc_2":
            outputs, inputs = reader.int(), reader.int()
            params = reader.tensor().ravel()
            if params.size != inputs * outputs:
                raise ValueError("fc layer with a bias: expected fc_no_bias")
            weights.fc = params.reshape(inputs, outputs)
        else:
            reader.pos += 1  # parameterless (relu_, add_prev_): skip past the token
    return weights


# (filters, stride of the first conv) for each residual unit, input to output, as in
# dlib's dnn_face_recognition_ex.cpp: alevel4 .. alevel0.
RESIDUAL_UNITS: tuple[tuple[int, int], ...] = (
    *((32, 1),) * 3,
    (64, 2),
    *((64, 1),) * 3,
    (128, 2),
    *((128, 1),) * 2,
    (256, 2),
    *((256, 1),) * 2,
    (256, 2),
)


def expected_tokens() -> list[str]:
    tokens = ["con_4", "affine_", "relu_", "max_pool_2"]
    for _, stride in RESIDUAL_UNITS:
        tokens += ["con_4", "affine_", "relu_", "con_4", "affine_"]
        tokens += ["avg_pool_2", "add_prev_", "relu_"] if stride == 2 else ["add_prev_", "relu_"]
    return [*tokens, "avg_pool_2", "fc_2"]


def build_keras(weights: DlibDescriptorWeights):  # -> tf_keras.Model
    """The float network. Input: RGB chip 0..255 (mean/scale baked in). Output: 128-D, unnormalised.

    dlib's affine layers are folded into the preceding convolutions (exact in float, and
    one fewer op to quantise).
    """
    import tensorflow as tf
    import tf_keras as keras

    if weights.layer_tokens != expected_tokens():
        raise ValueError("the .dat layer sequence differs from dnn_face_recognition_ex.cpp")
    layers = keras.layers
    conv_index = 0

    def conv(x, relu: bool, input_shift: np.ndarray | None = None, input_scale: float = 1.0):
        """Conv + folded affine; input_shift/scale fold dlib's input normalisation in too."""
        nonlocal conv_index
        spec = weights.convs[conv_index]
        gamma, beta = weights.affines[conv_index]
        conv_index += 1
        size, _, _, filters = spec.kernel.shape
        kernel = spec.kernel * input_scale
        bias = spec.bias.copy()
        if input_shift is not None:
            # exact only without padding: a padded border would see -mean, not 0
            assert spec.padding == 0
            bias -= np.einsum("hwio,i->o", kernel, input_shift)
        if spec.padding not in (0, size // 2) or (spec.padding == 0) != (spec.stride == 2):
            raise ValueError("unexpected padding: dlib pads stride-1 convs by k/2, stride-2 by 0")
        layer = layers.Conv2D(
            filters,
            size,
            strides=spec.stride,
            padding="valid" if spec.padding == 0 else "same",
            activation="relu" if relu else None,
        )
        y = layer(x)
        layer.set_weights([kernel * gamma, bias * gamma + beta])
        return y

    def add_prev(block, shortcut):
        """dlib add_prev: both aligned top-left, output the larger size, zeros elsewhere."""
        height = max(block.shape[1], shortcut.shape[1])
        channels = max(block.shape[3], shortcut.shape[3])

        def pad_to(t):
            extra_hw = height - t.shape[1]
            extra_c = channels - t.shape[3]
            if extra_hw == 0 and extra_c == 0:
                return t
            return layers.Lambda(
                lambda v, h=extra_hw, c=extra_c: tf.pad(v, [[0, 0], [0, h], [0, h], [0, c]])
            )(t)

        return layers.ReLU()(layers.Add()([pad_to(block), pad_to(shortcut)]))

    # The input is raw RGB 0..255: (x - mean) / 256 is folded into the first (unpadded)
    # conv, so the int8 model quantises the pixels themselves, exactly (scale 1).
    inputs = keras.Input((CHIP_SIZE, CHIP_SIZE, 3), dtype="float32", name="chip_rgb")
    x = conv(inputs, relu=True, input_shift=np.asarray(weights.mean_rgb), input_scale=1 / 256)
    _, size, stride, pad = weights.pools[0]
    x = layers.MaxPooling2D(size, stride, padding="valid" if pad == 0 else "same")(x)
    pool_index = 1
    for _, stride in RESIDUAL_UNITS:
        shortcut = x
        y = conv(x, relu=True)
        y = conv(y, relu=False)
        if stride == 2:
            _, size, pool_stride, pad = weights.pools[pool_index]
            pool_index += 1
            if pad != 0:
                raise ValueError("dlib's downsampling avg_pool is expected unpadded")
            shortcut = layers.AveragePooling2D(size, pool_stride, padding="valid")(shortcut)
        x = add_prev(y, shortcut)
    x = layers.GlobalAveragePooling2D()(x)
    dense = layers.Dense(weights.fc.shape[1], use_bias=False, name="descriptor")
    outputs = dense(x)
    dense.set_weights([weights.fc])
    return keras.Model(inputs, outputs, name="dlib_resnet_face_descriptor")
