"""A TensorRT engine run on torch tensors (CUDA in, CUDA out, on the current stream).

Written against the TensorRT 10 Python API (named tensors: `set_input_shape`,
`set_tensor_address`, `execute_async_v3`); the engines come from export/tensorrt.py. TensorRT is
an optional extra (`pip install "stylecast[tensorrt]"`); nothing here is imported unless asked for.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stylecast.export.tensorrt import ShapeProfile


class TensorRTBackend:
    """A drop-in for the torch model: CUDA tensor in, CUDA tensor out, on the current stream."""

    name = "tensorrt"

    def __init__(self, engine: Path, device: torch.device, fp16: bool = True, profile: ShapeProfile | None = None):
        """`engine`: a file export/tensorrt.py wrote for this GPU, with `fp16` and `profile`."""
        import tensorrt as trt

        if device.type != "cuda":
            raise ValueError("TensorRT runs on CUDA devices only")
        self.device = device
        self.dtype = torch.float16 if fp16 else torch.float32
        self.profile = profile or ShapeProfile()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]  # image first
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if not self.profile.contains(h, w) or n > self.profile.max_batch:
            raise ValueError(
                f"input {n}x{h}x{w} is outside the engine's profile {self.profile}; "
                "export again with --shapes covering it, or use --max-size"
            )
        tensors = [x.to(self.dtype).contiguous(), *(c.float().contiguous() for c in conditions)]
        for name, tensor in zip(self.inputs, tensors, strict=True):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        y = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=self.dtype, device=self.device)
        self.context.set_tensor_address(self.output, y.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return y
