"""``python -m swerl_core.cli``: the same as the ``swerl`` console script."""

import sys

from swerl_core.cli import main

sys.exit(main())
