"""``python -m vmf_deploy.numerics``: see :mod:`vmf_deploy.numerics.cli`."""

import sys

from .cli import main

sys.exit(main())
