"""``python -m samdesk`` behaves exactly like the ``samdesk`` command."""

import sys

from samdesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
