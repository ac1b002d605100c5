"""The commands about models themselves: models (the shipped list) and export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stylecast.cli.common import emit
from stylecast.core.errors import InputError


def add_models(p: argparse.ArgumentParser) -> None:
    """stylecast models"""
    p.set_defaults(run=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.models.zoo import DEFAULT_MODEL, SHIPPED

    rows: list[dict[str, Any]] = []
    for entry in SHIPPED.values():
        if not entry.path.is_file():
            continue
        ckpt = load_checkpoint(entry.path)
        parameters = sum(t.numel() for t in ckpt.state_dict.values())
        rows.append(
            {
                "name": entry.name,
                "family": ckpt.family.value,
                "architecture": ckpt.architecture,
                "net": entry.net,
                "styles": ckpt.styles,
                "source": entry.source,
                "parameters": parameters,
                "file_bytes": entry.path.stat().st_size,
                "default": entry.name == DEFAULT_MODEL,
                "path": str(entry.path),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<24}{'family':<12}{'net':<18}{'params':>11}{'size':>9}  learned from")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        print(
            f"{row['name']:<24}{row['family']:<12}{row['net']:<18}{row['parameters']:>11,}"
            f"{row['file_bytes'] / 1e6:>8.2f}M  {row['source']}{mark}"
        )
    return 0


EXPORT_SUFFIX = {"onnx": ".onnx", "aot": ".pt2", "tensorrt": ".engine"}


def add_export(p: argparse.ArgumentParser) -> None:
    """stylecast export MODEL -o OUT"""
    p.add_argument("model", help="shipped model name or checkpoint path")
    p.add_argument("--format", default="onnx", choices=list(EXPORT_SUFFIX), help="target format")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx, .pt2 or .engine)")
    p.add_argument("--fp16", action="store_true", help="half precision (aot, tensorrt)")
    p.add_argument(
        "--shapes", default=None, help="tensorrt: MIN,OPT,MAX input sizes as HxW (default 64x64,720x1280,1088x1920)"
    )
    p.add_argument("--device", default="auto", help="aot, tensorrt: the device to compile for")
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from stylecast.core.atomic import atomic_output, check_output_file
    from stylecast.core.device import resolve_device
    from stylecast.export.check import max_differences, onnx_runner
    from stylecast.realtime.backends import installed
    from stylecast.realtime.stylizer import load_model

    output = Path(args.output)
    suffix = EXPORT_SUFFIX[args.format]
    if output.suffix.lower() != suffix:  # the .pt2 loader refuses any other name, and tools go by it
        raise InputError(f"--format {args.format} writes a {suffix} file, not {output.name}")
    ckpt = load_model(args.model)
    check_output_file(output)
    if args.format == "tensorrt" and not installed("tensorrt"):
        raise InputError(
            "export to tensorrt needs TensorRT: pip install 'stylecast[tensorrt]' on a machine with an NVIDIA GPU"
        )
    # written beside the output, measured against the checkpoint, and only then given its name:
    # an export that fails, or fails its check, leaves no file
    with atomic_output(output) as staged:
        if args.format == "onnx":
            from stylecast.export.onnx import export_onnx

            export_onnx(ckpt, staged)
            differences = max_differences(ckpt, onnx_runner(staged))
        elif args.format == "aot":
            from stylecast.export.aot import export_aot, load_aot

            device = resolve_device(args.device)
            dtype = torch.float16 if args.fp16 else torch.float32
            export_aot(ckpt, staged, device, dtype)
            differences = max_differences(ckpt, load_aot(staged), device, dtype)
        else:
            from stylecast.export.tensorrt import ShapeProfile, export_engine
            from stylecast.realtime.tensorrt import TensorRTBackend

            device = resolve_device(args.device if args.device != "auto" else "cuda")
            try:
                profile = (
                    ShapeProfile.parse(args.shapes, ckpt.contract.size_multiple) if args.shapes else ShapeProfile()
                )
            except ValueError as exc:
                raise InputError(str(exc)) from None
            export_engine(ckpt, staged, args.fp16, profile)
            engine = TensorRTBackend(staged, device, fp16=args.fp16, profile=profile)
            differences = max_differences(ckpt, engine, device, engine.dtype)
    emit(
        args,
        {"model": args.model, "format": args.format, "output": str(output), "max_abs_difference": differences},
        f"wrote {output}; largest |torch - {args.format}| "
        + ", ".join(f"{k}: {v:.2e}" for k, v in differences.items()),
    )
    return 0
