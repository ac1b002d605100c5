import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from stylecast.core.errors import InputError
from stylecast.core.images import read_rgb, write_rgb


def test_grayscale_alpha_and_16bit_come_out_as_8bit_rgb(tmp_path):
    gray = np.tile(np.arange(64, dtype=np.uint8) * 4, (40, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    rgb = read_rgb(tmp_path / "gray.png")
    assert rgb.shape == (40, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == gray).all() and (rgb[..., 2] == gray).all()

    bgra = np.zeros((20, 30, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:, :15, 3] = 255  # left half opaque, right half transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    rgb = read_rgb(tmp_path / "alpha.png")
    assert tuple(rgb[5, 5]) == (255, 0, 0)
    assert tuple(rgb[5, 25]) == (255, 255, 255)  # transparent becomes white, not black

    deep = np.zeros((16, 16, 3), np.uint16)
    deep[..., 1] = 65535  # green at full 16-bit scale
    deep[..., 0] = 32768
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    rgb = read_rgb(tmp_path / "deep.png")
    assert rgb.dtype == np.uint8 and tuple(rgb[0, 0]) == (0, 255, 128)


def test_exif_orientation_is_applied(tmp_path):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = 255  # white left half
    image = Image.fromarray(wide)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    rgb = read_rgb(tmp_path / "phone.jpg")
    assert rgb.shape[:2] == (40, 20)
    assert rgb[:18].mean() > 200 and rgb[22:].mean() < 50  # left half is now on top


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text"), "not a readable image"),
        (lambda p: cv2.imwrite(str(p), np.zeros((1, 1, 3), np.uint8)), "is 1x1; images must be at least"),
        (lambda p: p.write_bytes(open_png_prefix()), "not a readable image"),
        (lambda p: p.write_bytes(png_claiming(60000, 60000)), "is over [0-9,]+ pixels, over the limit of"),
    ],
    ids=["missing", "zero-bytes", "text", "1x1", "truncated-png", "oversized"],
)
def test_bad_images_raise_one_line_errors(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        read_rgb(path)
    assert "\n" not in str(info.value)


def open_png_prefix() -> bytes:
    ok, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return data.tobytes()[:100]


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header gives this size, with one empty data chunk (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_write_is_atomic_and_checks_the_folder(tmp_path):
    rgb = np.full((10, 12, 3), 200, np.uint8)
    write_rgb(tmp_path / "a.png", rgb)
    assert (read_rgb(tmp_path / "a.png") == rgb).all()
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left behind
    # the temporary file was private (mkstemp); the output gets the mode any new file gets
    (tmp_path / "plain.png").write_bytes(b"")
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == (tmp_path / "plain.png").stat().st_mode & 0o777
    with pytest.raises(InputError, match="output folder does not exist"):
        write_rgb(tmp_path / "missing" / "a.png", rgb)
    with pytest.raises(InputError, match="unknown image type"):
        write_rgb(tmp_path / "a.txt", rgb)


def test_a_picture_over_the_pixel_cap_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """A 20000 x 20000 PNG is about 1 MB on disk and 1.2 GB decoded: refused from its header."""
    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb)
    assert bomb.stat().st_size < 2_000_000
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a))
    with pytest.raises(InputError, match=r"bomb.png is over [\d,]+ pixels, over the limit of 50,000,000"):
        read_rgb(bomb)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (9000, 6000)).save(wide)
    with pytest.raises(InputError, match=r"wide.png is 9000x6000 = 54,000,000 pixels, .*STYLECAST_MAX_PIXELS"):
        read_rgb(wide)
    assert not decoded


def test_the_pixel_cap_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setenv("STYLECAST_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="40x30 = 1,200 pixels, over the limit of 1,000"):
        read_rgb(path)
    monkeypatch.setenv("STYLECAST_MAX_PIXELS", "1200")
    assert read_rgb(path).shape == (30, 40, 3)
    monkeypatch.setenv("STYLECAST_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="must be a whole number"):
        read_rgb(path)
