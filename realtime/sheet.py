"""Contact sheets: each input image in a row, the input and then one column per model."""

from __future__ import annotations

import cv2
import numpy as np

from stylecast.realtime.stylizer import Stylizer

LABEL_HEIGHT = 22
GAP = 4


def fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(8, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    band = np.full((LABEL_HEIGHT, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([band, tile], axis=0)


def contact_sheet(images: list[np.ndarray], stylizers: dict[str, Stylizer], tile_height: int = 180) -> np.ndarray:
    """uint8 RGB sheet: rows are `images`, columns are the input then each named stylizer."""
    rows = []
    for image in images:
        image = fit_height(image, tile_height)
        rows.append([image] + [stylizer.one(image) for stylizer in stylizers.values()])
    return tile_rows(rows, ["input", *stylizers], tile_height)


def tile_rows(rows: list[list[np.ndarray]], names: list[str], tile_height: int = 180) -> np.ndarray:
    """uint8 RGB sheet from ready tiles: one list per row, `names` label the first row's columns."""
    bands = []
    for row_index, tiles in enumerate(rows):
        tiles = [fit_height(t, tile_height) if t.shape[0] != tile_height else t for t in tiles]
        if row_index == 0:
            tiles = [label(t, name) for t, name in zip(tiles, names, strict=True)]
        gap = np.full((tiles[0].shape[0], GAP, 3), 255, np.uint8)
        bands.append(np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1))
    width = max(b.shape[1] for b in bands)
    bands = [np.pad(b, ((0, GAP), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in bands]
    return np.concatenate(bands, axis=0)[:-GAP]
