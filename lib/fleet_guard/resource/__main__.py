"""`python -m fleet_guard.resource check|in|out [DIR]`: the assets without the image layout."""

import sys

from fleet_guard.resource.main import main

if len(sys.argv) < 2:
    raise SystemExit("usage: python -m fleet_guard.resource check|in|out [DIRECTORY]")
step = sys.argv.pop(1)
main(step)
