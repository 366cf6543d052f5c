"""The terminal's codes in words (backend/console/labels.py): every reason code, event type
and outcome a terminal sends has a phrase, translated; the pages' `label` and `labels`
filters show it with the code beside it, and a code without a phrase as it is; no template
shows such a code raw."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from backend.console import cli, i18n, labels, routes_auth
from backend.console.web import templates
from backend.shards import STATUS_OPS
from device.core.reasons import Reason

ROOT = Path(__file__).resolve().parents[2]
EN = i18n.gettext("en")
ZH = i18n.gettext("zh_CN")


def render(source: str, language: str, **values: object) -> str:
    return templates.from_string(source).render(lang=language, _=i18n.gettext(language), **values)


def test_every_reason_has_words() -> None:
    """A Reason added without a phrase fails here."""
    missing = sorted(r.value for r in Reason if r.value not in labels.REASONS)
    assert missing == []
    # and nothing but a Reason, or a reason the terminal's source gives, has one
    extra = set(labels.REASONS) - {r.value for r in Reason}
    assert extra == {"remote"}
    assert '"remote"' in (ROOT / "device" / "remote" / "commands.py").read_text()


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def sent_by_the_terminal() -> tuple[set[str], set[str]]:
    """The event types and outcomes in the device's source: the first argument of every
    Notify(...) (the core) and publish_event(...) (the shell, remote commands), and the
    strings an `outcome=` of publish_event may take."""
    kinds: set[str] = set()
    outcomes: set[str] = set()
    for source in sorted((ROOT / "device").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ("Notify", "publish_event") or not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                kinds.add(first.value)
            for keyword in node.keywords:
                if keyword.arg == "outcome":
                    outcomes |= _strings(keyword.value)
    return kinds, outcomes


def test_every_event_type_and_outcome_the_terminal_sends_has_words() -> None:
    """An event type or outcome added to the terminal without a phrase fails here."""
    kinds, outcomes = sent_by_the_terminal()
    assert {"session_aborted", "liveness_rejected", "void", "gate_test"} <= kinds  # found
    assert sorted(kinds - set(labels.EVENTS)) == []
    assert sorted(set(labels.EVENTS) - kinds) == []  # no words for a type nobody sends
    assert {"voided", "pulsed", "refused"} <= outcomes
    assert sorted(outcomes - set(labels.OUTCOMES)) == []


def refused_by_the_terminal() -> set[str]:
    """Every reason a terminal counts a refused message under: the first argument of
    PayloadRejected(...) and rejects.add(...) in device/, every string a variable one may
    hold (remote_control's `reason`, sealed_shard's `reason`) taken from its assignments."""
    found: set[str] = set()
    for source in sorted((ROOT / "device").rglob("*.py")):
        tree = ast.parse(source.read_text())
        variables: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and node.value is not None:
                        variables.setdefault(target.id, set()).update(_strings(node.value))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            owner = getattr(getattr(node.func, "value", None), "attr", None)
            if name != "PayloadRejected" and not (name == "add" and owner == "rejects"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
            elif isinstance(first, ast.Name):
                assert variables.get(first.id), f"{source}: cannot read {first.id}"
                found |= {v for v in variables[first.id] if re.fullmatch(r"[a-z_]+", v)}
    return found


def test_every_refusal_the_terminal_counts_has_words() -> None:
    """A terminal's refused-message reason (telemetry `rejected`, the device page) added
    without a phrase fails here."""
    reasons = refused_by_the_terminal()
    assert {"bad_signature", "repeat", "replay", "not_a_recipient", "unrouted"} <= reasons
    assert sorted(reasons - set(labels.REFUSALS)) == []
    assert sorted(set(labels.REFUSALS) - reasons) == []


def test_every_phrase_is_translated() -> None:
    for kind, phrases in labels.KINDS.items():
        for code, message in phrases.items():
            assert labels.label(kind, code, EN) == message
            chinese = labels.label(kind, code, ZH)
            assert chinese and chinese != message, (kind, code)
            assert not re.search(r"[A-Za-z]{4,}", chinese.replace("PIN", "")), chinese


def test_a_known_code_in_words_with_the_code_beside_it() -> None:
    page = render('{{ code|label("reason") }}', "zh_CN", code="challenge_unavailable")
    assert page == (
        '<span class="coded" data-code="challenge_unavailable">无法判定光线挑战'
        " <small><code>challenge_unavailable</code></small></span>"
    )
    english = render('{{ code|label("reason") }}', "en", code=Reason.CHALLENGE_UNAVAILABLE)
    assert "Light challenge could not be judged <small><code>" in english
    assert render('{{ s|label("status") }}', "en", s="voided").startswith(
        '<span class="coded" data-code="voided">Voided (refunded) '
    )
    assert "售货机未能出货：付款已作废" in render(
        '{{ r|labels("reason") }}', "zh_CN", r=["vend_failed"]
    )


def test_an_unknown_code_is_shown_as_it_is() -> None:
    """A newer terminal's code: the code itself, escaped; never an error."""
    assert render('{{ c|label("reason") }}', "zh_CN", c="crowd_detected") == (
        '<span class="coded" data-code="crowd_detected"><code>crowd_detected</code></span>'
    )
    odd = render('{{ c|label("event") }}', "en", c='<b x="1">')
    assert "<b" not in odd and "&lt;b x=&#34;1&#34;&gt;" in odd
    assert render('{{ c|label("outcome") }}', "en", c=None) == ""
    assert render('{{ c|label("outcome") }}', "en", c="") == ""
    assert render('{{ c|label("reason") }}', "en", c=7) == (
        '<span class="coded" data-code="7"><code>7</code></span>'
    )
    assert labels.shown("reason", "crowd_detected", ZH) == {
        "code": "crowd_detected",
        "label": "crowd_detected",
    }


