"""ONNX export with dynamic height and width, the input contract in the model's metadata, and a
cross-check against torch.

The exported graph takes `input` N x 3 x H x W (H, W multiples of the checkpoint's size
multiple, values in its declared range) and returns `output` of the same shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from stylecast.core.atomic import staged_file
from stylecast.core.cache import onnx_path
from stylecast.export.contract import contract_metadata
from stylecast.export.shapes import sample_size as traced_size
from stylecast.models.checkpoint import Checkpoint, load_checkpoint
from stylecast.models.registry import example_conditions

OPSET = 18
log = logging.getLogger("stylecast.export")


def checkpoint_digest(ckpt: Checkpoint) -> str:
    """Stable hash of architecture, kwargs, inference form and weights: the cache key of exported files."""
    h = hashlib.sha256()
    h.update(json.dumps([ckpt.architecture, ckpt.kwargs, ckpt.inference_form], sort_keys=True).encode())
    for name in sorted(ckpt.state_dict):
        h.update(name.encode())
        h.update(ckpt.state_dict[name].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def export_onnx(ckpt: Checkpoint, path: str | Path, sample_size: tuple[int, int] = (64, 96)) -> Path:
    """Export `ckpt` to `path` (written atomically) with dynamic batch, height and width.

    The TorchScript exporter traces the shipped nets in 0.1 to 0.9 s on one core, torch.export's
    exporter takes 6 to 10 s, and their graphs agree (max difference 0 on the default) and run
    equally fast in ONNX Runtime: the trace is tried first, torch.export's exporter where the
    trace fails (a net it cannot trace, or a torch without it)."""
    import onnx

    path = Path(path)
    module = ckpt.build_for_inference()
    m = ckpt.contract.size_multiple
    h, w = traced_size(sample_size, m)
    sample = torch.rand(2, 3, h, w)  # batch 2: a batch of 1 would be specialized to a constant
    conditions = example_conditions(module, 2)  # e.g. the multi-style net's style weights
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # the exporters' notes on their own choices (the trace's deprecation, merged axis names)
        # are not the user's concern
        warnings.filterwarnings("ignore", module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        tmp_path = Path(tmp) / "model.onnx"

        def export(**shapes: Any) -> None:
            torch.onnx.export(
                module,
                (sample, *conditions.values()),
                str(tmp_path),
                input_names=["input", *conditions],
                output_names=["output"],
                opset_version=OPSET,
                **shapes,
            )

        try:
            export(**_traced_shapes(list(conditions)))
        except Exception as exc:  # noqa: BLE001 - any failure of the trace leaves the other exporter
            log.debug("the traced ONNX export failed (%s: %s); exporting through torch.export", type(exc).__name__, exc)
            export(**_torch_export_shapes(list(conditions), m))
        model = onnx.load(str(tmp_path))
        for key, value in contract_metadata(ckpt).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        with staged_file(path) as staged:
            onnx.save(model, str(staged))
    return path


def _traced_shapes(conditions: list[str]) -> dict[str, Any]:
    """The trace's dynamic axes: batch, height and width of the frame, batch of each condition."""
    axes = {0: "batch", 2: "height", 3: "width"}
    return {
        "dynamic_axes": {"input": axes, "output": axes, **{name: {0: "batch"} for name in conditions}},
        "dynamo": False,
    }


def _torch_export_shapes(conditions: list[str], multiple: int) -> dict[str, Any]:
    """torch.export's dynamic shapes: height and width in steps of the size multiple."""
    height, width = torch.export.Dim("height", min=2) * multiple, torch.export.Dim("width", min=2) * multiple
    batch = torch.export.Dim("batch", min=1, max=64)
    return {
        "dynamic_shapes": {"x": {0: batch, 2: height, 3: width}, **{name: {0: batch} for name in conditions}},
        "external_data": False,
        "dynamo": True,
        "verbose": False,
    }


def model_key(ckpt: Checkpoint) -> str:
    """The name a model's exports and measurements are kept under: its architecture and digest."""
    return f"{ckpt.architecture}-{checkpoint_digest(ckpt)}"


def onnx_cache_path(ckpt: Checkpoint) -> Path:
    return onnx_path(model_key(ckpt))


def cached_onnx(ckpt: Checkpoint, quiet: bool = False) -> Path:
    """The checkpoint's ONNX export, made once and kept under the cache folder; the export (a few
    seconds) is announced in one line unless `quiet`."""
    path = onnx_cache_path(ckpt)
    if not path.is_file():
        if not quiet:
            log.warning("stylecast: exporting the model for ONNX Runtime (once; kept in %s)", path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(ckpt, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m stylecast.export.onnx CHECKPOINT`: the checkpoint's export into the cache, in a
    process of its own on one thread (what `--backend auto` starts while frames run)."""
    (path,) = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(1)  # one core for the export, the other for the frames meanwhile
    cached_onnx(load_checkpoint(path), quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
