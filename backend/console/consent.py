"""The consent text a customer reads before enrolment. Versioned: a consent record names the
version and the SHA-256 of the exact text shown; a new wording is a new version."""

from __future__ import annotations

import hashlib

CONSENT_VERSION = "2026-12-v2"

CONSENT_TEXT = """\
Paying with your face at blinkpay terminals

What we store: a face template (a list of numbers computed from your photos; the photos
themselves are not kept), your account token, your spending limits, and a check value of
your payment PIN (never the PIN itself). Each payment is recorded in the ledger with the
terminal, time, amount and outcome.

What for: only to recognise you at the operator's payment terminals and to settle your
payments. The template is not shared with anyone else and is not used for any other
purpose.

Where: on the operator's payment host and, encrypted, on the terminals of your site so
that they can recognise you when the network is down.

When the face-recognition model changes: the operator may move to a better model, whose
templates the old ones cannot be converted into. While it does, a terminal where you pay
computes a new template from the same live image it just recognised you and paid with,
and sends it, encrypted and bound to that payment, to the payment host; no image is kept.
When the operator switches over, the old template is deleted; if you have no new one by
then, you are asked to enrol again before paying with your face (you can still pay
another way).

How long: the template and PIN check value until you withdraw consent or close the
account. Ledger rows are kept for the period the operator's accounting rules require
(see the retention policy), then deleted.

How to withdraw: ask any operator, at any time, in person or in writing. Withdrawal erases
your template from the host and from every terminal; the console records when each
terminal confirmed the erasure. You can also ask for a copy of your data.

Taking part is voluntary: you can always pay another way.
"""


def consent_sha256(text: str = CONSENT_TEXT) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
