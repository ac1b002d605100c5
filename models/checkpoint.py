"""The checkpoint format every stylecast model is saved in.

A checkpoint is a plain dict of tensors, strings, numbers and lists, so it loads with
`torch.load(..., weights_only=True)` and never unpickles a class. It carries what is needed to
rebuild the module and to feed it:

    {
      "format": "stylecast", "version": 1,
      "architecture": "johnson",            # key of models.ARCHITECTURES
      "kwargs": {...},                      # constructor arguments
      "state_dict": {...},
      "input": {"range": [0.0, 1.0], "channel_order": "RGB", "size_multiple": 4,
                "margin": 0,                # pixels of reflected border added around each side
                "transform": None},         # or "edges" / "grayscale": computed from the frame first
      "output": {"range": [0.0, 1.0]},
      "family": "johnson",                  # how the runtime drives it (stylizer, multi-style, ...)
      "styles": ["starry_night"],
      "training": {...},                    # the training config, for the record
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylecast.core.atomic import atomic_torch_save
from stylecast.models.contract import CheckpointError, Family, InputContract
from stylecast.models.layers import fuses_output
from stylecast.models.multistyle import MultiStyleSmallNet
from stylecast.models.registry import ARCHITECTURES
from stylecast.models.small import SmallTransformerNet

# the small nets, whose output layer build_for_inference computes at half resolution
FUSED_OUTPUT_NETS = (SmallTransformerNet, MultiStyleSmallNet)

FORMAT = "stylecast"
VERSION = 1


@dataclass
class Checkpoint:
    architecture: str
    kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    contract: InputContract = field(default_factory=InputContract)
    family: Family = Family.JOHNSON
    styles: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:  # a plain string is accepted where the family is given in code
            self.family = Family(self.family)
        except ValueError:
            raise CheckpointError(
                f"unknown model family {self.family!r}; one of {', '.join(f.value for f in Family)}"
            ) from None

    def build(self) -> nn.Module:
        """The module with its weights loaded, in eval mode, fp32, on the CPU."""
        try:
            module = ARCHITECTURES[self.architecture](**self.kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a negative width
            raise CheckpointError(
                f"arguments {self.kwargs} do not fit architecture {self.architecture!r}: {exc}"
            ) from None
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"weights do not fit architecture {self.architecture!r}: {first}") from None
        return module.eval()

    def build_for_inference(self) -> nn.Module:
        """build(), in the form that runs fastest with the same outputs where the runtime keeps
        them (the small nets' last upsampling fused into its convolution, models/layers.py)."""
        module = self.build()
        return module.for_inference(self.contract.margin) if isinstance(module, FUSED_OUTPUT_NETS) else module

    @property
    def inference_form(self) -> str:
        """What build_for_inference changes, for the cache keys of exports made from it."""
        net = ARCHITECTURES.get(self.architecture)
        if net in FUSED_OUTPUT_NETS and fuses_output(net.output_upsampling(self.kwargs), self.contract.margin):
            return "output upsampling fused"
        return "as trained"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "architecture": self.architecture,
            "kwargs": dict(self.kwargs),
            "state_dict": self.state_dict,
            "input": {
                "range": list(self.contract.range),
                "channel_order": self.contract.channel_order,
                "size_multiple": self.contract.size_multiple,
                "margin": self.contract.margin,
                "transform": self.contract.transform,
            },
            "output": {"range": list(self.contract.output_range)},
            "family": self.family.value,
            "styles": list(self.styles),
            "training": _plain(self.training),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "checkpoint") -> Checkpoint:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not a stylecast checkpoint")
        version = data.get("version", 0)
        if not isinstance(version, int):
            raise CheckpointError(f"{source} has format version {version!r}, not a number")
        if version > VERSION:
            raise CheckpointError(f"{source} has format version {version}; this stylecast reads up to {VERSION}")
        arch = data.get("architecture")
        if arch not in ARCHITECTURES:
            raise CheckpointError(f"{source} has unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
        try:
            return cls._fields_from_dict(data, arch)
        except KeyError as exc:
            raise CheckpointError(f"{source} lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source} has a malformed field ({exc})") from None

    @classmethod
    def _fields_from_dict(cls, data: dict[str, Any], arch: str) -> Checkpoint:
        inp, out = data["input"], data.get("output", {})
        if not isinstance(data["state_dict"], dict):
            raise TypeError("state_dict is not a dict of tensors")
        contract = InputContract(
            range=tuple(inp["range"]),  # type: ignore[arg-type]
            channel_order=inp["channel_order"],
            size_multiple=int(inp["size_multiple"]),
            # checkpoints written before margins were declared: the architecture's own
            margin=int(inp.get("margin", getattr(ARCHITECTURES[arch], "margin", 0))),
            output_range=tuple(out.get("range", (0.0, 1.0))),  # type: ignore[arg-type]
            transform=inp.get("transform"),
        )
        return cls(
            architecture=arch,
            kwargs=dict(data["kwargs"]),
            state_dict=data["state_dict"],
            contract=contract,
            family=str(data.get("family", arch)),  # type: ignore[arg-type]  # made a Family after init
            styles=list(data.get("styles", [])),
            training=dict(data.get("training", {})),
        )


FP16_MAX = torch.finfo(torch.float16).max


def save_checkpoint(ckpt: Checkpoint, path: str | Path, half: bool = False) -> None:
    """Write atomically: a temporary file in the same folder, renamed when complete. `half`
    stores the floating-point tensors in fp16, except those with values past its range (a
    distilled encoder's gains reach 1e5), which stay as they are rather than turn infinite."""
    data = ckpt.to_dict()
    if half:
        data["state_dict"] = {
            k: v.half() if v.is_floating_point() and bool((v.abs() <= FP16_MAX).all()) else v
            for k, v in data["state_dict"].items()
        }
    atomic_torch_save(data, path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__})") from None
    return Checkpoint.from_dict(data, source=str(path))


def _plain(value: Any) -> Any:
    """Config values reduced to what weights_only unpickling accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
