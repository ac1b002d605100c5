"""`--backend auto` on the CPU: per frame size, the faster of torch and ONNX Runtime on this CPU,
measured on the frames themselves without holding any of them up.

Which CPU backend wins depends on the network, the frame size and the CPU (ONNX Runtime's fused
kernels win on small inputs, torch's oneDNN convolutions can win on large ones). Frames run on
torch, which is ready at once, from the first; ONNX Runtime is prepared in a background thread
(the model exported once into the cache, then a session), so a first run never waits for an
export. Once it is ready, a size not measured before alternates the two on its own frames,
TRIALS timed calls each after one warm-up, and keeps the faster by median (the later candidate
must win by MARGIN). Alternating measures both under the same load, so the choice holds on a
busy CPU. It is remembered in the cache folder (realtime/backend_choices.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stylecast.export.onnx import model_key, onnx_cache_path
from stylecast.models.checkpoint import Checkpoint, save_checkpoint
from stylecast.realtime.backend_choices import choice_key, choice_prefix, remember_choice, remembered_backend
from stylecast.realtime.backends import Backend, OnnxRuntimeBackend

log = logging.getLogger("stylecast.backends")
TRIALS = 6  # timed calls per candidate and size, after one warm-up call each
MARGIN = 0.10  # the later candidate must be this much faster to win: timings on a busy CPU wobble


def timed_call(backend: Backend, x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, float]:
    """The backend's output and the milliseconds the call took."""
    start = time.perf_counter()
    y = backend(x, *conditions)
    return y, (time.perf_counter() - start) * 1000


_exporting: set[subprocess.Popen] = set()  # export processes, ended if this process ends first
_preparing: set[threading.Thread] = set()
_exiting = threading.Event()


@atexit.register
def _end_preparations() -> None:
    """At exit: end the export processes, then let the threads waiting on them finish, so none
    runs while the interpreter shuts down."""
    _exiting.set()
    for process in list(_exporting):
        process.kill()
    for thread in list(_preparing):
        thread.join(timeout=5)


def onnxruntime_exported_aside(ckpt: Checkpoint, device: torch.device, threads: int) -> OnnxRuntimeBackend:
    """ONNX Runtime for `ckpt` on `threads` threads, its export (when not cached) run in a process
    of its own on one thread: it holds neither this interpreter's lock nor more than a core while
    frames run."""
    path = onnx_cache_path(ckpt)
    if not path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "model.pt"
            save_checkpoint(ckpt, saved)
            process = subprocess.Popen(
                [sys.executable, "-m", "stylecast.export.onnx", str(saved)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                start_new_session=True,  # not sent Ctrl-C: this process ends it (above)
            )
            _exporting.add(process)
            try:
                _, err = process.communicate()
            finally:
                _exporting.discard(process)
        if process.returncode != 0 or not path.is_file():
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
            raise RuntimeError(f"the ONNX export failed: {last[0]}")
    return OnnxRuntimeBackend(path, device, threads)


class AutoBackend:
    """Runs `now` (ready at once) until `later`'s backends (name -> factory, run in a background
    thread once `start_after` frames have run) are ready, then picks per frame size between them
    by timing real calls. Calls may come from several threads (the file pipeline's workers): until
    a size's choice is made they take turns, so each trial is timed alone; then they run at once."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(
        self,
        ckpt: Checkpoint,
        now: Backend,
        later: dict[str, Callable[[], Backend]],
        start_after: int = 0,
    ):
        self.now = now
        self.order = [*later, now.name]  # within MARGIN, the first wins
        self.ready: dict[str, Backend] = {now.name: now}  # filled in by the background thread
        self.pending = set(later)
        self.chosen: dict[tuple[int, ...], Backend] = {}  # C x H x W -> backend
        self.remembered: dict[tuple[int, ...], str | None] = {}  # C x H x W -> an earlier run's choice
        self.trials: dict[tuple[int, ...], dict[str, list[float]]] = {}  # C x H x W -> name -> ms (first: warm-up)
        self.key_prefix = choice_prefix(model_key(ckpt), torch.get_num_threads())
        self.preparing = threading.Thread(
            target=self._prepare, args=(later,), name="stylecast-auto-backend", daemon=True
        )
        self.frames_before_preparing = start_after
        self.deciding = threading.Lock()
        if start_after <= 0:
            self.preparing.start()

    def _prepare(self, later: dict[str, Callable[[], Backend]]) -> None:
        _preparing.add(threading.current_thread())
        try:
            for name, build in later.items():
                try:
                    self.ready[name] = build()
                except Exception as exc:  # noqa: BLE001 - a candidate that cannot be built is left out, not fatal
                    if not _exiting.is_set():
                        log.info("auto backend: %s is unavailable (%s: %s)", name, type(exc).__name__, exc)
                finally:
                    self.pending.discard(name)
        finally:
            _preparing.discard(threading.current_thread())

    @property
    def name(self) -> str:
        """What ran: the chosen backend ('auto' before any choice; several joined by '+')."""
        return "+".join(sorted({backend.name for backend in self.chosen.values()})) or "auto"

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[1:])
        if size in self.chosen:
            return self.chosen[size](x, *conditions)
        with self.deciding:
            return self._decide(size, x, conditions)

    def _decide(self, size: tuple[int, ...], x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if size in self.chosen:  # chosen while this call waited its turn
            return self.chosen[size](x, *conditions)
        key = choice_key(self.key_prefix, size)
        if size not in self.remembered:  # the file is read once per size, not on every frame
            self.remembered[size] = remembered_backend(key)
        remembered = self.remembered[size]
        if remembered in self.ready:
            self.chosen[size] = self.ready[remembered]
            return self.chosen[size](x, *conditions)
        if self.pending:  # not prepared yet: the frame does not wait
            self.frames_before_preparing -= len(x)
            if self.frames_before_preparing <= 0 and self.preparing.ident is None:
                self.preparing.start()
            if not self.preparing.is_alive():
                return self.now(x, *conditions)
            # beside the preparation (an export process), one thread: on a 2-core CPU torch's two
            # threads wait on each other at every layer while a third busy process holds a core
            # (the_scream-small at 224x400: 18 ms alone, 1.3 s per call then, 30 ms on one thread)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.now(x, *conditions)
            finally:
                torch.set_num_threads(threads)
        if len(self.ready) == 1:  # nothing else could be built
            self.chosen[size] = self.now
            return self.now(x, *conditions)
        trials = self.trials.setdefault(size, {name: [] for name in self.order if name in self.ready})
        name = min(trials, key=lambda n: len(trials[n]))  # alternate: the least timed next
        y, ms = timed_call(self.ready[name], x, conditions)
        trials[name].append(ms)
        if all(len(times) > TRIALS for times in trials.values()):
            timings = {n: statistics.median(times[1:]) for n, times in trials.items()}
            best = next(iter(timings))
            for candidate, candidate_ms in timings.items():
                if candidate_ms < (1 - MARGIN) * timings[best]:
                    best = candidate
            log.info(
                "auto backend at %s: %s (%s ms per call)",
                "x".join(map(str, size)),
                best,
                ", ".join(f"{n} {t:.1f}" for n, t in timings.items()),
            )
            remember_choice(key, best, timings)
            self.chosen[size] = self.ready[best]
        return y
