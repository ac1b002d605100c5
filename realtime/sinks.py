"""Where live frames go: a window, a video file, numbered images, or nowhere (benchmarks).

A sink's `write` returns False when the user asked to stop (closed the window, pressed q).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from stylecast.core.atomic import AtomicFile, check_output_folder
from stylecast.core.errors import InputError
from stylecast.core.images import write_rgb
from stylecast.realtime.video import VideoWriter


class Sink(Protocol):
    def write(self, rgb: np.ndarray, captured_at: float) -> bool: ...

    def close(self) -> None: ...


class NullSink:
    def __init__(self) -> None:
        self.frames = 0

    def write(self, rgb: np.ndarray, captured_at: float) -> bool:
        self.frames += 1
        return True

    def close(self) -> None:
        pass


class WindowSink:
    """An OpenCV window; q or Esc (or closing it) stops."""

    def __init__(self, title: str = "stylecast"):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise InputError(
                "this OpenCV build cannot open windows (opencv-python-headless); "
                "pip uninstall -y opencv-python-headless && pip install opencv-python, or use --output FILE"
            ) from None

    def write(self, rgb: np.ndarray, captured_at: float) -> bool:
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        return key not in (ord("q"), 27) and visible

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class LiveVideoSink:
    """Records the live output with wall-clock timestamps (millisecond time base), so a
    recording plays back at the speed it happened even when frames were dropped."""

    def __init__(self, path: str | Path, fps: float):
        self.output = AtomicFile(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.writer: VideoWriter | None = None  # opened at the first frame, which gives the size
        self.start = 0.0
        self.last_pts = -1

    def write(self, rgb: np.ndarray, captured_at: float) -> bool:
        if self.writer is None:
            h, w = rgb.shape[:2]
            self.writer = VideoWriter(self.output.tmp, w, h, self.fps, Fraction(1, 1000), None, self.output.path.suffix)
            self.start = captured_at
        pts = max(self.last_pts + 1, round((captured_at - self.start) * 1000))
        self.writer.write(rgb, pts)
        self.last_pts = pts
        return True

    def close(self) -> None:
        """End the recording and move the finished file into place."""
        try:
            if self.writer is not None:
                self.writer.close()
                self.output.commit()
        finally:
            self.output.discard()

    def abort(self) -> None:
        """Leave nothing behind (the live loop failed)."""
        try:
            if self.writer is not None:
                self.writer.container.close()
        finally:
            self.output.discard()


class ImageSequenceSink:
    """Numbered image files in a folder: frame_000000.png, ..."""

    def __init__(self, folder: str | Path, suffix: str = ".png"):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            check_output_folder(self.folder)  # the parent must exist; the folder is made here
            self.folder.mkdir()
        self.suffix = suffix
        self.count = 0

    def write(self, rgb: np.ndarray, captured_at: float) -> bool:
        write_rgb(self.folder / f"frame_{self.count:06d}{self.suffix}", rgb)
        self.count += 1
        return True

    def close(self) -> None:
        pass


VIRTUALCAM_HINT = (
    "pip install 'stylecast[virtualcam]'; on Linux also load v4l2loopback "
    "(sudo modprobe v4l2loopback devices=1 exclusive_caps=1), on Windows and macOS install OBS Studio"
)


class VirtualCameraSink:
    """Feeds a virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS on Windows and macOS)
    that Zoom, Meet or Teams can select. Opened at the first frame, which gives the size."""

    def __init__(self, fps: float, device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise InputError(f"--virtual-cam needs pyvirtualcam: {VIRTUALCAM_HINT}") from None
        self.pyvirtualcam = pyvirtualcam
        self.fps, self.device = fps, device
        self.camera: Any = None  # a pyvirtualcam.Camera once the first frame gives the size

    def write(self, rgb: np.ndarray, captured_at: float) -> bool:
        if self.camera is None:
            h, w = rgb.shape[:2]
            try:
                self.camera = self.pyvirtualcam.Camera(
                    width=w, height=h, fps=self.fps, fmt=self.pyvirtualcam.PixelFormat.RGB, device=self.device
                )
            except RuntimeError as exc:
                raise InputError(f"no virtual camera available ({exc}); {VIRTUALCAM_HINT}") from None
        self.camera.send(np.ascontiguousarray(rgb))
        return True

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
