"""Make the old MediaPipe .tflite files digestible for ai-edge-quantizer.

Three problems, each silent if left alone:
- opcodes live only in `deprecated_builtin_code` (the quantizer reads `builtin_code`,
  which is 0 = ADD for every op);
- no SignatureDef (the quantizer and its calibrator look tensors up through one);
- BlazeFace stores fp16 weights behind DEQUANTIZE ops (the quantizer skips them).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

BUILTIN = schema.BuiltinOperator
TENSOR_TYPE = schema.TensorType


def restore_builtin_codes(model: schema.ModelT) -> None:
    for code in model.operatorCodes:
        code.builtinCode = max(code.builtinCode, code.deprecatedBuiltinCode)


def add_signature(model: schema.ModelT, key: str = "serving_default") -> None:
    if model.signatureDefs:
        return
    graph = model.subgraphs[0]

    def tensor_map(index: int) -> schema.TensorMapT:
        entry = schema.TensorMapT()
        entry.name = graph.tensors[index].name
        entry.tensorIndex = index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey = key
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(int(i)) for i in graph.inputs]
    signature.outputs = [tensor_map(int(i)) for i in graph.outputs]
    model.signatureDefs = [signature]


def fold_fp16_weights(model: schema.ModelT) -> int:
    """Replace DEQUANTIZE(fp16 constant) by a float32 constant; returns ops removed."""
    graph = model.subgraphs[0]
    kept, removed = [], 0
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex].builtinCode
        source = graph.tensors[op.inputs[0]]
        buffer = model.buffers[source.buffer]
        if (
            code == BUILTIN.DEQUANTIZE
            and source.type == TENSOR_TYPE.FLOAT16
            and buffer.data is not None
            and len(buffer.data)
        ):
            values = np.frombuffer(bytes(np.asarray(buffer.data, np.uint8)), "<f2")
            target = graph.tensors[op.outputs[0]]
            fresh = schema.BufferT()
            fresh.data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
            model.buffers.append(fresh)
            target.buffer = len(model.buffers) - 1
            removed += 1
        else:
            kept.append(op)
    graph.operators = kept
    return removed


def drop_unused_tensors_data(model: schema.ModelT) -> None:
    """Empty the buffers no tensor references any more (the old fp16 copies)."""
    used = {tensor.buffer for graph in model.subgraphs for tensor in graph.tensors}
    graph = model.subgraphs[0]
    consumed = {int(i) for op in graph.operators for i in op.inputs} | {
        int(i) for i in graph.outputs
    }
    for index, tensor in enumerate(graph.tensors):
        if index not in consumed and tensor.buffer:
            used.discard(tensor.buffer)
    for index, buffer in enumerate(model.buffers):
        if index and index not in used:
            buffer.data = None


def fixed_up(model_bytes: bytes) -> bytes:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    restore_builtin_codes(model)
    fold_fp16_weights(model)
    drop_unused_tensors_data(model)
    add_signature(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def op_versions(model_bytes: bytes) -> dict[str, list[int]]:
    """{op name: sorted versions} as written in the file (what an old runtime checks)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    names = {value: name for name, value in vars(BUILTIN).items() if not name.startswith("_")}
    used: dict[str, set[int]] = {}
    graph_ops = {op.opcodeIndex for graph in model.subgraphs for op in graph.operators}
    for index, code in enumerate(model.operatorCodes):
        if index in graph_ops:
            name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            used.setdefault(name, set()).add(int(code.version))
    return {name: sorted(versions) for name, versions in sorted(used.items())}


def _dequantize_version(tensor: schema.TensorT) -> int:
    """TFLite op_version.cc for DEQUANTIZE: int8 2 (per-channel 5), fp16/int16 3."""
    if tensor.type == TENSOR_TYPE.INT8:
        scales = tensor.quantization.scale if tensor.quantization else None
        return 5 if scales is not None and len(scales) > 1 else 2
    if tensor.type in (TENSOR_TYPE.FLOAT16, TENSOR_TYPE.INT16):
        return 3
    return 1


