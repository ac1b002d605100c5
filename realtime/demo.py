"""A procedural moving landscape: the demo input, so the project ships no third-party media.

A sky with a drifting sun and fractal clouds, three mountain ranges and a wooded hill that
scroll with parallax, a field, and a kite that loops across the sky: enough edges, textures and
motion for a stylizer to show what it does (and for flicker to be visible), generated in a few
milliseconds a frame from textures built once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np


def fractal_noise(h: int, w: int, rng: np.random.Generator, cells: int = 4, octaves: int = 5) -> np.ndarray:
    """Smooth value noise in [0, 1], H x W float32; tiles horizontally (wraps at the edges)."""
    total = np.zeros((h, w), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        grid = rng.random((max(2, n * h // w + 1), n)).astype(np.float32)
        grid = np.concatenate([grid, grid[:, :1]], axis=1)  # wrap horizontally
        layer = cv2.resize(grid, (w + w // n, h), interpolation=cv2.INTER_CUBIC)[:, :w]
        total += amplitude * layer
        weight += amplitude
        amplitude *= 0.5
    total /= weight
    return (total - total.min()) / max(1e-6, float(total.max() - total.min()))


def ridge(width: int, rng: np.random.Generator, cells: int, octaves: int = 6) -> np.ndarray:
    """A wrapping 1-D fractal height profile in [0, 1], length `width`."""
    return fractal_noise(8, width, rng, cells=cells, octaves=octaves)[4]


@dataclass
class Layer:
    """A horizontally tiling RGB texture with an alpha mask, scrolled at `speed`."""

    rgb: np.ndarray  # H x TW x 3 float32 in [0, 1]
    alpha: np.ndarray  # H x TW x 1 float32
    speed: float  # pixels per frame

    def window(self, offset: float, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns offset..offset+width, wrapping around the texture's end."""
        start = int(offset) % self.rgb.shape[1]
        if start + width <= self.rgb.shape[1]:
            return self.rgb[:, start : start + width], self.alpha[:, start : start + width]
        wrap = start + width - self.rgb.shape[1]
        return (
            np.concatenate([self.rgb[:, start:], self.rgb[:, :wrap]], axis=1),
            np.concatenate([self.alpha[:, start:], self.alpha[:, :wrap]], axis=1),
        )


