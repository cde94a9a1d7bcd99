"""``python -m revsnn``: the command line (see :mod:`revsnn.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
