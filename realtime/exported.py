"""An exported file beside the checkpoint it came from: how far its outputs are from the module's.

`stylecast export` measures each file it writes this way before publishing it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from stylecast.models.checkpoint import Checkpoint
from stylecast.models.registry import example_conditions


def probe_sizes(multiple: int) -> list[tuple[int, int]]:
    """Two input sizes (H, W) the model takes: a small one, and an odd multiple of the size step
    unlike the traced size (a shape baked into the graph shows there)."""
    small = (-(-64 // multiple) * multiple, -(-96 // multiple) * multiple)
    large = (23 * multiple, 31 * multiple) if multiple <= 16 else (3 * multiple, 5 * multiple)
    return [small, large]


def max_differences(
    ckpt: Checkpoint,
    run: Callable[..., torch.Tensor],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> dict[str, float]:
    """Largest |module - run| per probe size ("HxW": value), on random inputs in the contract's
    range; `run(x, *conditions)` takes the input in `dtype` on `device`."""
    generator = torch.Generator().manual_seed(seed)
    module = ckpt.build().to(device)
    lo, hi = ckpt.contract.range
    differences = {}
    with torch.inference_mode():
        for h, w in probe_sizes(ckpt.contract.size_multiple):
            x = (torch.rand(1, 3, h, w, generator=generator) * (hi - lo) + lo).to(device)
            conditions = [c.to(device) for c in example_conditions(module, 1, generator).values()]
            expected = module(x, *conditions)
            actual = run(x.to(dtype), *(c.to(dtype) for c in conditions)).float()
            differences[f"{h}x{w}"] = float((actual - expected).abs().max())
    return differences
