"""`python -m helpers.server_matrix reference`: run the websockets reference server (see .reference)."""

from __future__ import annotations

import sys

from helpers.server_matrix.reference import main

__all__: list[str] = []

if __name__ == "__main__":
    if sys.argv[1:] != ["reference"]:
        sys.exit("usage: python -m helpers.server_matrix reference")
    sys.exit(main())
