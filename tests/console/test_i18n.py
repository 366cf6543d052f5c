"""The console's languages: the choice from the setting or Accept-Language, a complete
Chinese catalogue for every message the pages, scripts, health reasons and enrolment
refusals use (every script's blink.t message reaches its page), money and times as the
language and the site write them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.pofile import read_po

from backend.console import i18n
from backend.console.enrolment import EnrolRefused, PhotoCheck
from backend.console.health import LABELS
from backend.console.web import JS_MESSAGES
from backend.duplicates import DUPLICATE

CONSOLE = Path(__file__).resolve().parents[2] / "backend" / "console"
HEALTH_MESSAGES = re.findall(r'"([^"]+)"', (CONSOLE / "health.py").read_text())


def marked_messages() -> set[str]:
    """Every N_("...") of the console's modules: messages translated where they are shown."""
    found = set()
    for source in CONSOLE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "N_":
                assert isinstance(node.args[0], ast.Constant), f"{source.name}: N_ of a literal"
                found.add(node.args[0].value)
    return found


def script_messages() -> set[str]:
    """Every literal blink.t("...") message of the pages' scripts."""
    found = set()
    for script in (CONSOLE / "static").glob("*.js"):
        found |= set(re.findall(r'blink\.t\(\s*"((?:[^"\\]|\\.)*)"', script.read_text()))
    return found


def used_messages() -> set[str]:
    found = set(JS_MESSAGES) | set(LABELS.values()) | marked_messages() | {DUPLICATE}
    for template in (CONSOLE / "templates").glob("*.html"):
        found |= {
            m.replace('\\"', '"')
            for m in re.findall(r'_\(\s*"((?:[^"\\]|\\.)*)"', template.read_text())
        }
    for source in ("health.py", "fleet.py"):
        text = (CONSOLE / source).read_text()
        found |= set(re.findall(r'_one\(\s*"\w+",\s*"([^"]+)"', text))
    return found


def test_every_message_has_a_chinese_translation() -> None:
    with (CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "console.po").open("rb") as po:
        catalog = read_po(po)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in used_messages() if not translated.get(m))
    assert missing == []
    for message, text in translated.items():  # the same {arguments} on both sides
        assert set(re.findall(r"\{\w+\}", message)) == set(re.findall(r"\{\w+\}", text))


def test_every_script_message_reaches_the_page() -> None:
    scripts = script_messages()
    assert "Blink: checking {n} frames…" in scripts  # enrol.js is read
    assert sorted(scripts - set(JS_MESSAGES)) == []


def test_enrolment_refusals_and_photo_problems_in_chinese() -> None:
    _ = i18n.gettext("zh_CN")
    refused = EnrolRefused(
        i18n.N_("photo {index}: {problems}"),
        "poor_quality",
        args={"index": 2, "problems": [("blurred: hold still", {}), ("too dark", {})]},
    )
    assert str(refused) == "photo 2: blurred: hold still; too dark"
    assert refused.text(_) == "第 2 张照片：图像模糊，请保持不动; 光线太暗"
    field = EnrolRefused(
        i18n.N_("{field}: a whole number 0-{most}"),
        "bad_amount",
        args={"field": ("daily limit", {}), "most": 100},
    )
    assert str(field) == "daily limit: a whole number 0-100"
    assert field.text(_) == "每日限额：须为 0 至 100 之间的整数"
    check = PhotoCheck(False, 2, [("{n} faces: one person only", {"n": 2})])
    assert check.public(_)["problems"] == ["发现 2 张人脸，只能有一个人"]
    assert check.public(i18n.gettext("en"))["problems"] == ["2 faces: one person only"]


def test_language_from_setting_then_accept_language() -> None:
    assert i18n.choose(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert i18n.choose(None, "en-GB,zh-CN;q=0.5") == "en"
    assert i18n.choose(None, "fr-FR, zh-Hans;q=0.7") == "zh_CN"
    assert i18n.choose(None, "de") == "en"
    assert i18n.choose("en", "zh-CN") == "en"  # the operator's setting wins
    assert i18n.choose("xx", "zh-CN") == "zh_CN"  # an unknown setting is ignored
    assert i18n.choose(None, "zh;q=bad, en") == "en"


def test_translation_with_arguments() -> None:
    _ = i18n.gettext("zh_CN")
    assert _("Fleet") == "终端总览"
    text = _("no telemetry for {seconds} s (3 intervals are {limit} s)", seconds="40", limit="30")
    assert text == "40 秒没有遥测（3 个上报间隔为 30 秒）"
    assert i18n.gettext("en")("Fleet") == "Fleet"


def test_money_and_times() -> None:
    assert i18n.money(123456, "EUR", "en") == "€1,234.56"
    assert i18n.money(123456, "CNY", "zh_CN") == "¥1,234.56"
    assert i18n.money(500, "JPY", "en") == "¥500"  # no minor unit
    assert i18n.money(None, "EUR", "en") == "-"
    assert i18n.when(1_796_526_000, "Asia/Shanghai") == "2026-12-06 11:00:00 CST"
    assert i18n.when(1_796_526_000, "Etc/UTC") == "2026-12-06 03:00:00 UTC"
