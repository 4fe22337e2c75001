#!/usr/bin/env python3
"""Generates cases.json: Jinja constructs with the output Python's Jinja2 gives.

The environment is the one HF transformers renders chat templates in
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
json.dumps-based tojson, raise_exception, strftime_now at a fixed time), so
tests/adapters/template/test_jinja.c checks semantic's interpreter against the
real thing. Each case: name, template, context (JSON object), and either
"expected" (the output) or "error" (Jinja2 raised; the C side must fail too).

Run: python3 tests/data/jinja/gen_cases.py > tests/data/jinja/cases.json
"""
import datetime
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

NOW = datetime.datetime(2025, 1, 15, 12, 0, 0, tzinfo=datetime.timezone.utc)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(fmt):
    return NOW.strftime(fmt)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

CTX = {
    "s": "Hello, World",
    "u": "  Ünïcödé 你好 🚀  ",
    "n": 42,
    "f": 2.5,
    "neg": -7,
    "t": True,
    "xs": [3, 1, 2],
    "words": ["b", "A", "c", "a"],
    "d": {"b": 1, "a": 2, "c": {"x": [1, 2]}},
    "msgs": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "extra": None},
        {"role": "user", "content": "bye"},
    ],
    "nothing": None,
    "empty": [],
    "quote": "it's \"q\" \\ <b>&</b>\n\ttab",
    "emoji": "a🚀b",
}

