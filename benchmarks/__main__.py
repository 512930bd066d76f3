"""``python -m benchmarks``: run the benchmark (see ``benchmarks/__init__.py``)."""

import sys

from benchmarks.run import main

sys.exit(main())
