"""End-to-end runs on real media at full size (marked slow: run by CI after the default suite)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
from conftest import shared_path

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video=0))
        return {
            "frames": frames,
            "size": (video.codec_context.width, video.codec_context.height),
            "rate": video.average_rate,
            "audio": (audio.codec_context.name, audio.codec_context.sample_rate) if audio else None,
        }


def stylecast(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    exe = shutil.which("stylecast") or sys.executable
    prefix = [exe] if exe != sys.executable else [sys.executable, "-m", "stylecast.cli"]
    return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=cwd, timeout=1200)


def test_big_buck_bunny_with_the_default_model(tmp_path):
    """Issue acceptance: same frame count, size and frame rate as the input, plus its audio."""
    clip = shared_path("media/video/big_buck_bunny_640x360.mp4")
    proc = stylecast("video", str(clip), "-o", str(tmp_path / "out.mp4"), "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    assert stream_facts(tmp_path / "out.mp4") == stream_facts(clip)
    assert json.loads(proc.stdout)["frames"] == 240


def test_readme_demo_command_defaults(tmp_path):
    """`stylecast demo` exactly as the quick start runs it, in an empty folder."""
    proc = stylecast("demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    facts = stream_facts(tmp_path / "stylecast-demo.mp4")
    assert facts["frames"] == 120 and facts["size"] == (640, 360) and facts["audio"] == ("aac", 48000)
    assert (tmp_path / "stylecast-demo.png").stat().st_size > 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stylecast-demo.mp4", "stylecast-demo.png"]
