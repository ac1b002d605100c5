"""Where exported models, engines and backend measurements are kept between runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from stylecast.core.atomic import atomic_output


def cache_dir() -> Path:
    """$STYLECAST_CACHE, else $XDG_CACHE_HOME/stylecast (~/.cache/stylecast); made if missing."""
    root = os.environ.get("STYLECAST_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "stylecast")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def onnx_path(model_key: str) -> Path:
    """Where the ONNX export of a model is kept; `model_key` is its architecture and digest
    (export.onnx.model_key)."""
    return cache_dir() / "onnx" / f"{model_key}.onnx"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


FILE_KEYS = "checkpoint-files.json"  # checkpoint file digest -> model key


def _file_keys() -> dict[str, str]:
    try:
        return json.loads((cache_dir() / FILE_KEYS).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: keys are computed again


def model_key_of_file(digest: str) -> str | None:
    """The model key a run that loaded the checkpoint file of this digest computed (the key
    hashes the weights, so torch; this lookup does not)."""
    return _file_keys().get(digest)


def remember_model_key(digest: str, model_key: str) -> None:
    keys = _file_keys()  # read again: another run may have added its own
    keys[digest] = model_key
    with atomic_output(cache_dir() / FILE_KEYS) as tmp:  # a run in parallel never sees half a file
        tmp.write_text(json.dumps(keys, indent=1))
