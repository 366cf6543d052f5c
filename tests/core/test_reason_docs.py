"""Every reason code a dashboard can see is explained in docs/payment.md, and no other."""

from __future__ import annotations

import re

from device.core.reasons import Reason
from device.paths import REPO_ROOT


def test_docs_explain_every_reason_code_and_no_stale_one() -> None:
    text = (REPO_ROOT / "docs" / "payment.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    assert documented == {reason.value for reason in Reason}
