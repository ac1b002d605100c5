"""Style mixes for the multi-style network: 'starry_night', 'starry_night:0.7,great_wave:0.3',
or indices ('0:0.5,3:0.5') -> a weight vector over the model's styles that sums to 1."""

from __future__ import annotations

import math

import torch

from stylecast.core.errors import InputError


def parse_style_mix(spec: str, names: list[str]) -> torch.Tensor:
    weights = torch.zeros(len(names))
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, _, value = part.partition(":")
        if key in names:
            index = names.index(key)
        elif key.isdecimal() and int(key) < len(names):  # isdigit() also takes "²", which int() refuses
            index = int(key)
        else:
            raise InputError(
                f"unknown style {key!r}; this model has {', '.join(names)} (or indices 0-{len(names) - 1})"
            )
        try:
            weight = float(value) if value else 1.0
        except ValueError:
            raise InputError(f"bad style weight in {part!r}; use name:weight, e.g. {names[0]}:0.5") from None
        if not (math.isfinite(weight) and weight >= 0):
            raise InputError(f"style weights must be finite and not negative: {part!r}")
        weights[index] += weight
    total = weights.sum()
    if not torch.isfinite(total):  # float32 overflows past 3.4e38
        raise InputError(f"style mix {spec!r} has weights too large to add up")
    if total <= 0:
        raise InputError(f"style mix {spec!r} has no positive weight")
    return weights / total
