"""`python -m backend`: the composition root of the command line.

Each layer owns its commands and the command line puts them together here, the one module of
backend/ that may import the layers above it (tests/test_layers.py): the science commands
(backend/cli.py: run, build-assets), the job commands (db/cli.py: submit, worker, list, show,
cancel, export) and the report command (app/cli.py: reproduce, where its HTML is made).
"""

import sys

from app.cli import register as report_commands
from backend.cli import main
from backend.cli import register as science_commands
from db.cli import register as job_commands

COMMANDS = (science_commands, job_commands, report_commands)

if __name__ == "__main__":
    sys.exit(main(registrars=COMMANDS))
