"""`python -m watchkeeper` runs the command line."""

from watchkeeper.cli import main

raise SystemExit(main())
