"""Stylecast: live neural style transfer. The Python API, in a few lines:

    from stylecast import Stylizer, process_video, read_rgb, write_rgb

    stylizer = Stylizer.create("starry_night-small")  # a shipped model's name or a checkpoint path
    write_rgb("out.png", stylizer.one(read_rgb("photo.jpg")))  # uint8 RGB H x W x 3 in and out
    process_video("in.mp4", "out.mp4", stylizer)  # every frame, in order, with its timing and audio

Everything else lives in the layers below, each importing only those under it: stylecast.models
(networks, checkpoints, the shipped zoo) -> stylecast.training and stylecast.export ->
stylecast.realtime (backends, the file pipeline and the live loop) -> stylecast.server.
The names here are imported on first use, so `import stylecast` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stylecast.models.zoo import DEFAULT_MODEL, SHIPPED
    from stylecast.realtime.images import read_rgb, write_rgb
    from stylecast.realtime.pipeline import process_video
    from stylecast.realtime.stylizer import Stylizer, load_model

__version__ = "0.1.0"
_EXPORTS = {
    "Stylizer": "stylecast.realtime.stylizer",
    "load_model": "stylecast.realtime.stylizer",
    "process_video": "stylecast.realtime.pipeline",
    "read_rgb": "stylecast.realtime.images",
    "write_rgb": "stylecast.realtime.images",
    "SHIPPED": "stylecast.models.zoo",
    "DEFAULT_MODEL": "stylecast.models.zoo",
}
__all__ = ["DEFAULT_MODEL", "SHIPPED", "Stylizer", "load_model", "process_video", "read_rgb", "write_rgb"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stylecast' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
