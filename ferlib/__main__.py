"""Entry point for `python -m ferlib`."""
import sys

from ferlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
