"""How far an exported file's outputs are from its checkpoint's: the check `stylecast export` runs
on every format (ONNX, AOTInductor, TensorRT) before it publishes the file, and the tests run.

The runner is passed in (`run(x, *conditions) -> output`), so this layer needs no runtime: the
caller hands over an ONNX Runtime session (`onnx_runner`), a loaded AOT package or an engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from stylecast.models.checkpoint import Checkpoint
from stylecast.models.registry import example_conditions

Runner = Callable[..., torch.Tensor]


def probe_sizes(multiple: int) -> list[tuple[int, int]]:
    """Two input sizes (H, W) the model takes: a small one, and an odd multiple of the size step
    unlike the traced size (a shape baked into the graph shows there)."""
    small = (-(-64 // multiple) * multiple, -(-96 // multiple) * multiple)
    large = (23 * multiple, 31 * multiple) if multiple <= 16 else (3 * multiple, 5 * multiple)
    return [small, large]


def max_differences(
    ckpt: Checkpoint,
    run: Runner,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    sizes: list[tuple[int, int]] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Largest |module - run| per input size ("HxW": value; default `probe_sizes`), on random
    inputs in the contract's range with example conditions; `run(x, *conditions)` takes them in
    `dtype` on `device` (default the CPU)."""
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    module = ckpt.build_for_inference().to(device)
    lo, hi = ckpt.contract.range
    differences = {}
    with torch.inference_mode():
        for h, w in sizes or probe_sizes(ckpt.contract.size_multiple):
            x = (torch.rand(1, 3, h, w, generator=generator) * (hi - lo) + lo).to(device)
            conditions = [c.to(device) for c in example_conditions(module, 1, generator).values()]
            expected = module(x, *conditions)
            actual = run(x.to(dtype), *(c.to(dtype) for c in conditions)).float()
            differences[f"{h}x{w}"] = float((actual - expected).abs().max())
    return differences


def onnx_runner(path: str | Path) -> Runner:
    """An ONNX file as a runner, fp32 on the CPU: its inputs in the order they were exported in
    (`input`, then the module's conditions)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*tensors: torch.Tensor) -> torch.Tensor:
        (output,) = session.run(None, {n: t.cpu().numpy() for n, t in zip(names, tensors, strict=True)})
        return torch.from_numpy(output)

    return run
