"""The shipped models: weights trained by this project (see README, "Shipped models").

Each entry names a checkpoint file in this folder. Names are `<style>` for the standard Johnson
network and `<style>-small` for the small CPU network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ZOO_DIR = Path(__file__).parent


@dataclass(frozen=True)
class ZooModel:
    name: str
    file: str  # checkpoint file in models/zoo/
    net: str  # "standard" or "small"
    painting: str  # what the style image is

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


_PAINTINGS = {
    "starry_night": "Vincent van Gogh, The Starry Night (1889)",
    "great_wave": "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)",
    "the_scream": "Edvard Munch, The Scream (1893)",
    "composition_vii": "Wassily Kandinsky, Composition VII (1913)",
}

SHIPPED: dict[str, ZooModel] = {}
for _style, _painting in _PAINTINGS.items():
    SHIPPED[_style] = ZooModel(_style, f"{_style}.pt", "standard", _painting)
    SHIPPED[f"{_style}-small"] = ZooModel(f"{_style}-small", f"{_style}-small.pt", "small", _painting)

DEFAULT_MODEL = "starry_night-small"
