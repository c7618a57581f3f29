#!/usr/bin/env python3
"""Writes tests/fixtures/text/jinja_renders.json: what Python jinja2 renders for a set of chat
templates x message lists x options, the reference for the C++ Jinja subset interpreter
(src/rankemb/text/jinja.cpp, tests/unit/text/jinja_test.cpp).

The environment is the one transformers compiles chat templates in for apply_chat_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, transformers' own tojson filter (json.dumps keeping non-ASCII text, with indent /
separators / sort_keys) and the raise_exception (TemplateError) / strftime_now globals. Contexts
carry what apply_chat_template passes: messages, tools, documents, add_generation_prompt and the
tokenizer's special tokens (bos_token, eos_token), plus per-case variables (enable_thinking,
date_string). strftime_now is not deterministic, so no case depends on it.

Templates: SmolLM2-135M-Instruct (as in its GGUF), Llama-3 and Qwen3 (read from the cached
tokenizer_config.json files), well-known public templates written out here (Gemma, Gemma-3 with
content parts, Mistral v0.1 / v0.3, Llama-3.1 with tools, Phi-3, Zephyr, ChatML, Qwen2.5), and
small synthetic templates that exercise one construct each. A case whose render raises records
{"error": "<ExceptionType>: <message>"} instead of "expected"; "syntax_error" cases are templates
jinja2 refuses to compile.

Output: {"generated_by", "contexts": {"synthetic": {...}}, "templates": {name: text}, "cases":
[{"name", "template", "context" (an object, or the name of a shared one in "contexts"),
"expected" | "error" | "syntax_error"}]}, one template / case per line.

Usage: .venv-torch/bin/pip install jinja2==3.1.4   (transformers 4.44 does not pull it in)
       .venv-torch/bin/python scripts/regen/jinja_fixture.py
"""
import datetime, importlib.metadata, json, os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.path.join(REPO, ".cache", "assets")
OUT = os.path.join(REPO, "tests", "fixtures", "text", "jinja_renders.json")


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def cached_template(model):
    with open(os.path.join(ASSETS, model, "models", "tokenizer_config.json"), encoding="utf-8") as f:
        return json.load(f)["chat_template"]


SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
           "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
           "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
           "{% endif %}")

GEMMA = r"""{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '
' + message['content'] | trim + '<end_of_turn>
' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model
'}}{% endif %}"""

GEMMA3 = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

MISTRAL_V01 = r"""{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"""

