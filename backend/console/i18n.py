"""The console's two languages, English and Simplified Chinese: the operator's choice (a
cookie set from the language menu) or else the browser's Accept-Language. Strings are
gettext messages; the catalogues are .po files (locale/<lang>/LC_MESSAGES/console.po,
shipped as package data) read once at start with Babel. Money and numbers follow the
language's conventions (Babel); times are shown in the site's time zone. A message made
before the language is known (a problem page's, a TranslatableError's, a photo's
problems) is marked with `N_` and kept with its named arguments, then translated where it
is shown (`say`, `TranslatableError.text`; device/errors.py `fill`)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import NullTranslations, Translations

from device.errors import fill

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT = "en"
COOKIE = "blinkpay_lang"

Translate = Callable[..., str]  # _("text {name}", name=...), as `gettext` makes it
Part = tuple[str, dict[str, Any]]  # a gettext message and its {arguments}


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The operator's setting when valid, else the best of Accept-Language, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-q, index, tag.strip().lower().replace("_", "-")))
    for _q, _i, tag in sorted(ranked):
        if tag == "zh" or tag.startswith(("zh-cn", "zh-hans", "zh-sg")):
            return "zh_CN"
        if tag == "en" or tag.startswith("en-") or tag == "*":
            return "en"
    return DEFAULT


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalogue of `language` (English: the messages themselves)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT or not path.exists():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext(language: str) -> Callable[..., str]:
    """_("text {name}", name=...): the translation, then str.format with the arguments."""
    catalogue = translations(language)

    def translate(message: str, **args: Any) -> str:
        text = catalogue.gettext(message)
        return text.format(**args) if args else text

    return translate


def N_(message: str) -> str:
    """Marks `message` for the catalogue (gettext_noop, by gettext's usual name); it is
    translated later, where it is shown
    (tests/console/test_i18n.py finds every N_ message and wants its translation)."""
    return message


def say(_: Translate, message: str, args: Mapping[str, Any] | None = None) -> str:
    """`message` in the language of `_` with its arguments; an argument that is a Part, or
    a list of Parts (joined with "; "), is translated too."""
    return fill(message, args, _)


def english(message: str, args: Mapping[str, Any] | None = None) -> str:
    return fill(message, args)


def money(minor: int | None, currency: str, language: str) -> str:
    """Minor units with the currency, as the language writes them (e.g. €1,234.56)."""
    if minor is None:
        return "-"
    digits = get_currency_precision(currency)
    return format_currency(int(minor) / 10**digits, currency, locale=language)


def number(value: float | None, language: str, digits: int = 2) -> str:
    if value is None:
        return "-"
    return format_decimal(round(float(value), digits), locale=language)


def when(ts: float | None, timezone: str) -> str:
    """A time in the site's zone, with the zone's name (2026-12-06 11:24:00 CST)."""
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(float(ts), UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
