"""Whole frames per model on this CPU, two or more models (shipped names or checkpoint paths)
timed in interleaved rounds, so a change in the machine's load falls on all of them alike:

    python benchmarks/model_vs_model.py starry_night-small previous.pt [--size 640x360] [--rounds 15]

The question it answers: is a retrained model as fast as the one it replaces (the same network
with another margin, say)? Each round times every model on the same ten DemoScene frames, uint8
in and uint8 out through the runtime's whole path (pad, margin, network, crop, clamp). Printed
per model: the median over rounds of the time per frame, and its ratio to the first model's.
Run it twice with the order swapped: the two ratios bound the noise. Arbitrary-style models paint
--style-image (e.g. two arbitrary models of different depths side by side).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stylecast.core.images import read_rgb
from stylecast.core.machine import cpu_name
from stylecast.models.checkpoint import Family
from stylecast.realtime.demo import DemoScene
from stylecast.realtime.stylizer import Stylizer, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped model names or checkpoint paths; ratios to the first")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--style-image", help="the picture arbitrary-style models paint (needed for them)")
    args = parser.parse_args()

    w, h = (int(v) for v in args.size.split("x"))
    frames = [DemoScene(w, h).frame(i) for i in range(10)]
    pictures = [(read_rgb(args.style_image), 1.0)] if args.style_image else None

    def stylizer(name: str) -> Stylizer:
        ckpt = load_model(name)  # read once: its family says whether it takes the picture
        arbitrary = ckpt.family is Family.ARBITRARY
        if arbitrary and not pictures:
            parser.error(f"{name} is an arbitrary-style model: give --style-image")
        return Stylizer.create(ckpt, args.backend, "cpu", style_images=pictures if arbitrary else None)

    stylizers = {name: stylizer(name) for name in args.models}
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
