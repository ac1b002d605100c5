"""AOTInductor packages (.pt2): the model compiled ahead of time by torch's own compiler.

The package holds generated C++ (CPU) or Triton/CUDA (GPU) kernels for one device and dtype,
with dynamic batch, height and width; it loads without Python-side tracing or a compile step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from stylecast.export.contract import contract_metadata
from stylecast.export.shapes import sample_size as traced_size
from stylecast.models.checkpoint import Checkpoint

# torch's C++ toolchain lookup (imported by the compiler and the loader) warns "No CUDA runtime is
# found" on every machine without CUDA, where a CPU package needs none: not the user's concern
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def export_aot(
    ckpt: Checkpoint,
    path: str | Path,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    sample_size: tuple[int, int] = (256, 256),
    max_size: tuple[int, int] = (2160, 3840),
) -> Path:
    """Compile `ckpt` for `device` and `dtype` into the package `path` (.pt2)."""
    path = Path(path)
    module = ckpt.build_for_inference().to(device=device, dtype=dtype)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    m = ckpt.contract.size_multiple
    h, w = traced_size(sample_size, m)
    sample = torch.rand(2, 3, h, w, device=device, dtype=dtype)  # batch 2: 1 would be specialized
    height = torch.export.Dim("height", min=2, max=max_size[0] // m) * m
    width = torch.export.Dim("width", min=2, max=max_size[1] // m) * m
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.inference_mode():
        program = torch.export.export(module, (sample,), dynamic_shapes={"x": {0: batch, 2: height, 3: width}})
    # the contract travels in the package, with what it was compiled for: `--model m.pt2` needs nothing else
    metadata = contract_metadata(ckpt, device=device.type, dtype=str(dtype).removeprefix("torch."))
    staged = path.with_name(f".{path.name}.part.pt2")
    try:
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(staged), inductor_configs={"aot_inductor.metadata": metadata}
        )
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def load_aot(path: str | Path):  # -> a callable module
    return torch._inductor.aoti_load_package(str(path))
