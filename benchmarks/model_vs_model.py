"""Whole frames per model on this CPU, two or more models (shipped names or checkpoint paths)
timed in interleaved rounds, so a change in the machine's load falls on all of them alike:

    python benchmarks/model_vs_model.py starry_night-small previous.pt [--size 640x360] [--rounds 15]

The question it answers: is a retrained model as fast as the one it replaces (the same network
with another margin, say)? Each round times every model on the same ten DemoScene frames, uint8
in and uint8 out through the runtime's whole path (pad, margin, network, crop, clamp). Printed
per model: the median over rounds of the time per frame, and its ratio to the first model's.
Run it twice with the order swapped: the two ratios bound the noise.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stylecast.core.machine import cpu_name
from stylecast.realtime.demo import DemoScene
from stylecast.realtime.stylizer import Stylizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped model names or checkpoint paths; ratios to the first")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    args = parser.parse_args()

    w, h = (int(v) for v in args.size.split("x"))
    frames = [DemoScene(w, h).frame(i) for i in range(10)]
    stylizers = {name: Stylizer.create(name, args.backend, "cpu") for name in args.models}
    for stylizer in stylizers.values():  # warm-up: sessions built, caches filled
        stylizer.one(frames[0])
        stylizer.one(frames[1])
    ms_per_frame: dict[str, list[float]] = {name: [] for name in stylizers}
    for _ in range(args.rounds):
        for name, stylizer in stylizers.items():
            start = time.perf_counter()
            for frame in frames:
                stylizer.one(frame)
            ms_per_frame[name].append((time.perf_counter() - start) / len(frames) * 1000)

    print(f"# {cpu_name()}, {torch.get_num_threads()} torch threads, {args.backend}, {args.size}, {args.rounds} rounds")
    first = statistics.median(ms_per_frame[args.models[0]])
    for name, times in ms_per_frame.items():
        median = statistics.median(times)
        print(
            f"{name}: {median:.1f} ms/frame, {median / first:.3f}x the first (rounds {min(times):.1f}-{max(times):.1f})"
        )


if __name__ == "__main__":
    main()
