"""Exported files as models, and how far an exported file's outputs are from its checkpoint's.

`--model m.onnx` runs with ONNX Runtime and `--model m.pt2` as the AOTInductor package it is;
the input contract comes from the file's metadata (export/contract.py). `stylecast export`
measures each file it writes with `max_differences` before publishing it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from stylecast.core.device import resolve_device
from stylecast.core.errors import InputError
from stylecast.export.contract import checkpoint_from_contract
from stylecast.models.checkpoint import Checkpoint, CheckpointError, Family
from stylecast.models.registry import example_conditions
from stylecast.realtime.backends import AOTBackend, Backend, OnnxRuntimeBackend, installed

# suffix -> the backend that runs such a file
EXPORTED = {".onnx": "onnxruntime", ".pt2": "aot"}


def is_exported(spec: str) -> bool:
    return Path(spec).suffix.lower() in EXPORTED


def open_exported(path: str | Path, backend: str = "auto", device_name: str = "auto") -> tuple[Checkpoint, Backend]:
    """The weightless checkpoint an exported file declares, and the backend that runs the file."""
    path = Path(path)
    runs_on = EXPORTED[path.suffix.lower()]
    if backend not in ("auto", runs_on):
        raise InputError(f"{path.name} runs on the {runs_on} backend, not {backend}")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    if runs_on == "onnxruntime" and not installed("onnxruntime"):
        raise InputError("an .onnx model needs ONNX Runtime: pip install onnxruntime")
    if runs_on == "aot" and not zipfile.is_zipfile(path):  # an AOTInductor package is a zip archive
        raise InputError(f"{path.name} is not a readable exported model: not an AOTInductor package")
    try:
        ckpt, engine = (open_onnx if runs_on == "onnxruntime" else open_aot)(path, device_name)
    except (InputError, CheckpointError) as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's and the AOT loader's errors on a damaged or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path.name} is not a readable exported model: {first}") from None
    if ckpt.family is Family.ARBITRARY:
        raise InputError(
            f"{path.name}: an exported arbitrary-style model cannot read style pictures (its encoder is not in"
            " the file); give its checkpoint"
        )
    return ckpt, engine


def open_onnx(path: Path, device_name: str) -> tuple[Checkpoint, Backend]:
    engine = OnnxRuntimeBackend(path, resolve_device(device_name))
    ckpt, _ = checkpoint_from_contract(engine.session.get_modelmeta().custom_metadata_map, path.name)
    return ckpt, engine


def open_aot(path: Path, device_name: str) -> tuple[Checkpoint, Backend]:
    """The package runs where it was compiled for (its metadata says), in the dtype it was compiled in."""
    from stylecast.export.aot import load_aot

    package = load_aot(path)
    ckpt, record = checkpoint_from_contract(package.get_metadata(), path.name)
    compiled_for = record.get("device", "cpu")
    if device_name != "auto" and device_name.split(":")[0] != compiled_for:
        raise InputError(f"{path.name} was compiled for {compiled_for}, not {device_name}")
    device = resolve_device(compiled_for if device_name == "auto" else device_name)
    return ckpt, AOTBackend(package, device, getattr(torch, record.get("dtype", "float32")))


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
