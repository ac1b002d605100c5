"""The default small net as trained against its inference form (the last 2x upsampling and
convolution computed at half resolution, models/layers.py SubpixelUpsampleConv), next to the
network the default had before its deep layers padded by reflection (`great_wave-small`'s:
anti-aliased, zero padding throughout), in one run on this CPU.

    python benchmarks/fused_upsampling.py [--size 640x360] [--repeat 30] [--rounds 3]

Each contender is timed on the same model input (the frame with the runtime's 8 px margin,
rounded up to the size multiple), in ONNX Runtime (default threads) and torch; the contenders
take turns, --rounds times, and each figure is the median of all its calls.
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

from stylecast.core.machine import cpu_name
from stylecast.export.onnx import export_onnx
from stylecast.models.checkpoint import Checkpoint
from stylecast.realtime.stylizer import load_model
from stylecast.realtime.torch_free import model_input_size

FUSED, TRAINED = "default, inference form", "default, as trained"
BEFORE = "before (great_wave-small's net), as trained"


def as_trained(ckpt: Checkpoint) -> Checkpoint:
    """The same weights with no runtime margin, where the bilinear output layer is not fused."""
    return dataclasses.replace(ckpt, contract=dataclasses.replace(ckpt.contract, margin=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeat", type=int, default=30, help="calls per contender per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    default, before = load_model("starry_night-small"), load_model("great_wave-small")
    margin = default.contract.margin
    _, height, width = model_input_size(default.contract, h, w)
    x = torch.rand(1, 3, height, width)
    print(
        f"# {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__},"
        f" onnxruntime {onnxruntime.__version__}; model input 3x{height}x{width} ({args.size} + {margin} px margin)"
    )
    contenders = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ckpt in (
            (FUSED, default),
            (TRAINED, as_trained(default)),
            (BEFORE, as_trained(before)),
        ):
            session = onnxruntime.InferenceSession(
                str(export_onnx(ckpt, Path(tmp) / f"{len(contenders)}.onnx")), providers=["CPUExecutionProvider"]
            )
            feed = {session.get_inputs()[0].name: x.numpy()}
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
