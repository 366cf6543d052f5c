"""The consent text a customer reads before enrolment, in the customer's language. Versioned:
a consent record names the version, the language and the SHA-256 of the exact text shown; a
new wording is a new version, and every language's text of one version says the same."""

from __future__ import annotations

import hashlib

CONSENT_VERSION = "2026-12-v2"

CONSENT_TEXT_EN = """\
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


CONSENT_TEXT_ZH_CN = """\
在 blinkpay 终端刷脸支付

我们保存什么：一份人脸模板（由您的照片计算出的一组数字；照片本身不保存）、您的账户令牌、
您的消费限额，以及您支付密码的校验值（绝不保存密码本身）。每一笔支付都会连同终端、时间、
金额和结果记入账本。

用途：仅用于在运营方的支付终端上识别您并结算您的支付。模板不与任何其他方共享，也不用于
任何其他目的。

保存在哪里：运营方的支付主机上；并以加密形式保存在您所在站点的终端上，以便网络中断时
终端仍能识别您。

人脸识别模型更换时：运营方可能改用更好的模型，旧模板无法转换成新模型的模板。更换期间，
您付款的终端会用刚刚识别您并完成支付的同一实时图像计算一份新模板，加密并与该笔支付绑定后
发送到支付主机；不保存任何图像。运营方完成切换后，旧模板即被删除；届时如果您还没有新模板，
在刷脸支付之前会请您重新登记（您仍可用其他方式付款）。

保存多久：模板和密码校验值保存到您撤回同意或注销账户为止。账本记录按运营方会计规则要求的
期限保存（见保留政策），期满后删除。

如何撤回：您可随时当面或以书面形式向任何一位运营人员提出。撤回后，您的模板会从主机和每一台
终端上删除；控制台会记录每台终端确认删除的时间。您也可以索取一份您的数据副本。

参与完全自愿：您始终可以用其他方式付款。
"""

# The console's languages (backend/console/i18n.LANGUAGES) each have the text.
CONSENT_TEXTS: dict[str, str] = {"en": CONSENT_TEXT_EN, "zh_CN": CONSENT_TEXT_ZH_CN}


def consent_language(wanted: str | None, fallback: str) -> str:
    """The language of the text to show: the one asked for when there is a text in it, else
    the page's language when there is one, else English."""
    for language in (wanted, fallback):
        if language in CONSENT_TEXTS:
            return str(language)
    return "en"


def consent_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
