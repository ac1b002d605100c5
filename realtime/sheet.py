"""Contact sheets: each input image in a row, the input and then one column per model."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.stylizer import Stylizer

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
    for row_index, image in enumerate(images):
        image = fit_height(image, tile_height)
        tiles = [image] + [stylizer.one(image) for stylizer in stylizers.values()]
        if row_index == 0:
            tiles = [label(t, name) for t, name in zip(tiles, ["input", *stylizers], strict=True)]
        gap = np.full((tiles[0].shape[0], GAP, 3), 255, np.uint8)
        row = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, GAP), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)[:-GAP]
