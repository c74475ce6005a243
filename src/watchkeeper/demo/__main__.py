"""`python -m watchkeeper.demo`: run the demo against a running Watchkeeper server."""

from __future__ import annotations

import sys

from watchkeeper.demo import main

sys.exit(main())
