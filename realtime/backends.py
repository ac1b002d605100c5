"""Inference backends: `backend(x) -> y` with one device, dtype and shape contract.

- torch: the module itself (eager), fp32 on the CPU, fp16 on CUDA.
- compiled: torch.compile (inductor); on CUDA fp16, channels-last and CUDA graphs.
- aot: an AOTInductor package (.pt2) compiled once per checkpoint, device and dtype, cached.
- onnxruntime: the model exported to ONNX (cached by checkpoint hash), run by ONNX Runtime.
- tensorrt: an engine built from the ONNX export (export/tensorrt.py builds it, realtime/tensorrt.py
  runs it; needs the extra).
- auto: on the CPU, torch from the first frame while onnxruntime is prepared aside, then the
  faster of the two for each frame size, timed on the frames and remembered; on CUDA, torch.

`create_backend` is where the device and dtype are decided, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from stylecast.core.cache import cache_dir
from stylecast.core.device import resolve_device
from stylecast.core.errors import InputError
from stylecast.export.onnx import cached_onnx, model_key, onnx_cache_path
from stylecast.models.checkpoint import Checkpoint
from stylecast.realtime.names import BACKENDS

log = logging.getLogger("stylecast.backends")
EXPORT_AFTER_FRAMES = 2  # `auto` starts an uncached ONNX Runtime candidate once a run has had this many frames


class Backend(Protocol):
    """`backend(x, *conditions)`: x is N x 3 x H x W in `dtype` on `device`; conditions are the
    architecture's extra inputs (the multi-style net's N x S style weights), fp32."""

    @property
    def name(self) -> str: ...

    device: torch.device
    dtype: torch.dtype  # what the backend expects its input in

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    name = "torch"

    def __init__(self, ckpt: Checkpoint, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        self.module = ckpt.build_for_inference().to(device=device, dtype=dtype)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x, *(c.to(self.device, self.dtype) for c in conditions))


class CompiledBackend:
    """torch.compile: kernels generated for the shapes seen (each new frame size compiles once).

    On CUDA: fp16, channels-last memory and CUDA graphs ("reduce-overhead"), which remove the
    per-kernel launch cost that dominates small networks at high frame rates.
    """

    name = "compiled"

    def __init__(self, ckpt: Checkpoint, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        module = ckpt.build_for_inference().to(device=device, dtype=dtype)
        if device.type == "cuda":
            module = module.to(memory_format=torch.channels_last)
        mode = "reduce-overhead" if device.type == "cuda" else None
        self.module = torch.compile(module, mode=mode, dynamic=False)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            y = self.module(x, *(c.to(self.device, self.dtype) for c in conditions))
        return y.clone() if self.device.type == "cuda" else y  # CUDA graphs reuse their output buffer


class AOTBackend:
    """An AOTInductor package (loaded by export.aot.load_aot) compiled for `device` and `dtype`."""

    name = "aot"

    def __init__(self, package: Callable[..., torch.Tensor], device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        self.module = package

    @classmethod
    def for_checkpoint(cls, ckpt: Checkpoint, device: torch.device, dtype: torch.dtype) -> AOTBackend:
        """The package of `ckpt` for `device` and `dtype`, compiled once and kept in the cache."""
        from stylecast.export.aot import export_aot, load_aot

        tag = f"{device.type}-{str(dtype).removeprefix('torch.')}-torch{torch.__version__.split('+')[0]}"
        path = cache_dir() / "aot" / f"{model_key(ckpt)}-{tag}.pt2"
        if not path.is_file():
            log.warning("stylecast: compiling the model ahead of time for %s (once; kept in %s)", device, path.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            export_aot(ckpt, path, device, dtype)
        return cls(load_aot(path), device, dtype)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x, *(c.to(self.device, self.dtype) for c in conditions))


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU (or CUDA with onnxruntime-gpu), fp32."""

    name = "onnxruntime"

    def __init__(self, model: Path, device: torch.device, threads: int | None = None):
        import onnxruntime as ort

        self.device, self.dtype = device, torch.float32
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InputError("onnxruntime has no CUDA provider here; install onnxruntime-gpu or use --device cpu")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # as many threads as torch's own unless told (the automatic choice builds its session in a
        # background thread, while torch's count may be lowered for a moment), so one setting at
        # the edge (`stylecast serve --threads`) governs whichever backend runs
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # ORT's worker threads spin after each run, waiting for the next; in a frame loop the
        # next work is torch's pre/post-processing, which they starve (2-core CPU, 640x360:
        # 58 -> 41 ms per frame with spinning off, the model call alone within noise)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]  # "input", then conditions

    @classmethod
    def for_checkpoint(cls, ckpt: Checkpoint, device: torch.device, quiet: bool = False) -> OnnxRuntimeBackend:
        """`ckpt` exported to ONNX once (kept in the cache; said in one line unless `quiet`) and run."""
        return cls(cached_onnx(ckpt, quiet), device)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        feeds = {
            name: t.detach().float().cpu().numpy() for name, t in zip(self.input_names, (x, *conditions), strict=True)
        }
        (y,) = self.session.run(None, feeds)
        return torch.from_numpy(y).to(self.device)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def create_backend(name: str, ckpt: Checkpoint, device_name: str = "auto") -> Backend:
    """The backend `name` for `ckpt` on `device_name`; 'auto' picks the fastest installed one
    (on the CPU, measured per frame size: realtime/auto_backend.py)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    device = resolve_device(device_name)
    if name == "auto" and device.type == "cpu" and installed("onnxruntime"):
        from stylecast.realtime.auto_backend import AutoBackend, onnxruntime_exported_aside

        # torch built now (a bad checkpoint fails here) and run from the first frame; ONNX Runtime
        # (an export on first use) prepared in the background
        now = TorchBackend(ckpt, device, torch.float32)
        threads = torch.get_num_threads()
        later: dict[str, Callable[[], Backend]] = {
            "onnxruntime": lambda: onnxruntime_exported_aside(ckpt, device, threads)
        }
        # an export first costs a process start (torch imported again) and a trace: worth it for a
        # stream, not for a photo or two
        start_after = 0 if onnx_cache_path(ckpt).is_file() else EXPORT_AFTER_FRAMES
        return AutoBackend(ckpt, now, later, start_after)
    if name == "auto":
        name = "torch"
    half = torch.float16 if device.type == "cuda" else torch.float32
    if name == "torch":
        return TorchBackend(ckpt, device, half)
    if name == "compiled":
        return CompiledBackend(ckpt, device, half)
    if name == "aot":
        return AOTBackend.for_checkpoint(ckpt, device, half)
    if name == "onnxruntime":
        if not installed("onnxruntime"):
            raise InputError("backend onnxruntime is not installed; pip install onnxruntime")
        return OnnxRuntimeBackend.for_checkpoint(ckpt, device)
    if not installed("tensorrt"):
        raise InputError(
            "backend tensorrt is not installed; pip install 'stylecast[tensorrt]' on a machine with an NVIDIA GPU"
        )
    if device.type != "cuda":
        raise InputError("backend tensorrt needs a CUDA device; use --device cuda")
    from stylecast.export.tensorrt import ShapeProfile, cached_engine
    from stylecast.realtime.tensorrt import TensorRTBackend

    profile = ShapeProfile()
    return TensorRTBackend(cached_engine(ckpt, True, profile, cache_dir()), device, fp16=True, profile=profile)
