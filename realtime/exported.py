"""Exported files as models.

`--model m.onnx` runs with ONNX Runtime and `--model m.pt2` as the AOTInductor package it is;
the input contract comes from the file's metadata (export/contract.py).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from stylecast.core.device import resolve_device
from stylecast.core.errors import InputError
from stylecast.export.contract import checkpoint_from_contract
from stylecast.models.checkpoint import Checkpoint, CheckpointError, Family
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
