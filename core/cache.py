"""Where exported models, engines and backend measurements are kept between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$STYLECAST_CACHE, else $XDG_CACHE_HOME/stylecast (~/.cache/stylecast); made if missing."""
    root = os.environ.get("STYLECAST_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "stylecast")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
