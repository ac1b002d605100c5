"""`--backend auto` on the CPU: the fastest backend for this model and frame size, measured.

Which CPU backend wins depends on the network, the frame size and the CPU (ONNX Runtime's
fused kernels win on small inputs, torch's oneDNN convolutions can win on large ones), so on the
first input of each shape every candidate is timed on that very input and the fastest is kept.
The choice is remembered in the cache folder, keyed by the model's digest, the shape, the CPU,
the thread count and the library versions, so later runs start at once.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from models.checkpoint import Checkpoint
from realtime.atomic import atomic_output
from realtime.backends import Backend, cache_dir
from realtime.device import cpu_name

log = logging.getLogger("stylecast.backends")
TIMED_RUNS = 3  # after one warm-up run each


def median_ms(backend: Backend, x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> float:
    backend(x, *conditions)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        backend(x, *conditions)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class AutoBackend:
    """Picks, per input shape, the fastest of `candidates` (name -> constructor), measured once."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(
        self, ckpt: Checkpoint, candidates: dict[str, Callable[[], Backend]], choices_file: Path | None = None
    ):
        from export.onnx import checkpoint_digest

        self.constructors = candidates
        self.backends: dict[str, Backend] = {}
        self.chosen: dict[tuple[int, ...], Backend] = {}
        self.choices_file = choices_file or cache_dir() / "backend-choices.json"
        versions = ";".join(f"{name}={self._version(name)}" for name in sorted(candidates))
        self.key_prefix = (
            f"{ckpt.architecture}-{checkpoint_digest(ckpt)}|{cpu_name()}|threads={torch.get_num_threads()}|{versions}"
        )

    @staticmethod
    def _version(name: str) -> str:
        if name == "onnxruntime":
            import onnxruntime

            return onnxruntime.__version__
        return torch.__version__

    @property
    def name(self) -> str:
        chosen = sorted({backend.name for backend in self.chosen.values()})
        return f"auto ({', '.join(chosen)})" if chosen else "auto"

    def backend(self, name: str) -> Backend:
        if name not in self.backends:
            self.backends[name] = self.constructors[name]()
        return self.backends[name]

    def _remembered(self) -> dict[str, dict]:
        try:
            return json.loads(self.choices_file.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: measure again

    def _choose(self, x: torch.Tensor, conditions: tuple[torch.Tensor, ...]) -> Backend:
        key = f"{self.key_prefix}|{'x'.join(map(str, x.shape))}"
        remembered = self._remembered().get(key)
        if remembered and remembered.get("backend") in self.constructors:
            return self.backend(remembered["backend"])
        timings = {name: median_ms(self.backend(name), x, conditions) for name in self.constructors}
        best = min(timings, key=timings.__getitem__)
        log.info(
            "auto backend for %s: %s (%s ms per call)",
            "x".join(map(str, x.shape)),
            best,
            ", ".join(f"{n} {ms:.1f}" for n, ms in timings.items()),
        )
        choices = self._remembered()
        choices[key] = {"backend": best, "ms": {n: round(ms, 2) for n, ms in timings.items()}}
        self.choices_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.choices_file) as tmp:  # runs in parallel must never see half a file
            tmp.write_text(json.dumps(choices, indent=1))
        return self.backend(best)

    def __call__(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self.chosen:
            self.chosen[shape] = self._choose(x, conditions)
        return self.chosen[shape](x, *conditions)
