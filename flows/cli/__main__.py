"""`python -m flows.cli`: the `restorium` command."""

import sys

from flows.cli.app import app

sys.exit(app())
