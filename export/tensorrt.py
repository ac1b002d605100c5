"""TensorRT engines built from the ONNX export: written where asked, or cached per checkpoint.
realtime/tensorrt.py runs them.

Written against the TensorRT 10 Python API (named tensors: `set_input_shape`,
`set_tensor_address`, `execute_async_v3`). TensorRT is an optional extra
(`pip install "stylecast[tensorrt]"`); nothing here is imported unless it is asked for.

Traps handled here:
- instance norm: the ONNX parser maps it to TensorRT's native normalization layer; in fp16 its
  variance of large activations overflows, so normalization layers are pinned to fp32
  (`OBEY_PRECISION_CONSTRAINTS`) while the convolutions run in fp16;
- dynamic shapes: one optimization profile covers the (min, opt, max) input sizes asked for,
  and a frame outside it is refused with a message instead of a CUDA error;
- engines are specific to the GPU, the TensorRT version, the precision and the profile: the
  cache key holds all of them and the ONNX file's hash.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from stylecast.core.atomic import staged_file
from stylecast.export.onnx import cached_onnx
from stylecast.models.checkpoint import Checkpoint

log = logging.getLogger("stylecast.tensorrt")


@dataclass(frozen=True)
class ShapeProfile:
    """Input sizes (height, width) the engine accepts: smallest, tuned-for, largest."""

    min: tuple[int, int] = (64, 64)
    opt: tuple[int, int] = (720, 1280)
    max: tuple[int, int] = (1088, 1920)
    max_batch: int = 4

    @classmethod
    def parse(cls, text: str, multiple: int = 4) -> ShapeProfile:
        """'HxW,HxW,HxW' (min, opt, max), each rounded up to `multiple`."""
        try:
            sizes = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]
            low, opt, high = (tuple(-(-v // multiple) * multiple for v in size) for size in sizes)
        except ValueError:
            raise ValueError(
                f"shapes must look like 64x64,720x1280,1088x1920 (min,opt,max as HxW), got {text!r}"
            ) from None
        if not all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True)):
            raise ValueError(f"shapes must grow from min to opt to max, got {text!r}")
        return cls(low, opt, high)  # type: ignore[arg-type]

    def contains(self, height: int, width: int) -> bool:
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]


def engine_key(onnx_bytes: bytes, gpu_name: str, trt_version: str, fp16: bool, profile: ShapeProfile) -> str:
    """The engine cache key: everything an engine depends on."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(onnx_bytes).digest())
    h.update(f"{gpu_name}|{trt_version}|fp16={fp16}|{profile}".encode())
    return h.hexdigest()[:20]


def build_engine(onnx_path: Path, fp16: bool, profile: ShapeProfile, timing_cache: Path | None = None) -> bytes:
    """Serialized engine for the ONNX model at `onnx_path`."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type == trt.LayerType.NORMALIZATION:  # variance of big activations overflows fp16
                layer.precision = trt.float32
                layer.set_output_type(0, trt.float32)
        network.get_input(0).dtype = trt.float16  # fp16 in and out: no casts around the engine
        network.get_output(0).dtype = trt.float16
    name = network.get_input(0).name
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(name, (1, 3, *profile.min), (1, 3, *profile.opt), (profile.max_batch, 3, *profile.max))
    for i in range(1, network.num_inputs):  # conditions (style weights): only the batch varies
        extra = network.get_input(i)
        rest = tuple(extra.shape)[1:]
        opt_profile.set_shape(extra.name, (1, *rest), (1, *rest), (profile.max_batch, *rest))
    config.add_optimization_profile(opt_profile)
    cache_data = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    if timing_cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def cached_engine(ckpt: Checkpoint, fp16: bool, profile: ShapeProfile, cache: Path) -> Path:
    """The engine for `ckpt` on this GPU, built once and kept under `cache`/engines."""
    import tensorrt as trt

    onnx_path = cached_onnx(ckpt)
    key = engine_key(onnx_path.read_bytes(), torch.cuda.get_device_name(), trt.__version__, fp16, profile)
    path = cache / "engines" / f"{ckpt.architecture}-{key}.engine"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info("building a TensorRT engine for %s (a minute or two, once)", ckpt.styles or ckpt.architecture)
        data = build_engine(onnx_path, fp16, profile, cache / "engines" / "timing.cache")
        with staged_file(path) as staged:
            staged.write_bytes(data)
    return path


def export_engine(ckpt: Checkpoint, path: Path, fp16: bool, profile: ShapeProfile) -> Path:
    """The engine for `ckpt` on this GPU written to `path` (all or nothing)."""
    with staged_file(path) as staged:
        staged.write_bytes(build_engine(cached_onnx(ckpt), fp16, profile))
    return path
