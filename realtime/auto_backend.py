"""`--backend auto` on the CPU: the fastest backend for this model and frame size, measured.

Which CPU backend wins depends on the network, the frame size and the CPU (ONNX Runtime's
fused kernels win on small inputs, torch's oneDNN convolutions can win on large ones), so on the
first input of each frame size every candidate is timed on that very input and the fastest is
kept, for any batch size. The choice is remembered in the cache folder, keyed by the model's
digest, the frame size, the CPU, the thread count and the library versions, so later runs start
at once; delete `backend-choices.json` there to measure again.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from importlib import metadata
from pathlib import Path

import torch

from stylecast.core.atomic import atomic_output
from stylecast.core.cache import cache_dir
from stylecast.core.device import cpu_name
from stylecast.models.checkpoint import Checkpoint
from stylecast.realtime.backends import Backend

log = logging.getLogger("stylecast.backends")
TIMED_RUNS = 3  # after one warm-up run each
MARGIN = 0.10  # a later candidate must be this much faster to win: timings on a busy CPU wobble


def median_ms(backend: Backend, x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> float:
    backend(x, *conditions)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        backend(x, *conditions)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


class AutoBackend:
    """Picks, per frame size, the fastest of `candidates` (name -> backend, the preferred first)."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, ckpt: Checkpoint, candidates: dict[str, Backend], choices_file: Path | None = None):
        from stylecast.export.onnx import checkpoint_digest

        self.candidates = candidates
        self.chosen: dict[tuple[int, ...], Backend] = {}  # C x H x W -> backend
        self.choices_file = choices_file or cache_dir() / "backend-choices.json"
        versions = ";".join(f"{p}={version(p)}" for p in ("stylecast", "torch", "onnxruntime"))
        self.key_prefix = (
            f"{ckpt.architecture}-{checkpoint_digest(ckpt)}|{cpu_name()}|threads={torch.get_num_threads()}|{versions}"
        )

    @property
    def name(self) -> str:
        """What ran: the chosen backend ('auto' before the first frame; several joined by '+')."""
        return "+".join(sorted({backend.name for backend in self.chosen.values()})) or "auto"

    def _remembered(self) -> dict[str, dict]:
        try:
            return json.loads(self.choices_file.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: measure again

    def _choose(self, x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> Backend:
        size = "x".join(map(str, x.shape[1:]))
        key = f"{self.key_prefix}|{size}"
        remembered = self._remembered().get(key)
        if remembered and remembered.get("backend") in self.candidates:
            return self.candidates[remembered["backend"]]
        timings = {name: median_ms(backend, x, conditions) for name, backend in self.candidates.items()}
        best = next(iter(timings))
        for name, ms in timings.items():
            if ms < (1 - MARGIN) * timings[best]:
                best = name
        log.info(
            "auto backend at %s: %s (%s ms per call)",
            size,
            best,
            ", ".join(f"{n} {ms:.1f}" for n, ms in timings.items()),
        )
        choices = self._remembered()  # read again: another run may have added its own
        choices[key] = {"backend": best, "ms": {n: round(ms, 2) for n, ms in timings.items()}}
        self.choices_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.choices_file) as tmp:  # a run in parallel never sees half a file
            tmp.write_text(json.dumps(choices, indent=1))
        return self.candidates[best]

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[1:])
        if size not in self.chosen:
            self.chosen[size] = self._choose(x, conditions)
        return self.chosen[size](x, *conditions)