def set_op_versions(model_bytes: bytes) -> bytes:
    """Raise DEQUANTIZE's version to what its input needs (ai-edge-quantizer leaves 1).

    A runtime too old for per-channel dequantisation then refuses the model at load
    instead of running it with wrong weights.
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == BUILTIN.DEQUANTIZE:
                needed = _dequantize_version(graph.tensors[op.inputs[0]])
                code.version = max(code.version, needed)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def prune_unused_tensors(model_bytes: bytes) -> bytes:
    """Drop tensors no op, graph input/output or signature uses (the emptied fp16 weights
    fold_fp16_weights left behind), renumbering the rest, so the file holds only what runs."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    for graph_index, graph in enumerate(model.subgraphs):
        used = {int(i) for op in graph.operators for i in op.inputs if i >= 0}
        used |= {int(i) for op in graph.operators for i in op.outputs}
        used |= {int(i) for i in graph.inputs} | {int(i) for i in graph.outputs}
        keep = sorted(used)
        renumber = {old: new for new, old in enumerate(keep)}
        graph.tensors = [graph.tensors[i] for i in keep]
        for op in graph.operators:
            op.inputs = [renumber[int(i)] if i >= 0 else -1 for i in op.inputs]
            op.outputs = [renumber[int(i)] for i in op.outputs]
        graph.inputs = [renumber[int(i)] for i in graph.inputs]
        graph.outputs = [renumber[int(i)] for i in graph.outputs]
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == graph_index:
                for entry in [*signature.inputs, *signature.outputs]:
                    entry.tensorIndex = renumber[int(entry.tensorIndex)]
    drop_unused_tensors_data(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def fold_prelu(model_bytes: bytes) -> tuple[bytes, int]:
    """Replace TF's decomposed PReLU, relu(x) + c * (x - abs(x)) (RELU, ABS, SUB, MUL with a
    constant c, ADD), by one PRELU op with slope 2c. The same function, one op instead of
    five: faster under XNNPACK, and quantisable (ai-edge-quantizer has no int8 ABS, so the
    decomposed form stays float between QUANTIZE/DEQUANTIZE pairs). Returns (model, folds)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    graph = model.subgraphs[0]

    def code_of(op: schema.OperatorT) -> int:
        code = model.operatorCodes[op.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    def constant(index: int) -> np.ndarray | None:
        buffer = model.buffers[graph.tensors[index].buffer]
        if buffer.data is None or not len(buffer.data):
            return None
        return np.frombuffer(bytes(np.asarray(buffer.data, np.uint8)), "<f4")

    consumers: dict[int, list[int]] = {}
    for position, op in enumerate(graph.operators):
        for index in op.inputs:
            consumers.setdefault(int(index), []).append(position)
    prelu_code = schema.OperatorCodeT()
    prelu_code.builtinCode = BUILTIN.PRELU
    prelu_code.deprecatedBuiltinCode = BUILTIN.PRELU
    prelu_code.version = 1
    model.operatorCodes.append(prelu_code)
    prelu_index = len(model.operatorCodes) - 1
    drop: set[int] = set()
    replace: dict[int, schema.OperatorT] = {}
    for position, op in enumerate(graph.operators):
        if code_of(op) != BUILTIN.ABS:
            continue
        x, a = int(op.inputs[0]), int(op.outputs[0])
        users = {code_of(graph.operators[p]): p for p in consumers.get(x, [])}
        if set(users) != {BUILTIN.RELU, BUILTIN.ABS, BUILTIN.SUB}:
            continue
        relu, sub = graph.operators[users[BUILTIN.RELU]], graph.operators[users[BUILTIN.SUB]]
        if list(sub.inputs) != [x, a]:
            continue
        mul_at = consumers.get(int(sub.outputs[0]), [])
        if len(mul_at) != 1 or code_of(graph.operators[mul_at[0]]) != BUILTIN.MUL:
            continue
        mul = graph.operators[mul_at[0]]
        c_index = next(int(i) for i in mul.inputs if int(i) != int(sub.outputs[0]))
        c = constant(c_index)
        add_at = consumers.get(int(mul.outputs[0]), [])
        if c is None or len(add_at) != 1 or code_of(graph.operators[add_at[0]]) != BUILTIN.ADD:
            continue
        add = graph.operators[add_at[0]]
        if sorted(int(i) for i in add.inputs) != sorted(
            [int(relu.outputs[0]), int(mul.outputs[0])]
        ):
            continue
        slope = schema.BufferT()
        slope.data = np.frombuffer((2.0 * c).astype("<f4").tobytes(), np.uint8)
        model.buffers.append(slope)
        tensor = schema.TensorT()
        tensor.name = graph.tensors[c_index].name + b"/prelu_slope"
        tensor.shape = np.array([1, 1, len(c)], np.int32)
        tensor.type = TENSOR_TYPE.FLOAT32
        tensor.buffer = len(model.buffers) - 1
        graph.tensors.append(tensor)
        prelu = schema.OperatorT()
        prelu.opcodeIndex = prelu_index
        prelu.inputs = np.array([x, len(graph.tensors) - 1], np.int32)
        prelu.outputs = np.array([int(add.outputs[0])], np.int32)
        first = min(users[BUILTIN.RELU], position, users[BUILTIN.SUB], mul_at[0], add_at[0])
        replace[first] = prelu
        drop |= {users[BUILTIN.RELU], position, users[BUILTIN.SUB], mul_at[0], add_at[0]}
    graph.operators = [
        replace.get(p, op) for p, op in enumerate(graph.operators) if p in replace or p not in drop
    ]
    out = prune_unused_tensors(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out, len(replace)
