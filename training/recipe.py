"""The shipped stylizers' recipes, as data: `training/recipes/<model>.json`, one per model and
fully written (every setting of every stage; no defaults merged in), so that a recipe reads as
what was run. `stylecast train --recipe NAME --data DIR --styles DIR --out CKPT` runs one.

A recipe names its paintings (found as `<painting>.jpg` in the styles folder) and its stages;
a stage whose `init` is "previous stage" starts from the stage before it. Only the last stage
writes `--out`; the earlier ones write into the run folder.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from stylecast.core.errors import InputError
from stylecast.training.fast import FastConfig, TrainResult, train

RECIPES_DIR = Path(__file__).parent / "recipes"
PREVIOUS_STAGE = "previous stage"


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.json"))


def load_recipe(name: str) -> dict[str, Any]:
    path = RECIPES_DIR / f"{name}.json"
    if not path.is_file():
        raise InputError(f"no recipe {name!r}; recipes: {', '.join(recipe_names())}")
    return json.loads(path.read_text())


def recipe_configs(
    name: str, data: str, styles: str, out: str, vgg_weights: str | None = None, run_dir: str | None = None
) -> list[FastConfig]:
    """One FastConfig per stage of recipe `name`, trained on `data` with the paintings in `styles`."""
    recipe = load_recipe(name)
    if recipe.get("trainer") != "fast":
        raise InputError(f"recipe {name} is for the {recipe.get('trainer')!r} trainer; this runs `fast` recipes")
    paintings = [Path(styles) / f"{painting}.jpg" for painting in recipe["paintings"]]
    missing = [str(p) for p in paintings if not p.is_file()]
    if missing:
        raise InputError(f"recipe {name} needs its paintings in --styles: {', '.join(missing)} not found")
    root = Path(run_dir) if run_dir else Path(f"{out}.run")
    known = {f.name for f in fields(FastConfig)}
    configs: list[FastConfig] = []
    for i, stage in enumerate(recipe["stages"], start=1):
        unknown = set(stage) - known
        if unknown:
            raise InputError(f"recipe {name}, stage {i}: unknown settings {', '.join(sorted(unknown))}")
        last = i == len(recipe["stages"])
        settings = dict(stage)
        if settings.get("init") == PREVIOUS_STAGE:
            settings["init"] = configs[-1].out
        for key in ("style_layers", "style_names"):
            if settings.get(key) is not None:
                settings[key] = tuple(settings[key])
        configs.append(
            FastConfig(
                style=tuple(str(p) for p in paintings),
                data=data,
                out=out if last else str(root / f"stage{i}.pt"),
                run_dir=str(root / f"stage{i}"),
                vgg_weights=vgg_weights,
                **settings,
            )
        )
    return configs


def run_recipe(configs: list[FastConfig], progress: bool = True) -> TrainResult:
    """Each stage in turn (a stage already written is not trained again: runs resume)."""
    result = None
    for config in configs:
        Path(config.run_dir or f"{config.out}.run").mkdir(parents=True, exist_ok=True)
        if config is not configs[-1] and Path(config.out).is_file():
            continue
        result = train(config, progress=progress)
    assert result is not None
    return result
