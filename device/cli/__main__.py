"""`python -m device.cli ...` is `blinkpay ...` (tests start real terminal processes so)."""

import sys

from device.cli import main

sys.exit(main())
