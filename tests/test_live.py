"""The live loop: newest frame wins, stale frames are dropped and counted, latency is bounded."""

import threading
import time
import tracemalloc

import av
import numpy as np
import pytest

from stylecast.realtime import live
from stylecast.realtime.live import run_live
from stylecast.realtime.sinks import LiveVideoSink, NullSink
from stylecast.realtime.sources import DemoSource, LatestFrame, LiveFrame, LiveSource


def test_latest_frame_keeps_only_the_newest():
    slot = LatestFrame()
    for i in range(5):
        slot.put(LiveFrame(np.zeros((2, 2, 3), np.uint8), i, time.perf_counter()))
    frame = slot.take(timeout=0)
    assert frame.index == 4 and slot.dropped == 4 and slot.delivered == 1
    assert slot.take(timeout=0.01) is None  # nothing new
    slot.close()
    assert slot.take(timeout=1) is None and slot.closed


def test_take_waits_for_the_producer():
    slot = LatestFrame()
    threading.Timer(0.05, lambda: slot.put(LiveFrame(np.zeros((1, 1, 3), np.uint8), 7, time.perf_counter()))).start()
    started = time.perf_counter()
    frame = slot.take(timeout=2)
    assert frame.index == 7 and 0.03 < time.perf_counter() - started < 1.5


class FastCamera(LiveSource):
    """A 100 fps source of 64x48 frames, each stamped with its index in pixel (0, 0)."""

    name = "fake-camera"

    def __init__(self, fps=100.0, count=None):
        super().__init__()
        self.fps, self.count = fps, count

    def frames(self):
        def generate():
            i = 0
            while self.count is None or i < self.count:
                frame = np.zeros((48, 64, 3), np.uint8)
                frame[0, 0] = i % 256
                yield frame
                i += 1

        yield from self.paced(generate(), self.fps)


def test_slow_model_drops_frames_and_latency_stays_bounded():
    """A 40 ms model behind a 100 fps camera: ~3 of 4 frames must be dropped, not queued."""

    def slow_model(rgb):
        time.sleep(0.04)
        return rgb

    tracemalloc.start()
    stats = run_live(FastCamera(), slow_model, [NullSink()], seconds=1.5, overlay=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 15 <= stats.frames <= 40
    assert stats.dropped >= 2 * stats.frames  # produced ~150, shown ~35
    # a frame waits at most one model run (40 ms) plus its own run (40 ms)
    assert stats.latency_ms_p95 < 120 and stats.latency_ms_max < 250
    assert peak < 20e6  # nothing accumulates


def test_fast_model_drops_nothing():
    stats = run_live(FastCamera(fps=50, count=25), lambda rgb: rgb, [NullSink()], seconds=5, overlay=False)
    assert stats.frames == 25 and stats.dropped == 0


class SilentCamera(LiveSource):
    """Opens, then never delivers a frame (a camera another program holds, say)."""

    def frames(self):
        self._stop.wait()
        yield from ()


def test_seconds_bounds_a_source_that_never_delivers(monkeypatch):
    monkeypatch.setattr(live, "WARM_UP_S", 0.5)
    started = time.perf_counter()
    stats = run_live(SilentCamera(), lambda rgb: rgb, [NullSink()], seconds=0.5, overlay=False)
    assert stats.frames == 0 and time.perf_counter() - started < 5


def test_demo_source_records_a_playable_file(tmp_path):
    sink = LiveVideoSink(tmp_path / "live.mp4", fps=30)
    stats = run_live(DemoSource(width=96, height=64, fps=30, seconds=0.5), lambda rgb: rgb, [sink], overlay=True)
    sink.close()
    with av.open(str(tmp_path / "live.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == stats.frames >= 10
    times = [f.time for f in frames]
    assert times == sorted(times) and 0.3 < times[-1] < 0.7  # wall-clock timing of the session
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4"]


def test_aborted_recording_leaves_nothing(tmp_path):
    sink = LiveVideoSink(tmp_path / "live.mp4", fps=30)
    sink.write(np.zeros((16, 16, 3), np.uint8), time.perf_counter())
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_virtual_camera_without_pyvirtualcam_says_how_to_install(monkeypatch):
    import sys

    from stylecast.core.errors import InputError
    from stylecast.realtime.sinks import VirtualCameraSink

    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # as if it were not installed
    with pytest.raises(InputError, match=r"stylecast\[virtualcam\].*v4l2loopback"):
        VirtualCameraSink(fps=30)


def test_virtual_camera_sink_sends_rgb_frames_of_the_stream_size(monkeypatch):
    """pyvirtualcam's API as the sink uses it; a real device needs v4l2loopback (not here)."""
    import sys
    import types

    from stylecast.core.errors import InputError
    from stylecast.realtime.sinks import VirtualCameraSink

    sent, opened = [], []

    class Camera:
        def __init__(self, width, height, fps, fmt, device):
            if device == "/dev/none":
                raise RuntimeError("'/dev/none' is not a video loopback device")
            opened.append((width, height, fps, fmt))

        def send(self, frame):
            sent.append(frame.shape)

        def close(self):
            opened.append("closed")

    fake = types.SimpleNamespace(Camera=Camera, PixelFormat=types.SimpleNamespace(RGB="RGB"))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    sink = VirtualCameraSink(fps=25)
    stats = run_live(DemoSource(width=96, height=64, fps=25, seconds=0.4), lambda rgb: rgb, [sink], overlay=False)
    sink.close()
    assert opened[0] == (96, 64, 25, "RGB") and opened[-1] == "closed"
    assert len(sent) == stats.frames > 3 and set(sent) == {(64, 96, 3)}
    broken = VirtualCameraSink(fps=25, device="/dev/none")
    with pytest.raises(InputError, match="no virtual camera available"):
        broken.write(np.zeros((8, 8, 3), np.uint8), 0.0)
