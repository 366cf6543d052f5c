"""The POLL timing loop as its own process: `python -m device.vending.vmc_bench FD POLLS`.

Run in the same process as the reader, the simulated VMC would share the reader's GIL and
its wake-ups would be charged to the reader; a real VMC is another machine. The parent
passes the pty's master end (pass_fds); the child prints its measurements as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

from device.vending.mdb import vmc
from device.vending.vmc_sim import PtyVmc


def main(argv: list[str]) -> int:
    fd, polls = int(argv[0]), int(argv[1])
    interval_s = float(argv[2]) if len(argv) > 2 else 0.002
    priority = int(argv[3]) if len(argv) > 3 else 0
    if priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    side = PtyVmc(fd)
    for _ in range(polls):
        side.transact(vmc.poll())
        time.sleep(interval_s)
    result = {"latencies_ms": side.latencies_ms, "silences": side.silences, "late": side.late}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
