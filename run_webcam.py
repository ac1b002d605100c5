#!/usr/bin/env python3
"""Open the camera, stylize it live and show it in a window.

    python run_webcam.py                                  # camera 0, default model, a window
    python run_webcam.py --source demo                    # the generated scene instead of a camera
    python run_webcam.py --source clip.mp4 --output out.mp4 --no-window
    python run_webcam.py --model great_wave-small --preserve-color

Every flag of `stylecast webcam` works here (`python run_webcam.py --help`).
"""

import sys

from stylecast.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["webcam", *sys.argv[1:]]))
