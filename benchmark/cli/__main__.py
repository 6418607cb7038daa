"""`python -m benchmark.cli`: the `mosrm` command (torchrun launches ranks this way)."""

import sys

from benchmark.cli import main

sys.exit(main())
