"""The reference network that ties this machine's speed to a Raspberry Pi's.

A. Allan timed TensorFlow Lite on the CPU of a Pi 4 and a Pi 5 with SSD MobileNet v1
(depth multiplier 0.75, 300x300 input): 82.7 ms and 16.9 ms per inference (four
interpreter threads; github.com/aallan/benchmarking-ml-on-the-edge, 2024). The same
network, built here layer by layer as a TFLite flatbuffer with random float32 weights
(the time of a convolution does not depend on its weights), is timed on this machine
with the same runtime the terminal uses (ai-edge-litert, XNNPACK), at the threads the
terminal's vision uses: the ratio is how much slower a Pi runs the terminal's models.

Layers: MobileNet v1 at 0.75 depth (conv 3x3/2 then 13 depthwise-separable blocks),
the SSD feature extractor's four extra layers and a 1x1 box and class predictor on each
of the six feature maps (3 or 6 anchors x (4 box + 91 classes)); the anchor decoding and
non-maximum suppression at the end (a custom op, under a millisecond) are left out.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

PI4_MS, PI5_MS = 82.7, 16.9  # A. Allan, TFLite, SSD MobileNet v1 0.75 300x300, 4 threads
SIZE = 300
# (stride, pointwise output channels) of MobileNet v1's 13 blocks, before the 0.75 depth
BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), *[(1, 512)] * 5,
          (2, 1024), (1, 1024))  # fmt: skip
EXTRA = (512, 256, 256, 128)  # the SSD extractor's extra maps (each: 1x1 to half, 3x3/2)
CLASSES = 91


class _Builder:
    """Just enough of the TFLite schema for convolutions with a fused ReLU6."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as s

        self.s = s
        self.rng = np.random.default_rng(0)
        self.model = s.ModelT()
        self.model.version = 3
        self.model.buffers = [s.BufferT()]  # buffer 0: the empty one
        self.graph = s.SubGraphT()
        self.graph.tensors, self.graph.operators = [], []
        self.codes: dict[int, int] = {}

    def tensor(self, shape: tuple[int, ...], data: np.ndarray | None = None) -> int:
        t = self.s.TensorT()
        t.shape, t.type, t.name = (
            list(shape),
            self.s.TensorType.FLOAT32,
            f"t{len(self.graph.tensors)}",
        )
        t.buffer = 0
        if data is not None:
            buffer = self.s.BufferT()
            buffer.data = np.ascontiguousarray(data, np.float32).tobytes()
            self.model.buffers.append(buffer)
            t.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def _code(self, op: int) -> int:
        if op not in self.codes:
            code = self.s.OperatorCodeT()
            code.builtinCode = code.deprecatedBuiltinCode = op
            code.version = 1
            self.model.operatorCodes = [*(self.model.operatorCodes or []), code]
            self.codes[op] = len(self.model.operatorCodes) - 1
        return self.codes[op]

    def conv(self, x: int, cin: int, cout: int, k: int, stride: int, hw: int, depthwise: bool,
             relu: bool = True) -> tuple[int, int]:  # fmt: skip
        s = self.s
        out_hw = -(-hw // stride)
        shape = (1, k, k, cin) if depthwise else (cout, k, k, cin)
        weights = self.tensor(shape, self.rng.normal(0, 0.05, shape))
        bias = self.tensor((cout,), np.zeros(cout))
        y = self.tensor((1, out_hw, out_hw, cout))
        op = s.OperatorT()
        op.inputs, op.outputs = [x, weights, bias], [y]
        if depthwise:
            op.opcodeIndex = self._code(s.BuiltinOperator.DEPTHWISE_CONV_2D)
            options = s.DepthwiseConv2DOptionsT()
            options.depthMultiplier = 1
            op.builtinOptionsType = s.BuiltinOptions.DepthwiseConv2DOptions
        else:
            op.opcodeIndex = self._code(s.BuiltinOperator.CONV_2D)
            options = s.Conv2DOptionsT()
            op.builtinOptionsType = s.BuiltinOptions.Conv2DOptions
        options.padding = s.Padding.SAME
        options.strideH = options.strideW = stride
        options.dilationHFactor = options.dilationWFactor = 1
        options.fusedActivationFunction = (
            s.ActivationFunctionType.RELU6 if relu else s.ActivationFunctionType.NONE
        )
        op.builtinOptions = options
        self.graph.operators.append(op)
        return y, out_hw

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        from ai_edge_litert.tools import flatbuffer_utils

        self.graph.inputs, self.graph.outputs = inputs, outputs
        self.model.subgraphs = [self.graph]
        self.model.description = "blinkpay reference: SSD MobileNet v1 0.75 300x300"
        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))


def build() -> bytes:
    """The network as a .tflite flatbuffer."""
    b = _Builder()
    depth = lambda c: max(8, int(c * 0.75))  # noqa: E731
    x = b.tensor((1, SIZE, SIZE, 3))
    inputs = [x]
    y, hw = b.conv(x, 3, depth(32), 3, 2, SIZE, False)
    cin, maps = depth(32), []
    for i, (stride, cout) in enumerate(BLOCKS):
        y, hw = b.conv(y, cin, cin, 3, stride, hw, True)
        y, hw = b.conv(y, cin, depth(cout), 1, 1, hw, False)
        cin = depth(cout)
        if i in (10, 12):  # conv11 (19x19) and conv13 (10x10) feed the predictors
            maps.append((y, cin, hw))
    for cout in EXTRA:
        y, hw = b.conv(y, cin, depth(cout) // 2, 1, 1, hw, False)
        y, hw = b.conv(y, depth(cout) // 2, depth(cout), 3, 2, hw, False)
        cin = depth(cout)
        maps.append((y, cin, hw))
    outputs = []
    for n, (feature, channels, size) in enumerate(maps):
        anchors = 3 if n == 0 else 6
        boxes, _ = b.conv(feature, channels, anchors * 4, 1, 1, size, False, relu=False)
        classes, _ = b.conv(feature, channels, anchors * CLASSES, 1, 1, size, False, relu=False)
        outputs += [boxes, classes]
    return b.finish(inputs, outputs)


class ReferenceNet:
    """The reference network loaded once, to be timed again and again."""

    def __init__(self, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.tflite"
            path.write_bytes(build())
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        index = self.interpreter.get_input_details()[0]["index"]
        image = np.random.default_rng(1).random((1, SIZE, SIZE, 3), np.float32)
        self.interpreter.set_tensor(index, image)
        self.interpreter.invoke()  # the first run plans the memory: not timed

    def time_once(self) -> float:
        """Milliseconds of one inference."""
        began = time.perf_counter()
        self.interpreter.invoke()
        return (time.perf_counter() - began) * 1000.0


def time_here(threads: int, runs: int = 20) -> float:
    """Median ms per inference of the reference network on this machine."""
    net = ReferenceNet(threads)
    return float(np.median([net.time_once() for _ in range(runs)]))
