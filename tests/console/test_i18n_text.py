"""No page text outside the translation: every template's text nodes and shown attributes
(title, placeholder, aria-label, alt, data-label, a submit input's value, option texts) and
every string a script gives to textContent, title, aria-label, ... are messages (_() in the
templates, blink.t in the scripts) or on a short list of things that are not language."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import Environment, nodes

CONSOLE = Path(__file__).resolve().parents[2] / "backend" / "console"

JINJA_TAG = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{(.*?)\}\}", re.S)
DYNAMIC = "\ue000"  # where a template shows a value or a translation
# attributes a reader sees or hears (data-label: the cell's heading in the narrow layout)
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-label", "label"}
# words that are not language: the product's name, units, the version prefix (v3), the
# embedding's dimension (512-D)
NOT_LANGUAGE = {"blinkpay", "ms", "px", "v", "D"}
NOT_LANGUAGE_TEXTS = {"[payment]\nfare = 300"}  # a TOML example: a config key's name
TEXT_FILTERS = {"default", "d", "upper", "lower", "capitalize", "title", "trim", "e", "escape"}


def _shown(node: nodes.Node) -> list[str]:
    """The string literals an expression shows (not those of _(), a comparison, a URL's
    macro argument)."""
    if isinstance(node, nodes.Const):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, nodes.CondExpr):
        return _shown(node.expr1) + (_shown(node.expr2) if node.expr2 else [])
    if isinstance(node, nodes.Or | nodes.Add):
        return _shown(node.left) + _shown(node.right)
    if isinstance(node, nodes.Concat):
        return [text for part in node.nodes for text in _shown(part)]
    if isinstance(node, nodes.Filter) and node.node is not None:
        if node.name == "format":
            return [re.sub(r"%[-+ #0-9.]*[a-zA-Z]", "", t) for t in _shown(node.node)]
        if node.name in TEXT_FILTERS:
            return _shown(node.node) + [t for arg in node.args for t in _shown(arg)]
    return []


def _skeleton(source: str) -> str:
    """The template as HTML: statements and comments gone, each {{ expression }} replaced by
    the literals it shows (else DYNAMIC); the lines kept."""

    def replace(tag: re.Match[str]) -> str:
        newlines = "\n" * tag.group(0).count("\n")
        if tag.group(1) is None:
            return newlines
        template = Environment().parse("{{" + tag.group(1) + "}}")
        output = template.find(nodes.Output)
        assert output is not None
        literals = [t for expr in output.nodes for t in _shown(expr)]
        return DYNAMIC.join(literals or [""]) + DYNAMIC + newlines

    return JINJA_TAG.sub(replace, source)


def _plain(text: str) -> str:
    return " ".join(text.replace(DYNAMIC, " ").split())


def _language(text: str) -> bool:
    text = text.replace(DYNAMIC, " ").strip()
    if text in NOT_LANGUAGE_TEXTS:
        return False
    return any(word not in NOT_LANGUAGE for word in re.findall(r"[^\W\d_]+", text))


class _TextScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[int, str]] = []
        self.skip = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self.skip += 1
        shown = SHOWN_ATTRIBUTES
        if tag == "input" and values.get("type") in ("submit", "button", "reset"):
            shown = shown | {"value"}
        for name, value in attrs:
            if name in shown and value and _language(value):
                self.found.append((self.getpos()[0], f"{name}={_plain(value)!r}"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip and _language(data):
            self.found.append((self.getpos()[0], repr(_plain(data))))


def untranslated_template_text(source: str, name: str) -> list[str]:
    """Every text node and shown attribute of a template with words outside _()."""
    scan = _TextScan()
    scan.feed(_skeleton(source))
    scan.close()
    return [f"{name}:{line}: {text}" for line, text in scan.found]


JS_SHOWN = re.compile(
    r"\.(?:textContent|innerText|innerHTML|title|placeholder|alt|ariaLabel)\s*=(?!=)"
    r"|setAttribute\(\s*[\"'](?:aria-label|title|placeholder|alt)[\"']\s*,"
    r"|createTextNode\(|new Option\(|blink\.cell\(\s*\w+\s*,"
)
JS_TOKEN = re.compile(
    r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)"  # a literal
    r"|(blink\.t\s*\()|([(\[{])|([)\]}])|([;,])"
)


def untranslated_script_text(source: str, name: str) -> list[str]:
    """String literals with words given to textContent, innerText, title, aria-label, ... of
    a script, outside blink.t(...): up to the statement's end (or the argument's)."""
    found = []
    for start in JS_SHOWN.finditer(source):
        depth, in_t = 0, []  # the depths at which blink.t( calls opened
        for token in JS_TOKEN.finditer(source, start.end()):
            literal, t_call, opening, closing, end = token.groups()
            if literal is not None and not in_t:
                text = re.sub(r"\$\{[^}]*\}", " ", literal[1:-1])
                if _language(text):
                    line = source.count("\n", 0, token.start()) + 1
                    found.append(f"{name}:{line}: {literal}")
            elif t_call or opening:
                depth += 1
                if t_call:
                    in_t.append(depth)
            elif closing:
                if in_t and in_t[-1] == depth:
                    in_t.pop()
                depth -= 1
                if depth < 0:
                    break
            elif end and depth == 0:
                break
    return found


def test_templates_show_no_text_outside_translation() -> None:
    found = []
    templates = sorted((CONSOLE / "templates").glob("*.html"))
    assert {"base.html", "operators.html", "customer.html"} <= {t.name for t in templates}
    for template in templates:
        found += untranslated_template_text(template.read_text(), template.name)
    assert found == []


def test_scripts_show_no_text_outside_blink_t() -> None:
    found = []
    scripts = sorted((CONSOLE / "static").glob("*.js"))
    assert sum(len(JS_SHOWN.findall(s.read_text())) for s in scripts) > 20  # they are read
    for script in scripts:
        found += untranslated_script_text(script.read_text(), script.name)
    assert found == []


def test_the_text_scans_find_english() -> None:
    """Each kind of untranslated text is found; translated text, values and codes are not."""
    source = """{% block title %}{{ _("Fleet") }} · blinkpay console{% endblock %}
