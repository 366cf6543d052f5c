"""`python -m device.net --config FILE`: the terminal's network side alone."""

from device.net.standalone import main

raise SystemExit(main())
