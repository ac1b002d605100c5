"""The shipped models: weights trained by this project (docs/models.md tells how each was trained).

Each entry names a checkpoint file in this folder. Stylizers are `<style>` for the standard
Johnson network and `<style>-small` for the small CPU network; translators are named for what
they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ZOO_DIR = Path(__file__).parent


@dataclass(frozen=True)
class ZooModel:
    name: str
    file: str  # checkpoint file in models/zoo/
    net: str  # training.fast.NETS' name (stylizers), "arbitrary", "pix2pix" or "cyclegan"
    source: str  # what it learned: the style's painting, or the translation

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


_PAINTINGS = {
    "starry_night": "Vincent van Gogh, The Starry Night (1889)",
    "great_wave": "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)",
    "the_scream": "Edvard Munch, The Scream (1893)",
    "composition_vii": "Wassily Kandinsky, Composition VII (1913)",
}

# Each small net's variant (training.fast.NETS); the records of how each was chosen are in docs/.
_SMALL_NET = {
    "starry_night": "small",
    "great_wave": "small_aa_eps",
    "composition_vii": "small_aa_eps",
    "the_scream": "small_plain",
}

SHIPPED: dict[str, ZooModel] = {}
for _style, _painting in _PAINTINGS.items():
    SHIPPED[_style] = ZooModel(_style, f"{_style}.pt", "standard", _painting)
    _net = _SMALL_NET[_style]
    SHIPPED[f"{_style}-small"] = ZooModel(f"{_style}-small", f"{_style}-small.pt", _net, _painting)
# One multi-style network for eight public-domain paintings, chosen to differ in palette and stroke
MULTISTYLE_PAINTINGS = (
    "starry_night",
    "great_wave",
    "the_scream",
    "composition_vii",
    "shipwreck_turner",
    "monet",
    "udnie",
    "mondrian",
)
_MIX = "eight paintings: " + ", ".join(MULTISTYLE_PAINTINGS)
SHIPPED["eight_paintings"] = ZooModel("eight_paintings", "eight_paintings.pt", "multistyle", _MIX)
SHIPPED["eight_paintings-small"] = ZooModel(
    "eight_paintings-small", "eight_paintings-small.pt", "multistyle_small", _MIX
)
# Any style picture at run time. The decoder learned from eleven public-domain paintings; the other
# two (the_scream, sorolla) and every picture that is not public domain were held out, so the
# docs and the tests can show styles it never saw.
ARBITRARY_TRAINING_PAINTINGS = (
    "starry_night",
    "vangogh",
    "munch",
    "shipwreck_turner",
    "great_wave",
    "composition_vii",
    "monet",
    "renoir",
    "courbet",
    "udnie",
    "mondrian",
)
SHIPPED["arbitrary"] = ZooModel(
    "arbitrary", "arbitrary.pt", "arbitrary", "any style picture (AdaIN or WCT at relu4_1; distilled encoder)"
)
# The first arbitrary model, moved at relu3_1: denser, shorter strokes; the teacher the default and
# eight_paintings-small were distilled from
SHIPPED["arbitrary-relu3_1"] = ZooModel(
    "arbitrary-relu3_1", "arbitrary-relu3_1.pt", "arbitrary", "any style picture, moved at relu3_1 (AdaIN or WCT)"
)
SHIPPED["colorize"] = ZooModel("colorize", "colorize.pt", "pix2pix", "grayscale to colour")
SHIPPED["teal_orange"] = ZooModel("teal_orange", "teal_orange.pt", "cyclegan", "photo to the teal-and-orange grade")

DEFAULT_MODEL = "starry_night-small"


def model_path(spec: str) -> Path:
    """A shipped model's file, or `spec` itself as a checkpoint path."""
    return SHIPPED[spec].path if spec in SHIPPED else Path(spec)
