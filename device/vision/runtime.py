"""TFLite interpreter wrapper: ai-edge-litert when installed, else tflite-runtime.

The runtime is imported lazily so that `blinkpay --help` and the pure core work on
hosts without it. Tensors are found by shape/name through the manifest, never by the
order the converter happened to write them in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import BlinkpayError
from device.logs import quiet_native_stderr


class RuntimeMissingError(BlinkpayError):
    """No TFLite runtime is installed."""


@dataclass(frozen=True)
class RuntimeInfo:
    name: str  # distribution name, e.g. "ai-edge-litert"
    version: str


# (module holding Interpreter, distribution name) in order of preference
_RUNTIMES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def _load_interpreter_class() -> tuple[Any, RuntimeInfo]:
    for module_name, dist in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return module.Interpreter, RuntimeInfo(dist, version)
    raise RuntimeMissingError(
        "no TFLite runtime: install ai-edge-litert (or tflite-runtime on older Pi OS)"
    )


def runtime_info() -> RuntimeInfo:
    """Which runtime the models will run on (for benchmarks and selftest)."""
    return _load_interpreter_class()[1]


@dataclass(frozen=True)
class TensorSpec:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float  # 0.0 when the tensor is not quantised
    zero_point: int


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        index=int(detail["index"]),
        name=str(detail["name"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteModel:
    """One loaded model: typed access to its input and output tensors."""

    def __init__(self, path: Path, threads: int) -> None:
        interpreter_class, self.runtime = _load_interpreter_class()
        self.path = path
        self.threads = threads
        with quiet_native_stderr():  # LiteRT's "Created ... XNNPACK delegate" line
            self._interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]

    def output_by_size(self, size: int) -> TensorSpec:
        """The output whose element count is `size` (outputs differ in size in our models)."""
        found = [o for o in self.outputs if int(np.prod(o.shape)) == size]
        if len(found) != 1:
            shapes = [o.shape for o in self.outputs]
            raise BlinkpayError(f"{self.path.name}: no unique output of size {size} in {shapes}")
        return found[0]

    def run(self, tensor: np.ndarray) -> dict[int, np.ndarray]:
        """Invoke on one input; returns copies of every output keyed by tensor index."""
        self._interpreter.set_tensor(self.inputs[0].index, tensor)
        self._interpreter.invoke()
        return {o.index: self._interpreter.get_tensor(o.index).copy() for o in self.outputs}


def quantise(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values to the input tensor's dtype (identity for float tensors)."""
    if spec.dtype == np.float32:
        return values.astype(np.float32, copy=False)
    if spec.scale == 0.0:
        return values.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    q = np.round(values / spec.scale + spec.zero_point)
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantise(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """An output tensor to float32 using its quantisation parameters."""
    if spec.dtype == np.float32 or spec.scale == 0.0:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
