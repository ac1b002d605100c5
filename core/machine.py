"""What the machine is, read without torch: for per-machine caches, reports and the torch-free path."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name, for benchmark reports and per-machine caches."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_threads() -> int:
    """The threads torch's intra-op pool starts with: $OMP_NUM_THREADS, else the CPUs this
    process may run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_driver_loaded() -> bool:
    """An NVIDIA or AMD GPU driver is loaded: `--device auto` may then choose CUDA, which only
    torch can tell."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists()
