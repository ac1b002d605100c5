"""Model-only latency and throughput per backend and dtype at 360p, 720p and 1080p on a CUDA
GPU, each configuration's largest difference from torch fp32, then end-to-end file throughput
at 1080p next to the decode-and-encode-only baseline through the same pipeline, in one run.

    python benchmarks/gpu_models.py [--models starry_night starry_night-small]
        [--sizes 640x360 1280x720 1920x1080] [--configs torch:fp32 torch:fp16 compiled:fp16 aot:fp16]
        [--repeat 50] [--file-seconds 4] [--device cuda]

Latency: one call at a time, synchronized, the median of --repeat. Throughput: --repeat calls
back to back and one synchronize at the end. Burn-in calls come first (the compiled backends
compile there, once per shape). The difference is the largest absolute difference from torch
fp32's output on the same input, as a fraction of the output range (the targets: 1e-3 for fp32,
1e-2 for fp16). `--device cpu` runs the same on the CPU, as a check of the script itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from cpu_models import OURS, benchmark_checkpoint  # this folder's CPU benchmark: the same models

from stylecast.core.device import resolve_device
from stylecast.core.machine import cpu_name
from stylecast.models.checkpoint import Checkpoint
from stylecast.realtime.backends import AOTBackend, Backend, CompiledBackend, OnnxRuntimeBackend, TorchBackend
from stylecast.realtime.processing import StyleOptions
from stylecast.realtime.stylizer import Stylizer

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BACKENDS: dict[str, Callable[[Checkpoint, torch.device, torch.dtype], Backend]] = {
    "torch": TorchBackend,
    "compiled": CompiledBackend,
    "aot": AOTBackend.for_checkpoint,
    "onnxruntime": lambda ckpt, device, dtype: OnnxRuntimeBackend.for_checkpoint(ckpt, device),  # fp32 only
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_backend(backend: Backend, x: torch.Tensor, repeat: int, burn_in: int) -> tuple[float, float]:
    """(median ms per synchronized call, ms per call when `repeat` run back to back)."""
    for _ in range(burn_in):
        backend(x)
    synchronize(x.device)
    latencies = []
    for _ in range(repeat):
        start = time.perf_counter()
        backend(x)
        synchronize(x.device)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeat):
        backend(x)
    synchronize(x.device)
    return statistics.median(latencies) * 1000, (time.perf_counter() - start) / repeat * 1000


def model_table(args: argparse.Namespace, device: torch.device) -> None:
    print("| model | size | backend | dtype | latency ms | throughput frames/s | max difference from torch fp32 |")
    print("|---|---|---|---|---|---|---|")
    for net in args.models:
        ckpt = benchmark_checkpoint(*OURS[net])
        reference_backend = TorchBackend(ckpt, device, torch.float32)
        for width, height in args.sizes:
            x = torch.rand(1, 3, height, width, device=device)
            reference = reference_backend(x).float()
            for config in args.configs:
                name, dtype_name = config.split(":")
                dtype = DTYPES[dtype_name]
                try:
                    backend = BACKENDS[name](ckpt, device, dtype)
                    latency, per_call = time_backend(backend, x.to(backend.dtype), args.repeat, args.burn_in)
                    difference = (backend(x.to(backend.dtype)).float() - reference).abs().max().item()
                except Exception as exc:  # noqa: BLE001 - report the configuration that failed, go on
                    print(
                        f"| {net} | {width}x{height} | {name} | {dtype_name} | failed: {type(exc).__name__}: {exc} | | |"
                    )
                    continue
                print(
                    f"| {net} | {width}x{height} | {name} | {dtype_name} | {latency:.2f} | {1000 / per_call:.0f} "
                    f"| {difference:.1e} |",
                    flush=True,
                )


def file_table(args: argparse.Namespace, device: torch.device) -> None:
    """End-to-end file throughput at the largest size, against decode + encode alone."""
    from stylecast.realtime.demo import write_demo_clip  # PyAV: imported here, so the model table runs without it
    from stylecast.realtime.pipeline import process_video

    width, height = args.sizes[-1]
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "demo.mp4"
        frames = write_demo_clip(clip, seconds=args.file_seconds, width=width, height=height)
        hardware = device.type == "cuda"
        io_only = process_video(clip, Path(tmp) / "copy.mp4", lambda f: f, progress=False, hardware_codecs=hardware)
        print(f"\n# {frames} frames at {width}x{height}, {io_only.decoder} -> {io_only.encoder}")
        print("| path | frames/s | vs decode + encode only |\n|---|---|---|")
        print(f"| decode + encode only (identity model) | {io_only.throughput:.1f} | 100% |")
        name, dtype_name = args.file_config.split(":")
        for net in args.models:
            ckpt = benchmark_checkpoint(*OURS[net])
            stylizer = Stylizer(ckpt, BACKENDS[name](ckpt, device, DTYPES[dtype_name]), StyleOptions())
            for batch in args.file_batches:
                stylizer([np.zeros((height, width, 3), np.uint8)] * batch)  # compiles this shape
                ours = process_video(
                    clip, Path(tmp) / "ours.mp4", stylizer, batch_size=batch, progress=False, hardware_codecs=hardware
                )
                print(
                    f"| {net}, {args.file_config}, batch {batch} | {ours.throughput:.1f} "
                    f"| {ours.throughput / io_only.throughput:.0%} |",
                    flush=True,
                )


def size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["standard", "small"], choices=sorted(OURS))
    parser.add_argument("--sizes", nargs="+", type=size, default=[(640, 360), (1280, 720), (1920, 1080)])
    parser.add_argument(
        "--configs", nargs="+", default=["torch:fp32", "torch:fp16", "torch:bf16", "compiled:fp16", "aot:fp16"]
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--burn-in", type=int, default=5)
    parser.add_argument("--file-seconds", type=float, default=4.0, help="length of the generated clip; 0: no file test")
    parser.add_argument("--file-config", default="compiled:fp16", help="backend:dtype for the file test")
    parser.add_argument("--file-batches", nargs="+", type=int, default=[1, 4], help="frames per model call")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"# {machine}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    model_table(args, device)
    if args.file_seconds > 0:
        file_table(args, device)


if __name__ == "__main__":
    main()