class DemoScene:
    """Yields uint8 RGB H x W x 3 frames of a moving landscape at `fps`."""

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, seed: int = 7):
        self.width, self.height, self.fps = width, height, fps
        rng = np.random.default_rng(seed)
        h, w = height, width
        tw = 4 * w  # texture width: the scene repeats only after 4 screen widths
        ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]

        # Sky: deep blue at the top to warm haze at the horizon.
        top, horizon = np.array([0.16, 0.33, 0.66], np.float32), np.array([0.98, 0.78, 0.55], np.float32)
        self.sky = (top * (1 - ys**0.8) + horizon * ys**0.8) * np.ones((1, w, 1), np.float32)

        clouds = fractal_noise(h, tw, rng, cells=6, octaves=6)
        cloud_alpha = np.clip((clouds - 0.58) * 4.0, 0, 1) * np.clip(1.2 - ys[:, :, 0] * 1.6, 0, 1)
        cloud_rgb = np.stack([0.95 + 0.05 * clouds, 0.93 + 0.05 * clouds, 0.92 + 0.08 * clouds], -1)
        cloud_rgb *= (0.75 + 0.25 * clouds)[:, :, None]
        self.layers = [Layer(cloud_rgb, cloud_alpha[:, :, None], 0.6)]

        mountain_specs = [  # base line, relief, colour, detail cells, speed
            (0.48, 0.22, (0.47, 0.52, 0.68), 5, 1.0),
            (0.58, 0.20, (0.32, 0.42, 0.45), 7, 2.0),
            (0.70, 0.14, (0.22, 0.40, 0.20), 9, 3.5),
        ]
        for base, relief, colour, cells, speed in mountain_specs:
            profile = (base - relief * ridge(tw, rng, cells)) * h  # row of the crest, per column
            rows = np.arange(h, dtype=np.float32)[:, None]
            alpha = np.clip(rows - profile[None, :], 0, 1)
            texture = fractal_noise(h, tw, rng, cells=cells * 3, octaves=5)
            shade = 0.7 + 0.5 * texture - 0.25 * np.clip((rows - profile) / (relief * h + 1), 0, 1)
            rgb = np.asarray(colour, np.float32)[None, None, :] * shade[:, :, None]
            self.layers.append(Layer(rgb, alpha[:, :, None], speed))

        self.layers.append(self._wooded_hill(h, tw, rng))
        self.sun_radius = 0.07 * h
        self._yy, self._xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.kite = np.array([[0, -14], [9, 0], [0, 16], [-9, 0]], np.float32) * (h / 360)

    def _wooded_hill(self, h: int, tw: int, rng: np.random.Generator) -> Layer:
        """The nearest layer: a field with a row of trees, drawn once into a wide texture."""
        canvas = np.zeros((h, tw, 3), np.uint8)
        mask = np.zeros((h, tw), np.uint8)
        crest = (0.80 - 0.05 * ridge(tw, rng, 4)) * h
        field = fractal_noise(h, tw, rng, cells=24, octaves=4)
        rows = np.arange(h)[:, None]
        ground = rows >= crest[None, :]
        green = np.stack([0.30 + 0.25 * field, 0.55 + 0.25 * field, 0.18 + 0.1 * field], -1)
        # furrows that widen towards the viewer, as a field seen in perspective
        depth = np.clip((rows - crest[None, :]) / (h - crest.min() + 1), 0, 1)
        furrows = 0.82 + 0.18 * np.sin(40.0 * np.sqrt(depth + 0.02))[:, :, None]
        canvas[ground] = (np.clip(green * furrows, 0, 1) * 255).astype(np.uint8)[ground]
        mask[ground] = 255
        flowers = rng.random((h, tw)) > 0.996
        flowers &= ground & (rows > crest[None, :] + 8)
        canvas[flowers] = rng.choice(
            np.array([[240, 220, 60], [230, 90, 120], [250, 250, 250]], np.uint8), flowers.sum()
        )
        for x in rng.integers(0, tw, size=tw // 400):
            self._house(canvas, mask, int(x), int(crest[x]) + 6, h, rng)
        for x in rng.integers(0, tw, size=tw // 40):
            base_y = int(crest[x]) + 2
            height = int(rng.uniform(0.10, 0.22) * h)
            half = int(height * rng.uniform(0.25, 0.4))
            trunk = (90, 60, 30)
            cv2.rectangle(canvas, (int(x) - 2, base_y - height // 4), (int(x) + 2, base_y), trunk, -1)
            cv2.rectangle(mask, (int(x) - 2, base_y - height // 4), (int(x) + 2, base_y), 255, -1)
            tone = rng.uniform(0.6, 1.0)
            foliage = (int(30 * tone), int(110 * tone), int(45 * tone))
            for tier in range(3):  # a stacked-cone conifer
                top = base_y - height + tier * height // 5
                bottom = base_y - height // 4 - (2 - tier) * height // 8
                poly = np.array([[x, top], [x - half + tier * 2, bottom], [x + half - tier * 2, bottom]], np.int32)
                cv2.fillPoly(canvas, [poly], foliage)
                cv2.fillPoly(mask, [poly], 255)
        rgb = canvas.astype(np.float32) / 255.0
        alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[:, :, None] / 255.0
        return Layer(rgb, alpha, 5.0)

    @staticmethod
    def _house(canvas: np.ndarray, mask: np.ndarray, x: int, base_y: int, h: int, rng: np.random.Generator) -> None:
        """A cottage: whitewashed walls, a red roof, a door and two windows."""
        s = h / 360
        width, height = int(34 * s), int(20 * s)
        walls = (x - width // 2, base_y - height), (x + width // 2, base_y)
        roof = np.array(
            [
                [x - width // 2 - 4, base_y - height],
                [x, base_y - height - int(16 * s)],
                [x + width // 2 + 4, base_y - height],
            ],
            np.int32,
        )
        wall_tone = tuple(int(c) for c in rng.integers(215, 245, 3))
        for target, colour in ((canvas, wall_tone), (mask, 255)):
            cv2.rectangle(target, walls[0], walls[1], colour, -1)
        cv2.fillPoly(canvas, [roof], (170, 45, 35))
        cv2.fillPoly(mask, [roof], 255)
        cv2.rectangle(canvas, (x - 3, base_y - int(11 * s)), (x + 3, base_y), (90, 55, 30), -1)
        for wx in (x - width // 3, x + width // 3 - int(6 * s)):
            cv2.rectangle(
                canvas, (wx, base_y - int(15 * s)), (wx + int(6 * s), base_y - int(9 * s)), (70, 110, 160), -1
            )

    def frame(self, index: int) -> np.ndarray:
        h, w = self.height, self.width
        t = index / self.fps
        image = self.sky.copy()

        # The sun drifts along a low arc; its glow is added before the clouds cover it.
        sx, sy = w * (0.25 + 0.5 * ((t / 20.0) % 1.0)), h * (0.28 - 0.08 * np.sin(t / 6.0))
        distance = np.hypot(self._xx - sx, self._yy - sy)
        glow = np.clip(1.0 - distance / (6 * self.sun_radius), 0, 1) ** 2 * 0.5
        disc = np.clip(self.sun_radius - distance, 0, 1)
        image += (glow + disc)[:, :, None] * np.array([1.0, 0.85, 0.5], np.float32)

        for layer in self.layers:
            rgb, alpha = layer.window(index * layer.speed, w)
            image = image * (1 - alpha) + rgb * alpha

        # A red kite looping over the hills, with its string.
        kx = w * (0.5 + 0.3 * np.sin(t * 0.9))
        ky = h * (0.35 + 0.12 * np.sin(t * 1.7))
        points = (self.kite + [kx, ky]).astype(np.int32)
        canvas = np.ascontiguousarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
        cv2.line(canvas, (int(kx), int(ky + 16)), (int(w * 0.55), h), (250, 250, 240), 1, cv2.LINE_AA)
        cv2.fillPoly(canvas, [points], (220, 40, 40), cv2.LINE_AA)
        cv2.line(canvas, tuple(points[0]), tuple(points[2]), (120, 20, 20), 1, cv2.LINE_AA)
        return canvas

    def frames(self, count: int) -> Iterator[tuple[np.ndarray, int, Fraction]]:
        """(rgb, pts, time_base) for frames 0..count-1."""
        time_base = Fraction(1, self.fps)
        for index in range(count):
            yield self.frame(index), index, time_base


def demo_tone(seconds: float, rate: int = 48000) -> np.ndarray:
    """A short arpeggio (float32 mono in [-1, 1]) so the demo clip has an audio stream to keep."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    notes = np.array([261.63, 329.63, 392.0, 523.25], np.float32)  # C major arpeggio
    note = notes[(t * 4).astype(int) % len(notes)]
    envelope = np.exp(-((t * 4) % 1.0) * 4.0)
    return (0.25 * np.sin(2 * np.pi * note * t) * envelope).astype(np.float32)


def write_demo_clip(path: str | Path, seconds: float = 4.0, width: int = 640, height: int = 360, fps: int = 30) -> int:
    """Render the scene with its arpeggio to an H.264 + AAC file; returns the frame count."""
    import av

    scene = DemoScene(width, height, fps)
    count = max(1, round(seconds * fps))
    samples = demo_tone(count / fps)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = (
            width,
            height,
            "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p",
        )
        video.options = {"crf": "16", "preset": "veryfast"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        chunk = 1024  # AAC frame size
        audio_sent = 0
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(scene.frame(index), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            # keep the audio level with the video so the file is interleaved
            while audio_sent < min(len(samples), (index + 1) * 48000 // fps):
                block = samples[audio_sent : audio_sent + chunk]
                piece = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
                piece.sample_rate, piece.pts = 48000, audio_sent
                container.mux(audio.encode(piece))
                audio_sent += len(block)
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return count