def test_words_inside_a_sentence() -> None:
    """An alert delivery's event inside its translated line: the words alone."""
    line = '{{ _("{event} → {target}: {status} ({n} tries)", event=e|words("alert"),'
    line += ' target="https://hook", status=_("delivered"), n=2) }}'
    assert render(line, "zh_CN", e="raised") == "告警发生 → https://hook：已送达（尝试 2 次）"
    assert render(line, "en", e="cleared") == "alert cleared → https://hook: delivered (2 tries)"
    assert render(line, "en", e="muted").startswith("muted → ")  # no words: the code


def test_a_list_of_reasons() -> None:
    page = render(
        '{{ r|labels("reason") }}', "en", r=["auth_unavailable", "offline_allowance", "new_one"]
    )
    assert page.startswith('<span class="coded-list"><span class="coded" data-code="auth_')
    assert re.findall(r'data-code="(\w+)"', page) == [
        "auth_unavailable",
        "offline_allowance",
        "new_one",
    ]
    for nothing in (None, [], "offline_allowance", {"a": 1}):  # none, or not a list
        assert render('{{ r|labels("reason") }}', "en", r=nothing) == ""


def test_an_event_for_the_script() -> None:
    event = {"type": "void", "outcome": "voided", "reasons": ["passage_timeout", "zzz"]}
    assert labels.event_shown(event, ZH) == {
        "type": {"code": "void", "label": "已向主机报告作废"},
        "outcome": {"code": "voided", "label": "已作废（已退款）"},
        "reasons": [
            {"code": "passage_timeout", "label": "无人通过闸门：本次乘车已作废"},
            {"code": "zzz", "label": "zzz"},
        ],
    }
    bare = labels.event_shown({"type": "passage", "reasons": "not a list"}, EN)
    assert bare == {
        "type": {"code": "passage", "label": "Customer passed the gate"},
        "outcome": None,
        "reasons": [],
    }


def test_an_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        labels.label("nope", "x", EN)


SHARD_ACTIONS = ("migrate", "cancel", "switch")  # routes_shards.py, cli_shard.py

# An audit action the source builds (not a literal): the values it takes, from the code.
# A new one fails the test below until its values are named here.
BUILT_ACTIONS: dict[tuple[str, str], set[str]] = {
    ("backend/console/routes_auth.py", "f'operator_{action}'"): {
        f"operator_{a}" for a in routes_auth.ACTIONS
    },
    ("backend/console/cli.py", "f\"operator_{args.action.replace('-', '_')}\""): {
        f"operator_{a.replace('-', '_')}" for a in cli.CHANGES
    },
    ("backend/console/routes_shards.py", "f'shard_{action}'"): {
        f"shard_{a}" for a in SHARD_ACTIONS
    },
    ("backend/cli_shard.py", "f'shard_{args.action}'"): {f"shard_{a}" for a in SHARD_ACTIONS},
    ("backend/console/service.py", "op"): {*STATUS_OPS, "delete"},  # Console.change
}


