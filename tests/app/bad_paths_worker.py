"""Runs `blinkpay` / `blinkpay-host` commands in one process (one interpreter start for
dozens of commands) and reports, per command, the exit code, stderr and any exception that
escaped main() -- which a user would have seen as a traceback.

    python bad_paths_worker.py PLAN.json   ->  JSON list on stdout

PLAN: {"runs": [["blinkpay"|"blinkpay-host", arg, ...], ...],
       "deny": [path, ...]        # simulate EACCES on these paths and below (as root,
                                  # where mode 000 does not stop anyone)
       "default_config": path}    # stands in for /etc/blinkpay/config.toml
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

RUN_TIMEOUT_S = 60


def _install_deny(roots: list[str]) -> None:
    """open/stat of a denied path raises PermissionError, as for a non-root user."""
    denied = [os.path.abspath(root) for root in roots]

    def check(path: Any) -> None:
        if isinstance(path, int):
            return
        text = os.path.abspath(os.fsdecode(path))
        if any(text == root or text.startswith(root + os.sep) for root in denied):
            raise PermissionError(13, "Permission denied", text)

    def wrap(function: Any) -> Any:
        def denying(path: Any, *args: Any, **kwargs: Any) -> Any:
            check(path)
            return function(path, *args, **kwargs)

        return denying

    builtins.open = wrap(builtins.open)
    io.open = builtins.open
    os.open = wrap(os.open)
    os.stat = wrap(os.stat)
    os.lstat = wrap(os.lstat)
    os.scandir = wrap(os.scandir)
    os.listdir = wrap(os.listdir)


def _on_alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"still running after {RUN_TIMEOUT_S} s")


def _run_one(argv: list[str]) -> dict[str, Any]:
    from backend.cli import main as host_main
    from device.cli import main as device_main

    main = device_main if argv[0] == "blinkpay" else host_main
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    code: Any = None
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(RUN_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[1:])
    except SystemExit as exc:  # argparse usage errors: a usage line, no traceback
        code = exc.code
    except BaseException:
        escaped = traceback.format_exc()
    finally:
        signal.alarm(0)
    return {"argv": argv, "code": code, "stderr": err.getvalue(), "traceback": escaped}


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    if plan.get("default_config"):
        import device.config

        device.config.DEFAULT_CONFIG_PATH = Path(plan["default_config"])
    if plan.get("deny"):
        _install_deny(plan["deny"])
    results = [_run_one(argv) for argv in plan["runs"]]
    sys.stdout.write(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
