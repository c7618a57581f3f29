// The Jinja subset interpreter against Python jinja2 (tests/fixtures/text/jinja_renders.json,
// scripts/regen/jinja_fixture.py: real chat templates x message lists, and one synthetic template
// per construct), plus the constructs it refuses and the limits that bound a hostile template.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "common/expect_error.h"
#include "common/test_paths.h"
#include "rankemb/text/jinja.h"
#include "rankemb/util/error.h"

namespace j = rankemb::text::jinja;
using rankemb::Error;
using rankemb::ErrorCode;
using rankemb::test::expect_error;

namespace {

j::Value load_fixture() {
  std::ifstream in(rankemb::test::fixtures_dir() / "text" / "jinja_renders.json");
  EXPECT_TRUE(in.good()) << "run scripts/regen/jinja_fixture.py";
  return j::Value::parse(in);
}

std::string render(std::string_view source, const j::Value& context = j::Value::object(), const j::Limits& limits = {}) {
  return j::Template::parse(source, "test.jinja").render(context, limits);
}

// "TypeError: can only ..." -> "TypeError"
std::string error_kind(const std::string& python_error) { return python_error.substr(0, python_error.find(':')); }

struct Outcome {
  std::string text;
  bool ok = false;
  ErrorCode code = ErrorCode::Other;
  bool at_parse = false;
};

Outcome run_case(const std::map<std::string, j::Template>& parsed, const std::map<std::string, std::string>& parse_errors,
                 const std::string& name, const j::Value& context) {
  Outcome o;
  if (auto it = parse_errors.find(name); it != parse_errors.end()) {
    o.text = it->second, o.code = ErrorCode::ModelFormat, o.at_parse = true;
    return o;
  }
  try {
    o.text = parsed.at(name).render(context);
    o.ok = true;
  } catch (const Error& e) {
    o.text = e.what(), o.code = e.code();
  }
  return o;
}

}  // namespace

TEST(Jinja, MatchesJinja2Renders) {
  j::Value fx = load_fixture();
  std::map<std::string, j::Template> parsed;
  std::map<std::string, std::string> parse_errors;
  for (const auto& [name, text] : fx["templates"].items()) {
    try {
      parsed.emplace(name, j::Template::parse(text.get<std::string>(), name));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
      parse_errors.emplace(name, e.what());
    }
  }
  std::size_t rendered = 0, errors = 0, syntax = 0, mismatches = 0;
  std::map<std::string, std::size_t> per_template;
  for (const auto& c : fx["cases"]) {
    const std::string name = c["name"], tmpl = c["template"];
    ++per_template[tmpl];
    const j::Value& ctx = c["context"].is_string() ? fx["contexts"][c["context"].get<std::string>()] : c["context"];
    Outcome got = run_case(parsed, parse_errors, tmpl, ctx);
    std::string want, why;
    if (c.contains("expected")) {
      ++rendered, want = c["expected"];
      if (!got.ok || got.text != want) why = "render differs";
    } else if (c.contains("error")) {
      ++errors, want = c["error"];
      std::string kind = error_kind(want);
      if (got.ok || got.at_parse || got.code != ErrorCode::Input) why = "expected a render error (Input)";
      else if (got.text.find(kind + ":") == std::string::npos) why = "error kind differs";
      else if (kind == "TemplateError" && got.text.find(want) == std::string::npos) why = "raise_exception message differs";
    } else {
      ++syntax, want = c["syntax_error"];
      if (!got.at_parse) why = "expected a parse error (ModelFormat)";
    }
    if (!why.empty() && ++mismatches <= 12) {
      ADD_FAILURE() << name << ": " << why << "\n template: " << j::Value(fx["templates"][tmpl]).dump()
                    << "\n expected: " << j::Value(want).dump() << "\n got:      " << j::Value(got.text).dump();
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << fx["cases"].size() << " cases";
  EXPECT_GT(rendered, 190u);  // what the regen script promises: real templates x contexts, one per construct
  EXPECT_GT(errors, 25u);
  EXPECT_GT(syntax, 12u);
  // The three templates this interpreter exists for, each over every message list and option.
  for (const char* model : {"smollm2", "llama3", "qwen3"}) EXPECT_GE(per_template[model], 13u) << model;
}

TEST(Jinja, ExactShapes) {
  const char* smollm2 =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  j::Value ctx = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"add_generation_prompt", true}};
  EXPECT_EQ(render(smollm2, ctx),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render("{{ x }}|{{ y }}|{{ z }}", {{"x", 1.0}, {"y", nullptr}, {"z", {1, "a", true}}}), "1.0|None|[1, 'a', True]");
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n"), "  x\n");
  // A template is parsed once and renders any number of times.
  auto t = j::Template::parse("{{ n * 2 }}");
  EXPECT_EQ(t.render({{"n", 2}}), "4");
  EXPECT_EQ(t.render({{"n", 21}}), "42");
  EXPECT_EQ(t.origin(), "<template>");
}