MISTRAL_V03 = r"""{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.last and system_message is defined %}
            {{- '[INST] ' + system_message + '\n\n' + message['content'] + '[/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + '[/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

LLAMA31 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

PHI3 = r"""{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %}"""

ZEPHYR = r"""{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""

CHATML = r"""{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""

QWEN25 = r"""{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# One construct (or a few related ones) each, rendered with SYNTHETIC_CONTEXT.
SYNTHETIC = {
    "for_else": "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in xs %}{{ x }},{% else %}none{% endfor %}",
    "if_elif": "{% for n in [0, 1, 2, 3] %}{% if n == 0 %}zero{% elif n == 1 %}one{% elif n is even %}even"
               "{% else %}other{% endif %} {% endfor %}",
    "filters_str": "{{ s|upper }}|{{ s|lower }}|{{ 'hello world-foo bar(baz)'|title }}|{{ 'hELLO wORLD'|capitalize }}|"
                   "{{ '  pad  '|trim }}|{{ s|replace('o', '0') }}|{{ s|replace('o', '0', 1) }}|{{ s|length }}|"
                   "{{ s|first }}|{{ s|last }}|{{ s|list }}|{{ s|reverse }}|{{ 'xxhixx'|trim('x') }}|{{ s|string }}|{{ s|count }}",
    "filters_list": "{{ xs|join(', ') }}|{{ xs|join }}|{{ xs|first }}|{{ xs|last }}|{{ xs|length }}|{{ xs|sort }}|"
                    "{{ xs|sort(reverse=true) }}|{{ xs|reverse|list }}|{{ xs|min }}|{{ xs|max }}|{{ xs|sum }}|"
                    "{{ [1, 2, 1, 3, 2]|unique|list }}|{{ words|sort|join(' ') }}|{{ words|unique|list }}|"
                    "{{ words|sort(case_sensitive=true)|join(' ') }}|{{ words|max }}|{{ [[1], [2]]|sum(start=[]) }}|{{ []|first }}|"
                    "{{ xs|list }}|{{ (xs|list)[0] }}",
    "filters_default": "{{ missing|default('dflt') }}|{{ missing|d('d2') }}|{{ ''|default('empty', true) }}|"
                       "{{ ''|default('kept') }}|{{ nothing|default('x') }}|{{ s|default('no') }}|{{ missing|default }}|",
    "filters_num": "{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'abc'|int }}|{{ 'abc'|int(7) }}|{{ 3.9|int }}|{{ -3.9|int }}|"
                   "{{ '2.5'|float }}|{{ 7|float }}|{{ 'x'|float }}|{{ -3|abs }}|{{ -2.5|abs }}|{{ 2.675|round(2) }}|{{ 2.5|round }}|"
                   "{{ 3.5|round }}|{{ 3.14159|round(2, 'floor') }}|{{ 1.2|round(0, 'ceil') }}|{{ n|string ~ '!' }}|"
                   "{{ true|int }}|{{ ' 12 '|int }}|{{ '0x1A'|int(0, 16) }}|{{ 42|round }}",
    "filters_tojson": "{{ d|tojson }}|{{ xs|tojson }}|{{ 'é\"<>&\\'\\n\\t\\u0001'|tojson }}|{{ nested|tojson(indent=2) }}|"
                      "{{ d|tojson(sort_keys=true) }}|{{ [1.0, 2.5, none, true, 'x', 1e20, 0.1]|tojson }}|"
                      "{{ nested|tojson(separators=(',', ':')) }}|{{ [[], {}]|tojson(indent=2) }}|{{ u|tojson(ensure_ascii=true) }}|"
                      "{{ (1, 'a')|tojson }}|{{ 'x'|tojson }}",
    "filters_dict": "{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}={{ v }};"
                    "{% endfor %}|{{ d|list }}|{{ d|length }}|{{ d|first }}|{{ d|dictsort(reverse=true) }}|"
                    "{{ {'b': 2, 'a': 3, 'c': 1}|dictsort(by='value') }}",
    "filters_map_select": "{{ people|map(attribute='name')|join(',') }}|"
                          "{{ people|selectattr('age', 'gt', 30)|map(attribute='name')|join(',') }}|"
                          "{{ people|rejectattr('admin')|map(attribute='name')|list }}|{{ xs|select('odd')|list }}|"
                          "{{ xs|reject('odd')|list }}|{{ words|map('upper')|join }}|"
                          "{{ people|sort(attribute='age')|map(attribute='name')|join }}|"
                          "{{ people|selectattr('admin')|list|length }}|{{ [0, 1, '', 'a']|select|list }}|"
                          "{{ people|map(attribute='nick', default='-')|join }}|{{ xs|map('string')|join('+') }}|"
                          "{{ people|selectattr('name', 'equalto', 'Bo')|map(attribute='age')|first }}|"
                          "{{ people|map(attribute='name')|map('lower')|select('in', ['al', 'cy'])|list }}",
    "indent": "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|"
              "{{ 'x'|indent }}",
    "concat_arith": "{{ 1 ~ 2 ~ 'x' ~ none ~ true ~ missing }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|"
                    "{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 1 + 2 * 3 - 4 }}|{{ (1 + 2) * 3 }}|"
                    "{{ 1.5 + 1 }}|{{ 'ab' * 3 }}|{{ [1] * 3 }}|{{ [1, 2] + [3] }}|{{ 7.5 // 2 }}|{{ 7.5 % 2 }}|"
                    "{{ -2 ** 2 }}|{{ 10 - 2 - 3 }}|{{ 2 ** 3 ** 2 }}|{{ 3 * 1.5 }}|{{ 10 / 4 }}|{{ 2 ** 0.5 }}|"
                    "{{ 5 // 0.3 }}|{{ -5 % 3.0 }}|{{ 0.1 + 0.2 }}|{{ true + true }}|{{ -n }}|{{ +n }}|{{ 3 * 'ab' }}|"
                    "{{ 7 % -3 }}|{{ 2 * (3 + 4) // 5 }}|{{ 1 ~ 2 + 3 ~ 4 }}|{{ (1 + 2) ~ 3 }}",
    "compare_logic": "{{ 1 < 2 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] }}|{{ 1 == 1.0 }}|"
                     "{{ true == 1 }}|{{ 'a' != 'b' }}|{{ none == none }}|{{ not true }}|{{ not 0 and 1 }}|{{ 0 or 'x' }}|"
                     "{{ '' or [] or 0 }}|{{ 1 and 2 }}|{{ 0 and 2 }}|{{ true and not false or false }}|{{ 'b' in 'abc' }}|"
                     "{{ 2 in xs }}|{{ 'a' in d }}|{{ 'z' not in d }}|{{ 5 not in xs }}|{{ (1, 2) == [1, 2] }}|"
                     "{{ [1, [2]] == [1, [2]] }}|{{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}|{{ missing == missing }}|"
                     "{{ 1 <= 1 >= 0 }}|{{ 'abc' >= 'abd' }}|{{ not not 'x' }}|{{ 'x' == none }}",
    "ternary": "{{ 'yes' if n > 5 else 'no' }}|{{ 'yes' if n > 50 else 'no' }}|{{ 'only' if false }}|"
               "{{ ('a' if true else 'b') ~ 'c' }}|{{ 'x' if none else 'y' if 0 else 'z' }}|{{ [1, 2] if xs }}",
    "literals": r"""{{ [1, 'two', 3.0, none, true, [false]] }}|{{ {'k': 'v', 'n': 1} }}|{{ (1, 2) }}|{{ (1,) }}|{{ () }}|{{ [] }}|{{ {} }}|{{ 1, 2 }}|{{ 'it\'s' }}|{{ "say \"hi\"" }}|{{ 'tab\there' }}|{{ 'nl\nx' }}|{{ ['it\'s', "q\"", 'both\'"'] }}|{{ 'uni\u00e9\x41\U0001F600' }}|{{ 'a' 'b' "c" }}|{{ 'back\\slash' }}|{{ 'oct\101' }}|{{ 'unknown\d' }}|{{ [1, 2,] }}|{{ {'a': 1,} }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ 2E-3 }}|{{ True }}{{ False }}{{ None }}""",
    "print_values": "{{ none }}|{{ true }}|{{ false }}|{{ 42 }}|{{ -0.0 }}|{{ 1.0 }}|{{ 0.1 }}|{{ 1e20 }}|{{ 1.5e-7 }}|"
                    "{{ 123456789.125 }}|{{ 1 / 3 }}|{{ f }}|{{ xs }}|{{ d }}|{{ nested }}|{{ missing }}|{{ nothing }}|"
                    "{{ 10 ** 15 * 1.0 }}|{{ 10 ** 16 * 1.0 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 1e16 }}|{{ 1e15 }}|"
                    "{{ 5e-324 }}|{{ 1.7976931348623157e308 }}|{{ 2.5e-5 }}|{{ 100.0 }}|{{ [missing, nothing] }}|"
                    "{{ people[0] }}|{{ (1, 'a', [2]) }}",
    "repr_quotes": r"""{{ ["it's", 'say "x"', "both ' \"", 'back\\slash', 'ctl\x01\x7f\t\r\n', 'nbsp\xa0', 'é世🙂', '\u200b\u2028\u3000'] }}|{{ {'k\'': "v\""} }}""",
    "dict_methods": "{% for k, v in d.items() %}{{ k }}:{{ v }},{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}|"
                    "{{ d.get('a') }}|{{ d.get('zz') }}|{{ d.get('zz', 'dflt') }}|{{ d.a }}|{{ d['b'] }}|"
                    "{{ d.zz is defined }}|{{ d['items'] is defined }}|{{ d.items()|list }}|{{ d.keys()|length }}|"
                    "{% for k in d.keys() %}{{ k }}{% endfor %}|{{ d.items()|list|first }}",
    "slicing": "{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[-1] }}|{{ xs[-2:] }}|{{ xs[10:] }}|{{ s[::2] }}|"
               "{{ s[-5:] }}|{{ s[:5] }}|{{ s[1:-1:3] }}|{{ xs[5] is defined }}|{{ 'héllo'[1] }}|{{ 'héllo'[1:3] }}|"
               "{{ xs.0 }}|{{ xs[-10:2] }}|{{ xs[::-2] }}|{{ s[100:] }}|{{ s[-100:2] }}|{{ xs[1:1] }}|{{ s[5:1:-1] }}|"
               "{{ (1, 2, 3)[1:] }}|{{ xs[-1:-4:-1] }}|{{ 'abc'[-1] }}",
    "loop_vars": "{% for x in ['a','b','c'] %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
                 "{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/{{ loop.previtem }}/{{ loop.nextitem }}/"
                 "{{ loop.cycle('odd', 'even') }}/{{ loop.depth }}/{{ loop.depth0 }};{% endfor %}",
    "loop_control": "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 6 %}{% break %}{% endif %}"
                    "{{ x }}{% endfor %}|{% for x in range(3) %}{% for y in range(3) %}{% if y > x %}{% break %}{% endif %}"
                    "{{ x }}{{ y }} {% endfor %}{% endfor %}|{% for x in [1, 2] %}{% break %}{% else %}never{% endfor %}done",
    "loop_filter": "{% for x in range(10) if x is odd %}{{ x }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}|"
                   "{% for x in range(3, 12, 3) %}{{ x }}{% endfor %}|{% for x in range(5, 0, -2) %}{{ x }}{% endfor %}|"
                   "{% for x in range(0) %}x{% else %}none{% endfor %}|{% for m in messages if m.role == 'user' %}"
                   "{{ m.content[:5] }};{% endfor %}",
    "nested_loops": "{% for row in [[1, 2], [3]] %}{% set outer = loop %}{% for cell in row %}{{ outer.index }}."
                    "{{ loop.index }}={{ cell }} {% endfor %}{{ loop.index }}|{% endfor %}"
                    "{% for i in range(2) %}{% for i in range(2) %}{{ i }}{% endfor %}{{ i }};{% endfor %}",
    "scoping": "{% set x = 'outer' %}{% for i in range(2) %}{{ x }}{% set x = 'inner' ~ i %}{{ x }};{% endfor %}{{ x }}|"
               "{% set ns = namespace(count=0, found=false) %}{% for i in range(4) %}{% set ns.count = ns.count + i %}"
               "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}|"
               "{% if true %}{% set y = 'from-if' %}{% endif %}{{ y }}|{% for i in range(2) %}{% set z = i %}{% endfor %}"
               "[{{ z }}]|{{ ns }}|{% set ns2 = namespace({'a': 1}, b=2) %}{{ ns2.a }}{{ ns2.b }}{{ ns2.c is defined }}",
    "set_block": "{% set greeting %}Hello {{ s }}!{% endset %}[{{ greeting }}]{% set a, b = 1, 2 %}{{ a }}{{ b }}"
                 "{% set t = (1, 'x') %}{{ t[1] }}{% set p, q = 'pq' %}{{ q }}{{ p }}{% set lst = [3, 4] %}"
                 "{% set h, k = lst %}{{ h * k }}",
    "with_stmt": "{% with a = 1, b = 'two' %}{{ a }}{{ b }}{% endwith %}[{{ a }}]{% with %}{% set w = 3 %}{{ w }}"
                 "{% endwith %}[{{ w }}]",
    "comments_ws": "a {# comment #} b\n  {# own line #}\nc\n{%- if true -%}\n  d\n{%- endif -%}\n e {%+ if true %}f"
                   "{% endif +%}\n g\n    {% if true %}\n    h\n    {% endif %}\ni {{- ' j ' -}} k\n  {{ 'l' }}\n"
                   "  {#- c -#}  \n  m {#+ keep +#}\n n\n\t{% if true %}tab{% endif %}\n",
    "raw_block": "{% raw %}{{ not parsed }}{% endraw %}|{%- raw -%}  {% x %}  {%- endraw -%}  |\n  {% raw %}\nr\n"
                 "  {% endraw %}\nafter",
    "crlf": "line1\r\n{% if true %}\r\nline2\r\n{% endif %}\r\nend\rx\r\n",
    "trailing_nl": "text\n",
    "trailing_nl2": "text\n\n",
    "lstrip_html": "<ul>\n    {% for x in xs %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n",
    "minus_strip": "a   \n\n  {{- 'b' -}}  \n\n c  {%- if true %} d{% endif -%}\n\n e\n{%- for x in xs %}\n  {{ x }}\n"
                   "{%- endfor %}\n",
    "tests": "{{ 1 is odd }}|{{ 2 is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}|{{ s is string }}|"
             "{{ xs is sequence }}|{{ d is mapping }}|{{ n is number }}|{{ f is float }}|{{ n is integer }}|"
             "{{ true is boolean }}|{{ nothing is none }}|{{ missing is undefined }}|{{ s is lower }}|{{ 'abc' is lower }}|"
             "{{ 'ABC' is upper }}|{{ 1 is true }}|{{ true is true }}|{{ false is false }}|{{ 0 is false }}|{{ 3 is gt 2 }}|"
             "{{ 3 is lt 2 }}|{{ 'a' is in 'abc' }}|{{ xs is iterable }}|{{ n is iterable }}|{{ 3 is eq 3 }}|"
             "{{ 3 is ne 3 }}|{{ 3 is ge 3 }}|{{ 3 is le 2 }}|{{ none is sameas none }}|{{ d.items is callable }}|"
             "{{ s is not string }}|{{ true is number }}|{{ true is integer }}|{{ f is integer }}|{{ s is iterable }}|"
             "{{ missing is iterable }}|{{ nothing is mapping }}|{{ 3 is equalto 3 }}|{{ 3 is greaterthan 4 }}|"
             "{{ 3 is lessthan 4 }}|{{ s is sequence }}|{{ d is sequence }}|{{ n is sequence }}|{{ not missing is defined }}",
    "string_methods": "{{ s.startswith('Hell') }}|{{ s.endswith('x') }}|{{ s.startswith(('x', 'He')) }}|{{ ' a b  c '.split() }}|"
                      "{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  x  '.strip() }}|"
                      "{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ 'hi\\n\\n'.rstrip() }}|{{ s.upper() }}|"
                      "{{ s.lower() }}|{{ 'hello wORLD foo-bar 3rd'.title() }}|{{ 'hello World'.capitalize() }}|"
                      "{{ s.replace('l', 'L') }}|{{ s.replace('l', 'L', 2) }}|{{ s.find('o') }}|{{ s.find('zz') }}|{{ s.count('l') }}|"
                      "{{ '-'.join(['a', 'b']) }}|{{ 'a\\nb\\r\\nc\\n'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'a1'.isalpha() }}|"
                      "{{ s.split('o')[-1] }}|{{ 'abc'.replace('', '-') }}|{{ s.rfind('o') }}|{{ '  '.isspace() }}|"
                      "{{ 'ab'.islower() }}|{{ 'AB'.isupper() }}|{{ 'a1'.isalnum() }}|{{ ' a b '.rsplit() }}|"
                      "{{ 'a b c'.split(none, 1) }}|{{ 'a b c'.rsplit(none, 1) }}|{{ 'prefix-x'.removeprefix('prefix-') }}|"
                      "{{ 'x.txt'.removesuffix('.txt') }}|{{ 'héllo wörld'.upper() }}|{{ 'AbC'.swapcase() }}|"
                      "{{ s.endswith(('x', 'ld')) }}|{{ 'a\\tb'.split() }}|{{ ''.split(',') }}|{{ ''.split() }}",
    "undefined": "[{{ missing }}][{{ missing ~ 'x' }}][{{ d.nothere }}][{{ messages[5] }}][{{ missing is defined }}]"
                 "[{{ nothing.attr }}][{% for m in missing %}x{% endfor %}][{{ missing|length }}][{{ missing|list }}]"
                 "[{{ missing|join }}][{{ missing|upper }}][{{ missing|trim }}][{{ missing|first }}][{{ 'x' in missing }}]"
                 "[{{ messages[0].nope|default('dflt') }}][{{ missing if missing else 'alt' }}][{{ missing|string }}]",
    "messages_loop": "{% for m in messages %}{{ loop.index }}:{{ m.role|upper }}={{ m['content']|trim }}"
                     "{{ '\\n' if not loop.last }}{% endfor %}",
    "namespace_ops": "{% set ns = namespace(items=[], text='') %}{% for m in messages %}{% set ns.items = ns.items + [m.role] %}"
                     "{% set ns.text = ns.text ~ m.content[:3] %}{% endfor %}{{ ns.items }}{{ ns.text }}",
    "loop_unpack": "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}{% for k, v in {'x': 1, 'y': 2}.items() %}"
                   "{{ k ~ v }}{% endfor %}{% for (a, b), c in [((1, 2), 3)] %}{{ a }}{{ b }}{{ c }}{% endfor %}",
    "attr_item_fallback": "{{ messages[0].role }}|{{ messages.0.content }}|{{ messages[0]['role'] }}|{{ d['get'] is defined }}|"
                          "{{ 'abc'['upper']() }}|{{ people[0].name }}|{{ people[1]['admin'] }}|{{ nested.a.b[1] }}|"
                          "{{ nested['a']['b'][-1] }}",
    "dict_literal_iter": "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% set dd = {'x': [1, 2], 'y': {'z': none}} %}"
                         "{{ dd.y.z }}{{ dd['x'][1] }}{{ dd|tojson }}|{{ {'a': 1, 'a': 2} }}|{{ {1: 'one', 'k': [1]} }}",
    "truthiness": "{% for v in [0, 1, '', 'a', [], [0], {}, {'a': 1}, none, 0.0, 0.5, (), false, true] %}"
                  "{{ 'T' if v else 'F' }}{% endfor %}{{ 'T' if missing else 'F' }}{{ 'T' if ns_like else 'F' }}",
    "loop_over_string_dict": "{% for c in 'héy' %}{{ c }}-{% endfor %}{% for k in d %}{{ k }}{% endfor %}"
                             "{% for x in (1, 2) %}{{ x }}{% endfor %}",
    "in_tuple": "{{ 'user' in ('user', 'system') }}|{{ messages[0].role in ['user'] }}|{{ 'assistant' in messages|map(attribute='role') }}",
    "filter_chains": "{{ (xs|sort)[0] }}|{{ xs|sort|first }}|{{ (s|lower).split()|join('_') }}|{{ s|lower|replace(' ', '')|length }}|"
                     "{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ (messages|last).role }}|"
                     "{{ messages|map(attribute='content')|map('length')|sum }}",
    "set_messages": "{% set messages = messages[1:] %}{{ messages|length }}{% for message in messages %}{{ message.role }}"
                    "{% endfor %}",
    "strings_unicode": "{{ u|length }}|{{ u|upper }}|{{ u[::-1] }}|{{ u|tojson }}|{{ [u] }}|{{ u.split() }}|{{ u|trim|title }}|"
                       "{{ u.strip() }}|{{ u|trim }}|{{ u[2:6] }}|{{ u.find('w') }}|{{ u|list|length }}|{{ u|capitalize }}",
    "generation_like_items": "{% for k, v in nested|items %}{{ k }}:{{ v|tojson }}{% endfor %}",
    "loop_else_flow": "{% for x in [1, 2] %}{% if x == 2 %}{% break %}{% endif %}{% else %}never{% endfor %}|"
                      "{% for x in [1, 2] %}{% continue %}{% else %}after-continue{% endfor %}|"
                      "{% for x in [1] if false %}{% else %}filtered-out{% endfor %}",
    "generators": "{% set g = xs|select('odd') %}{{ 'T' if g else 'F' }}{{ 'T' if xs|select('gt', 10) else 'F' }}|"
                  "{{ g|join(',') }}|{{ g|join(',') }}|{% set m = xs|map('string') %}{{ m|first }}{{ m|list }}|"
                  "{{ (xs|reverse)|list }}|{{ 2 in xs|select('even') }}|{{ xs|select('odd') is sequence }}|"
                  "{{ xs|select('odd') is iterable }}|{{ 'a' if xs|reject('odd') else 'b' }}|{{ (xs|map('string'))[0] }}",
    "sort_attr_multi": "{{ people|sort(attribute='admin,age')|map(attribute='name')|join }}|"
                       "{{ people|sort(attribute='missing')|map(attribute='name')|join }}|{{ n.real }}{{ f.imag }}{{ true.real }}",
    "lazy_generators": "{% set g = n|select('odd') %}{{ 'T' if g else 'F' }}|{% set h = xs|map('upper') %}{{ 'T' if h else 'F' }}|"
                       "{{ nothing|map('upper')|list }}|{{ 0|select|list }}|{{ missing|selectattr('x')|list }}",
    "raise_ok": "{% if messages|length > 5 %}{{ raise_exception('Too many messages: ' ~ messages|length) }}{% endif %}ok",
}

SYNTHETIC_ERRORS = {
    "raise": "{% if messages|length > 1 %}{{ raise_exception('Too many messages: ' ~ messages|length) }}{% endif %}ok",
    "undefined_attr": "x{{ missing.attr }}",
    "undefined_item": "{{ missing[0] }}",
    "undefined_call": "{{ missing() }}",
    "str_plus_int": "{{ 'a' + 1 }}",
    "concat_binds_tighter": "{{ 1 + 2 ~ 3 }}",
    "loop_after_loop": "{% for x in xs %}{% endfor %}{{ loop.index }}",
    "undefined_plus": "{{ missing + 'x' }}",
    "compare_mixed": "{{ 1 < 'a' }}",
    "div_zero": "{{ 1 / 0 }}",
    "floordiv_zero": "{{ 1 // 0 }}",
    "tojson_undefined": "{{ missing|tojson }}",
    "ns_assign_non_ns": "{% set x = 1 %}{% set x.y = 2 %}",
    "unpack_mismatch": "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
    "iterate_int": "{% for x in 5 %}{% endfor %}",
    "method_wrong_type": "{{ xs.startswith('a') }}",
    "in_undefined_str": "{{ missing in 'abc' }}",
    "slice_step_zero": "{{ xs[::0] }}",
    "neg_string": "{{ -s }}",
    "join_non_str": "{{ ', '.join(xs) }}",
    "lazy_generator_consumed": "{% set g = n|select('odd') %}{{ 'T' if g else 'F' }}{{ g|list }}",
    "lazy_generator_first": "{{ xs|map('upper')|first }}",
}

SYNTAX_ERRORS = {
    "unclosed_for": "{% for x in xs %}{{ x }}",
    "unknown_filter": "{{ x|nosuchfilter }}",
    "unknown_test": "{{ x is nosuchtest }}",
    "empty_if": "{% if %}x{% endif %}",
    "unterminated_string": "{{ 'abc }}",
    "stray_endfor": "{% endfor %}",
    "unknown_tag": "{% frobnicate %}",
    "break_outside_loop": "{% break %}",
    "unclosed_var": "{{ x ",
    "unclosed_comment": "{# x ",
    "bad_paren": "{{ (1 }}",
    "bad_assign": "{% set 1 = 2 %}",
    "chained_is": "{{ x is defined is defined }}",
    "else_twice": "{% if x %}a{% else %}b{% else %}c{% endif %}",
    "bad_char": "{{ a ! b }}",
    "unbalanced": "{{ a ) }}",
}

SYNTHETIC_CONTEXT = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Hello there\n"},
                 {"role": "assistant", "content": "Hi!"}],
    "s": "Hello World", "n": 7, "f": 2.5, "xs": [3, 1, 2], "words": ["pear", "Apple", "fig", "apple"],
    "d": {"b": 1, "a": 2}, "nothing": None,
    "nested": {"a": {"b": [1, "two", 3.5], "c": None}, "t": True},
    "people": [{"name": "Al", "age": 30, "admin": True}, {"name": "Bo", "age": 25, "admin": False},
               {"name": "Cy", "age": 41, "admin": True}],
    "u": " héllo wörld — 世界 🙂 \u00a0", "ns_like": {"x": 1},
}

