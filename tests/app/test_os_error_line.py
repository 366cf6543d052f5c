"""One line for a file problem: the path when the error names one, never a placeholder."""

from __future__ import annotations

import errno

from device.errors import os_error_line


def test_a_named_file_leads_the_line() -> None:
    line = os_error_line(FileNotFoundError(errno.ENOENT, "No such file", "/etc/blinkpay/x.toml"))
    assert line.startswith("/etc/blinkpay/x.toml: no such file or directory")
    line = os_error_line(PermissionError(errno.EACCES, "Permission denied", "/var/lib/k"))
    assert line.startswith("/var/lib/k: permission denied") and "(ls -l /var/lib/k)" in line


def test_an_error_without_a_file_name_says_what_is_wrong_only() -> None:
    assert os_error_line(PermissionError(errno.EACCES, "Permission denied")).startswith(
        "permission denied (uid "
    )
    assert "ls -l" not in os_error_line(PermissionError(errno.EACCES, "Permission denied"))
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == (
        "No space left on device"
    )
    assert "(a file)" not in os_error_line(IsADirectoryError(errno.EISDIR, "Is a directory"))