def audited() -> tuple[set[str], list[str]]:
    """The actions every audit call of the host's source records: the action argument of
    `ConsoleStore.audit(operator, action, ...)` and of the pages' `audit(request, operator,
    action, ...)`, a literal or one of BUILT_ACTIONS; and the calls whose action is neither."""
    found: set[str] = set()
    unread: list[str] = []
    for source in sorted((ROOT / "backend").rglob("*.py")):
        where = str(source.relative_to(ROOT))
        tree = ast.parse(source.read_text())
        helpers = {  # web.audit's own call, handing its `action` on
            id(call)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name == "audit"
            for call in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in helpers:
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == "audit":
                position = 1  # store.audit(operator, action, target, client, **detail)
            elif isinstance(node.func, ast.Name) and node.func.id == "audit":
                position = 2  # web.audit(request, operator, action, target, **detail)
            else:
                continue
            if len(node.args) <= position:
                unread.append(f"{where}:{node.lineno}: no action")
                continue
            action = node.args[position]
            if isinstance(action, ast.Constant) and isinstance(action.value, str):
                found.add(action.value)
            elif (where, ast.unparse(action)) in BUILT_ACTIONS:
                found |= BUILT_ACTIONS[(where, ast.unparse(action))]
            else:
                unread.append(f"{where}:{node.lineno}: {ast.unparse(action)}")
    return found, unread


def test_every_audit_action_has_words() -> None:
    """An audit action added to the source without a phrase fails here, and so does an
    action the test cannot read (name its values in BUILT_ACTIONS)."""
    actions, unread = audited()
    assert unread == []
    assert {"login", "login_refused", "enrol", "suspend", "delete", "export"} <= actions
    assert {"operator_role", "shard_switch", "account.pin_unlock"} <= actions
    assert sorted(actions - set(labels.AUDIT_ACTIONS)) == []
    assert sorted(set(labels.AUDIT_ACTIONS) - actions) == []  # no words for an unused action
    # the built ones' values are the code's: a shard action is one the page takes
    shards = (ROOT / "backend" / "console" / "routes_shards.py").read_text()
    assert all(f'action == "{a}"' in shards for a in SHARD_ACTIONS)


def test_an_audit_action_in_words() -> None:
    page = render('{{ a|label("audit") }}', "zh_CN", a="operator_role")
    assert page == (
        '<span class="coded" data-code="operator_role">已更改操作员角色'
        " <small><code>operator_role</code></small></span>"
    )
    assert "Login refused <small>" in render('{{ a|label("audit") }}', "en", a="login_refused")
    # an action of an older or newer host, as it is
    assert render('{{ a|label("audit") }}', "zh_CN", a="purge") == (
        '<span class="coded" data-code="purge"><code>purge</code></span>'
    )


CODE_FIELD = re.compile(
    r"(_\(\s*)?[\w.]*\.(?:type|outcome|reasons|status|result|action)\b(\s*\|\s*labels?\()?"
)


def raw_codes(source: str) -> list[str]:
    """Each {{ ... }} in a page's text (not inside a tag: a class, a data- attribute) that
    shows an event's type, outcome or reasons, a status or result, or an audit row's action,
    not through `label`, `labels` or `_()`."""
    found = []
    for tag in re.finditer(r"\{\{(.*?)\}\}", source, re.S):
        before = source[: tag.start()]
        if before.rfind("<") > before.rfind(">"):
            continue  # an attribute's value
        for field in CODE_FIELD.finditer(tag.group(1)):
            if not (field.group(1) or field.group(2)):
                found.append(tag.group(0))
    return found


def test_no_template_shows_a_code_raw() -> None:
    """A terminal's code, a ledger status or result reaches the page's text only through
    `label`, `labels` or `_()` (a fixed value of the console's own: a command's status)."""
    found = []
    for template in sorted((ROOT / "backend" / "console" / "templates").glob("*.html")):
        found += [f"{template.name}: {raw}" for raw in raw_codes(template.read_text())]
    assert found == []
    source = """<td class="cmd {{ c.status }}">{{ _(c.status) }}</td><td>{{ t.status }}</td>
<td>{{ (e.reasons or [])|join(', ') }}</td><td>{{ e.type|label("event") }}</td>
<td>{{ e.outcome or '' }}</td><td>{{ r.last_tx.status|label("status") }}</td>
<td>{{ r.action }}</td><td>{{ r.action|label("audit") }}</td>"""
    assert raw_codes(source) == [
        "{{ t.status }}",
        "{{ (e.reasons or [])|join(', ') }}",
        "{{ e.outcome or '' }}",
        "{{ r.action }}",
    ]
