"""The default small net as trained against its inference form (the last 2x upsampling and
convolution computed at half resolution, models/layers.py SubpixelUpsampleConv), next to the
network the default had before its deep layers padded by reflection (anti-aliased, zero padding
throughout: the default's built without `reflect_deep`), in one run on this CPU.

    python benchmarks/fused_upsampling.py [--size 640x360] [--repeat 30] [--rounds 3]

Each contender is timed on its model input for the frame: the default's with its declared margin,
the network before with the 8 px margin it ran with then (each rounded up to the size multiple),
in ONNX Runtime (default threads) and torch; the contenders take turns, --rounds times, and each
figure is the median of all its calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch
from cpu_models import without_features

from stylecast.core.machine import cpu_name
from stylecast.export.onnx import export_onnx
from stylecast.models.checkpoint import Checkpoint
from stylecast.realtime.stylizer import load_model
from stylecast.realtime.torch_free import model_input_size

FUSED, TRAINED = "default, inference form", "default, as trained"
BEFORE = "before (zero padding throughout), as trained"
BEFORE_MARGIN = 8  # the runtime margin the default had before its deep layers padded by reflection


def with_margin(ckpt: Checkpoint, margin: int) -> Checkpoint:
    """The same weights with another runtime margin (0: the bilinear output layer is not fused)."""
    return dataclasses.replace(ckpt, contract=dataclasses.replace(ckpt.contract, margin=margin))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeat", type=int, default=30, help="calls per contender per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    default = load_model("starry_night-small")
    before = with_margin(without_features(default, ("reflect_deep",)), BEFORE_MARGIN)
    x, x_before = (torch.rand(1, *model_input_size(ckpt.contract, h, w)) for ckpt in (default, before))
    print(
        f"# {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__},"
        f" onnxruntime {onnxruntime.__version__}; model input 3x{x.shape[2]}x{x.shape[3]}"
        f" ({args.size} + {default.contract.margin} px margin), before 3x{x_before.shape[2]}x{x_before.shape[3]}"
    )
    contenders = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ckpt, picture in (
            (FUSED, default, x),
            (TRAINED, with_margin(default, 0), x),
            (BEFORE, with_margin(before, 0), x_before),
        ):
            session = onnxruntime.InferenceSession(
                str(export_onnx(ckpt, Path(tmp) / f"{len(contenders)}.onnx")), providers=["CPUExecutionProvider"]
            )
            feed = {session.get_inputs()[0].name: picture.numpy()}
            contenders[f"onnxruntime: {name}"] = lambda s=session, f=feed: s.run(None, f)
        for name, module in (
            (FUSED, default.build_for_inference()),
            (TRAINED, default.build()),
        ):
            contenders[f"torch: {name}"] = lambda m=module: m(x)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        with torch.inference_mode():
            for call in contenders.values():  # warm-up
                call()
                call()
            for _ in range(args.rounds):
                for name, call in contenders.items():
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        call()
                        times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print("\n| contender | ms per call (median) |\n|---|---|")
    for name, value in ms.items():
        print(f"| {name} | {value:.1f} |")
    fused, trained = ms[f"onnxruntime: {FUSED}"], ms[f"onnxruntime: {TRAINED}"]
    print(
        f"\nONNX Runtime: inference form / as trained {fused / trained:.2f}, / before {fused / ms[f'onnxruntime: {BEFORE}']:.2f};"
        f" torch: inference form / as trained {ms[f'torch: {FUSED}'] / ms[f'torch: {TRAINED}']:.2f}"
    )


if __name__ == "__main__":
    main()
