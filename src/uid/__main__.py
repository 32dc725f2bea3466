"""``python -m uid``: the same as ``megam uid``."""

import sys

from uid.main import main

sys.exit(main())
