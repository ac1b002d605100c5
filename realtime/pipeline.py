"""The file pipeline: decode -> stylize -> encode on threads joined by bounded queues.

Nothing is dropped and nothing is reordered: each queue is FIFO, decoding and encoding have one
thread each, and audio packets travel through the same queues as the frames around them, so the
output keeps the input's interleaving, timestamps and audio. Stylizing may run on several
workers (`workers`): each batch is handed to one and its pending result queued in order, and
the encoder waits for each in turn. PyAV, torch and ONNX Runtime release the GIL while they
decode, run and encode, so the stages overlap.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as ResultNotReady  # the builtin's alias from 3.11 only
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from tqdm import tqdm

from stylecast.core.atomic import atomic_output
from stylecast.core.errors import InputError
from stylecast.realtime.video import Frame, VideoReader, VideoWriter

_END = object()  # end-of-stream marker travelling through the queues


@dataclass
class VideoResult:
    input: str
    output: str
    frames: int
    width: int
    height: int
    fps: float  # frame rate of the file
    audio: bool
    decode_errors: int
    seconds: float
    decoder: str  # e.g. "h264", or "h264 (cuda)" for NVDEC
    encoder: str  # e.g. "libx264" or "h264_nvenc"
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds per stage

    @property
    def throughput(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class _Stop(Exception):
    """Raised inside a stage when another stage failed."""


class _Stages:
    """Threads connected by bounded queues; the first exception in any stage stops them all."""

    def __init__(self, depth: int):
        self.depth = depth
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []
        self.busy: dict[str, float] = {}

    def new_queue(self) -> queue.Queue:
        return queue.Queue(maxsize=self.depth)

    def put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self.failed.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue) -> Any:
        while True:
            if self.failed.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def drain(self, q: queue.Queue) -> Iterator[Any]:
        while (item := self.get(q)) is not _END:
            yield item

    def start(self, name: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except _Stop:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in join()
                if self.error is None:
                    self.error = exc
                self.failed.set()

        thread = threading.Thread(target=run, name=f"stylecast-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        """Wait for every stage; on Ctrl-C or SIGTERM in the waiting thread, stop them all and let
        them finish their current item (PyAV and torch abort the process if it exits under them)."""
        try:
            for thread in self.threads:
                thread.join()
        except BaseException:
            self.failed.set()
            for thread in self.threads:
                thread.join()
            raise
        if self.error is not None:
            raise self.error

    def timed(self, name: str, items: Iterable[Any]) -> Iterator[Any]:
        """Iterate `items`, adding the time spent producing them to busy[name]."""
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.busy[name] = self.busy.get(name, 0.0) + time.perf_counter() - start
            yield item


StylizeFn = Callable[[list[Any]], list[Any]]


def default_workers(device_type: str, threads: int) -> int:
    """Model calls at once for a file: on a CPU with two threads or more, two, each on half of
    them: one call's single-threaded stretches and its pre- and post-processing leave cores idle
    that the other call fills (2-core AMD EPYC, ONNX Runtime, default net at 640x360: 31 ms a frame
    with one call on two threads, 25 ms with two calls on one thread each). On a GPU one: its own
    queue overlaps."""
    return 2 if device_type == "cpu" and threads >= 2 else 1


def process_video(
    source: str | Path,
    output: str | Path,
    stylize: StylizeFn,
    batch_size: int = 1,
    progress: bool = True,
    queue_depth: int = 8,
    hardware_codecs: bool = False,
    workers: int = 1,
) -> VideoResult:
    """Stylize every frame of `source` into `output` (written atomically), keeping the audio.

    `stylize` maps a list of same-size uint8 RGB frames to stylized frames; with `workers` > 1 it
    is called from that many threads at once. `hardware_codecs`: decode with NVDEC and encode
    with NVENC where they can be had (the CPU codecs otherwise).
    """
    started = time.perf_counter()
    reader = VideoReader(source, hardware=hardware_codecs)
    stages = _Stages(queue_depth)
    decoded, stylized = stages.new_queue(), stages.new_queue()
    frames_done = 0

    def decode() -> None:
        for item in stages.timed("decode", reader.items()):
            stages.put(decoded, item)
        stages.put(decoded, _END)

    busy_lock = threading.Lock()

    def stylize_timed(frames: list[Frame]) -> list[Frame]:
        t = time.perf_counter()
        images = stylize([f.rgb for f in frames])
        with busy_lock:  # summed over the workers
            stages.busy["stylize"] = stages.busy.get("stylize", 0.0) + time.perf_counter() - t
        return [Frame(image, f.pts, f.time_base, f.index) for f, image in zip(frames, images, strict=True)]

    def infer() -> None:
        pending: list[Frame] = []

        def flush() -> None:
            if pending:  # the batch's result, pending: the encoder waits for it in its turn
                stages.put(stylized, pool.submit(stylize_timed, list(pending)))
                pending.clear()

        for item in stages.drain(decoded):
            if isinstance(item, Frame):
                if pending and item.rgb.shape != pending[0].rgb.shape:
                    flush()
                pending.append(item)
                if len(pending) >= batch_size:
                    flush()
            else:  # audio: everything before it goes out first, so the order is kept
                flush()
                stages.put(stylized, item)
        flush()
        stages.put(stylized, _END)

    with atomic_output(output) as tmp:
        writer = VideoWriter(
            tmp,
            reader.width,
            reader.height,
            reader.rate,
            reader.time_base,
            reader.audio,
            Path(output).suffix,
            hardware=hardware_codecs,
        )
        bar = tqdm(total=reader.frame_count, disable=None if progress else True, unit="frame", desc=Path(source).name)

        def encode() -> None:
            nonlocal frames_done
            for item in stages.drain(stylized):
                if isinstance(item, Future):
                    frames = wait_for(item)
                    t = time.perf_counter()
                    for frame in frames:
                        writer.write(frame.rgb, frame.pts)
                    frames_done += len(frames)
                    bar.update(len(frames))
                else:
                    t = time.perf_counter()
                    writer.write_audio(item)
                stages.busy["encode"] = stages.busy.get("encode", 0.0) + time.perf_counter() - t
            writer.close()

        def wait_for(result: Future) -> list[Frame]:
            while True:
                if stages.failed.is_set():
                    raise _Stop
                try:
                    return result.result(timeout=0.1)
                except ResultNotReady:
                    continue

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stylecast-stylize")
        stages.start("decode", decode)
        stages.start("stylize", infer)
        stages.start("encode", encode)
        try:
            stages.join()
        except av.error.FFmpegError as exc:
            raise InputError(f"video processing failed: {exc}") from None
        except BaseException:  # interrupted: the stages have stopped; close what the encoder left open
            writer.abort()
            raise
        finally:
            pool.shutdown(cancel_futures=True)  # after the stages: no batch is still being handed in
            bar.close()
            reader.close()
        if frames_done == 0:
            raise InputError(f"{source}: no frame could be decoded")

    return VideoResult(
        input=str(source),
        output=str(output),
        frames=frames_done,
        width=reader.width,
        height=reader.height,
        fps=float(reader.rate),
        audio=reader.audio is not None,
        decode_errors=reader.decode_errors,
        seconds=time.perf_counter() - started,
        decoder=reader.decoder,
        encoder=writer.encoder,
        stages=dict(stages.busy),
    )
