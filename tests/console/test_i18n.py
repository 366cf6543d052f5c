"""The console's languages: the choice from the setting or Accept-Language, a complete
Chinese catalogue for every message the pages, scripts, health reasons and enrolment
refusals use (every script's blink.t message reaches its page) and no entry that nothing
uses, money and times as the language and the site write them."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from babel.messages.pofile import read_po

import backend.console.app  # noqa: F401  (every console module and its error classes)
from backend.console import i18n
from backend.console.auth import ROLES
from backend.console.enrolment import EnrolRefused, PhotoCheck
from backend.console.health import LABELS
from backend.console.web import JS_MESSAGES
from backend.duplicates import DUPLICATE
from backend.shards import STATUS_OPS
from device.errors import TranslatableError
from device.net.schemas import ID_RULE
from device.net.topics import COMMAND_NAMES

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "backend" / "console"


def _is_n(node: ast.AST) -> bool:
    """N_(...) or i18n.N_(...)."""
    func = node.func if isinstance(node, ast.Call) else None
    return getattr(func, "id", None) == "N_" or getattr(func, "attr", None) == "N_"


def marked_messages() -> set[str]:
    """Every N_("...") of the console's modules: messages translated where they are shown."""
    found = set()
    for source in CONSOLE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and _is_n(node):
                assert isinstance(node.args[0], ast.Constant), f"{source.name}: N_ of a literal"
                found.add(node.args[0].value)
    return found


def _subclasses(cls: type) -> set[str]:
    found: set[str] = set()
    for sub in cls.__subclasses__():
        found |= {sub.__name__} | _subclasses(sub)
    return found


# every TranslatableError class imported above
REFUSALS = {"TranslatableError"} | _subclasses(TranslatableError)


def _module(source: Path) -> str:
    return ".".join(source.resolve().relative_to(ROOT).with_suffix("").parts)


def _message(node: ast.AST, where: str, marked: bool) -> tuple[str | None, list[str]]:
    """The message an argument gives: N_("...") (or, where not `marked`, a plain literal),
    or a module constant holding one; else a complaint."""
    if isinstance(node, ast.Call) and _is_n(node) and isinstance(node.args[0], ast.Constant):
        return str(node.args[0].value), []
    if not marked and isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, []
    if isinstance(node, ast.Name):
        module, _, _name = where.partition(":")
        value = getattr(importlib.import_module(module), node.id, None)
        if isinstance(value, str):
            return value, []
    shown = ast.unparse(node)
    return None, [f"{where}: {shown} is not an N_-marked message with named arguments"]