CASES = [
    # text, output, whitespace
    ("text", "plain text", {}),
    ("output_literals", "{{ 1 }}|{{ 1.0 }}|{{ 0.1 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 2.5e3 }}|{{ -0.0 }}", {}),
    ("output_bools_none", "{{ true }}|{{ False }}|{{ none }}|{{ None }}", {}),
    ("output_list_repr", "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}", {}),
    ("output_tuple_repr", "{{ (1, 'b') }}|{{ (1,) }}|{{ () }}", {}),
    ("output_str_repr_quotes", "{{ [quote] }}|{{ [\"it's\"] }}|{{ ['say \"hi\"'] }}", None),
    ("output_dict_repr", "{{ d }}", None),
    ("ws_minus", "a  {{- 'b' -}}  c\n  {%- if true -%}  d  {%- endif -%}  e", {}),
    ("ws_trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("ws_lstrip_blocks", "line\n    {% if true %}\n    indented\n    {% endif %}\nend", {}),
    ("ws_plus_disables", "  {%+ if true %}x{% endif +%}\ny", {}),
    ("ws_comment", "a\n  {# note #}\nb {#- strip -#} c", {}),
    ("ws_var_no_trim", "{{ 'x' }}\ny", {}),
    ("ws_trailing_newline", "end\n", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("raw_block", "{% raw %}{{ not }} {% evaluated %}{% endraw %}!", {}),
    ("raw_block_ws", "x\n  {%- raw -%}  {{ y }}  {%- endraw -%}  \nz", {}),
    # if
    ("if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("if_truthiness", "{% for v in [0, 1, '', 'x', [], [0], {}, none, 0.0] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    # for
    ("for_loop_vars", "{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}", None),
    ("for_prev_next", "{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", None),
    ("for_else", "{% for x in empty %}x{% else %}empty{% endfor %}|{% for x in xs %}{{ x }}{% else %}no{% endfor %}", None),
    ("for_items_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", None),
    ("for_items_filter", "{% for k, v in d | items %}{{ k }};{% endfor %}", None),
    ("for_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", None),
    ("for_string", "{% for ch in emoji %}[{{ ch }}]{% endfor %}", None),
    ("for_filter_if", "{% for m in msgs if m.role == 'user' %}{{ m.content }}{{ loop.index }}/{{ loop.length }}{{ loop.last }} {% endfor %}", None),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_nested_loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("for_cycle", "{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", None),
    ("for_reverse_slice", "{% for m in msgs[::-1] %}{{ m.role[0] }}{% endfor %}", None),
    ("for_tuple_paren", "{% for (a, b) in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}", {}),
    # set and scope
    ("set_simple", "{% set x = 1 + 2 %}{{ x }}", {}),
    ("set_tuple", "{% set a, b = 'ab' %}{{ b }}{{ a }}", {}),
    ("set_scope_loop", "{% set x = 'out' %}{% for i in [1] %}{% set x = 'in' %}{{ x }}{% endfor %} {{ x }}", {}),
    ("set_namespace", "{% set ns = namespace(count=0, last=none) %}{% for m in msgs %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}", None),
    ("set_namespace_empty", "{% set ns = namespace() %}{% set ns.index = 0 %}{% set ns.index = ns.index + 5 %}{{ ns.index }}", {}),
    ("set_block", "{% set body %}  A{{ 1 }}  {% endset %}[{{ body }}]", {}),
    ("set_block_filter", "{% set body | trim | upper %}  abc  {% endset %}[{{ body }}]", {}),
    ("set_overrides_context", "{% set s = s ~ '!' %}{{ s }}", None),
    ("set_in_if_top_level", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    # macros
    ("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}", {}),
    ("macro_recursion", "{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * fact(k - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("macro_sees_globals", "{% macro m() %}{{ s }}/{{ n }}{% endmacro %}{{ m() }}", None),
    ("macro_result_is_string", "{% macro m() %}abc{% endmacro %}{% set r = m() %}{{ r | length }} {{ r is string }} {{ r ~ '!' }}", {}),
    ("macro_missing_arg", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", {}),
    ("macro_calls_macro", "{% macro inner(x) %}<{{ x }}>{% endmacro %}{% macro outer(y) %}{{ inner(y) }}{{ inner(y * 2) }}{% endmacro %}{{ outer(3) }}", {}),
    ("filter_block", "{% filter upper %}abc {{ s }}{% endfilter %}", None),
    # expressions
    ("arith", "{{ 7 + 3 }} {{ 7 - 3 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("arith_precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ** 2 }} {{ -2 ** 2 }} {{ 10 - 2 - 3 }} {{ (1 + 2) ~ 3 }} {{ 'a' ~ (1 + 2) }}", {}),
    ("arith_mixed", "{{ 1 + 1.5 }} {{ true + 1 }} {{ 3 * 'ab' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }}", {}),
    ("concat_tilde", "{{ 'n=' ~ n ~ ', f=' ~ f ~ ', none=' ~ none ~ ', u=' ~ undefined_var ~ '.' }}", None),
    ("compare", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' != 'a' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", {}),
    ("logic", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not 0 }} {{ not not 'x' }} {{ none or [] or 'last' }}", {}),
    ("membership", "{{ 'ell' in s }} {{ 'z' not in s }} {{ 2 in xs }} {{ 'a' in d }} {{ 'zz' in d }} {{ 'x' in undefined_thing }}", None),
    ("ternary", "{{ 'yes' if t else 'no' }} {{ 'yes' if nothing else 'no' }} [{{ 'only' if false }}] {{ 1 if false else 2 if true else 3 }}", None),
    ("subscript_attr", "{{ d.a }} {{ d['b'] }} {{ d.c.x[1] }} {{ msgs[1].content }} {{ msgs[-1]['role'] }} {{ xs.0 }} {{ d.missing is defined }} {{ xs[10] is defined }}", None),
    ("slices", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[5:] }} {{ s[:5] }} {{ s[-5:] }} {{ emoji[::-1] }} {{ u[3:6] }}", None),
    ("literals", "{{ [1, 2,] | length }} {{ {'a': 1, 'b': [2]}['b'][0] }} {{ 'con' 'cat' }} {{ \"dq\" }} {{ 'esc\\n\\t\\\\\\'' | length }} {{ '\\u00e9\\x41' }}", {}),
    ("string_escapes", "{{ 'a\\nb' }}|{{ \"tab\\tx\" }}|{{ 'unknown \\d escape' }}", {}),
    ("unicode_len", "{{ u | length }} {{ emoji | length }} {{ u | trim }}", None),
    # tests
    ("tests_types", "{{ s is string }} {{ n is number }} {{ f is float }} {{ n is integer }} {{ t is boolean }} {{ t is number }} {{ d is mapping }} {{ xs is sequence }} {{ s is iterable }} {{ d is iterable }} {{ n is iterable }} {{ nothing is none }} {{ t is true }} {{ t is false }}", None),
    ("tests_defined", "{{ s is defined }} {{ zz is defined }} {{ zz is undefined }} {{ zz is not defined }} {{ d.a is defined }} {{ d.zz is defined }} {{ d.c.x is defined }}", None),
    ("tests_undefined_quirks", "{{ zz is iterable }} {{ zz is sequence }} {{ zz is mapping }} {{ zz is string }} {{ zz is none }}", {}),
    ("tests_numbers", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 3 is eq 3 }} {{ 3 is equalto 4 }} {{ 3 is ne 4 }} {{ 3 is lt 4 }} {{ 3 is gt 4 }} {{ 3 is ge 3 }} {{ 3 is le 2 }}", {}),
    ("tests_misc", "{{ 2 is in [1, 2] }} {{ none is sameas none }} {{ range is callable }} {{ s is callable }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aBc' is lower }}", None),
    ("tests_in_expressions", "{{ not s is defined }} {{ s is defined and n is number }} {{ 'x' if zz is defined else 'y' }}", None),
    # filters
    ("filter_trim", "[{{ '  a b  ' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ u | trim }}][{{ none | trim }}]", None),
    ("filter_length", "{{ xs | length }} {{ d | count }} {{ s | length }} {{ empty | length }} {{ zz | length }}", None),
    ("filter_tojson_default", "{{ d | tojson }}|{{ msgs[2] | tojson }}|{{ 'é\"\\n' | tojson }}|{{ [1.0, 2.5e-8, true, none] | tojson }}", None),
    ("filter_tojson_indent", "{{ d | tojson(indent=2) }}|{{ {'e': [], 'o': {}} | tojson(indent=2) }}", None),
    ("filter_tojson_opts", "{{ {'b': 1, 'a': 'é🚀'} | tojson(ensure_ascii=true, sort_keys=true) }}|{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }}", {}),
    ("filter_tojson_keys", "{{ {1: 'a', none: 'b', true: 'c'} | tojson }}", {}),
    ("filter_tojson_controls", "{{ '\\x01\\x7f\\u2028' | tojson }}", {}),
    ("filter_items_list", "{{ d | items | list }} {{ 'ab' | list }} {{ d | list }}", None),
    ("filter_join", "{{ xs | join(',') }} {{ xs | join }} {{ msgs | join('/', attribute='role') }} {{ [1, none, 'a'] | join('-') }}", None),
    ("filter_case", "{{ s | upper }} {{ s | lower }} {{ 'hELLO wORLD' | capitalize }} {{ 'hello big-world o\\'neil' | title }} {{ 'éç ÀÉ' | upper }} {{ 'ΑΒΓ Дж' | lower }}", None),
    ("filter_replace", "{{ s | replace('l', 'L') }} {{ s | replace('l', 'L', 2) }} {{ 'aaa' | replace('a', 'bb') }} {{ 'ab' | replace('', '-') }}", None),
    ("filter_string_int_float", "{{ 12 | string }}{{ (12 | string) is string }} {{ '42' | int + 1 }} {{ ' 7 ' | int }} {{ '3.9' | int }} {{ 'x' | int }} {{ 'x' | int(5) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'y' | float }} {{ 'ff' | int(base=16) }}", {}),
    ("filter_first_last", "{{ xs | first }} {{ xs | last }} {{ s | first }} {{ empty | first is defined }}", None),
    ("filter_default", "{{ zz | default('dflt') }} {{ s | default('x') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('n', boolean=true) }} [{{ zz | d }}]", None),
    ("filter_map", "{{ msgs | map(attribute='role') | list }} {{ words | map('upper') | join }} {{ msgs | map(attribute='extra', default='-') | list }}", None),
    ("filter_select", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'eq', 'user') | list | length }} {{ msgs | selectattr('extra', 'none') | list | length }} {{ msgs | selectattr('extra', 'defined') | list | length }}", None),
    ("filter_select_plain", "{{ [0, 1, '', 'a', none] | select | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [1, 2, 3, 4] | select('gt', 2) | list }}", {}),
    ("filter_unique", "{{ words | unique | list }} {{ words | unique(case_sensitive=true) | list }} {{ [1, 2, 1, 3] | unique | list }}", None),
    ("filter_sort", "{{ xs | sort }} {{ xs | sort(reverse=true) }} {{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ msgs | sort(attribute='content') | map(attribute='content') | join(',') }}", None),
    ("filter_reverse", "{{ xs | reverse | list }} {{ emoji | reverse }}", None),
    ("filter_numbers", "{{ neg | abs }} {{ -2.5 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.1 | round(method='ceil') }} {{ 2.9 | round(0, 'floor') }} {{ xs | sum }} {{ [0.5, 1] | sum }} {{ xs | min }} {{ xs | max }} {{ words | max }}", None),
    ("filter_dictsort", "{{ d | dictsort }} {{ {'b': 2, 'a': 3} | dictsort(by='value', reverse=true) }}", None),
    ("filter_escape_safe", "{{ quote | escape }} {{ '<a>' | e }} {{ '<a>' | safe }}", None),
    ("filter_indent", "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, first=true) }}|{{ 'a\\n\\nb' | indent(1, blank=true) }}|{{ 'x\\n' | indent(2) }}", {}),
    ("filter_format", "{{ '%s-%d-%.2f-%5s|%-4s|%03d%%' | format('a', 7, 3.14159, 'r', 'l', 5) }} {{ '%(x)s!' | format(x=1) }}", {}),
    ("filter_misc", "{{ 'a b  c' | wordcount }} {{ d | attr('a') }} {{ xs | list | length }}", None),
    # methods
    ("str_methods_affix", "{{ s.startswith('Hell') }} {{ s.endswith('d') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith(('x',)) }}", None),
    ("str_methods_strip", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ '\\n\\nx\\n'.strip('\\n') }}][{{ 'abcxcba'.strip('ab') }}][{{ u.strip() }}]", None),
    ("str_methods_split", "{{ 'a,b,,c'.split(',') }} {{ '  a b  c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '  a b  c '.split(none, 1) }} {{ '  a b  c '.rsplit(none, 1) }} {{ 'x</think>y</think>z'.split('</think>')[-1] }}", {}),
    ("str_methods_case", "{{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}", {}),
    ("str_methods_find", "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('z') }} {{ s.count('l') }} {{ emoji.find('b') }} {{ s.index('W') }}", None),
    ("str_methods_misc", "{{ '-'.join(['a', 'b']) }} {{ s.replace('World', 'You') }} {{ 'a\\nb\\r\\nc\\n'.splitlines() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'x'.ljust(3, '.') }}| {{ 'x'.rjust(3) }} {{ 'x'.center(5, '*') }} {{ 'prefix-x'.removeprefix('prefix-') }}", None),
    ("str_methods_format", "{{ '{} and {}'.format('a', 'b') }} {{ '{1}{0}'.format('x', 'y') }} {{ '{name}!'.format(name='n') }} {{ '{:>5}|{:<4}|{:^5}|{:.2f}|{:05d}|{!r}'.format('a', 'b', 'c', 3.14159, 42, 'q') }} {{ '{{literal}}'.format() }}", {}),
    ("percent_operator", "{{ 'n=%d' % n }} {{ '%s/%s' % ('a', 'b') }} {{ '%r' % 'q' }} {{ '%x' % 255 }}", None),
    ("dict_methods", "{{ d.keys() | list }} {{ d.values() | list | length }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'def') }} {{ d.items() | list | first }}", None),
    # globals
    ("global_range", "{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ range(0) | list }}", {}),
    ("global_namespace_dict", "{% set ns = namespace(a=1) %}{{ ns.a }} {{ dict(x=1, y='z') }} {{ dict(x=1).x }}", {}),
    ("global_strftime", "{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y %H:%M') }}", {}),
    ("global_defined", "{{ strftime_now is defined }} {{ raise_exception is defined }} {{ range is defined }}", {}),
    # undefined semantics
    ("undefined_print", "[{{ zz }}][{{ zz | string }}][{{ zz | trim }}][{{ zz | upper }}]", {}),
    ("undefined_iter", "{% for x in zz %}x{% else %}none{% endfor %} {{ zz | list }} {{ zz | items | list }} {{ zz | join(',') }}", {}),
    ("undefined_compare", "{{ zz == zz }} {{ zz == none }} {{ zz != 1 }} {{ not zz }} {{ zz ~ 'x' }}", {}),
    ("none_attr", "[{{ nothing.attr }}][{{ nothing.attr is defined }}][{{ s.nope is defined }}]", None),
    # errors Jinja2 raises (the C side must fail as well)
    ("err_attr_of_undefined", "{{ zz.attr }}", {}),
    ("err_item_of_undefined", "{{ zz['k'] }}", {}),
    ("err_add_undefined", "{{ zz + 1 }}", {}),
    ("err_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_raise", "{{ raise_exception('custom failure') }}", {}),
    ("err_unknown_filter", "{{ 1 | nosuchfilter }}", {}),
    ("err_unknown_test", "{{ 1 is nosuchtest }}", {}),
    ("err_syntax", "{{ 1 + }}", {}),
    ("err_unclosed_if", "{% if true %}x", {}),
    ("err_unclosed_var", "{{ x ", {}),
    ("err_unexpected_end", "{% endfor %}", {}),
    ("err_tojson_undefined", "{{ zz | tojson }}", {}),
    ("err_list_append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("err_iterate_int", "{% for x in 5 %}{% endfor %}", {}),
    ("err_compare_types", "{{ 1 < 'a' }}", {}),
    ("err_set_attr_non_namespace", "{% set d2 = {} %}{% set d2.x = 1 %}", {}),
    ("err_macro_too_many_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("err_break_outside_loop", "{% break %}", {}),
]


def main():
    out, bad = [], []
    for name, template, ctx in CASES:
        context = CTX if ctx is None else ctx
        case = {"name": name, "template": template, "context": context}
        try:
            case["expected"] = env.from_string(template).render(**context)
        except Exception as e:  # noqa: BLE001 - any Jinja failure is an expected error
            case["error"] = f"{type(e).__name__}: {e}"
        if name.startswith("err_") != ("error" in case):
            bad.append(f"case {name}: expected {'an error' if name.startswith('err_') else 'output'}, "
                       f"got {case.get('error', case.get('expected'))!r}")
        out.append(case)
    if bad:
        sys.exit("\n".join(bad))
    json.dump({"producer": f"Jinja2 {jinja2.__version__} (HF transformers environment), "
                           "tests/data/jinja/gen_cases.py",
               "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
