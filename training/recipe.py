"""The shipped models' recipes, as data: `training/recipes/<model>.json`, one per model and fully
written (every setting of every stage; no defaults merged in), so that a recipe reads as what was
run. `stylecast train --recipe NAME --data DIR [--styles DIR] --out CKPT` runs one.

A recipe names its trainer (fast, arbitrary, pix2pix, cyclegan), the paintings it learns from
(found as `<painting>.jpg` in the styles folder), and its stages; a stage whose `init` is
"previous stage" starts from the stage before it (an arbitrary stage's `encoder_from`: takes its
encoder). A CycleGAN recipe may name a colour grade (`graded_domains`): its two domains are then
made from the photos (training/grades.py). Only `--out` is written outside the run folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from stylecast.core.atomic import staged_file
from stylecast.core.errors import InputError
from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary
from stylecast.training.fast import FastConfig, train
from stylecast.training.grades import graded_domains
from stylecast.training.translators import TranslatorConfig, train_cyclegan, train_pix2pix

RECIPES_DIR = Path(__file__).parent / "recipes"
PREVIOUS_STAGE = "previous stage"
CONFIGS: dict[str, type] = {
    "fast": FastConfig,
    "arbitrary": ArbitraryConfig,
    "pix2pix": TranslatorConfig,
    "cyclegan": TranslatorConfig,
}
Config = FastConfig | ArbitraryConfig | TranslatorConfig


@dataclass
class Stage:
    trainer: str  # a key of CONFIGS
    config: Config
    paintings: list[Path]  # the recipe's paintings (arbitrary: linked into one folder to train on)
    grade: str | None = None  # cyclegan: domain B is the photos through this grade
    publish: Path | None = None  # cyclegan: the A->B generator copied here from the run folder


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.json"))


def load_recipe(name: str) -> dict[str, Any]:
    path = RECIPES_DIR / f"{name}.json"
    if not path.is_file():
        raise InputError(f"no recipe {name!r}; recipes: {', '.join(recipe_names())}")
    return json.loads(path.read_text())


def recipe_stages(
    name: str, data: str, styles: str | None, out: str, vgg_weights: str | None = None, run_dir: str | None = None
) -> list[Stage]:
    """The stages of recipe `name`, each with its full config, trained on the photos in `data`."""
    recipe = load_recipe(name)
    trainer = recipe["trainer"]
    paintings = [Path(styles or ".") / f"{painting}.jpg" for painting in recipe.get("paintings", [])]
    if paintings and not styles:
        raise InputError(f"recipe {name} learns from paintings: give --styles, a folder with them as NAME.jpg")
    missing = [str(p) for p in paintings if not p.is_file()]
    if missing:
        raise InputError(f"recipe {name} needs its paintings in --styles: {', '.join(missing)} not found")
    config_cls = CONFIGS[trainer]
    known = {f.name for f in fields(config_cls)}
    root = Path(run_dir) if run_dir else Path(f"{out}.run")
    stages: list[Stage] = []
    for i, settings in enumerate(recipe["stages"], start=1):
        unknown = set(settings) - known
        if unknown:
            raise InputError(f"recipe {name}, stage {i}: unknown settings {', '.join(sorted(unknown))}")
        last = i == len(recipe["stages"])
        places: dict[str, Any] = {
            "out": out if last else str(root / f"stage{i}.pt"),
            "run_dir": str(root / f"stage{i}"),
        }
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        for start in ("init", "encoder_from"):  # the stage before's weights, or (arbitrary) its encoder
            if values.get(start) == PREVIOUS_STAGE:
                values[start] = stages[-1].config.out
        publish = None
        if trainer == "fast":
            places |= {"style": tuple(str(p) for p in paintings), "data": data, "vgg_weights": vgg_weights}
        elif trainer == "arbitrary":
            places |= {"styles": str(root / "paintings"), "data": data, "vgg_weights": vgg_weights}
        elif trainer == "pix2pix":
            places |= {"data": data}
        else:  # cyclegan: trained in the run folder (it writes its B->A generator beside its output)
            domains = root / "domains"
            publish, places["out"] = Path(places["out"]), str(root / f"stage{i}" / f"{name}.pt")
            places |= {"data_a": str(domains / "photos"), "data_b": str(domains / str(recipe.get("graded_domains")))}
        stages.append(Stage(trainer, config_cls(**places, **values), paintings, recipe.get("graded_domains"), publish))
    return stages


def run_recipe(stages: list[Stage], data: str, progress: bool = True) -> Path | None:
    """Each stage in turn (an earlier stage already written is not trained again: runs resume);
    the checkpoint written last (None after a dry run)."""
    checkpoint: Path | None = None
    for stage in stages:
        config = stage.config
        if stage is not stages[-1] and Path(config.out).is_file():
            continue
        root = Path(config.run_dir or f"{config.out}.run").parent
        root.mkdir(parents=True, exist_ok=True)
        if stage.trainer == "fast":
            checkpoint = train(config, progress=progress).checkpoint  # type: ignore[arg-type]
        elif stage.trainer == "arbitrary":
            folder = Path(config.styles)  # type: ignore[union-attr]
            folder.mkdir(exist_ok=True)
            for painting in stage.paintings:
                link = folder / painting.name
                if not link.exists():
                    link.symlink_to(painting.resolve())
            checkpoint = train_arbitrary(config, progress=progress)  # type: ignore[arg-type]
        elif stage.trainer == "pix2pix":
            checkpoint = train_pix2pix(config, progress=progress)  # type: ignore[arg-type]
        else:
            graded_domains(Path(data), str(stage.grade), Path(str(config.data_b)).parent)  # type: ignore[union-attr]
            checkpoint = train_cyclegan(config, progress=progress)  # type: ignore[arg-type]
            if checkpoint is not None and stage.publish is not None:
                with staged_file(stage.publish) as staged:
                    shutil.copyfile(checkpoint, staged)
                checkpoint = stage.publish
    return checkpoint