def _placeholders(message: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", message))


def check_messages(text: str, module: str) -> tuple[set[str], list[str]]:
    """The messages problem() pages and TranslatableErrors of a module's source show, and
    what is wrong: a message that is not N_-marked (problem() in the console: N_ only; a
    TranslatableError outside the console: a literal), or {arguments} that differ from
    those given."""
    found: set[str] = set()
    wrong: list[str] = []
    console_module = module.startswith("backend.console.")
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        where = f"{module}:{node.lineno}"
        if name == "problem" and len(node.args) >= 2:
            message, complaints = _message(node.args[1], where, marked=True)
            given = {k.arg for k in node.keywords if k.arg}
        elif name in REFUSALS and node.args:
            message, complaints = _message(node.args[0], where, marked=console_module)
            values = next((k.value for k in node.keywords if k.arg == "args"), None)
            if values is None and name != "EnrolRefused" and len(node.args) >= 3:
                values = node.args[2]
            if isinstance(values, ast.Dict) and all(k is not None for k in values.keys):
                given = {ast.literal_eval(k) for k in values.keys if k is not None}
            elif values is None:
                given = set()
            else:
                given = None  # built elsewhere: not checked here
        else:
            continue
        wrong += complaints
        if message is None:
            continue
        found.add(message)
        if given is not None and _placeholders(message) != given:
            wrong.append(f"{where}: {message!r} is given {sorted(given)}")
    return found, wrong


def shown_messages() -> tuple[set[str], list[str]]:
    """check_messages over the console and the host's modules."""
    found: set[str] = set()
    wrong: list[str] = []
    for source in sorted((ROOT / "backend").rglob("*.py")):
        messages, complaints = check_messages(source.read_text(), _module(source))
        found |= messages
        wrong += complaints
    return found, wrong


def script_messages() -> set[str]:
    """Every literal blink.t("...") message of the pages' scripts."""
    found = set()
    for script in (CONSOLE / "static").glob("*.js"):
        found |= set(re.findall(r'blink\.t\(\s*"((?:[^"\\]|\\.)*)"', script.read_text()))
    return found


def said_messages() -> set[str]:
    """Every literal _("...") of the console's modules: translated where it is made."""
    found = set()
    for source in CONSOLE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def used_messages() -> set[str]:
    found = set(JS_MESSAGES) | set(LABELS.values()) | marked_messages() | {DUPLICATE, ID_RULE}
    # fixed values the pages show translated: roles, account and alert delivery states
    found |= set(ROLES) | set(STATUS_OPS.values()) | {"delivered", "failed", "dropped"}
    found |= shown_messages()[0]
    found |= said_messages()
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text()
        found |= {m.replace('\\"', '"') for m in re.findall(r'_\(\s*"((?:[^"\\]|\\.)*)"', text)}
        found |= {m.replace("\\'", "'") for m in re.findall(r"_\(\s*'((?:[^'\\]|\\.)*)'", text)}
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


def test_no_entry_is_left_unused() -> None:
    """Every entry of the catalogue is a message something shows: one left behind (its code
    now shown through backend/console/labels.py, its page gone) fails here."""
    with (CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "console.po").open("rb") as po:
        entries = {m.id for m in read_po(po) if m.id}
    used = used_messages()
    assert {"yes", "{text}", "shard stale", "Approved"} <= used  # each way of use is read
    assert sorted(entries - used) == []


def test_problem_pages_and_refusals_say_marked_messages() -> None:
    found, wrong = shown_messages()
    assert wrong == []
    assert {"AuthError", "CommandRefused", "ConfigRefused", "EnrolRefused", "FormRefused"} <= (
        REFUSALS
    )
    for message in (
        "no account {token}",  # a problem() page
        "{name} needs the {role} role",
        "unknown command {name}",  # a CommandRefused
        "wrong name or password",  # an AuthError
        "shard {shard_id} is not migrating",  # a TranslatableError of the host's migrations
    ):
        assert message in found, message


def test_the_check_refuses_an_english_literal() -> None:
    """problem() with a literal or an f-string, or arguments that are not the message's:
    each is found (so test_problem_pages_and_refusals_say_marked_messages would fail)."""
    source = """
problem(request, "no account", "unknown_account", 404, operator)
problem(request, f"no account {token}", "unknown_account", 404, operator)
problem(request, str(exc), exc.reason, 400)
problem(request, N_("no account {token}"), "unknown_account", 404, operator)
problem(request, N_("no account {token}"), "unknown_account", 404, operator, token=token)
CommandRefused(f"unknown command {name}", "unknown_command")
CommandRefused(N_("unknown command {name}"), "unknown_command", {"name": name})
"""
    found, wrong = check_messages(source, "backend.console.example")
    assert [w.split(":", 1)[1].split(":")[0] for w in wrong] == ["2", "3", "4", "5", "7"]
    assert found == {"no account {token}", "unknown command {name}"}
    # outside the console (no N_ there) a TranslatableError's literal is the message
    found, wrong = check_messages(
        'TranslatableError("shard {s} is gone", args={"s": s})', "backend.x"
    )
    assert (found, wrong) == ({"shard {s} is gone"}, [])


def test_every_script_message_reaches_the_page() -> None:
    scripts = script_messages()
    assert "Blink: checking {n} frames…" in scripts  # enrol.js is read
    assert sorted(scripts - set(JS_MESSAGES)) == []
    # the device page's command buttons and results (device.js: blink.t(c.name))
    assert set(COMMAND_NAMES) <= set(JS_MESSAGES)


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
