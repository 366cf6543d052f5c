"""Full-int8 MobileFaceNet that keeps the float embeddings: equalised channels, clipped ranges.

ai-edge-quantizer quantises every activation tensor per tensor (one scale for all its
channels). In MobileFaceNet (batch norms folded into the convolutions) the channels of one
tensor span very different ranges, so the small ones are left with a few int8 levels, and
its default calibration (a moving average of each batch's min/max) is set by rare
outliers. Two changes, both measured in build_mobilefacenet.py:

1. `equalise_channels`: for every convolution whose output feeds (through its PReLU) only
   another convolution, scale each output channel up by s >= 1 so the channels of the
   tensor span about the same range, and scale the next convolution's input channel down
   by s. PReLU(s x) = s PReLU(x) for s > 0 (the slope is per channel and unchanged), so the
   float network computes the same function (checked by the build); only the int8 grid
   fits the channels better. (Cross-layer equalisation, Nagel et al. 2019, on activation
   ranges.)
2. `clipped_ranges`: each activation tensor's int8 range from a histogram of its values
   over all calibration samples, cut at the TAIL and 1 - TAIL quantiles instead of the
   extremes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils
from tflite_fixups import fixed_up

BUILTIN = schema.BuiltinOperator
CONVOLUTIONS = (BUILTIN.CONV_2D, BUILTIN.DEPTHWISE_CONV_2D)
MAX_SCALE = 16.0  # at most 4 bits moved from the next layer's weights to the activation
CHANNEL_PERCENTILE = 99  # a channel's range: this percentile of its per-sample max |x|
BINS = 4096
TAIL = 1e-4  # clipped from each end of an activation's histogram

Sample = dict[str, np.ndarray]


def _interpreter(model: bytes) -> Any:
    from ai_edge_quantizer.utils import tfl_interpreter_utils

    return tfl_interpreter_utils.create_tfl_interpreter(model, num_threads=1)


def _tensor_values(
    model: bytes, samples: Sequence[Sample], names: Sequence[str]
) -> Iterator[dict[str, np.ndarray]]:
    """Yield {name: float tensor} for every sample (the float model, all tensors kept)."""
    interpreter = _interpreter(model)
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    run = interpreter.get_signature_runner("serving_default")
    for sample in samples:
        run(**sample)
        yield {name: interpreter.get_tensor(index[name]) for name in names if name in index}


def _code(model: schema.ModelT, op: schema.OperatorT) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _chains(model: schema.ModelT) -> list[tuple[int, int | None, int]]:
    """(convolution, its PReLU or None, next convolution): the output goes nowhere else."""
    ops = model.subgraphs[0].operators
    users: dict[int, list[int]] = {}
    for position, op in enumerate(ops):
        for tensor in op.inputs:
            users.setdefault(int(tensor), []).append(position)
    chains = []
    for position, op in enumerate(ops):
        if _code(model, op) not in CONVOLUTIONS:
            continue
        after = users.get(int(op.outputs[0]), [])
        prelu = None
        if len(after) == 1 and _code(model, ops[after[0]]) == BUILTIN.PRELU:
            prelu = after[0]
            after = users.get(int(ops[prelu].outputs[0]), [])
        if len(after) == 1 and _code(model, ops[after[0]]) in CONVOLUTIONS:
            chains.append((position, prelu, after[0]))
    return chains


def _weights(model: schema.ModelT, tensor: int) -> np.ndarray:
    t = model.subgraphs[0].tensors[tensor]
    data = bytes(np.asarray(model.buffers[t.buffer].data, np.uint8))
    return np.frombuffer(data, "<f4").reshape(t.shape).copy()


def _set_weights(model: schema.ModelT, tensor: int, values: np.ndarray) -> None:
    t = model.subgraphs[0].tensors[tensor]
    model.buffers[t.buffer].data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)


def equalise_channels(model_bytes: bytes, samples: Sequence[Sample]) -> tuple[bytes, int]:
    """The same float network with each conv -> (PReLU) -> conv tensor's channels scaled to
    about one range (by the float model's activations on `samples`). Returns (model, chains).
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    graph = model.subgraphs[0]
    ops = graph.operators
    chains = _chains(model)

    def name(op: int) -> str:
        return graph.tensors[int(ops[op].outputs[0])].name.decode()

    names = sorted({name(p) for c, q, _ in chains for p in (c, q) if p is not None})
    peaks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for values in _tensor_values(fixed_up(model_bytes), samples, names):
        for n, v in values.items():
            peaks[n].append(np.abs(v).reshape(-1, v.shape[-1]).max(axis=0))
    span = {n: np.percentile(np.stack(p), CHANNEL_PERCENTILE, axis=0) for n, p in peaks.items()}
    for conv, prelu, following in chains:
        reach = span[name(conv)]
        if prelu is not None:
            reach = np.maximum(reach, span[name(prelu)])
        reach = np.maximum(reach, 1e-6)
        scale = np.clip(reach.max() / reach, 1.0, MAX_SCALE)
        weights, bias = int(ops[conv].inputs[1]), int(ops[conv].inputs[2])
        w = _weights(model, weights)  # CONV_2D [out, h, w, in]; DEPTHWISE [1, h, w, out]
        axis = 0 if _code(model, ops[conv]) == BUILTIN.CONV_2D else 3
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        _set_weights(model, weights, w * scale.reshape(shape))
        _set_weights(model, bias, _weights(model, bias) * scale)
        nxt = int(ops[following].inputs[1])  # its input channels are the last axis
        _set_weights(model, nxt, _weights(model, nxt) / scale.reshape(1, 1, 1, -1))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), len(chains)


def clipped_ranges(
    model_bytes: bytes, samples: Sequence[Sample], qsvs: dict[str, Any], tail: float = TAIL
) -> dict[str, Any]:
    """ai-edge-quantizer calibration results (`qsvs`, tensor -> min/max) with every
    activation's range replaced by the [tail, 1 - tail] quantiles of its values over
    `samples` (always including 0); the model input keeps its range."""
    names = [n for n in qsvs if n != "input"]
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for values in _tensor_values(model_bytes, samples, names):
        for n, v in values.items():
            low[n] = min(low.get(n, 0.0), float(v.min()))
            high[n] = max(high.get(n, 0.0), float(v.max()))
    counts = {n: np.zeros(BINS) for n in low if high[n] > low[n]}
    for values in _tensor_values(model_bytes, samples, list(counts)):
        for n, v in values.items():
            counts[n] += np.histogram(v, BINS, (low[n], high[n]))[0]
    out = {n: dict(q) for n, q in qsvs.items()}
    for n, count in counts.items():
        centres = low[n] + (np.arange(BINS) + 0.5) * (high[n] - low[n]) / BINS
        cumulative = np.cumsum(count) / count.sum()
        a = min(0.0, float(centres[np.searchsorted(cumulative, tail)]))
        b = max(0.0, float(centres[min(BINS - 1, np.searchsorted(cumulative, 1 - tail))]))
        out[n]["min"] = np.full_like(np.asarray(qsvs[n]["min"], np.float32), a)
        out[n]["max"] = np.full_like(np.asarray(qsvs[n]["max"], np.float32), b)
    return out
