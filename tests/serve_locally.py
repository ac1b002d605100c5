"""`stylecast serve` as the tests run it in a process of its own: the same server and start-up
(run_server), with WebRTC media kept on this machine. Usage: python serve_locally.py MODEL PORT"""

import sys

from stylecast.server.app import ServerConfig, run_server
from stylecast.server.worker import InferenceWorker

if __name__ == "__main__":
    model, port = sys.argv[1], int(sys.argv[2])
    worker = InferenceWorker(backend="torch", device="cpu", target_fps=30, adaptive=False)
    worker.load(model)
    worker.start()
    run_server(ServerConfig(port=port, models=[model], default_model=model, ice_local_only=True), worker)
