"""`python -m stylecast.cli ...`, as `torchrun -m stylecast.cli train ...` runs it."""

import sys

from stylecast.cli.main import main

sys.exit(main())
