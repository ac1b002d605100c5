"""Live frame sources: a camera, a video file played in real time, the demo scene, a still image.

Each runs on its own thread and hands frames to a `LatestFrame` slot: the newest frame wins,
an unconsumed older frame is dropped and counted, so a slow consumer never builds a queue.
Only the source knows about BGR, device quirks, pacing and the end of the stream.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stylecast.core.errors import InputError
from stylecast.core.images import IMAGE_SUFFIXES, read_rgb
from stylecast.realtime.demo import DemoScene
from stylecast.realtime.video import VideoReader


@dataclass
class LiveFrame:
    rgb: np.ndarray  # uint8 H x W x 3
    index: int  # position in the source's own sequence (gaps = dropped frames)
    captured_at: float  # time.perf_counter() when the frame was taken


class LatestFrame:
    """A one-frame mailbox. put() replaces an unconsumed frame (counted in `dropped`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: LiveFrame | None = None
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    def put(self, frame: LiveFrame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def take(self, timeout: float | None = None) -> LiveFrame | None:
        """The newest frame, waiting for one; None when closed (and empty) or on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.delivered += 1
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class LiveSource:
    """Base: a thread that puts frames from `frames()` into `slot` until stopped or exhausted."""

    name = "source"
    fps: float = 30.0

    def __init__(self) -> None:
        self.slot = LatestFrame()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def start(self) -> LiveSource:
        self._thread = threading.Thread(target=self._run, name=f"stylecast-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for index, rgb in enumerate(self.frames()):
                if self._stop.is_set():
                    break
                self.slot.put(LiveFrame(rgb, index, time.perf_counter()))
        except BaseException as exc:  # noqa: BLE001 - reported by the loop that reads the slot
            self.error = exc
        finally:
            self.slot.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release()

    def release(self) -> None:
        """Free the device or file (called once the thread has stopped)."""

    def paced(self, frames: Iterator[np.ndarray], fps: float) -> Iterator[np.ndarray]:
        """Emit at `fps` in real time, like a camera would."""
        period, next_at = 1.0 / fps, time.perf_counter()
        for rgb in frames:
            delay = next_at - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                return
            next_at += period
            yield rgb


class CameraSource(LiveSource):
    """An OpenCV camera with the smallest driver buffer, so frames are fresh."""

    name = "camera"

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None):
        super().__init__()
        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            raise InputError(f"no camera at index {index} (is one connected, and free?)")
        self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if width and height:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0

    def frames(self) -> Iterator[np.ndarray]:
        failures = 0
        while not self._stop.is_set():
            ok, bgr = self.capture.read()
            if not ok:
                failures += 1
                if failures > 30:
                    raise InputError("the camera stopped delivering frames")
                time.sleep(0.01)
                continue
            failures = 0
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def release(self) -> None:
        self.capture.release()


class VideoFileSource(LiveSource):
    """A video file played at its own frame rate, as if it were a camera."""

    name = "file"

    def __init__(self, path: str | Path, loop: bool = False):
        super().__init__()
        self.path, self.loop = Path(path), loop
        probe = VideoReader(self.path)  # fails now, with a clear message, on a bad file
        self.fps = float(probe.rate)
        probe.close()

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            reader = VideoReader(self.path)
            try:
                yield from self.paced(reader.rgb_frames(), self.fps)
            finally:
                reader.close()
            if not self.loop or self._stop.is_set():
                return


class DemoSource(LiveSource):
    name = "demo"

    def __init__(self, width: int = 640, height: int = 360, fps: float = 30.0, seconds: float | None = None):
        super().__init__()
        self.scene = DemoScene(width, height, int(fps))
        self.fps = fps
        self.count = int(seconds * fps) if seconds else None

    def frames(self) -> Iterator[np.ndarray]:
        indices = itertools.count() if self.count is None else range(self.count)
        yield from self.paced((self.scene.frame(i) for i in indices), self.fps)


class StillSource(LiveSource):
    """One image repeated at `fps` (useful to try styles live without a camera)."""

    name = "image"

    def __init__(self, path: str | Path, fps: float = 30.0):
        super().__init__()
        self.image = read_rgb(path)
        self.fps = fps

    def frames(self) -> Iterator[np.ndarray]:
        yield from self.paced(itertools.repeat(self.image), self.fps)


def open_source(spec: str) -> LiveSource:
    """'demo', a camera index ('0'), an image file or a video file."""
    if spec == "demo":
        return DemoSource()
    if spec.isdigit():
        return CameraSource(int(spec))
    path = Path(spec)
    if not path.exists():
        raise InputError(f"source {spec!r} is not 'demo', a camera index or an existing file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return StillSource(path)
    return VideoFileSource(path)
