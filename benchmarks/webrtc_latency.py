"""Camera-to-screen latency and delivered frame rate of `stylecast serve`, measured in a real
headless Chromium on this machine (media never leaves it), next to what the model alone can do,
in one run.

    python benchmarks/webrtc_latency.py --seconds 300 --model starry_night-small --size 320x240
    python benchmarks/webrtc_latency.py --seconds 120 --max-wait-ms 0 50   # two policies, one after the other

The page's fake camera plays a shared clip (../shared/media/video, or --clip) at 30 fps. Every
--sample seconds the page's own figures are read: frames shown per second, and latency
percentiles over the frames shown since the last sample (from the timestamp strip each frame
carries, so both ends are the page's clock). "model alone" is the inference worker's backend
timed on frames of the same size in the same process before the run. The trend is the slope of
a straight line through the per-sample p95 latencies (milliseconds per minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stylecast.realtime.demo import DemoScene
from stylecast.server.app import ServerConfig, StylecastServer
from stylecast.server.harness import ServerThread, chromium_args, chromium_path, make_y4m
from stylecast.server.worker import InferenceWorker, serving_threads

CLIP = Path(__file__).resolve().parent.parent.parent / "shared" / "media" / "video" / "big_buck_bunny_640x360.mp4"


def model_alone_fps(worker: InferenceWorker, model: str, size: tuple[int, int], seconds: float = 5.0) -> float:
    """Frames per second of the bare backend on a ready input of `size` (W, H)."""
    ckpt, backend = worker.models[model]
    m = ckpt.contract.size_multiple
    w, h = size
    frame = DemoScene(w, h).frame(30)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255)
    x = torch.nn.functional.pad(x, (0, -w % m, 0, -h % m), mode="reflect")
    for _ in range(3):
        backend(x)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend(x)
        count += 1
    return count / (time.perf_counter() - start)


# The browser's own WebRTC counters: its camera stream out, the stylized stream in.
FRAME_PATH = """(async () => {
  const out = {};
  (await window.stylecastPeer.getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") {
      Object.assign(out, {camera_encoded: r.framesEncoded, camera_sent: r.framesSent, camera_limited_by: r.qualityLimitationReason});
    } else if (r.type === "inbound-rtp" && r.kind === "video" && r.framesReceived) {
      Object.assign(out, {page_received: r.framesReceived, page_decoded: r.framesDecoded, page_dropped: r.framesDropped});
    }
  });
  return out;
})()"""


def frame_path(page) -> dict:
    """Every frame counter at this moment: the browser's WebRTC ones and the server's, via the page."""
    path = page.evaluate(FRAME_PATH)
    path.update(
        page.evaluate(
            "(() => { const s = window.stylecastStats; return {server_received: s.received,"
            " server_dropped: s.dropped, server_stylized: s.processed, page_shown: s.framesShown} })()"
        )
    )
    return path


def measure(worker: InferenceWorker, args: argparse.Namespace, size: tuple[int, int], max_wait_ms: float) -> dict:
    """One streaming run of `args.seconds` with a fresh browser; every counter over the measured window."""
    from playwright.sync_api import sync_playwright

    config = ServerConfig(
        models=[args.model], default_model=args.model, ice_local_only=True, max_frame_wait_ms=max_wait_ms
    )
    server = StylecastServer(config, worker)
    samples = []
    with tempfile.TemporaryDirectory() as tmp, ServerThread(server) as url, sync_playwright() as p:
        camera = make_y4m(args.clip, Path(tmp) / "camera.y4m", size, frames=240)
        browser = p.chromium.launch(executable_path=chromium_path(), args=chromium_args(camera))
        page = browser.new_page()
        page.goto(f"{url}/?autostart=1")
        page.wait_for_function("window.stylecastStats.framesShown > 30", timeout=120_000)
        start = time.perf_counter()
        path_before = frame_path(page)
        seen = page.evaluate("window.stylecastStats.latencyCount")
        while time.perf_counter() - start < args.seconds:
            time.sleep(args.sample)
            s = page.evaluate(
                "(() => { const s = window.stylecastStats; return {shown: s.framesShown, fps: s.fps, dropped: s.dropped,"
                " received: s.received, processed: s.processed, latencies: s.latencies.slice(-300), all: s.latencyCount} })()"
            )
            # the page keeps the newest 300 latencies; take the ones measured since the last sample
            fresh = s["latencies"][-min(len(s["latencies"]), s["all"] - seen) :] if s["all"] > seen else []
            seen = s["all"]
            sample = {
                "t": round(time.perf_counter() - start, 1),
                "fps": round(s["fps"], 1),
                "p50": float(np.percentile(fresh, 50)) if fresh else None,
                "p95": float(np.percentile(fresh, 95)) if fresh else None,
                "dropped": s["dropped"],
                "received": s["received"],
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
        path_after = frame_path(page)
        elapsed = time.perf_counter() - start
        browser.close()
    # every counter over the measured window (the warm-up before it left out)
    path = {k: v - path_before[k] for k, v in path_after.items() if isinstance(v, int | float)}
    return {
        "max_wait_ms": max_wait_ms,
        "elapsed": elapsed,
        "path": path,
        "camera_limited_by": path_after["camera_limited_by"],
        "samples": samples,
    }


def report(run: dict, alone: float) -> None:
    samples, path, elapsed = run["samples"], run["path"], run["elapsed"]
    delivered = path["page_shown"] / elapsed
    p95s = [s["p95"] for s in samples if s["p95"] is not None]
    times = [s["t"] / 60 for s in samples if s["p95"] is not None]
    slope = float(np.polyfit(times, p95s, 1)[0]) if len(p95s) > 2 else float("nan")
    print(f"\n## a camera frame gives way to a newer one after {run['max_wait_ms']:g} ms, {elapsed:.0f} s")
    print("| measure | value |\n|---|---|")
    print(f"| delivered to the page (frames/s) | {delivered:.1f} |")
    print(f"| delivered / min(camera 30, model alone) | {delivered / min(30.0, alone):.0%} |")
    print(f"| camera sent (frames/s) | {path['camera_sent'] / elapsed:.1f} |")
    print(f"| page shown / camera sent | {path['page_shown'] / path['camera_sent']:.1%} |")
    print(f"| page decoded / camera sent | {path['page_decoded'] / path['camera_sent']:.1%} |")
    print(f"| server dropped / received | {path['server_dropped'] / path['server_received']:.1%} |")
    p50 = statistics.median(s["p50"] for s in samples if s["p50"])
    print(f"| latency p50 over the run (median of samples, ms) | {p50:.0f} |")
    print(f"| latency p95 (median / worst sample, ms) | {statistics.median(p95s):.0f} / {max(p95s):.0f} |")
    print(f"| latency p95 trend (ms per minute) | {slope:+.1f} |")
    print("\nWhere the frames went over the measured window (camera -> server -> page):")
    print(", ".join(f"{k} {v}" for k, v in path.items()), f"(camera limited by: {run['camera_limited_by']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="measured seconds of each run")
    parser.add_argument("--sample", type=float, default=10)
    parser.add_argument("--model", default="starry_night-small")
    parser.add_argument("--size", default="320x240", help="camera size WxH")
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=serving_threads(), help="model threads (serve's default)")
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        nargs="+",
        default=[ServerConfig.max_frame_wait_ms],
        help="one run per value, in this order: how long a camera frame may wait before a newer one"
        " replaces it (0: only the newest frame is used)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the samples here")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    size = tuple(int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)

    def ready_worker() -> InferenceWorker:  # one per run: a run's server stops its worker when it ends
        worker = InferenceWorker(backend=args.backend, device="cpu", target_fps=30)
        worker.load(args.model)
        return worker

    probe = ready_worker()  # never started: only its backend is timed
    alone = model_alone_fps(probe, args.model, size)
    backend = probe.models[args.model][1].name
    runs = [measure(ready_worker().start(), args, size, wait) for wait in args.max_wait_ms]
    print(f"\n# {args.model} at {args.size}, backend {backend}, {torch.get_num_threads()} threads")
    print(f"model alone: {alone:.1f} frames/s")
    for run in runs:
        report(run, alone)
    if args.json:
        args.json.write_text(json.dumps({"model_alone_fps": alone, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
