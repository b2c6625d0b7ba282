"""``python -m eksflow_dev.emulator --port N [--host H]``: the patched moto server (see ``server``)."""

from eksflow_dev.emulator.server import main

main()
