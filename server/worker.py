"""One inference thread that owns the models (and the GPU) for every client of the server.

Clients submit a frame with their settings and await the result on the asyncio loop; the
event loop never runs a model. Each turn the worker takes every pending job, groups them by
model and processing size, runs one batched model call per group, and post-processes each
job with its own settings. A client has at most one job in flight (its track asks for the
next frame only after the last one came back), so the worker's queue is bounded by the number
of clients.

When a turn takes longer than the frame budget, a governor steps the processing resolution
down; when it runs well under budget, it steps back up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from stylecast.core.errors import InputError
from stylecast.models.checkpoint import Checkpoint, Family
from stylecast.realtime.backends import create_backend
from stylecast.realtime.governor import ResolutionGovernor, smallest_cap
from stylecast.realtime.processing import StyleOptions
from stylecast.realtime.stylizer import Prepared, Stylizer, load_model

log = logging.getLogger("stylecast.server")


def serving_threads() -> int:
    """Threads for a CPU model in the server: every core but one.

    The model shares the CPU with each client's video decoder and encoder and the event loop;
    when it takes every core, its threads wait at each layer for whichever one the codecs
    preempted. Measured with benchmarks/webrtc_latency.py on 2 cores (320x240, 40-60 s runs):
    one thread delivered 85-94% of the camera's frames at p50 latency 101-118 ms,
    two threads 81-91% at 116-142 ms, although the model alone runs faster on two.
    """
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; macOS and Windows have none
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1  # affinity: what a container allows
    return max(1, cores - 1)


@dataclass
class ClientSettings:
    model: str
    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None  # the client's own cap; the governor may go lower
    style: str | None = None  # multi-style and arbitrary-style models: a style or a mix ("a:0.5,b:0.5")


@dataclass
class Job:
    frame: np.ndarray  # uint8 H x W x 3
    settings: ClientSettings
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class InferenceWorker:
    """The thread that runs every model call of the server.

    Each model is a Stylizer: the worker batches its clients' frames into one model call
    between the stylizer's own `prepare` and `finish`. `style_images` (name -> RGB picture) are
    the styles an arbitrary-style model offers; each picture's statistics are computed once,
    when the model loads.
    """

    def __init__(
        self,
        backend: str = "auto",
        device: str = "auto",
        target_fps: float = 30.0,
        adaptive: bool = True,
        style_images: dict[str, np.ndarray] | None = None,
        checkpoints: dict[str, Checkpoint] | None = None,
    ):
        self.backend_name, self.device_name = backend, device
        self.checkpoints = dict(checkpoints or {})  # name -> checkpoint, read once (the caller may have read some)
        self.governor = ResolutionGovernor(1.0 / target_fps) if adaptive else None
        self.style_images = style_images or {}
        self.models: dict[str, Stylizer] = {}
        self._jobs: list[Job] = []
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()  # one model load at a time (an export can take seconds)
        self._read_lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="stylecast-inference", daemon=True)
        self.turns = 0
        self.frames = 0
        self.last_turn_s = 0.0
        self.active = 0  # clients currently streaming (each has at most one job in flight)

    def start(self) -> InferenceWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def load(self, name: str) -> None:
        """Load a model now (on the caller's thread), so the first frame does not wait for it."""
        with self._load_lock:
            if name not in self.models:
                ckpt = self.checkpoint(name)
                pictures = None
                if ckpt.family is Family.ARBITRARY:
                    if not self.style_images:
                        raise InputError(f"{name} takes any style picture: give --style-image PAINTING.jpg")
                    pictures = [(rgb, 1.0) for rgb in self.style_images.values()]
                backend = create_backend(self.backend_name, ckpt, self.device_name)
                # alpha 1: the strength slider blends in pixels
                self.models[name] = Stylizer(
                    ckpt, backend, StyleOptions(), style_images=pictures, style_image_names=list(self.style_images)
                )

    def register(self) -> None:
        with self._cond:
            self.active += 1

    def unregister(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()

    def submit(self, frame: np.ndarray, settings: ClientSettings) -> asyncio.Future:
        """From the event loop: a future that resolves to the stylized frame."""
        loop = asyncio.get_running_loop()
        job = Job(frame, settings, loop.create_future(), loop)
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    @property
    def processing_max_size(self) -> int | None:
        return self.governor.max_size if self.governor else None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._stop)
                # Give the other streaming clients a moment to submit, so one call serves all;
                # at most a quarter of a turn (and 10 ms), which bounds the added latency.
                gather = min(0.010, 0.25 * self.last_turn_s)
                self._cond.wait_for(lambda: len(self._jobs) >= self.active or self._stop, timeout=gather)
                if self._stop:
                    jobs, self._jobs = self._jobs, []
                    for job in jobs:
                        job.loop.call_soon_threadsafe(_cancel, job.future)
                    return
                jobs, self._jobs = self._jobs, []
            started = time.perf_counter()
            processed_side = self._turn(jobs)
            self.last_turn_s = time.perf_counter() - started
            self.turns += 1
            self.frames += len(jobs)
            if self.governor is not None and processed_side:
                self.governor.observe(self.last_turn_s, processed_side)

    @torch.inference_mode()
    def _turn(self, jobs: list[Job]) -> int:
        """Runs the jobs; returns the longest side processed (0 when every job failed)."""
        groups: dict[tuple, list[tuple[Job, Prepared]]] = {}
        processed_side = 0
        for job in jobs:
            try:
                prepared = self._prepare(job)
            except Exception as exc:  # noqa: BLE001 - one client's bad request must not stop the others
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
                continue
            processed_side = max(processed_side, *prepared.crop[2:])
            groups.setdefault((job.settings.model, tuple(prepared.x.shape)), []).append((job, prepared))
        for (model, _), members in groups.items():
            stylizer = self.models[model]
            try:  # one batched call per model and size; conditions (style mixes) per sample
                conditions = [torch.cat(parts) for parts in zip(*(p.conditions for _, p in members), strict=True)]
                y = stylizer.backend(torch.cat([p.x for _, p in members]), *conditions)
                for i, (job, prepared) in enumerate(members):
                    out = stylizer.finish(prepared, y[i : i + 1])[0]
                    job.loop.call_soon_threadsafe(_resolve, job.future, out)
            except Exception as exc:  # noqa: BLE001
                for job, _ in members:
                    job.loop.call_soon_threadsafe(_fail, job.future, exc)
        return processed_side

    def _prepare(self, job: Job) -> Prepared:
        self.load(job.settings.model)
        stylizer = self.models[job.settings.model]
        # plain bicubic back to the camera size: the governor reduces the size to save time, and
        # restoring the detail costs ~7 ms a 640x480 frame on 2 cores (a quarter of the budget)
        options = StyleOptions(
            job.settings.strength,
            job.settings.preserve_color,
            smallest_cap(job.settings.max_size, self.processing_max_size),
            upsample="bicubic",
        )
        names = stylizer.style_names
        return stylizer.prepare([job.frame], options, job.settings.style or (names[0] if names else None))

    def checkpoint(self, name: str) -> Checkpoint:
        """The model's checkpoint, read from disk once: milliseconds, where building its backend
        (an ONNX export, a compilation) can take many seconds."""
        with self._read_lock:
            if name not in self.checkpoints:
                self.checkpoints[name] = load_model(name)
            return self.checkpoints[name]

    def styles(self, model: str) -> list[str]:
        """The style names a multi-style or arbitrary-style model offers (empty for single-style
        ones), from its checkpoint alone: the backend is not built for this."""
        ckpt = self.checkpoint(model)
        if ckpt.family is Family.ARBITRARY:
            return list(self.style_images)
        return list(ckpt.styles) if ckpt.family is Family.MULTISTYLE else []


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _cancel(future: asyncio.Future) -> None:
    if not future.done():
        future.cancel()
