"""What runs before torch is imported, or instead of it: a model name to its file, and
single-style models on ONNX Runtime with the frame arithmetic in numpy.

Importing torch takes 1.1-1.3 s on a 2-core CPU, most of a short clip's start-up, and a file
run on ONNX Runtime needs it for nothing else. `stylecast video` goes this way when ONNX Runtime
would run the model anyway and nothing else needs torch:
- the model is an .onnx file `stylecast export` wrote; or a shipped name or checkpoint whose
  export is in the cache (a run that loaded the file recorded its key: core/cache.py) with
  `--backend onnxruntime`, or `--backend auto` where an earlier run on this machine chose ONNX
  Runtime at this size (realtime/backend_choices.py);
- on the CPU (`--device auto` only where no GPU driver is loaded: which GPU torch would take,
  only torch can tell);
- a single-style net without an input transform that keeps flat frames flat itself, at the
  frame's own size (no `--max-size`, `--scale` or `--preserve-color`).
Everything else goes through realtime/stylizer.py, whose FrameProcessor does the same arithmetic
on tensors: both give the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stylecast.core.cache import file_digest, model_key_of_file, onnx_path
from stylecast.core.errors import InputError
from stylecast.core.machine import gpu_driver_loaded
from stylecast.export.contract import contract_record
from stylecast.models.contract import Family, InputContract, far_padding
from stylecast.models.zoo import SHIPPED
from stylecast.realtime.backend_choices import choice_key, choice_prefix, remembered_backend

FLAT_SAFE_NORM_EPS = 1e-4  # instance-norm epsilon from which a net keeps a flat frame flat itself


def model_file(spec: str) -> Path:
    """A shipped model name or a model file -> its path (InputError when neither exists)."""
    if spec in SHIPPED:
        path = SHIPPED[spec].path
        if not path.is_file():
            raise InputError(f"shipped model {spec!r} is missing from this installation ({path})")
        return path
    path = Path(spec)
    if not path.exists():
        raise InputError(f"unknown model {spec!r}: not a shipped model ({', '.join(SHIPPED)}) nor an existing file")
    return path


def answers_flat(family: Family, kwargs: dict[str, Any]) -> bool:
    """Whether the runtime must answer exactly flat frames for the net (Stylizer.answer_flat):
    instance norms dividing by sqrt(variance + 1e-5) turn a constant map into zeros and the
    picture black; the small nets, trained with epsilon 1e-3, keep a flat frame flat."""
    return family in (Family.JOHNSON, Family.MULTISTYLE) and kwargs.get("norm_eps", 1e-5) < FLAT_SAFE_NORM_EPS


def model_input_size(contract: InputContract, height: int, width: int) -> tuple[int, int, int]:
    """C x H x W of the model input for a frame processed at its own size: the margin on every
    side, then up to the size multiple (FrameProcessor.to_model)."""
    m, b = contract.size_multiple, contract.margin
    return 3, height + 2 * b + far_padding(height, b, m), width + 2 * b + far_padding(width, b, m)


class OnnxFrames:
    """Call with same-size uint8 RGB H x W x 3 frames; returns them stylized (FrameProcessor's
    steps in numpy around one ONNX Runtime call), blended with the frame by `strength`.
    Calls may come from several threads at once. The file's contract, family and module
    arguments come from its metadata (CheckpointError when it has none)."""

    name = "onnxruntime"
    device = "cpu"

    def __init__(self, path: Path, threads: int, strength: float = 1.0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see OnnxRuntimeBackend
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.contract, self.family, record = contract_record(metadata, path.name)
        self.module_kwargs: dict[str, Any] = record.get("kwargs", {})
        self.strength = np.float32(strength)

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        pixels = np.stack(frames)  # N x H x W x 3 uint8
        _, h, w, _ = pixels.shape
        m, b = self.contract.size_multiple, self.contract.margin
        pad_h, pad_w = far_padding(h, b, m), far_padding(w, b, m)
        reflect = min(h, w) > b + max(pad_h, pad_w)  # reflection needs more picture than padding
        padded = np.pad(pixels, ((0, 0), (b, b + pad_h), (b, b + pad_w), (0, 0)), mode="reflect" if reflect else "edge")
        x = padded.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)  # N x 3 x H' x W' in [0, 1]
        if self.contract.channel_order == "BGR":
            x = x[:, ::-1]
        lo, hi = (np.float32(v) for v in self.contract.range)
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})
        y = y[:, :, b : b + h, b : b + w].astype(np.float32, copy=False)
        if self.contract.channel_order == "BGR":
            y = y[:, ::-1]
        lo, hi = (np.float32(v) for v in self.contract.output_range)
        if (lo, hi) != (0.0, 1.0):
            y = (y - lo) / (hi - lo)
        if self.strength != 1:
            original = pixels.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
            y = original + self.strength * (y - original)
        out = np.round(np.clip(y, 0, 1) * np.float32(255)).astype(np.uint8).transpose(0, 2, 3, 1)
        return [np.ascontiguousarray(frame) for frame in out]


def onnx_without_torch(
    model: str,
    backend: str,
    device: str,
    frame_size: tuple[int, int],
    threads: int,
    strength: float = 1.0,
    reduced: bool = False,
    preserve_color: bool = False,
) -> OnnxFrames | None:
    """The torch-free ONNX Runtime stylizer for frames of `frame_size` (H, W), each call on
    `threads` threads, where the module's rules allow it; None: go through torch. `reduced`:
    frames are processed smaller than they are (--max-size, --scale)."""
    if backend not in ("auto", "onnxruntime") or reduced or preserve_color:
        return None
    if device != "cpu" and not (device == "auto" and not gpu_driver_loaded()):
        return None
    try:
        path = model_file(model)
    except InputError:
        return None  # the torch path says what is wrong, as for every other model
    key = None
    if path.suffix.lower() == ".onnx":
        onnx = path
    elif path.suffix.lower() == ".pt" and path.is_file():
        key = model_key_of_file(file_digest(path))
        if key is None or not onnx_path(key).is_file():
            return None
        onnx = onnx_path(key)
    else:
        return None
    try:
        frames = OnnxFrames(onnx, threads, strength)
    except Exception:  # noqa: BLE001 - a file ONNX Runtime cannot read: the torch path says why
        return None
    contract = frames.contract
    if frames.family is not Family.JOHNSON or contract.transform or answers_flat(frames.family, frames.module_kwargs):
        return None
    if key is not None and backend == "auto":  # only where an earlier run measured ONNX Runtime the faster here
        size = model_input_size(contract, *frame_size)
        if remembered_backend(choice_key(choice_prefix(key, threads), size)) != "onnxruntime":
            return None
    return frames