<p title="{{ _('Site') }}">{{ _("Site") }} {{ d.site or '-' }} v{{ n }} ({{ ms }} ms)</p>
<td data-label="Status">{{ "on" if up else _("off") }}</td>
<a href="/x/{{ 'enable' if off else 'disable' }}" class="{{ 'up' if up else 'down' }}">
  <input type="submit" value="Go">
  <input name="q" placeholder="{{ _('q') }}" aria-label="role of {{ o }}">
  {# a comment #}<img alt="{{ '%.1f'|format(x) }}"><option value="x">{{ r }}</option>
</a><script>const a = "text";</script>{{ x|default("none") }}
"""
    assert untranslated_template_text(source, "t.html") == [
        "t.html:1: '· blinkpay console'",
        "t.html:3: data-label='Status'",
        "t.html:3: 'on'",
        "t.html:5: value='Go'",
        "t.html:6: aria-label='role of'",
        "t.html:8: 'none'",
    ]
    script = """a.textContent = blink.t("x {n}", { n: f("y") }) + " ms";
b.textContent = up ? blink.t("on") : "off";
c.setAttribute("aria-label", label + " (" + unit + ")");
d.title = `last ${when}`; e.textContent = x
  ? "yes" : "-";
f.setAttribute("role", "img"); g.className = "health ok";
blink.cell(tr, n + " rows", "amount"); blink.cell(tr, x ? "-" : "none", "why");
"""
    assert untranslated_script_text(script, "s.js") == [
        's.js:2: "off"',
        "s.js:4: `last ${when}`",
        's.js:5: "yes"',
        's.js:7: " rows"',
        's.js:7: "none"',
    ]
