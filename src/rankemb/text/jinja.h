// A Jinja2 subset interpreter for chat templates (tokenizer_config.json "chat_template", GGUF
// tokenizer.chat_template). Owns lexing, parsing and rendering; the chat code decides which
// variables a template sees. Output is byte for byte what Python jinja2 renders in the environment
// transformers' apply_chat_template uses: ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True) with the loopcontrols extension, transformers' tojson filter and the
// raise_exception / strftime_now globals (fixtures: scripts/regen/jinja_fixture.py).
//
// Supported:
//   syntax    {{ }} {% %} {# #}, whitespace control (-, + on either side), trim_blocks and
//             lstrip_blocks, {% raw %}, \r\n and \r read as \n, one trailing newline dropped.
//   tags      if/elif/else, for/else (tuple targets, `for x in xs if cond`, loop.index/index0/
//             revindex/revindex0/first/last/length/previtem/nextitem/depth/cycle()), break,
//             continue, set (names, tuples, ns.attr, {% set x %}...{% endset %}), with, and
//             {% generation %} (transformers' assistant-mask tag; rendered as its body). Scoping
//             is jinja2's: a set inside a loop body stays in that iteration.
//   exprs     literals (str with Python escapes, int, float, list, tuple, dict, true/false/none),
//             + - * / // % ** ~, unary - +, comparisons (chained), in / not in, and/or/not,
//             `a if c else b`, a.b / a['b'] / a[i] / slices, calls, filters, `is [not]` tests.
//   values    Python semantics: truthiness, str()/repr() (floats as repr, 'quotes', [..], {..}),
//             int vs float arithmetic, code-point string indexing; Undefined prints "" and
//             errors on attribute access, arithmetic and calls, as jinja2's default Undefined.
//   globals   range, namespace, dict, raise_exception, strftime_now.
//   filters   abs capitalize count d default dictsort first float indent int items join last
//             length list lower map max min reject rejectattr replace reverse round select
//             selectattr sort string sum title tojson trim unique upper.
//   tests     boolean callable defined divisibleby eq equalto even false float ge greaterthan gt
//             in integer iterable le lessthan lower lt mapping ne none number odd sameas sequence
//             string true undefined upper.
//   methods   str: capitalize count endswith find index isalnum isalpha isdigit islower isspace
//             isupper join lower lstrip removeprefix removesuffix replace rfind rsplit rstrip split
//             splitlines startswith strip swapcase title upper; dict: get items keys values copy;
//             list: count index copy; numbers: .real .imag.
//   generators map/select/reject/selectattr/rejectattr/unique/items/reverse return single-pass
//             generators as in jinja2 (always true, no len(), consumed by the first loop or join).
// Refused when parsing, with Error(ModelFormat) naming origin:line:col and the construct: macro,
// call, filter blocks, include/import/from/extends/block, autoescape, do, recursive loops, *args /
// **kwargs, filtered block sets, filters and tests outside the lists above, non-ASCII names,
// \N{...} escapes, and anything jinja2 itself rejects (syntax errors, break outside a loop).
// Refused when rendering (Error(ModelFormat)): str % formatting, other str/dict/list methods,
// the lipsum/cycler/joiner globals, storing a namespace or loop inside a namespace.
// Known deviations: ints are 64-bit (overflow is an error); case mapping is Unicode simple case
// mapping ('ß'.upper() stays 'ß'); range() and dict.items()/keys()/values() are lists; generator
// filters do their work at once (an error inside one is kept and raised when it is consumed);
// slicing a literal non-sequence is a TypeError (jinja2's constant folding makes it Undefined).
//
// Render errors (raise_exception, undefined.attr, 'a' + 1, ...) are Error(Input) whose message
// starts "<origin>:<line>:<col>: <PythonErrorName>: ...". Limits keep a hostile template bounded:
// parse nesting <= 100 and syntax-tree depth <= 400 (Error(ModelFormat)); value nesting <= 100,
// and the per-render Limits below (Error(Input)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rankemb::text::jinja {

// Data passed in: an object whose keys are the template's variables (messages, tools,
// add_generation_prompt, bos_token, ...). Insertion order is Python's dict order.
using Value = nlohmann::ordered_json;

struct Limits {
  // Bytes of rendered output, and of any one string value built while rendering.
  std::size_t max_output_bytes = std::size_t{16} << 20;
  // Work: evaluated nodes + loop iterations + elements of lists built or compared.
  std::uint64_t max_steps = 20'000'000;
  // Total bytes of all strings built during one render (bounds memory and time together).
  std::uint64_t max_built_bytes = std::uint64_t{1} << 30;
};

namespace detail {
struct Program;
}

// A parsed template is immutable: render() may be called any number of times, concurrently.
class Template {
 public:
  // Parses the whole template up front; Error(ModelFormat) for syntax errors and for anything
  // outside the subset (see the header comment), naming origin:line:col and the construct.
  static Template parse(std::string_view source, std::string origin = "<template>");

  // Renders with `context` (a JSON object; null = no variables). Error(Input) for render errors and exceeded limits,
  // Error(ModelFormat) for constructs that are only found unsupported while rendering.
  std::string render(const Value& context, const Limits& limits = {}) const;

  const std::string& origin() const;

 private:
  explicit Template(std::shared_ptr<const detail::Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const detail::Program> program_;
};

}  // namespace rankemb::text::jinja
