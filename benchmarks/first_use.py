"""First use against repeat use, whole process, with an empty cache each time: the commands a new
user runs first, each twice in a row (the first run meets an empty cache, the second the cache the
first one left), timed from process start to exit.

    python benchmarks/first_use.py [--photo PHOTO] [--clip CLIP] [--seconds 10] [--pythonpath DIR]

--pythonpath runs another checkout's `stylecast` (a tree with the package laid out under it, e.g.
a worktree of an older commit linked as DIR/stylecast), so before and after are measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stylecast.core.machine import cpu_name

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def run(argv: list[str], cache: Path, pythonpath: str | None) -> tuple[float, dict]:
    env = {**os.environ, "STYLECAST_CACHE": str(cache)}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = "import importlib, sys; sys.exit(importlib.import_module('stylecast.cli.main').main(sys.argv[1:]))"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    try:
        return seconds, json.loads(done.stdout)
    except ValueError:
        return seconds, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default=str(SHARED / "content" / "chicago.jpg"))
    parser.add_argument("--clip", default=None, help="a video for `stylecast video` (default: none)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the webcam runs")
    parser.add_argument("--pythonpath", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases = {
            "image starry_night": ["image", args.photo, "-o", str(out / "a.png"), "--model", "starry_night"],
            "image starry_night-small": ["image", args.photo, "-o", str(out / "b.png"), "--model", "starry_night-small"],
            "webcam --source demo the_scream-small": [
                "webcam", "--source", "demo", "--model", "the_scream-small", "--no-window",
                "--seconds", str(args.seconds), "--json",
            ],
        }  # fmt: skip
        if args.clip:
            cases["video"] = ["video", args.clip, "-o", str(out / "c.mp4"), "-q"]
        print(f"{cpu_name()}, {os.cpu_count()} cores; {args.pythonpath or 'this checkout'}")
        for name, argv in cases.items():
            cache = out / f"cache-{len(name)}"
            first, first_result = run(argv, cache, args.pythonpath)
            repeat, repeat_result = run(argv, cache, args.pythonpath)
            line = f"{name:<40} first {first:6.2f} s  repeat {repeat:6.2f} s  ({first / repeat:.1f}x)"
            if "fps" in first_result:
                line += "; " + "  ".join(
                    f"{label} {r['fps']:.1f} fps, p95 {r['latency_ms_p95']:.0f} ms, {r['backend']}"
                    for label, r in (("first", first_result), ("repeat", repeat_result))
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
