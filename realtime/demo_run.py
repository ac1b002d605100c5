"""`stylecast demo`: make an input clip (the generated scene, or a few seconds of camera), run
it through the file pipeline, and write a side-by-side preview PNG beside the result."""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from stylecast.core.errors import InputError
from stylecast.core.images import write_rgb
from stylecast.realtime.demo import write_demo_clip
from stylecast.realtime.pipeline import process_video
from stylecast.realtime.stylizer import Stylizer
from stylecast.realtime.video import VideoReader, VideoWriter


def record_camera(path: Path, index: int, seconds: float) -> int:
    """Record `seconds` of camera `index` into `path`; returns the frame count."""
    from stylecast.realtime.sources import CameraSource

    camera = CameraSource(index)
    writer, count = None, 0
    try:
        for rgb in camera.frames():
            if writer is None:
                writer = VideoWriter(path, rgb.shape[1], rgb.shape[0], Fraction(round(camera.fps)))
            writer.write(rgb)
            count += 1
            if count >= seconds * camera.fps:
                break
    finally:
        camera.release()
        if writer is not None:
            writer.close()
    return count


def preview(input_video: Path, output_video: Path, rows: int = 3) -> np.ndarray:
    """Input | stylized for `rows` frames spread over the clip, stacked vertically."""
    pairs = []
    for path in (input_video, output_video):
        reader = VideoReader(path)
        frames = list(reader.rgb_frames())
        reader.close()
        picks = np.linspace(0, len(frames) - 1, rows).round().astype(int)
        pairs.append([frames[i] for i in picks])
    return np.concatenate([np.concatenate(row, axis=1) for row in zip(*pairs, strict=True)], axis=0)


def run_demo(
    stylizer: Stylizer,
    output: Path,
    seconds: float = 4.0,
    size: tuple[int, int] = (640, 360),
    camera: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    if output.suffix.lower() != ".mp4":
        raise InputError(f"demo output must be an .mp4 file, got {output}")
    if not 0.1 <= seconds <= 600:
        raise InputError(f"--seconds must be between 0.1 and 600, got {seconds}")
    with tempfile.TemporaryDirectory(prefix="stylecast-demo-") as tmp:
        clip = Path(tmp) / "input.mp4"
        started = time.perf_counter()
        if camera is None:
            write_demo_clip(clip, seconds, *size)
        else:
            record_camera(clip, camera, seconds)
        made = time.perf_counter() - started
        result = process_video(clip, output, stylizer, progress=progress)
        preview_path = output.with_suffix(".png")
        write_rgb(preview_path, preview(clip, output))
    return {
        "video": str(output),
        "preview": str(preview_path),
        "source": "camera" if camera is not None else "generated scene",
        "frames": result.frames,
        "size": [result.width, result.height],
        "fps": result.fps,
        "audio": result.audio,
        "input_seconds": round(made, 2),
        "stylize_seconds": round(result.seconds, 2),
        "throughput_fps": round(result.throughput, 2),
        "backend": stylizer.backend.name,
        "device": str(stylizer.backend.device),
    }
