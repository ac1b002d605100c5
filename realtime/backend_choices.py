"""The automatic backend's remembered choices (realtime/auto_backend.py), kept free of torch so
that a run can find an earlier choice of ONNX Runtime before importing torch
(realtime/onnx_frames.py).

A choice is keyed by the model, the CPU, the thread count, the library versions and the model
input's size (C x H x W); delete `backend-choices.json` in the cache folder to measure again.
"""

from __future__ import annotations

import json
from importlib import metadata

from stylecast.core.atomic import atomic_output
from stylecast.core.cache import cache_dir
from stylecast.core.machine import cpu_name

CHOICES_FILE = "backend-choices.json"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def choice_prefix(model_key: str, threads: int) -> str:
    """The key of a choice without its size: model, CPU, threads and library versions."""
    versions = ";".join(f"{p}={version(p)}" for p in ("stylecast", "torch", "onnxruntime"))
    return f"{model_key}|{cpu_name()}|threads={threads}|{versions}"


def choice_key(prefix: str, size: tuple[int, ...]) -> str:
    return f"{prefix}|{'x'.join(map(str, size))}"


def remembered_choices() -> dict[str, dict]:
    try:
        return json.loads((cache_dir() / CHOICES_FILE).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measure again


def remembered_backend(key: str) -> str | None:
    return remembered_choices().get(key, {}).get("backend")


def remember_choice(key: str, best: str, timings: dict[str, float]) -> None:
    choices = remembered_choices()  # read again: another run may have added its own
    choices[key] = {"backend": best, "ms": {n: round(ms, 2) for n, ms in timings.items()}}
    with atomic_output(cache_dir() / CHOICES_FILE) as tmp:  # a run in parallel never sees half a file
        tmp.write_text(json.dumps(choices, indent=1))