TEST(Jinja, GenerationTagRendersItsBody) {
  // transformers' {% generation %} (assistant-token masks) is its body when not tracking.
  EXPECT_EQ(render("{% for m in ms %}<{% generation %}{{ m }}{% endgeneration %}>{% endfor %}", {{"ms", {"a", "b"}}}),
            "<a><b>");
}

TEST(Jinja, StrftimeNowUsesTheClock) {
  std::string year = render("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
  EXPECT_EQ(render("{{ strftime_now('') }}"), "");
}

TEST(Jinja, RefusesConstructsOutsideTheSubset) {
  const std::pair<const char*, const char*> cases[] = {
      {"{% macro m() %}x{% endmacro %}", "'{% macro %}' is not supported"},
      {"{% include 'x.jinja' %}", "'{% include %}' is not supported"},
      {"{% extends 'base' %}", "'{% extends %}' is not supported"},
      {"{% import 'm' as m %}", "'{% import %}' is not supported"},
      {"{% from 'm' import x %}", "'{% from %}' is not supported"},
      {"{% block b %}{% endblock %}", "'{% block %}' is not supported"},
      {"{% call m() %}{% endcall %}", "'{% call %}' is not supported"},
      {"{% filter upper %}x{% endfilter %}", "'{% filter %}' is not supported"},
      {"{% autoescape true %}{% endautoescape %}", "'{% autoescape %}' is not supported"},
      {"{% do xs.append(1) %}", "'{% do %}' is not supported"},
      {"{% for x in xs recursive %}{% endfor %}", "recursive loops"},
      {"{{ x|safe }}", "filter 'safe' is not supported"},
      {"{{ x|batch(2) }}", "filter 'batch' is not supported"},
      {"{{ x|frobnicate }}", "No filter named 'frobnicate'"},
      {"{{ x is escaped }}", "test 'escaped' is not supported"},
      {"{{ x is frobnicated }}", "No test named 'frobnicated'"},
      {"{{ f(*args) }}", "*args and **kwargs"},
      {"{% set x | upper %}a{% endset %}", "filtered block set"},
      {"{{ caf\xc3\xa9 }}", "non-ASCII names"},
      {"{{ '\\N{BULLET}' }}", "\\N{...} escapes"},
      {"{% break %}", "'break' outside loop"},
      {"{% frobnicate %}", "unknown tag 'frobnicate'"},
      {"{{ xs[1:2, 3] }}", "slices inside a subscript tuple"},
      {"{% set ns.a %}x{% endset %}", "block set of a namespace attribute"},
  };
  for (const auto& c : cases)  // (not a structured binding: clang 14 cannot capture one)
    expect_error([&] { (void)j::Template::parse(c.first, "t.jinja"); }, ErrorCode::ModelFormat, {"t.jinja:1:", c.second});
}

TEST(Jinja, ParseErrorsNameLineAndColumn) {
  expect_error([] { (void)j::Template::parse("line one\n{% if x %}\n  {{ x + }}\n{% endif %}", "chat.jinja"); },
               ErrorCode::ModelFormat, {"chat.jinja:3:", "unexpected 'end of print statement'"});
  expect_error([] { (void)j::Template::parse("{% for x in xs %}", "c"); }, ErrorCode::ModelFormat,
               {"c:1:", "'endfor' or 'else'"});
  expect_error([] { (void)j::Template::parse("ok\xff", "c"); }, ErrorCode::ModelFormat, "not valid UTF-8");
}

TEST(Jinja, RenderErrorsAreInputErrorsWithTheLine) {
  const char* t = "{% for m in messages %}\n{% if m.role == 'system' %}\n{{ raise_exception('no system role') }}\n{% endif %}{% endfor %}";
  j::Value ctx = {{"messages", {{{"role", "system"}, {"content", "x"}}}}};
  expect_error([&] { render(t, ctx); }, ErrorCode::Input, {"test.jinja:3:", "TemplateError: no system role"});
  expect_error([] { render("{{ missing.attr }}"); }, ErrorCode::Input, "UndefinedError: 'missing' is undefined");
  expect_error([] { render("{{ [1].startswith('a') }}"); }, ErrorCode::Input, "'list object' has no attribute 'startswith'");
  expect_error([] { render("{{ 1 + 'a' }}"); }, ErrorCode::Input, "TypeError");
  expect_error([] { render("{{ xs.append(1) }}", {{"xs", {1}}}); }, ErrorCode::Input, "SecurityError");
  // Found unsupported only while rendering: ModelFormat, as at parse time.
  expect_error([] { render("{{ '%s' % 1 }}"); }, ErrorCode::ModelFormat, "str % formatting");
  expect_error([] { render("{{ 'a'.format() }}"); }, ErrorCode::ModelFormat, "str.format()");
  expect_error([] { render("{{ cycler(1, 2) }}"); }, ErrorCode::ModelFormat, "cycler()");
}

TEST(Jinja, ChecksTheContext) {
  auto t = j::Template::parse("{{ x }}");
  EXPECT_EQ(t.render(nullptr), "");
  expect_error([&] { t.render(j::Value::array()); }, ErrorCode::Input, "must be a JSON object");
  expect_error([&] { t.render({{"x", std::string("bad\xff")}}); }, ErrorCode::Input, "invalid UTF-8");
  j::Value deep = 1;
  for (int i = 0; i < 150; ++i) deep = j::Value::array({deep});
  expect_error([&] { t.render({{"x", deep}}); }, ErrorCode::Input, "nested more than");
}

TEST(Jinja, LimitsBoundHostileTemplates) {
  // Work: nested loops run out of steps instead of hanging (the default budget is 100x this one).
  j::Limits few_steps{.max_steps = 200'000};
  expect_error([&] { render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {}, few_steps); },
               ErrorCode::Input, "LimitError: more than 200000 evaluation steps");
  expect_error([&] { render("{{ range(50000)|map('string')|unique|list|length }}", {}, few_steps); }, ErrorCode::Input,
               "evaluation steps");
  expect_error([] { render("{% for i in range(1000000) %}{% endfor %}"); }, ErrorCode::Input, "Range too big");
  // Output and string sizes.
  j::Limits small{.max_output_bytes = 1000, .max_steps = 1'000'000, .max_built_bytes = 1 << 20};
  expect_error([&] { render("{% for i in range(100) %}{{ 'x' * 20 }}{% endfor %}", {}, small); }, ErrorCode::Input,
               "exceeds the limit of 1000");
  expect_error([&] { render("{{ 'x' * 100000 }}", {}, small); }, ErrorCode::Input, "exceeds the limit of 1000");
  expect_error([&] { render("{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", {}, small); },
               ErrorCode::Input, "LimitError");
  expect_error([&] { render("{% for i in range(5000) %}{% set s = 'y' * 900 %}{% endfor %}", {}, small); }, ErrorCode::Input,
               "bytes of strings built");
  // Nesting: parser recursion, syntax-tree depth, value depth.
  expect_error([] { (void)j::Template::parse("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}"); },
               ErrorCode::ModelFormat, "nested more than 100 levels");
  std::string chain = "{{ x", filters = "{{ x";
  for (int i = 0; i < 1000; ++i) chain += ".a", filters += "|upper";
  expect_error([&] { (void)j::Template::parse(chain + " }}"); }, ErrorCode::ModelFormat, "nested more than 400 deep");
  expect_error([&] { (void)j::Template::parse(filters + " }}"); }, ErrorCode::ModelFormat, "nested more than 400 deep");
  expect_error([] { render("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"); },
               ErrorCode::Input, "values nested more than 100 deep");
  expect_error([] { render("{% set ns = namespace() %}{% set ns.me = ns %}"); }, ErrorCode::ModelFormat,
               "storing a namespace");
  // Within the limits nothing fires.
  EXPECT_EQ(render("{% for i in range(3) %}{{ 'x' * 2 }}{% endfor %}", {}, small), "xxxxxx");
}