USER = {"role": "user", "content": "Hello, who are you?"}
MESSAGES = {
    "user": [USER],
    "system_user": [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "What is 2+2?"}],
    "multi": [USER, {"role": "assistant", "content": "I am a helpful assistant."}, {"role": "user", "content": "Tell me a joke."}],
    "think": [USER, {"role": "assistant", "content": "<think>\nThe user asks who I am.\n</think>\n\nI am an assistant."},
              {"role": "user", "content": "And what can you do?"}],
    "unicode": [{"role": "user", "content": "  héllo wörld — 世界 🙂\n"}],
    "assistant_first": [{"role": "assistant", "content": "Hi."}, USER],
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]
TOOL_MESSAGES = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "assistant", "content": "It is 21.5 degrees.",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
    {"role": "tool", "content": "{\"temp\": 19}"},
    {"role": "tool", "content": "{\"temp\": 20}"},
]

TOKENS = {
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama31": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen3": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen25": {"eos_token": "<|im_end|>"},
    "chatml": {"eos_token": "<|im_end|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "gemma3": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "mistral_v01": {"bos_token": "<s>", "eos_token": "</s>"},
    "mistral_v03": {"bos_token": "<s>", "eos_token": "</s>"},
    "phi3": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "zephyr": {"bos_token": "<s>", "eos_token": "</s>"},
}


def model_templates():
    return {
        "smollm2": SMOLLM2, "llama3": cached_template("llama3-tokenizer"), "qwen3": cached_template("qwen3-tokenizer"),
        "llama31": LLAMA31, "qwen25": QWEN25, "chatml": CHATML, "gemma": GEMMA, "gemma3": GEMMA3,
        "mistral_v01": MISTRAL_V01, "mistral_v03": MISTRAL_V03, "phi3": PHI3, "zephyr": ZEPHYR,
    }


def model_contexts(name):
    """(case suffix, context) pairs for one model template."""
    out = []
    for mname, msgs in MESSAGES.items():
        for agp in (True, False):
            ctx = {"messages": msgs, "tools": None, "documents": None, "add_generation_prompt": agp, **TOKENS[name]}
            out.append((f"{mname}/agp={int(agp)}", ctx))
    if name == "qwen3":
        for mname in ("user", "think"):
            out.append((f"{mname}/no_think", {"messages": MESSAGES[mname], "tools": None, "add_generation_prompt": True,
                                              "enable_thinking": False, **TOKENS[name]}))
        out.append(("user/think_true", {"messages": MESSAGES["user"], "add_generation_prompt": True,
                                        "enable_thinking": True, **TOKENS[name]}))
    if name in ("qwen3", "qwen25", "llama31"):
        out.append(("tools", {"messages": TOOL_MESSAGES[:3] if name == "llama31" else TOOL_MESSAGES, "tools": TOOLS,
                              "add_generation_prompt": True, **TOKENS[name]}))
        out.append(("tools_system", {"messages": [{"role": "system", "content": "Use tools."}] + TOOL_MESSAGES[:1],
                                     "tools": TOOLS, "add_generation_prompt": True, **TOKENS[name]}))
    if name == "llama31":
        out.append(("date", {"messages": MESSAGES["system_user"], "date_string": "01 Jan 2025",
                             "add_generation_prompt": True, **TOKENS[name]}))
        out.append(("tools_in_system", {"messages": MESSAGES["user"], "tools": TOOLS, "tools_in_user_message": False,
                                        "date_string": "01 Jan 2025", "add_generation_prompt": True, **TOKENS[name]}))
        out.append(("builtin", {"messages": MESSAGES["user"], "builtin_tools": ["code_interpreter", "wolfram_alpha"],
                                "add_generation_prompt": False, **TOKENS[name]}))
    if name == "gemma3":
        parts = [{"role": "system", "content": [{"type": "text", "text": "Sys part."}]},
                 {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  Describe this.  "}]}]
        out.append(("parts", {"messages": parts, "add_generation_prompt": True, **TOKENS[name]}))
        out.append(("bad_content", {"messages": [{"role": "user", "content": 5}], "add_generation_prompt": True,
                                    **TOKENS[name]}))
    out.append(("no_agp_key", {"messages": MESSAGES["multi"], **TOKENS[name]}))
    return out


def render_case(env, text, ctx):
    try:
        return {"expected": env.from_string(text).render(**ctx)}
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"syntax_error": f"{type(e).__name__}: {e}"}
    except SyntaxError as e:  # jinja2 compiles to Python; e.g. break outside a loop fails there
        return {"syntax_error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - the fixture records what jinja2 raised
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = make_env()
    templates, cases = {}, []
    for name, text in model_templates().items():
        templates[name] = text
        for suffix, ctx in model_contexts(name):
            cases.append({"name": f"{name}/{suffix}", "template": name, "context": ctx, **render_case(env, text, ctx)})
    for group in (SYNTHETIC, SYNTHETIC_ERRORS, SYNTAX_ERRORS):
        for name, text in group.items():
            key = f"syn_{name}"
            templates[key] = text
            cases.append({"name": key, "template": key, "context": "synthetic",
                          **render_case(env, text, SYNTHETIC_CONTEXT)})
    generated_by = (f"scripts/regen/jinja_fixture.py (jinja2=={jinja2.__version__}, "
                    f"markupsafe=={importlib.metadata.version('markupsafe')})")

    def dump(x):
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))

    # One template / case per line, so that a regeneration diffs case by case.
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(f'{{"generated_by":{dump(generated_by)},\n"contexts":{{"synthetic":{dump(SYNTHETIC_CONTEXT)}}},\n')
        f.write('"templates":{\n' + ",\n".join(f"{dump(k)}:{dump(v)}" for k, v in templates.items()) + "},\n")
        f.write('"cases":[\n' + ",\n".join(dump(c) for c in cases) + "]}\n")
    kinds = {k: sum(1 for c in cases if k in c) for k in ("expected", "error", "syntax_error")}
    print(f"wrote {OUT}: {len(cases)} cases {kinds}, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
