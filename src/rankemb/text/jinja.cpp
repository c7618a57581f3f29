// Jinja2 subset interpreter (jinja.h lists the subset and the limits). In file order: values with
// their Python semantics (truthiness, ==/<, arithmetic, str()/repr(), tojson), the lexer (jinja2's
// lexer.py rules under trim_blocks + lstrip_blocks), the recursive-descent parser (jinja2's
// parser.py grammar and precedence), the tree-walking renderer, and the tables of filters, tests
// and methods. Strings are valid UTF-8 throughout (templates and contexts are checked on entry),
// and Python's code-point indexing is done on decoded UTF-32 where it matters.
#include "rankemb/text/jinja.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <numeric>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text::jinja {
namespace {

namespace uni = rankemb::unicode;

constexpr int kMaxParseNesting = 100;
constexpr int kMaxTreeDepth = 400;
constexpr int kMaxValueDepth = 100;
constexpr std::int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE

// ---------------------------------------------------------------------------------------------
// Values

enum class K : std::uint8_t { Undef, None, Bool, Int, Float, Str, List, Tuple, Dict, Ns, Loop, Fn, Gen };

struct V;
using VList = std::vector<V>;
using VDict = std::vector<std::pair<V, V>>;  // insertion order, like a Python dict
using StrP = std::shared_ptr<const std::string>;
struct LoopInfo;
struct Fn;
struct GenState;

struct V {
  K k = K::Undef;
  int depth = 0;      // container nesting (bounded by kMaxValueDepth)
  bool refs = false;  // is or holds a namespace or loop: must not go into a namespace (no cycles)
  std::variant<std::monostate, bool, std::int64_t, double, StrP, std::shared_ptr<const VList>,
               std::shared_ptr<VDict>, std::shared_ptr<LoopInfo>, std::shared_ptr<const Fn>,
               std::shared_ptr<GenState>>
      p;
  const std::string& s() const { return *std::get<StrP>(p); }
  const VList& l() const { return *std::get<std::shared_ptr<const VList>>(p); }
  VDict& d() const { return *std::get<std::shared_ptr<VDict>>(p); }  // Dict (frozen) or Ns
  LoopInfo& loop() const { return *std::get<std::shared_ptr<LoopInfo>>(p); }
  const Fn& fn() const { return *std::get<std::shared_ptr<const Fn>>(p); }
  GenState& gen() const { return *std::get<std::shared_ptr<GenState>>(p); }
  std::int64_t i() const { return k == K::Bool ? std::get<bool>(p) : std::get<std::int64_t>(p); }
  double f() const { return k == K::Float ? std::get<double>(p) : static_cast<double>(i()); }
};

struct LoopInfo {
  std::shared_ptr<const VList> items;
  std::size_t i = 0;
};
// What jinja2's generator filters (map, select, unique, ...) return: single pass, always true,
// no len(), not subscriptable.
struct GenState {
  VList items;
  std::size_t pos = 0;
  std::string error;  // what the filter raised after `items`: raised again when consumption gets there
};
struct Fn {
  std::string name;  // a global ("range") or a method name ("split")
  V self;            // the receiver of a method
  bool global = false;
};

// The render in progress on this thread, for the budget checks deep inside value operations.
struct Run {
  const Limits* lim = nullptr;
  std::uint64_t steps = 0, built = 0;
};
thread_local Run* g_run = nullptr;

template <typename... A>
[[noreturn]] void raise(std::string_view kind, fmt::format_string<A...> f, A&&... a) {
  fail(ErrorCode::Input, "{}: {}", kind, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
[[noreturn]] void unsupported(fmt::format_string<A...> f, A&&... a) {
  fail(ErrorCode::ModelFormat, "{} is not supported by this Jinja subset", fmt::format(f, std::forward<A>(a)...));
}

void charge(std::uint64_t n = 1) {
  if (g_run && (g_run->steps += n) > g_run->lim->max_steps)
    raise("LimitError", "more than {} evaluation steps", g_run->lim->max_steps);
}
void check_len(std::size_t n) {
  if (g_run && n > g_run->lim->max_output_bytes)
    raise("LimitError", "a string of {} bytes exceeds the limit of {}", n, g_run->lim->max_output_bytes);
}
void charge_bytes(std::size_t n) {
  check_len(n);
  if (g_run && (g_run->built += n) > g_run->lim->max_built_bytes)
    raise("LimitError", "more than {} bytes of strings built", g_run->lim->max_built_bytes);
}

V undef(std::string why) {
  V v;
  v.p = std::make_shared<const std::string>(std::move(why));
  return v;
}
template <typename T>
V scalar(K k, T x) {
  V v;
  v.k = k;
  v.p = x;
  return v;
}
V none() { return scalar(K::None, std::monostate{}); }
V boolean(bool b) { return scalar(K::Bool, b); }
V integer(std::int64_t i) { return scalar(K::Int, i); }
V real(double f) { return scalar(K::Float, f); }
V str(std::string s) {
  charge_bytes(s.size());
  return scalar(K::Str, std::make_shared<const std::string>(std::move(s)));
}
void take_child(V& parent, const V& child) {
  parent.depth = std::max(parent.depth, child.depth + 1);
  parent.refs = parent.refs || child.refs;
}
void check_depth(const V& v) {
  if (v.depth > kMaxValueDepth) raise("LimitError", "values nested more than {} deep", kMaxValueDepth);
}
V list(VList items, K k = K::List) {
  charge(items.size());
  V v = scalar(k, std::monostate{});
  v.depth = 1;
  for (const V& x : items) take_child(v, x);
  check_depth(v);
  v.p = std::make_shared<const VList>(std::move(items));
  return v;
}
V dict(VDict items, K k = K::Dict) {
  charge(items.size());
  V v = scalar(k, std::monostate{});
  v.depth = 1;
  v.refs = k == K::Ns;
  for (const auto& [key, x] : items) take_child(v, key), take_child(v, x);
  check_depth(v);
  v.p = std::make_shared<VDict>(std::move(items));
  return v;
}
V bound(const V& self, std::string_view name, bool global = false) {
  V v = scalar(K::Fn, std::make_shared<const Fn>(Fn{std::string(name), self, global}));
  v.refs = self.refs;
  return v;
}

V generator(VList items) {
  V v = list(std::move(items));  // depth and refs as for a list
  v.k = K::Gen;
  v.p = std::make_shared<GenState>(GenState{v.l(), 0});
  return v;
}

// Runs a generator filter's work now but keeps jinja2's laziness for its errors: an Input error
// is stored and raised only if the generator is consumed past the items made before it.
template <typename F>
V lazily(F&& produce) {
  VList out;
  std::string error;
  try {
    produce(out);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Input || e.message().starts_with("LimitError")) throw;
    error = e.message();
  }
  V g = generator(std::move(out));
  g.gen().error = std::move(error);
  return g;
}
[[noreturn]] void gen_error(const GenState& g) { fail(ErrorCode::Input, "{}", g.error); }

std::string undef_why(const V& u) {
  const auto* p = std::get_if<StrP>(&u.p);
  return p ? **p : "value is undefined";
}
[[noreturn]] void undefined_error(const V& u) { raise("UndefinedError", "{}", undef_why(u)); }

std::string_view type_name(const V& v) {
  static constexpr std::string_view kNames[] = {"Undefined", "NoneType", "bool",      "int",         "float",
                                                "str",       "list",     "tuple",     "dict",        "Namespace",
                                                "LoopContext", "method", "generator"};
  return kNames[static_cast<int>(v.k)];
}
bool is_num(const V& v) { return v.k == K::Bool || v.k == K::Int || v.k == K::Float; }
bool is_intlike(const V& v) { return v.k == K::Bool || v.k == K::Int; }
bool is_seq(const V& v) { return v.k == K::List || v.k == K::Tuple; }

bool truthy(const V& v) {
  switch (v.k) {
    case K::Undef:
    case K::None: return false;
    case K::Bool:
    case K::Int: return v.i() != 0;
    case K::Float: return v.f() != 0.0;
    case K::Str: return !v.s().empty();
    case K::List:
    case K::Tuple: return !v.l().empty();
    case K::Dict: return !v.d().empty();
    default: return true;
  }
}

std::u32string u32(std::string_view s) { return uni::to_u32(s); }
std::string u8(std::u32string_view s) { return uni::to_utf8(s); }
std::size_t cp_len(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

bool eq(const V& a, const V& b);
const V* dict_get(const VDict& d, const V& key) {
  charge(d.size());
  for (const auto& [k, v] : d) {
    if (eq(k, key)) return &v;
  }
  return nullptr;
}
const V* dict_get(const VDict& d, std::string_view key) {
  for (const auto& [k, v] : d) {
    if (k.k == K::Str && k.s() == key) return &v;
  }
  return nullptr;
}
void dict_set(VDict& d, V key, V value) {
  for (auto& [k, v] : d) {
    if (eq(k, key)) {
      v = std::move(value);
      return;
    }
  }
  d.emplace_back(std::move(key), std::move(value));
}

bool eq(const V& a, const V& b) {
  charge();
  if (is_num(a) && is_num(b)) return (a.k == K::Float || b.k == K::Float) ? a.f() == b.f() : a.i() == b.i();
  if (a.k != b.k) return false;
  switch (a.k) {
    case K::Undef:
    case K::None: return true;
    case K::Str: return a.s() == b.s();
    case K::List:
    case K::Tuple: return std::equal(a.l().begin(), a.l().end(), b.l().begin(), b.l().end(), eq);
    case K::Dict:
      return a.d().size() == b.d().size() && std::all_of(a.d().begin(), a.d().end(), [&](const auto& kv) {
               const V* other = dict_get(b.d(), kv.first);
               return other && eq(kv.second, *other);
             });
    case K::Ns: return &a.d() == &b.d();
    case K::Loop: return &a.loop() == &b.loop();
    case K::Gen: return &a.gen() == &b.gen();
    default: return &a.fn() == &b.fn();
  }
}

// Python's a < b (TypeError for unorderable types, UndefinedError for Undefined).
bool lt(const V& a, const V& b) {
  charge();
  if (a.k == K::Undef || b.k == K::Undef) undefined_error(a.k == K::Undef ? a : b);
  if (is_num(a) && is_num(b)) return (a.k == K::Float || b.k == K::Float) ? a.f() < b.f() : a.i() < b.i();
  if (a.k == K::Str && b.k == K::Str) return a.s() < b.s();
  if (a.k == b.k && is_seq(a)) {
    const VList &x = a.l(), &y = b.l();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!eq(x[i], y[i])) return lt(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  raise("TypeError", "'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b));
}
bool orderable(const V& a, const V& b) {
  return (is_num(a) && is_num(b)) || (a.k == b.k && (a.k == K::Str || is_seq(a)));
}
bool compare(std::string_view op, const V& a, const V& b);

// ---- str() and repr()

std::string py_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);  // shortest round trip
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  std::string out = sci[0] == '-' ? "-" : "";
  if (sci[0] == '-') sci.remove_prefix(1);
  std::size_t e = sci.find('e');
  std::string digits(sci.substr(0, e));
  if (digits.size() > 1) digits.erase(1, 1);
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  int decpt = exp + 1, nd = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {  // Python's repr switches to exponents outside this range
    if (decpt <= 0) return out + "0." + std::string(-decpt, '0') + digits;
    if (decpt >= nd) return out + digits + std::string(decpt - nd, '0') + ".0";
    return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  out += digits.substr(0, 1) + (nd > 1 ? "." + digits.substr(1) : "");
  return out + fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
}

bool py_printable(char32_t c) {
  if (c < 0x7f) return c >= 0x20;
  std::string_view cat = uni::category_code(c);
  return c != 0x7f && cat[0] != 'C' && cat != "Zl" && cat != "Zp" && cat != "Zs";
}
void repr_str(std::string& out, std::string_view s) {
  char q = (s.find('\'') != s.npos && s.find('"') == s.npos) ? '"' : '\'';
  out += q;
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t c = uni::next_codepoint(s, pos);
    if (c == static_cast<char32_t>(q) || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (py_printable(c)) uni::append_utf8(out, c);
    else if (c <= 0xff) out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    else if (c <= 0xffff) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
  }
  out += q;
}

void repr_to(std::string& out, const V& v);
void repr_dict(std::string& out, const VDict& d) {
  out += '{';
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (i) out += ", ";
    repr_to(out, d[i].first);
    out += ": ";
    repr_to(out, d[i].second);
  }
  out += '}';
}
void repr_to(std::string& out, const V& v) {
  charge();
  switch (v.k) {
    case K::Undef: out += "Undefined"; break;
    case K::None: out += "None"; break;
    case K::Bool: out += v.i() ? "True" : "False"; break;
    case K::Int: out += std::to_string(v.i()); break;
    case K::Float: out += py_float(v.f()); break;
    case K::Str: repr_str(out, v.s()); break;
    case K::List:
    case K::Tuple:
      out += v.k == K::List ? '[' : '(';
      for (std::size_t i = 0; i < v.l().size(); ++i) {
        if (i) out += ", ";
        repr_to(out, v.l()[i]);
      }
      out += v.k == K::List ? "]" : v.l().size() == 1 ? ",)" : ")";
      break;
    case K::Dict: repr_dict(out, v.d()); break;
    case K::Ns: out += "<Namespace ", repr_dict(out, v.d()), out += '>'; break;
    case K::Loop: out += fmt::format("<LoopContext {}/{}>", v.loop().i + 1, v.loop().items->size()); break;
    case K::Fn: out += fmt::format("<built-in method {}>", v.fn().name); break;
    case K::Gen: out += "<generator object>"; break;
  }
  check_len(out.size());
}
void str_to(std::string& out, const V& v) {
  if (v.k == K::Str) out += v.s();
  else if (v.k != K::Undef) repr_to(out, v);
  check_len(out.size());
}
std::string py_str(const V& v) {
  std::string out;
  str_to(out, v);
  return out;
}
std::string py_repr(const V& v) {
  std::string out;
  repr_to(out, v);
  return out;
}

// ---- arithmetic

std::int64_t int_op(char op, std::int64_t x, std::int64_t y) {
  std::int64_t r = 0;
  bool overflow = false;
  if (op == '+') overflow = __builtin_add_overflow(x, y, &r);
  else if (op == '-') overflow = __builtin_sub_overflow(x, y, &r);
  else if (op == '*') overflow = __builtin_mul_overflow(x, y, &r);
  else if (y == 0) raise("ZeroDivisionError", "integer division or modulo by zero");
  else if (y == -1) overflow = op == 'f' && x == INT64_MIN, r = (op == 'f' && !overflow) ? -x : 0;
  else if (op == 'f') r = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));
  else r = x % y, r += (r != 0 && ((r < 0) != (y < 0))) ? y : 0;
  if (overflow) raise("OverflowError", "integer result does not fit in 64 bits");
  return r;
}
double float_op(char op, double x, double y) {
  if (op == '+') return x + y;
  if (op == '-') return x - y;
  if (op == '*') return x * y;
  if (y == 0) raise("ZeroDivisionError", "float {} by zero", op == 'f' ? "floor division" : "modulo");
  double mod = std::fmod(x, y), div = (x - mod) / y;  // CPython's float_divmod
  if (mod != 0 && ((y < 0) != (mod < 0))) mod += y, div -= 1.0;
  if (mod == 0) mod = std::copysign(0.0, y);
  if (op == '%') return mod;
  if (div == 0) return std::copysign(0.0, x / y);
  double floordiv = std::floor(div);
  return div - floordiv > 0.5 ? floordiv + 1.0 : floordiv;
}
V power(const V& a, const V& b) {
  if (is_intlike(a) && is_intlike(b) && b.i() >= 0) {
    std::int64_t base = a.i(), e = b.i(), r = 1;
    for (; e > 0; e >>= 1) {
      if (e & 1) r = int_op('*', r, base);
      if (e > 1) base = int_op('*', base, base);
    }
    return integer(r);
  }
  double x = a.f(), y = b.f();
  if (x == 0 && y < 0) raise("ZeroDivisionError", "0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y)) unsupported("a complex power ({} ** {})", py_float(x), py_float(y));
  return real(std::pow(x, y));
}
V num_op(std::string_view op, const V& a, const V& b) {
  if (op == "/") {
    if (b.f() == 0) raise("ZeroDivisionError", "division by zero");
    return real(a.f() / b.f());
  }
  if (op == "**") return power(a, b);
  char c = op == "//" ? 'f' : op[0];
  if (a.k == K::Float || b.k == K::Float) return real(float_op(c, a.f(), b.f()));
  return integer(int_op(c, a.i(), b.i()));
}
V concat(const V& a, const V& b) {
  if (a.k == K::Str || is_seq(a)) {
    if (b.k != a.k)
      raise("TypeError", "can only concatenate {} (not \"{}\") to {}", type_name(a), type_name(b), type_name(a));
    if (a.k == K::Str) return check_len(a.s().size() + b.s().size()), str(a.s() + b.s());
    VList r = a.l();
    r.insert(r.end(), b.l().begin(), b.l().end());
    return list(std::move(r), a.k);
  }
  raise("TypeError", "unsupported operand type(s) for +: '{}' and '{}'", type_name(a), type_name(b));
}
V repeat(const V& a, const V& b) {
  const V& seq = is_intlike(a) ? b : a;
  const V& count_v = is_intlike(a) ? a : b;
  if (!is_intlike(count_v) || !(seq.k == K::Str || is_seq(seq)))
    raise("TypeError", "unsupported operand type(s) for *: '{}' and '{}'", type_name(a), type_name(b));
  std::size_t count = static_cast<std::size_t>(std::max<std::int64_t>(0, count_v.i()));
  std::size_t unit = seq.k == K::Str ? seq.s().size() : seq.l().size();
  if (unit && count > (std::size_t{1} << 40) / unit) raise("LimitError", "sequence repetition too large");
  if (seq.k == K::Str) {
    check_len(unit * count);
    std::string r;
    for (std::size_t i = 0; i < count; ++i) r += seq.s();
    return str(std::move(r));
  }
  charge(unit * count);
  VList r;
  for (std::size_t i = 0; i < count; ++i) r.insert(r.end(), seq.l().begin(), seq.l().end());
  return list(std::move(r), seq.k);
}
V arith(std::string_view op, const V& a, const V& b) {
  if (op == "~") return str(py_str(a) + py_str(b));
  if (a.k == K::Undef || b.k == K::Undef) undefined_error(a.k == K::Undef ? a : b);
  if (is_num(a) && is_num(b)) return num_op(op, a, b);
  if (op == "+") return concat(a, b);
  if (op == "*") return repeat(a, b);
  if (op == "%" && a.k == K::Str) unsupported("printf-style str % formatting");
  raise("TypeError", "unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b));
}
V unary(bool neg, const V& a) {
  if (a.k == K::Undef) undefined_error(a);
  if (a.k == K::Float) return real(neg ? -a.f() : a.f());
  if (!is_intlike(a)) raise("TypeError", "bad operand type for unary {}: '{}'", neg ? '-' : '+', type_name(a));
  return integer(neg ? int_op('-', 0, a.i()) : a.i());
}

// ---- containers

VList iterate(const V& v) {
  switch (v.k) {
    case K::List:
    case K::Tuple: return charge(v.l().size()), v.l();
    case K::Dict: {
      VList keys;
      for (const auto& kv : v.d()) keys.push_back(kv.first);
      return charge(keys.size()), keys;
    }
    case K::Str: {
      VList chars;
      for (std::size_t pos = 0, start = 0; pos < v.s().size(); start = pos) {
        uni::next_codepoint(v.s(), pos);
        chars.push_back(str(v.s().substr(start, pos - start)));
      }
      return charge(chars.size()), chars;
    }
    case K::Gen: {
      GenState& g = v.gen();
      VList rest(g.items.begin() + static_cast<std::ptrdiff_t>(g.pos), g.items.end());
      g.pos = g.items.size();
      if (!g.error.empty()) gen_error(g);
      return rest;
    }
    case K::Undef: return {};
    default: raise("TypeError", "'{}' object is not iterable", type_name(v));
  }
}
std::int64_t py_len(const V& v) {
  switch (v.k) {
    case K::Str: return static_cast<std::int64_t>(cp_len(v.s()));
    case K::List:
    case K::Tuple: return static_cast<std::int64_t>(v.l().size());
    case K::Dict: return static_cast<std::int64_t>(v.d().size());
    case K::Undef: return 0;
    default: raise("TypeError", "object of type '{}' has no len()", type_name(v));
  }
}
bool contains(const V& container, const V& item) {
  switch (container.k) {
    case K::Str:
      if (item.k != K::Str)
        raise("TypeError", "'in <string>' requires string as left operand, not {}", type_name(item));
      return container.s().find(item.s()) != std::string::npos;
    case K::List:
    case K::Tuple:
      return std::any_of(container.l().begin(), container.l().end(), [&](const V& x) { return eq(x, item); });
    case K::Dict: return dict_get(container.d(), item) != nullptr;
    case K::Gen:
      for (GenState& g = container.gen(); g.pos < g.items.size();)
        if (eq(g.items[g.pos++], item)) return true;
      if (!container.gen().error.empty()) gen_error(container.gen());
      return false;
    case K::Undef: return false;
    default: raise("TypeError", "argument of type '{}' is not iterable", type_name(container));
  }
}
bool compare(std::string_view op, const V& a, const V& b) {
  if (op == "==") return eq(a, b);
  if (op == "!=") return !eq(a, b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  if (a.k != K::Undef && b.k != K::Undef && !orderable(a, b))
    raise("TypeError", "'{}' not supported between instances of '{}' and '{}'", op, type_name(a), type_name(b));
  if (op == "<") return lt(a, b);
  if (op == ">") return lt(b, a);
  if (op == "<=") return lt(a, b) || eq(a, b);
  return lt(b, a) || eq(a, b);
}

// Python's slice.indices(): the positions a[start:stop:step] visits.
std::vector<std::size_t> slice_positions(std::int64_t n, const V* start, const V* stop, const V* step) {
  auto get = [](const V* v) {
    if (!v || v->k == K::None) return std::optional<std::int64_t>{};
    if (!is_intlike(*v)) raise("TypeError", "slice indices must be integers or None");
    return std::optional<std::int64_t>{v->i()};
  };
  std::int64_t st = get(step).value_or(1);
  if (st == 0) raise("ValueError", "slice step cannot be zero");
  auto clamp = [&](std::optional<std::int64_t> x, std::int64_t dflt) {
    if (!x) return dflt;
    std::int64_t v = *x;
    if (v < 0) v = std::max<std::int64_t>(v + n, st < 0 ? -1 : 0);
    else if (v >= n) v = st < 0 ? n - 1 : n;
    return v;
  };
  std::int64_t b = clamp(get(start), st < 0 ? n - 1 : 0), e = clamp(get(stop), st < 0 ? -1 : n);
  std::vector<std::size_t> out;
  for (std::int64_t i = b; st > 0 ? i < e : i > e;) {
    out.push_back(static_cast<std::size_t>(i));
    if (__builtin_add_overflow(i, st, &i)) break;
  }
  charge(out.size());
  return out;
}
V slice(const V& obj, const V* start, const V* stop, const V* step) {
  if (obj.k == K::Undef) undefined_error(obj);
  if (obj.k == K::Str) {
    std::u32string u = u32(obj.s()), r;
    for (std::size_t i : slice_positions(static_cast<std::int64_t>(u.size()), start, stop, step)) r += u[i];
    return str(u8(r));
  }
  // jinja2 compiles slices to plain Python subscripts (no undefined fallback).
  if (obj.k == K::Dict) raise("TypeError", "unhashable type: 'slice'");
  if (!is_seq(obj)) raise("TypeError", "'{}' object is not subscriptable", type_name(obj));
  VList r;
  for (std::size_t i : slice_positions(static_cast<std::int64_t>(obj.l().size()), start, stop, step))
    r.push_back(obj.l()[i]);
  return list(std::move(r), obj.k);
}

bool has_word(std::string_view words, std::string_view w) {  // `words` is space-separated
  for (std::size_t p = words.find(w); !w.empty() && p != std::string_view::npos; p = words.find(w, p + 1)) {
    if ((p == 0 || words[p - 1] == ' ') && (p + w.size() == words.size() || words[p + w.size()] == ' ')) return true;
  }
  return false;
}
bool has_method(const V& obj, std::string_view name) {
  static constexpr std::string_view kStr =
      " capitalize casefold center count encode endswith expandtabs find format format_map index isalnum isalpha "
      "isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join ljust lower "
      "lstrip maketrans partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split "
      "splitlines startswith strip swapcase title translate upper zfill ";
  static constexpr std::string_view kDict = " clear copy fromkeys get items keys pop popitem setdefault update values ";
  static constexpr std::string_view kList = " append clear copy count extend index insert pop remove reverse sort ";
  std::string_view names = obj.k == K::Str ? kStr : obj.k == K::Dict ? kDict : obj.k == K::List ? kList
                           : obj.k == K::Tuple                       ? " count index "
                                                                     : "";
  return has_word(names, name);
}
std::string owner(const V& obj) { return obj.k == K::None ? "'None'" : fmt::format("'{} object'", type_name(obj)); }

V loop_attr(const V& lv, std::string_view name) {
  const LoopInfo& L = lv.loop();
  auto i = static_cast<std::int64_t>(L.i), n = static_cast<std::int64_t>(L.items->size());
  if (name == "index") return integer(i + 1);
  if (name == "index0") return integer(i);
  if (name == "revindex") return integer(n - i);
  if (name == "revindex0") return integer(n - i - 1);
  if (name == "first") return boolean(i == 0);
  if (name == "last") return boolean(i == n - 1);
  if (name == "length") return integer(n);
  if (name == "depth" || name == "depth0") return integer(name == "depth");
  if (name == "previtem") return i > 0 ? (*L.items)[L.i - 1] : undef("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? (*L.items)[L.i + 1] : undef("there is no next item");
  if (name == "cycle" || name == "changed") return bound(lv, name);
  return undef(fmt::format("'LoopContext object' has no attribute '{}'", name));
}

// jinja2's sandboxed getattr (a.b): Python attribute (methods) first, then the item.
V getattr(const V& obj, std::string_view name) {
  if (obj.k == K::Undef) undefined_error(obj);
  if (obj.k == K::Loop) return loop_attr(obj, name);
  if (has_method(obj, name)) return bound(obj, name);
  if (is_num(obj) && (name == "real" || name == "imag")) {
    if (obj.k == K::Float) return real(name == "real" ? obj.f() : 0.0);
    return integer(name == "real" ? obj.i() : 0);
  }
  if (obj.k == K::Dict || obj.k == K::Ns) {
    if (const V* v = dict_get(obj.d(), name)) return *v;
  }
  return undef(fmt::format("{} has no attribute '{}'", owner(obj), name));
}
// jinja2's getitem (a[b]): the item first, then for a string key the attribute.
V getitem(const V& obj, const V& key) {
  if (obj.k == K::Undef) undefined_error(obj);
  if (obj.k == K::Dict) {
    if (const V* v = dict_get(obj.d(), key)) return *v;
  } else if ((is_seq(obj) || obj.k == K::Str) && is_intlike(key)) {
    std::int64_t n = py_len(obj), i = key.i() < 0 ? key.i() + n : key.i();
    if (i >= 0 && i < n) {
      auto at = static_cast<std::size_t>(i);
      return obj.k == K::Str ? str(u8(std::u32string(1, u32(obj.s())[at]))) : obj.l()[at];
    }
  }
  if (key.k == K::Str) return getattr(obj, key.s());
  return undef(fmt::format("{} has no element {}", owner(obj), py_repr(key)));
}

// ---- tojson (transformers' json.dumps(x, ensure_ascii, indent, separators, sort_keys))

struct JsonOpts {
  bool ascii = false, sort_keys = false, pretty = false;
  std::string indent, item_sep = ", ", key_sep = ": ";
};
void json_str(std::string& out, std::string_view s, bool ascii) {
  out += '"';
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t start = pos;
    char32_t c = uni::next_codepoint(s, pos);
    static constexpr std::string_view kShort = "\"\"\\\\\bb\ff\nn\rr\tt";
    std::size_t k = c < 0x80 ? kShort.find(static_cast<char>(c)) : std::string_view::npos;
    if (k != std::string_view::npos && k % 2 == 0) out += '\\', out += kShort[k + 1];
    else if (c < 0x20 || (ascii && c >= 0x7f && c <= 0xffff)) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else if (ascii && c > 0xffff)
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
    else out.append(s.substr(start, pos - start));
  }
  out += '"';
}
void json_to(std::string& out, const V& v, const JsonOpts& o, int level);
void json_newline(std::string& out, const JsonOpts& o, int level) {
  if (!o.pretty) return;
  out += '\n';
  for (int i = 0; i < level; ++i) out += o.indent;
}
std::string json_key(const V& k) {
  if (k.k == K::Str) return k.s();
  if (k.k == K::Bool) return k.i() ? "true" : "false";
  if (k.k == K::None) return "null";
  if (k.k == K::Int || k.k == K::Float) return py_str(k);
  raise("TypeError", "keys must be str, int, float, bool or None, not {}", type_name(k));
}
void json_items(std::string& out, const V& v, const JsonOpts& o, int level) {
  bool obj = v.k == K::Dict;
  std::size_t n = obj ? v.d().size() : v.l().size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (obj && o.sort_keys)
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return lt(v.d()[a].first, v.d()[b].first); });
  out += obj ? '{' : '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += o.item_sep;
    json_newline(out, o, level + 1);
    if (obj) json_str(out, json_key(v.d()[order[i]].first), o.ascii), out += o.key_sep;
    json_to(out, obj ? v.d()[order[i]].second : v.l()[i], o, level + 1);
  }
  if (n) json_newline(out, o, level);
  out += obj ? '}' : ']';
}
void json_to(std::string& out, const V& v, const JsonOpts& o, int level) {
  charge();
  check_len(out.size());
  switch (v.k) {
    case K::None: out += "null"; break;
    case K::Bool: out += v.i() ? "true" : "false"; break;
    case K::Int: out += std::to_string(v.i()); break;
    case K::Float:
      out += std::isnan(v.f()) ? "NaN" : std::isinf(v.f()) ? (v.f() > 0 ? "Infinity" : "-Infinity") : py_float(v.f());
      break;
    case K::Str: json_str(out, v.s(), o.ascii); break;
    case K::List:
    case K::Tuple:
    case K::Dict: json_items(out, v, o, level); break;
    default: raise("TypeError", "Object of type {} is not JSON serializable", type_name(v));
  }
}

V from_json(const Value& j, int depth) {
  if (depth > kMaxValueDepth) raise("LimitError", "context nested more than {} deep", kMaxValueDepth);
  switch (j.type()) {
    case Value::value_t::null: return none();
    case Value::value_t::boolean: return boolean(j.get<bool>());
    case Value::value_t::number_integer: return integer(j.get<std::int64_t>());
    case Value::value_t::number_unsigned:
      if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        raise("OverflowError", "context integer {} is out of range", j.get<std::uint64_t>());
      return integer(j.get<std::int64_t>());
    case Value::value_t::number_float: return real(j.get<double>());
    case Value::value_t::string:
      uni::require_utf8(j.get_ref<const std::string&>(), "template context string");
      return str(j.get<std::string>());
    case Value::value_t::array: {
      VList items;
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return list(std::move(items));
    }
    case Value::value_t::object: {
      VDict items;
      for (const auto& [k, x] : j.items()) {
        uni::require_utf8(k, "template context key");
        items.emplace_back(str(k), from_json(x, depth + 1));
      }
      return dict(std::move(items));
    }
    default: raise("TypeError", "context value of JSON type {} is not supported", j.type_name());
  }
}

// ---- Python str helpers

std::string map_case(std::string_view s, char mode) {  // 'u' upper, 'l' lower, 's' swapcase
  std::u32string u = u32(s);
  for (char32_t& c : u) {
    char32_t up = uni::simple_upper(c), lo = uni::simple_lower(c);
    c = mode == 'u' ? up : mode == 'l' ? lo : (up != c ? up : lo);
  }
  return u8(u);
}
bool is_cased(char32_t c) { return uni::simple_upper(c) != c || uni::simple_lower(c) != c; }
std::string py_title(std::string_view s) {  // str.title()
  std::u32string u = u32(s);
  bool prev = false;
  for (char32_t& c : u) {
    bool cased = is_cased(c);
    if (cased) c = prev ? uni::simple_lower(c) : uni::simple_upper(c);
    prev = cased;
  }
  return u8(u);
}
std::string jinja_title(std::string_view s) {  // the title filter: words split at [-\s({\[<]+
  std::u32string u = u32(s);
  bool start = true;
  for (char32_t& c : u) {
    bool sep = uni::is_python_space(c) || std::u32string_view(U"-({[<").find(c) != std::u32string_view::npos;
    c = sep ? c : start ? uni::simple_upper(c) : uni::simple_lower(c);
    start = sep;
  }
  return u8(u);
}
std::string py_capitalize(std::string_view s) {
  std::u32string u = u32(map_case(s, 'l'));
  if (!u.empty()) u[0] = uni::simple_upper(u[0]);
  return u8(u);
}
std::string py_strip(std::string_view s, const V* chars, bool left, bool right) {
  bool ws = !chars || chars->k == K::None;
  if (!ws && chars->k != K::Str) raise("TypeError", "strip arg must be None or str");
  std::u32string u = u32(s), set = ws ? U"" : u32(chars->s());
  auto drop = [&](char32_t c) { return ws ? uni::is_python_space(c) : set.find(c) != std::u32string::npos; };
  std::size_t b = 0, e = u.size();
  while (left && b < e && drop(u[b])) ++b;
  while (right && e > b && drop(u[e - 1])) --e;
  return u8(std::u32string_view(u).substr(b, e - b));
}
// str.split / str.rsplit with sep None (runs of whitespace) or a separator.
VList py_split(std::string_view s, const V* sep, std::int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep && sep->k != K::None) {
    if (sep->k != K::Str) raise("TypeError", "must be str or None, not {}", type_name(*sep));
    const std::string& d = sep->s();
    if (d.empty()) raise("ValueError", "empty separator");
    std::size_t end = s.size(), pos = 0;
    for (; maxsplit != 0; --maxsplit) {
      std::size_t at = from_right ? (end >= d.size() ? s.rfind(d, end - d.size()) : s.npos) : s.find(d, pos);
      if (at == s.npos) break;
      if (from_right) parts.emplace_back(s.substr(at + d.size(), end - at - d.size())), end = at;
      else parts.emplace_back(s.substr(pos, at - pos)), pos = at + d.size();
    }
    parts.emplace_back(from_right ? s.substr(0, end) : s.substr(pos));
  } else {
    std::u32string u = u32(s);
    if (from_right) std::reverse(u.begin(), u.end());
    std::size_t i = 0, n = u.size();
    while (true) {
      while (i < n && uni::is_python_space(u[i])) ++i;
      if (i == n) break;
      std::size_t j = i;
      if (maxsplit-- == 0) j = n;
      while (j < n && !uni::is_python_space(u[j])) ++j;
      std::u32string part = u.substr(i, j - i);
      if (from_right) std::reverse(part.begin(), part.end());
      parts.push_back(u8(part));
      i = j;
    }
  }
  if (from_right) std::reverse(parts.begin(), parts.end());
  VList out;
  for (auto& p : parts) out.push_back(str(std::move(p)));
  return out;
}
VList py_splitlines(std::string_view s, bool keepends) {
  std::u32string u = u32(s);
  VList out;
  for (std::size_t i = 0, start = 0; i < u.size(); start = i) {
    while (i < u.size() && !uni::is_python_line_break(u[i])) ++i;
    std::size_t end = i;
    if (i < u.size()) i += (u[i] == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ? 2 : 1;
    out.push_back(str(u8(u.substr(start, (keepends ? i : end) - start))));
  }
  return out;
}
std::string py_replace(const std::string& s, const std::string& old, const std::string& rep, std::int64_t count) {
  std::vector<std::size_t> at;  // byte offsets of the replaced occurrences
  if (old.empty()) {
    for (std::size_t pos = 0; count < 0 || static_cast<std::int64_t>(at.size()) < count;) {
      at.push_back(pos);
      if (pos >= s.size()) break;
      pos += uni::utf8_length(static_cast<unsigned char>(s[pos]));
    }
  } else {
    for (std::size_t pos = s.find(old); pos != s.npos && (count < 0 || static_cast<std::int64_t>(at.size()) < count);
         pos = s.find(old, pos + old.size()))
      at.push_back(pos);
  }
  check_len(s.size() + at.size() * rep.size());
  std::string out;
  std::size_t prev = 0;
  for (std::size_t pos : at) out.append(s, prev, pos - prev).append(rep), prev = pos + old.size();
  return out.append(s, std::min(prev, s.size()));
}
std::optional<std::int64_t> parse_int(std::string_view s, std::int64_t base) {
  std::string t = py_strip(s, nullptr, true, true), digits;
  std::size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
  bool neg = i && t[0] == '-';
  auto prefix = [&](char c) {
    return t.size() > i + 1 && t[i] == '0' && std::tolower(static_cast<unsigned char>(t[i + 1])) == c;
  };
  if (base == 0) base = prefix('x') ? 16 : prefix('o') ? 8 : prefix('b') ? 2 : 10;
  if ((base == 16 && prefix('x')) || (base == 8 && prefix('o')) || (base == 2 && prefix('b'))) i += 2;
  for (; i < t.size(); ++i) {
    if (t[i] == '_' && !digits.empty() && i + 1 < t.size() && t[i + 1] != '_') continue;
    digits += t[i];
  }
  std::int64_t v = 0;
  if (base < 2 || base > 36 || digits.empty()) return std::nullopt;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v, static_cast<int>(base));
  if (r.ec == std::errc::result_out_of_range) raise("OverflowError", "int('{}') does not fit in 64 bits", t);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  return neg ? -v : v;
}
std::optional<double> parse_float(std::string_view s) {
  std::string t = py_strip(s, nullptr, true, true);
  std::erase(t, '_');
  std::size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
  double v = 0;
  auto r = std::from_chars(t.data() + i, t.data() + t.size(), v);
  if (t.size() == i || r.ec == std::errc::invalid_argument || r.ptr != t.data() + t.size()) return std::nullopt;
  if (r.ec == std::errc::result_out_of_range) v = std::strtod(t.c_str() + i, nullptr);
  return (i && t[0] == '-') ? -v : v;
}

// ---------------------------------------------------------------------------------------------
// Lexer: jinja2's token rules with trim_blocks and lstrip_blocks.

enum class T : std::uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, Str, Int, Float, Op, Eof };
struct Tok {
  T t;
  std::string s;  // text, name, operator or decoded string literal
  std::int64_t i = 0;
  double f = 0;
  int line = 1, col = 1;
};

std::string describe(const Tok& t) {
  switch (t.t) {
    case T::Data: return "template data";
    case T::VarBegin: return "begin of print statement";
    case T::VarEnd: return "end of print statement";
    case T::BlockBegin: return "begin of statement block";
    case T::BlockEnd: return "end of statement block";
    case T::Str: return "string";
    case T::Int: return "integer";
    case T::Float: return "float";
    case T::Eof: return "end of template";
    default: return t.s;
  }
}

class Lexer {
 public:
  Lexer(std::string_view src, const std::string& origin) : origin_(origin) {
    for (std::size_t i = 0; i < src.size(); ++i) {  // \r\n and \r read as \n, as jinja2 does
      s_ += src[i] == '\r' ? '\n' : src[i];
      if (src[i] == '\r' && i + 1 < src.size() && src[i + 1] == '\n') ++i;
    }
    if (!s_.empty() && s_.back() == '\n') s_.pop_back();  // keep_trailing_newline=False
  }
  std::vector<Tok> run();

 private:
  std::string s_;
  const std::string& origin_;
  std::size_t pos_ = 0, lc_off_ = 0;
  int line_ = 1, col_ = 1;
  bool line_start_ = true;  // the last match ended with a newline (lstrip_blocks applies)
  std::vector<Tok> out_;

  void advance_to(std::size_t off) {
    for (; lc_off_ < off; ++lc_off_) {
      if (s_[lc_off_] == '\n') ++line_, col_ = 1;
      else if ((s_[lc_off_] & 0xC0) != 0x80) ++col_;
    }
  }
  [[noreturn]] void error(std::size_t off, std::string_view msg) {
    lc_off_ = 0, line_ = 1, col_ = 1;
    advance_to(std::min(off, s_.size()));
    fail(ErrorCode::ModelFormat, "{}:{}:{}: {}", origin_, line_, col_, msg);
  }
  Tok& emit(T t, std::size_t off, std::string text = {}) {
    advance_to(off);
    out_.push_back(Tok{t, std::move(text), 0, 0, line_, col_});
    return out_.back();
  }
  bool at(std::string_view lit, std::size_t off) const { return s_.compare(off, lit.size(), lit) == 0; }
  std::size_t skip_space(std::size_t off) const {
    for (std::size_t next = off; off < s_.size() && uni::is_python_space(uni::next_codepoint(s_, next)); off = next) {
    }
    return off;
  }
  std::string_view strip_text(std::string_view text, char sign, bool lstrip) const;
  void emit_text(std::size_t from, std::string_view text) {
    if (!text.empty()) emit(T::Data, from, std::string(text));
  }
  std::size_t find_tag(std::size_t from) const {
    for (std::size_t p = s_.find('{', from); p != s_.npos; p = s_.find('{', p + 1)) {
      if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
    }
    return s_.npos;
  }
  std::size_t raw_begin_end(std::size_t tag) const;
  void lex_raw(std::size_t from);
  void lex_comment(std::size_t tag, std::size_t from);
  void lex_tag(char kind, std::size_t tag, std::size_t from);
  std::size_t tag_end(char kind, std::size_t p) const;
  std::size_t lex_token(std::size_t p, std::string& balance);
  std::size_t digits_end(std::size_t p) const;
  std::size_t lex_number(std::size_t p);
  std::size_t lex_string(std::size_t p);
  std::string unescape(std::string_view raw, std::size_t off);
};

std::string_view Lexer::strip_text(std::string_view text, char sign, bool lstrip) const {
  auto space_only = [](std::string_view t) {
    for (std::size_t pos = 0; pos < t.size();)
      if (!uni::is_python_space(uni::next_codepoint(t, pos))) return false;
    return !t.empty();
  };
  if (sign == '-') {  // rstrip() of the text before the tag
    std::size_t e = text.size();
    while (e > 0) {
      std::size_t b = e - 1;
      while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
      std::size_t q = b;
      if (!uni::is_python_space(uni::next_codepoint(text, q))) break;
      e = b;
    }
    return text.substr(0, e);
  }
  std::size_t l_pos = text.rfind('\n') + 1;  // npos + 1 == 0
  if (sign != '+' && lstrip && (l_pos > 0 || line_start_) && space_only(text.substr(l_pos)))
    return text.substr(0, l_pos);
  return text;
}

std::vector<Tok> Lexer::run() {
  while (pos_ < s_.size()) {
    std::size_t tag = find_tag(pos_);
    if (tag == s_.npos) {
      emit_text(pos_, std::string_view(s_).substr(pos_));
      break;
    }
    char kind = s_[tag + 1];
    char sign = tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+') ? s_[tag + 2] : 0;
    std::size_t raw = kind == '%' ? raw_begin_end(tag) : s_.npos;
    emit_text(pos_, strip_text(std::string_view(s_).substr(pos_, tag - pos_), sign, kind != '{'));
    if (raw != s_.npos) {
      line_start_ = s_[raw - 1] == '\n';
      lex_raw(raw);
      continue;
    }
    line_start_ = false;
    std::size_t from = tag + 2 + (sign ? 1 : 0);
    if (kind == '#') lex_comment(tag, from);
    else lex_tag(kind, tag, from);
  }
  emit(T::Eof, s_.size());
  return std::move(out_);
}

std::size_t Lexer::raw_begin_end(std::size_t tag) const {  // {%(-|+|)\s*raw\s*(-%}\s*|%})
  std::size_t p = tag + 2;
  if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) ++p;
  p = skip_space(p);
  if (!at("raw", p)) return s_.npos;
  p = skip_space(p + 3);
  if (at("-%}", p)) return skip_space(p + 3);
  return at("%}", p) ? p + 2 : s_.npos;
}

void Lexer::lex_raw(std::size_t from) {
  for (std::size_t q = s_.find("{%", from); q != s_.npos; q = s_.find("{%", q + 1)) {
    std::size_t r = q + 2;
    char sign = r < s_.size() && (s_[r] == '-' || s_[r] == '+') ? s_[r++] : 0;
    r = skip_space(r);
    if (!at("endraw", r)) continue;
    r = skip_space(r + 6);
    std::size_t end = at("+%}", r) ? r + 3 : at("-%}", r) ? skip_space(r + 3) : at("%}", r) ? r + 2 : s_.npos;
    if (end == s_.npos) continue;
    if (at("%}", r) && end < s_.size() && s_[end] == '\n') ++end;
    emit_text(from, strip_text(std::string_view(s_).substr(from, q - from), sign, true));
    pos_ = end;
    line_start_ = s_[end - 1] == '\n';
    return;
  }
  error(from, "Missing end of raw directive");
}

void Lexer::lex_comment(std::size_t tag, std::size_t from) {
  std::size_t q = s_.find("#}", from);
  if (q == s_.npos) error(tag, "Missing end of comment tag");
  char sign = q > from && (s_[q - 1] == '-' || s_[q - 1] == '+') ? s_[q - 1] : 0;
  std::size_t end = q + 2;
  if (sign == '-') end = skip_space(end);
  else if (!sign && end < s_.size() && s_[end] == '\n') ++end;
  pos_ = end;
  line_start_ = s_[end - 1] == '\n';
}

std::size_t Lexer::tag_end(char kind, std::size_t p) const {
  if (kind == '{') return at("-}}", p) ? skip_space(p + 3) : at("}}", p) ? p + 2 : s_.npos;
  if (at("+%}", p)) return p + 3;
  if (at("-%}", p)) return skip_space(p + 3);
  if (!at("%}", p)) return s_.npos;
  return p + 2 + (p + 2 < s_.size() && s_[p + 2] == '\n');  // trim_blocks
}

void Lexer::lex_tag(char kind, std::size_t tag, std::size_t p) {
  emit(kind == '{' ? T::VarBegin : T::BlockBegin, tag);
  std::string balance;
  while (true) {
    if (p >= s_.size())
      error(p, kind == '{' ? "unexpected end of template, expected 'end of print statement'"
                           : "unexpected end of template, expected 'end of statement block'");
    std::size_t end = balance.empty() ? tag_end(kind, p) : s_.npos;
    if (end != s_.npos) {
      emit(kind == '{' ? T::VarEnd : T::BlockEnd, p);
      pos_ = end;
      line_start_ = s_[end - 1] == '\n';
      return;
    }
    std::size_t sp = skip_space(p);
    p = sp != p ? sp : lex_token(p, balance);
  }
}

std::size_t Lexer::lex_token(std::size_t p, std::string& balance) {
  char c = s_[p];
  if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(p);
  if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
    std::size_t e = p;
    while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
    emit(T::Name, p, s_.substr(p, e - p));
    return e;
  }
  if (c == '\'' || c == '"') return lex_string(p);
  if (static_cast<unsigned char>(c) >= 0x80) error(p, "non-ASCII names are not supported by this Jinja subset");
  static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
  for (std::string_view op : kTwo) {
    if (at(op, p)) return emit(T::Op, p, std::string(op)), p + 2;
  }
  if (std::string_view("+-/*%~[](){}<>=.:|,;").find(c) == std::string_view::npos)
    error(p, fmt::format("unexpected char '{}' at {}", c, p));
  if (c == '(' || c == '[' || c == '{') balance += c == '(' ? ')' : c == '[' ? ']' : '}';
  if (c == ')' || c == ']' || c == '}') {
    if (balance.empty()) error(p, fmt::format("unexpected '{}'", c));
    if (balance.back() != c) error(p, fmt::format("unexpected '{}', expected '{}'", c, balance.back()));
    balance.pop_back();
  }
  emit(T::Op, p, std::string(1, c));
  return p + 1;
}

std::size_t Lexer::digits_end(std::size_t p) const {  // (\d+_)*\d+
  auto digit = [&](std::size_t q) { return q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q])); };
  if (!digit(p)) return p;
  while (true) {
    while (digit(p)) ++p;
    if (!(p < s_.size() && s_[p] == '_' && digit(p + 1))) return p;
    ++p;
  }
}

std::size_t Lexer::lex_number(std::size_t p) {
  std::size_t a = digits_end(p), end = s_.npos;
  if (p == 0 || s_[p - 1] != '.') {  // float_re's (?<!\.)
    std::size_t frac = a < s_.size() && s_[a] == '.' ? digits_end(a + 1) : a;
    std::size_t mant = frac > a + 1 ? frac : a;
    if (mant < s_.size() && (s_[mant] == 'e' || s_[mant] == 'E')) {
      std::size_t q = mant + 1 + (mant + 1 < s_.size() && (s_[mant + 1] == '+' || s_[mant + 1] == '-'));
      if (digits_end(q) > q) end = digits_end(q);
    }
    if (end == s_.npos && frac > a + 1) end = frac;
  }
  if (end != s_.npos) {
    std::string text = s_.substr(p, end - p);
    std::erase(text, '_');
    emit(T::Float, p).f = std::strtod(text.c_str(), nullptr);
    return end;
  }
  if (s_[p] == '0') {  // 0(_?0)*
    for (a = p + 1; a < s_.size() && (s_[a] == '0' || (s_[a] == '_' && a + 1 < s_.size() && s_[a + 1] == '0'));) ++a;
  }
  std::string text = s_.substr(p, a - p);
  std::erase(text, '_');
  std::int64_t v = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), v).ec != std::errc())
    error(p, "integer literal does not fit in 64 bits");
  emit(T::Int, p).i = v;
  return a;
}

std::size_t Lexer::lex_string(std::size_t p) {
  char q = s_[p];
  std::size_t r = p + 1;
  while (r < s_.size() && s_[r] != q) r += s_[r] == '\\' ? 2 : 1;
  if (r >= s_.size()) error(p, fmt::format("unexpected char \"{}\" at {}", q, p));
  std::string value = unescape(std::string_view(s_).substr(p + 1, r - p - 1), p);
  emit(T::Str, p, std::move(value));
  return r + 1;
}

// Python's unicode-escape decoding as jinja2 applies it (non-ASCII after a backslash comes out as
// a literal "\xe9"-style escape, as jinja2's backslashreplace round trip produces).
std::string Lexer::unescape(std::string_view raw, std::size_t off) {
  std::string out;
  auto hex = [&](std::size_t& i, int n) {
    char32_t v = 0;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i])))
        error(off, fmt::format("truncated \\{}{} escape", n == 2 ? 'x' : n == 4 ? 'u' : 'U', std::string(n, 'X')));
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(raw[i])));
      v = v * 16 + static_cast<char32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) error(off, "illegal Unicode character in string literal");
    uni::append_utf8(out, v);
  };
  static constexpr std::string_view kSimple = "\\\\''\"\"a\ab\bf\fn\nr\rt\tv\v";
  for (std::size_t i = 0; i < raw.size();) {
    if (raw[i] != '\\') {
      out += raw[i++];
      continue;
    }
    char e = raw[i + 1];
    i += 2;
    std::size_t k = kSimple.find(e);
    if (e == '\n') continue;
    if (k != std::string_view::npos && k % 2 == 0) out += kSimple[k + 1];
    else if (e == 'x' || e == 'u' || e == 'U') hex(i, e == 'x' ? 2 : e == 'u' ? 4 : 8);
    else if (e == 'N') error(off, "\\N{...} escapes are not supported by this Jinja subset");
    else if (e >= '0' && e <= '7') {
      char32_t v = static_cast<char32_t>(e - '0');
      for (int n = 0; n < 2 && i < raw.size() && raw[i] >= '0' && raw[i] <= '7'; ++n)
        v = v * 8 + static_cast<char32_t>(raw[i++] - '0');
      uni::append_utf8(out, v);
    } else if (static_cast<unsigned char>(e) >= 0x80) {
      std::size_t j = i - 1;
      char32_t c = uni::next_codepoint(raw, j);
      i = j;
      auto u = static_cast<unsigned>(c);
      out += c <= 0xff     ? fmt::format("\\x{:02x}", u)
             : c <= 0xffff ? fmt::format("\\u{:04x}", u)
                           : fmt::format("\\U{:08x}", u);
    } else {
      out += '\\', out += e;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Syntax tree and parser (jinja2's parser.py, same precedence and quirks).

enum class NK : std::uint8_t {
  Const, Name, Attr, Item, Slice, Call, Filter, Test, Not, Neg, Pos, Bin, Cmp, And, Or, Cond, List, Tuple, Dict,
  Text, Print, If, For, Set, SetNs, SetBlock, With, Break, Continue, Seq
};
struct Node;
using NodeP = std::unique_ptr<Node>;
struct Node {
  NK k;
  int line = 0, col = 0, depth = 1;
  std::string name, attr;          // Name/Attr/Filter/Test/Bin op; SetNs: namespace and attribute
  V value;                         // Const, Text
  std::vector<NodeP> kids;         // operands; absent optional parts are null
  std::vector<std::string> names;  // Call/Filter/Test: names of the trailing keyword arguments; Cmp: operators
};

struct FilterDef;
struct TestDef;
const FilterDef* find_filter(std::string_view name);
const TestDef* find_test(std::string_view name);

class Parser {
 public:
  Parser(std::vector<Tok> toks, const std::string& origin) : t_(std::move(toks)), origin_(origin) {}
  NodeP parse_template() {
    std::string end;
    return parse_body({}, end);
  }

 private:
  std::vector<Tok> t_;
  const std::string& origin_;
  std::size_t p_ = 0;
  int nesting_ = 0, loops_ = 0;

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxParseNesting)
        p.error(p.cur(), fmt::format("LimitError: nested more than {} levels deep", kMaxParseNesting));
    }
    ~Nest() { --p.nesting_; }
  };

  const Tok& cur() const { return t_[p_]; }
  const Tok& peek() const { return t_[std::min(p_ + 1, t_.size() - 1)]; }
  void next() { p_ = std::min(p_ + 1, t_.size() - 1); }
  bool op(std::string_view s) const { return cur().t == T::Op && cur().s == s; }
  bool name(std::string_view s) const { return cur().t == T::Name && cur().s == s; }
  bool skip_op(std::string_view s) { return op(s) ? (next(), true) : false; }
  bool skip_name(std::string_view s) { return name(s) ? (next(), true) : false; }
  [[noreturn]] void error(const Tok& at, std::string_view msg) const {
    fail(ErrorCode::ModelFormat, "{}:{}:{}: {}", origin_, at.line, at.col, msg);
  }
  void expect_op(std::string_view s) {
    if (!skip_op(s)) error(cur(), fmt::format("expected '{}', got '{}'", s, describe(cur())));
  }
  void expect(T t, std::string_view what) {
    if (cur().t != t) error(cur(), fmt::format("expected '{}', got '{}'", what, describe(cur())));
    next();
  }
  void expect_block_end() { expect(T::BlockEnd, "end of statement block"); }
  void head_end() { skip_op(":"), expect_block_end(); }
  std::string expect_name() {
    if (cur().t != T::Name) error(cur(), fmt::format("expected a name, got '{}'", describe(cur())));
    std::string s = cur().s;
    next();
    return s;
  }

  NodeP mk(NK k, const Tok& at) const {
    auto n = std::make_unique<Node>();
    n->k = k, n->line = at.line, n->col = at.col;
    return n;
  }
  NodeP fin(NodeP n) const {
    for (const auto& c : n->kids) n->depth = std::max(n->depth, c ? c->depth + 1 : 1);
    if (n->depth > kMaxTreeDepth)
      fail(ErrorCode::ModelFormat, "{}:{}:{}: LimitError: expression nested more than {} deep", origin_, n->line,
           n->col, kMaxTreeDepth);
    return n;
  }
  template <typename... P>
  NodeP node(NK k, const Tok& at, P&&... kids) const {
    NodeP n = mk(k, at);
    (n->kids.push_back(std::forward<P>(kids)), ...);
    return fin(std::move(n));
  }

  NodeP parse_body(std::initializer_list<std::string_view> ends, std::string& found);
  NodeP parse_statement();
  NodeP parse_for();
  NodeP parse_if();
  NodeP parse_set();
  NodeP parse_with();
  NodeP parse_assign_target(std::string_view extra_end);
  NodeP parse_tuple(bool simplified, bool condexpr, std::string_view extra_end, bool parens);
  NodeP parse_expression(bool condexpr) { return condexpr ? parse_condexpr() : parse_or(); }
  NodeP parse_condexpr();
  NodeP parse_or();
  NodeP parse_and();
  NodeP parse_not();
  NodeP parse_compare();
  NodeP parse_binary(int level);
  NodeP parse_unary(bool with_filter);
  NodeP parse_primary();
  NodeP parse_collection(bool is_dict);
  NodeP parse_postfix(NodeP n);
  NodeP parse_filter_expr(NodeP n);
  NodeP parse_subscript(NodeP obj);
  NodeP parse_subscribed();
  void parse_call_args(Node& n);
  NodeP parse_call(NodeP callee) {
    NodeP n = mk(NK::Call, cur());
    n->kids.push_back(std::move(callee));
    parse_call_args(*n);
    return fin(std::move(n));
  }
  NodeP parse_filter(NodeP subject);
  NodeP parse_test(NodeP subject);
};

NodeP Parser::parse_body(std::initializer_list<std::string_view> ends, std::string& found) {
  Nest guard(*this);
  NodeP seq = mk(NK::Seq, cur());
  while (true) {
    const Tok& t = cur();
    if (t.t == T::Eof) {
      if (ends.size() == 0) break;
      std::string want;
      for (auto e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
      error(t, "Unexpected end of template. Jinja was looking for the following tags: " + want);
    }
    if (t.t != T::Data && t.t != T::VarBegin && t.t != T::BlockBegin)
      error(t, fmt::format("unexpected '{}'", describe(t)));
    next();
    if (t.t == T::Data) {
      NodeP text = mk(NK::Text, t);
      text->value = str(t.s);
      seq->kids.push_back(std::move(text));
    } else if (t.t == T::VarBegin) {
      NodeP e = parse_tuple(false, true, {}, false);
      expect(T::VarEnd, "end of print statement");
      seq->kids.push_back(node(NK::Print, t, std::move(e)));
    } else if (cur().t == T::Name && std::find(ends.begin(), ends.end(), cur().s) != ends.end()) {
      found = cur().s;
      next();
      break;
    } else {
      seq->kids.push_back(parse_statement());
    }
  }
  return fin(std::move(seq));
}

NodeP Parser::parse_statement() {
  const Tok& t = cur();
  if (t.t != T::Name) error(t, "tag name expected");
  if (t.s == "for") return parse_for();
  if (t.s == "if") return parse_if();
  if (t.s == "set") return parse_set();
  if (t.s == "with") return parse_with();
  if (t.s == "break" || t.s == "continue") {
    if (loops_ == 0) error(t, fmt::format("'{}' outside loop", t.s));
    next();
    expect_block_end();
    return mk(t.s == "break" ? NK::Break : NK::Continue, t);
  }
  if (t.s == "generation") {  // transformers' assistant-token tracking tag: its body, rendered as is
    next();
    head_end();
    std::string end;
    NodeP body = parse_body({"endgeneration"}, end);
    expect_block_end();
    return body;
  }
  static constexpr std::string_view kRefused[] = {"macro", "call",  "filter",  "include",    "import", "from",
                                                  "extends", "block", "autoescape", "do"};
  if (std::find(std::begin(kRefused), std::end(kRefused), t.s) != std::end(kRefused))
    error(t, fmt::format("'{{% {} %}}' is not supported by this Jinja subset", t.s));
  error(t, fmt::format("Encountered unknown tag '{}'.", t.s));
}

NodeP Parser::parse_for() {
  const Tok& at = cur();
  next();
  NodeP target = parse_assign_target("in");
  if (!skip_name("in")) error(cur(), fmt::format("expected 'in', got '{}'", describe(cur())));
  NodeP iter = parse_tuple(false, false, "recursive", false);
  NodeP cond = skip_name("if") ? parse_expression(true) : nullptr;
  if (name("recursive")) error(cur(), "recursive loops ('for ... recursive') are not supported by this Jinja subset");
  head_end();
  std::string end;
  ++loops_;
  NodeP body = parse_body({"endfor", "else"}, end);
  --loops_;
  NodeP els;
  if (end == "else") head_end(), els = parse_body({"endfor"}, end);
  expect_block_end();
  return node(NK::For, at, std::move(target), std::move(iter), std::move(cond), std::move(body), std::move(els));
}

NodeP Parser::parse_if() {
  const Tok& at = cur();
  next();
  NodeP n = mk(NK::If, at);
  for (std::string end = "elif"; end == "elif";) {
    n->kids.push_back(parse_tuple(false, false, {}, false));
    head_end();
    n->kids.push_back(parse_body({"elif", "else", "endif"}, end));
    if (end == "else") head_end(), n->kids.push_back(parse_body({"endif"}, end));
  }
  expect_block_end();
  return fin(std::move(n));
}

NodeP Parser::parse_set() {
  const Tok& at = cur();
  next();
  if (cur().t == T::Name && peek().t == T::Op && peek().s == ".") {
    NodeP n = mk(NK::SetNs, at);
    n->name = expect_name();
    next();
    n->attr = expect_name();
    if (!op("=")) error(cur(), "a block set of a namespace attribute is not supported by this Jinja subset");
    next();
    n->kids.push_back(parse_tuple(false, true, {}, false));
    expect_block_end();
    return fin(std::move(n));
  }
  NodeP target = parse_assign_target({});
  if (skip_op("=")) {
    NodeP e = parse_tuple(false, true, {}, false);
    expect_block_end();
    return node(NK::Set, at, std::move(target), std::move(e));
  }
  if (op("|")) error(cur(), "a filtered block set ('{% set x | filter %}') is not supported by this Jinja subset");
  head_end();
  int loops = std::exchange(loops_, 0);  // the captured body is its own function in jinja2
  std::string end;
  NodeP body = parse_body({"endset"}, end);
  loops_ = loops;
  expect_block_end();
  return node(NK::SetBlock, at, std::move(target), std::move(body));
}

NodeP Parser::parse_with() {
  const Tok& at = cur();
  next();
  NodeP n = mk(NK::With, at);
  while (cur().t != T::BlockEnd) {
    if (!n->kids.empty()) expect_op(",");
    n->kids.push_back(parse_assign_target({}));
    expect_op("=");
    n->kids.push_back(parse_expression(true));
  }
  next();
  std::string end;
  n->kids.push_back(parse_body({"endwith"}, end));
  expect_block_end();
  return fin(std::move(n));
}

NodeP Parser::parse_assign_target(std::string_view extra_end) {
  const Tok& at = cur();
  NodeP t = parse_tuple(true, false, extra_end, false);
  auto check = [&](auto& self, const Node& n) -> void {
    if (n.k == NK::Tuple) {
      for (const auto& c : n.kids) self(self, *c);
    } else if (n.k != NK::Name) {
      error(at, fmt::format("can't assign to '{}'", n.k == NK::Const ? "const" : "expression"));
    }
  };
  check(check, *t);
  return t;
}

NodeP Parser::parse_tuple(bool simplified, bool condexpr, std::string_view extra_end, bool parens) {
  const Tok& at = cur();
  std::vector<NodeP> args;
  bool is_tuple = false;
  while (true) {
    if (!args.empty()) expect_op(",");
    const Tok& t = cur();
    if (t.t == T::VarEnd || t.t == T::BlockEnd || op(")") || (!extra_end.empty() && name(extra_end))) break;
    args.push_back(simplified ? parse_primary() : parse_expression(condexpr));
    if (!op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple && !args.empty()) return std::move(args[0]);
  if (!is_tuple && !parens) error(cur(), fmt::format("Expected an expression, got '{}'", describe(cur())));
  NodeP n = mk(NK::Tuple, at);
  n->kids = std::move(args);
  return fin(std::move(n));
}

NodeP Parser::parse_condexpr() {
  Nest guard(*this);
  NodeP e = parse_or();
  while (name("if")) {
    const Tok& at = cur();
    next();
    NodeP cond = parse_or();
    NodeP els = skip_name("else") ? parse_condexpr() : nullptr;
    e = node(NK::Cond, at, std::move(e), std::move(cond), std::move(els));
  }
  return e;
}

NodeP Parser::parse_or() {
  NodeP l = parse_and();
  while (name("or")) {
    const Tok& at = cur();
    next();
    l = node(NK::Or, at, std::move(l), parse_and());
  }
  return l;
}

NodeP Parser::parse_and() {
  NodeP l = parse_not();
  while (name("and")) {
    const Tok& at = cur();
    next();
    l = node(NK::And, at, std::move(l), parse_not());
  }
  return l;
}

NodeP Parser::parse_not() {
  if (!name("not")) return parse_compare();
  Nest guard(*this);
  const Tok& at = cur();
  next();
  return node(NK::Not, at, parse_not());
}

NodeP Parser::parse_compare() {
  const Tok& at = cur();
  NodeP n = mk(NK::Cmp, at);
  n->kids.push_back(parse_binary(0));
  while (true) {
    static constexpr std::string_view kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    if (cur().t == T::Op && std::find(std::begin(kOps), std::end(kOps), cur().s) != std::end(kOps))
      n->names.push_back(cur().s), next();
    else if (skip_name("in")) n->names.emplace_back("in");
    else if (name("not") && peek().t == T::Name && peek().s == "in") n->names.emplace_back("notin"), next(), next();
    else break;
    n->kids.push_back(parse_binary(0));
  }
  if (n->names.empty()) return std::move(n->kids[0]);
  return fin(std::move(n));
}

// Left-associative binary levels, loosest first: + -, then ~, then * / // %, then **.
NodeP Parser::parse_binary(int level) {
  static const std::vector<std::vector<std::string_view>> kLevels = {{"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
  auto sub = [&] { return level == 3 ? parse_unary(true) : parse_binary(level + 1); };
  NodeP l = sub();
  while (cur().t == T::Op && std::find(kLevels[level].begin(), kLevels[level].end(), cur().s) != kLevels[level].end()) {
    const Tok& at = cur();
    next();
    l = node(NK::Bin, at, std::move(l), sub());
    l->name = at.s;
  }
  return l;
}

NodeP Parser::parse_unary(bool with_filter) {
  Nest guard(*this);
  const Tok& at = cur();
  NodeP n;
  if (op("-") || op("+")) next(), n = node(at.s == "-" ? NK::Neg : NK::Pos, at, parse_unary(false));
  else n = parse_primary();
  n = parse_postfix(std::move(n));
  return with_filter ? parse_filter_expr(std::move(n)) : std::move(n);
}

NodeP Parser::parse_primary() {
  const Tok& t = cur();
  NodeP n = mk(NK::Const, t);
  if (t.t == T::Name) {
    next();
    if (t.s == "true" || t.s == "false" || t.s == "True" || t.s == "False")
      n->value = boolean(t.s[0] == 't' || t.s[0] == 'T');
    else if (t.s == "none" || t.s == "None") n->value = none();
    else n->k = NK::Name, n->name = t.s;
  } else if (t.t == T::Str) {
    std::string s;
    for (; cur().t == T::Str; next()) s += cur().s;
    n->value = str(std::move(s));
  } else if (t.t == T::Int || t.t == T::Float) {
    next();
    n->value = t.t == T::Int ? integer(t.i) : real(t.f);
  } else if (op("(")) {
    next();
    n = parse_tuple(false, true, {}, true);
    expect_op(")");
  } else if (op("[") || op("{")) {
    n = parse_collection(op("{"));
  } else {
    error(t, fmt::format("unexpected '{}'", describe(t)));
  }
  return n;
}

NodeP Parser::parse_collection(bool is_dict) {
  NodeP n = mk(is_dict ? NK::Dict : NK::List, cur());
  next();
  std::string_view close = is_dict ? "}" : "]";
  while (!op(close)) {
    if (!n->kids.empty()) expect_op(",");
    if (op(close)) break;
    n->kids.push_back(parse_expression(true));
    if (is_dict) expect_op(":"), n->kids.push_back(parse_expression(true));
  }
  expect_op(close);
  return fin(std::move(n));
}

NodeP Parser::parse_postfix(NodeP n) {
  while (true) {
    if (op(".") || op("[")) n = parse_subscript(std::move(n));
    else if (op("(")) n = parse_call(std::move(n));
    else return n;
  }
}

NodeP Parser::parse_filter_expr(NodeP n) {
  while (true) {
    if (op("|")) n = parse_filter(std::move(n));
    else if (name("is")) n = parse_test(std::move(n));
    else if (op("(")) n = parse_call(std::move(n));
    else return n;
  }
}

NodeP Parser::parse_subscript(NodeP obj) {
  const Tok& at = cur();
  if (skip_op(".")) {
    const Tok& a = cur();
    if (a.t != T::Name && a.t != T::Int) error(a, "expected name or number");
    next();
    if (a.t == T::Int) {
      NodeP key = mk(NK::Const, a);
      key->value = integer(a.i);
      return node(NK::Item, at, std::move(obj), std::move(key));
    }
    NodeP n = node(NK::Attr, at, std::move(obj));
    n->name = a.s;
    return n;
  }
  next();  // '['
  std::vector<NodeP> args;
  while (!op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.size() == 1 && args[0]->k == NK::Slice) {
    args[0]->kids.insert(args[0]->kids.begin(), std::move(obj));
    return fin(std::move(args[0]));
  }
  for (const auto& a : args)
    if (a->k == NK::Slice) error(at, "slices inside a subscript tuple are not supported by this Jinja subset");
  if (args.size() == 1) return node(NK::Item, at, std::move(obj), std::move(args[0]));
  NodeP key = mk(NK::Tuple, at);
  key->kids = std::move(args);
  return node(NK::Item, at, std::move(obj), fin(std::move(key)));
}

NodeP Parser::parse_subscribed() {  // an expression, or a slice [start]:[stop][:[step]]
  const Tok& at = cur();
  NodeP n = mk(NK::Slice, at);
  if (!skip_op(":")) {
    NodeP e = parse_expression(true);
    if (!skip_op(":")) return e;
    n->kids.push_back(std::move(e));
  } else {
    n->kids.push_back(nullptr);
  }
  bool more = !op(":") && !op("]") && !op(",");
  n->kids.push_back(more ? parse_expression(true) : nullptr);
  bool step = skip_op(":") && !op("]") && !op(",");
  n->kids.push_back(step ? parse_expression(true) : nullptr);
  return n;  // fin() once the object is in front
}

void Parser::parse_call_args(Node& n) {
  expect_op("(");
  for (bool comma = false; !op(")"); comma = true) {
    if (comma) {
      expect_op(",");
      if (op(")")) break;
    }
    if (op("*") || op("**")) error(cur(), "*args and **kwargs in calls are not supported by this Jinja subset");
    if (cur().t == T::Name && peek().t == T::Op && peek().s == "=") {
      n.names.push_back(cur().s);
      next(), next();
    } else if (!n.names.empty()) {
      error(cur(), "invalid syntax for function call expression");
    }
    n.kids.push_back(parse_expression(true));
  }
  next();
}

NodeP Parser::parse_filter(NodeP subject) {
  next();  // '|'
  const Tok& at = cur();
  std::string nm = expect_name();
  while (skip_op(".")) nm.append(".").append(expect_name());
  static constexpr std::string_view kKnown =
      " attr batch center e escape filesizeformat forceescape format groupby pprint random safe slice striptags "
      "truncate urlencode urlize wordcount wordwrap xmlattr ";
  if (!find_filter(nm)) {
    if (has_word(kKnown, nm))
      error(at, fmt::format("filter '{}' is not supported by this Jinja subset", nm));
    error(at, fmt::format("No filter named '{}'.", nm));
  }
  NodeP n = mk(NK::Filter, at);
  n->name = nm;
  n->kids.push_back(std::move(subject));
  if (op("(")) parse_call_args(*n);
  return fin(std::move(n));
}

NodeP Parser::parse_test(NodeP subject) {
  const Tok& at = cur();
  next();  // 'is'
  bool negated = skip_name("not");
  const Tok& nt = cur();
  std::string nm = expect_name();
  while (skip_op(".")) nm.append(".").append(expect_name());
  if (!find_test(nm)) {
    if (nm == "escaped" || nm == "filter" || nm == "test")
      error(nt, fmt::format("test '{}' is not supported by this Jinja subset", nm));
    error(nt, fmt::format("No test named '{}'.", nm));
  }
  NodeP n = mk(NK::Test, at);
  n->name = nm;
  n->kids.push_back(std::move(subject));
  const Tok& c = cur();
  bool arg = c.t == T::Name || c.t == T::Str || c.t == T::Int || c.t == T::Float || op("[") || op("{");
  if (op("(")) {
    parse_call_args(*n);
  } else if (arg && !name("else") && !name("or") && !name("and")) {
    if (name("is")) error(c, "You cannot chain multiple tests with is");
    n->kids.push_back(parse_postfix(parse_primary()));
  }
  n = fin(std::move(n));
  return negated ? node(NK::Not, at, std::move(n)) : std::move(n);
}

// ---------------------------------------------------------------------------------------------
// Filters, tests, methods and globals.

struct Args {
  VList pos;
  std::vector<std::pair<std::string, V>> kw;
  const V* get(std::size_t i, std::string_view name) const {
    if (i < pos.size()) return &pos[i];
    for (const auto& [k, v] : kw)
      if (k == name) return &v;
    return nullptr;
  }
  V get_or(std::size_t i, std::string_view name, V dflt) const {
    const V* v = get(i, name);
    return v ? *v : dflt;
  }
  const V& need(std::size_t i, std::string_view name, std::string_view fn) const {
    const V* v = get(i, name);
    if (!v) raise("TypeError", "{}() missing required argument '{}'", fn, name);
    return *v;
  }
};
std::int64_t int_arg(const V& v, std::string_view what) {
  if (!is_intlike(v)) raise("TypeError", "{} must be an integer, not {}", what, type_name(v));
  return v.i();
}

using FilterFn = V (*)(const V&, const Args&);
struct FilterDef {
  std::string_view name;
  FilterFn fn;
  std::string_view params;  // space-separated parameter names; "*" takes anything
};
using TestFn = bool (*)(const V&, const Args&);
struct TestDef {
  std::string_view name;
  TestFn fn;
};

void check_params(const Args& a, std::string_view params, std::string_view fn) {
  if (params == "*") return;
  std::size_t n = params.empty() ? 0 : static_cast<std::size_t>(std::count(params.begin(), params.end(), ' ') + 1);
  if (a.pos.size() > n) raise("TypeError", "{}() takes at most {} arguments ({} given)", fn, n + 1, a.pos.size() + 1);
  for (const auto& [k, v] : a.kw)
    if (!has_word(params, k))
      raise("TypeError", "{}() got an unexpected keyword argument '{}'", fn, k);
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
V attr_path(const V& item, const V* attribute) {
  if (!attribute) return item;
  if (attribute->k != K::Str) return getitem(item, *attribute);
  V cur = item;
  std::string_view path = attribute->s();
  for (std::size_t start = 0, dot = 0; dot != std::string_view::npos; start = dot + 1) {
    dot = path.find('.', start);
    std::string part(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    std::int64_t idx = 0;
    if (digits && std::from_chars(part.data(), part.data() + part.size(), idx).ec != std::errc()) digits = false;
    cur = getitem(cur, digits ? integer(idx) : str(part));
  }
  return cur;
}
V sort_key(const V& item, const V* attribute, bool case_sensitive) {
  V key = attr_path(item, attribute);
  return (!case_sensitive && key.k == K::Str) ? str(map_case(key.s(), 'l')) : key;
}
// The sort filter's key (make_multi_attrgetter): a list of one value per comma-separated attribute,
// compared as lists (so equal Undefined keys compare equal instead of failing).
V multi_key(const V& item, const V* attribute, bool case_sensitive) {
  VList key;
  if (!attribute || attribute->k != K::Str) return list({sort_key(item, attribute, case_sensitive)});
  std::string_view names = attribute->s();
  for (std::size_t start = 0, comma = 0; comma != std::string_view::npos; start = comma + 1) {
    comma = names.find(',', start);
    V part = str(std::string(names.substr(start, comma == std::string_view::npos ? names.npos : comma - start)));
    key.push_back(sort_key(item, &part, case_sensitive));
  }
  return list(std::move(key));
}
VList sorted(VList items, const VList& keys, bool reverse) {
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return reverse ? lt(keys[b], keys[a]) : lt(keys[a], keys[b]); });
  VList out;
  for (std::size_t i : order) out.push_back(items[i]);
  return out;
}

V f_default(const V& x, const Args& a) {
  bool boolean_mode = truthy(a.get_or(1, "boolean", boolean(false)));
  return (x.k == K::Undef || (boolean_mode && !truthy(x))) ? a.get_or(0, "default_value", str("")) : x;
}
V f_length(const V& x, const Args&) { return integer(py_len(x)); }
V f_list(const V& x, const Args&) { return list(iterate(x)); }
V f_string(const V& x, const Args&) { return str(py_str(x)); }
V f_upper(const V& x, const Args&) { return str(map_case(py_str(x), 'u')); }
V f_lower(const V& x, const Args&) { return str(map_case(py_str(x), 'l')); }
V f_title(const V& x, const Args&) { return str(jinja_title(py_str(x))); }
V f_capitalize(const V& x, const Args&) { return str(py_capitalize(py_str(x))); }
V f_trim(const V& x, const Args& a) { return str(py_strip(py_str(x), a.get(0, "chars"), true, true)); }
V f_replace(const V& x, const Args& a) {
  V count = a.get_or(2, "count", none());
  return str(py_replace(py_str(x), py_str(a.need(0, "old", "replace")), py_str(a.need(1, "new", "replace")),
                        count.k == K::None ? -1 : int_arg(count, "count")));
}
V f_first(const V& x, const Args&) {
  if (x.k == K::Gen) {
    GenState& g = x.gen();
    if (g.pos == g.items.size() && !g.error.empty()) gen_error(g);
    return g.pos < g.items.size() ? g.items[g.pos++] : undef("No first item, sequence was empty.");
  }
  VList items = is_seq(x) ? VList() : iterate(x);
  const VList& l = is_seq(x) ? x.l() : items;
  return l.empty() ? undef("No first item, sequence was empty.") : l.front();
}
V f_last(const V& x, const Args&) {
  if (!(is_seq(x) || x.k == K::Str || x.k == K::Dict || x.k == K::Undef))
    raise("TypeError", "'{}' object is not reversible", type_name(x));
  VList items = is_seq(x) ? VList() : iterate(x);
  const VList& l = is_seq(x) ? x.l() : items;
  return l.empty() ? undef("No last item, sequence was empty.") : l.back();
}
V f_reverse(const V& x, const Args&) {
  if (x.k == K::Str) {
    std::u32string u = u32(x.s());
    return str(u8(std::u32string(u.rbegin(), u.rend())));
  }
  VList items = iterate(x);
  std::reverse(items.begin(), items.end());
  return x.k == K::Gen ? list(std::move(items)) : generator(std::move(items));  // reversed(x) is an iterator
}
V f_join(const V& x, const Args& a) {
  std::string sep = py_str(a.get_or(0, "d", str(""))), out;
  const V* attribute = a.get(1, "attribute");
  VList items = iterate(x);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    str_to(out, attr_path(items[i], attribute));
  }
  return str(std::move(out));
}
V f_int(const V& x, const Args& a) {
  V dflt = a.get_or(0, "default", integer(0));
  std::int64_t base = int_arg(a.get_or(1, "base", integer(10)), "base");
  if (x.k == K::Undef) undefined_error(x);
  if (is_intlike(x)) return integer(x.i());
  std::optional<double> f = x.k == K::Float ? std::optional<double>(x.f()) : std::nullopt;
  if (x.k == K::Str) {
    if (auto i = parse_int(x.s(), base)) return integer(*i);
    f = parse_float(x.s());
  }
  if (!f || std::isnan(*f)) return dflt;
  if (std::isinf(*f) || std::fabs(*f) >= 9.2e18)
    raise("OverflowError", "cannot convert float {} to a 64-bit integer", py_float(*f));
  return integer(static_cast<std::int64_t>(*f));
}
V f_float(const V& x, const Args& a) {
  if (x.k == K::Undef) undefined_error(x);
  if (is_num(x)) return real(x.f());
  std::optional<double> f = x.k == K::Str ? parse_float(x.s()) : std::nullopt;
  return f ? real(*f) : a.get_or(0, "default", real(0.0));
}
V f_abs(const V& x, const Args&) {
  if (x.k == K::Float) return real(std::fabs(x.f()));
  if (!is_intlike(x)) raise("TypeError", "bad operand type for abs(): '{}'", type_name(x));
  return integer(x.i() < 0 ? int_op('-', 0, x.i()) : x.i());
}
V f_round(const V& x, const Args& a) {
  std::int64_t precision = int_arg(a.get_or(0, "precision", integer(0)), "precision");
  std::string method = py_str(a.get_or(1, "method", str("common")));
  if (method != "common" && method != "ceil" && method != "floor")
    raise("FilterArgumentError", "method must be common, ceil or floor");
  if (!is_num(x)) raise("TypeError", "type {} doesn't define __round__ method", type_name(x));
  if (precision < 0) unsupported("round() with a negative precision");
  if (method != "common") {
    double scale = std::pow(10.0, static_cast<double>(precision)), v = x.f() * scale;
    return real((method == "ceil" ? std::ceil(v) : std::floor(v)) / scale);
  }
  if (is_intlike(x)) return integer(x.i());
  if (!std::isfinite(x.f()) || precision > 340) return x;
  std::string text = fmt::format("{:.{}f}", x.f(), static_cast<int>(precision));  // correctly rounded, half-even
  return real(std::strtod(text.c_str(), nullptr));
}
V f_sort(const V& x, const Args& a) {
  bool reverse = truthy(a.get_or(0, "reverse", boolean(false)));
  bool cs = truthy(a.get_or(1, "case_sensitive", boolean(false)));
  VList items = iterate(x), keys;
  for (const V& item : items) keys.push_back(multi_key(item, a.get(2, "attribute"), cs));
  return list(sorted(std::move(items), keys, reverse));
}
V f_unique(const V& x, const Args& a) {
  return lazily([&](VList& out) {
    bool cs = truthy(a.get_or(0, "case_sensitive", boolean(false)));
    VList seen;
    for (const V& item : iterate(x)) {
      V key = sort_key(item, a.get(1, "attribute"), cs);
      if (std::none_of(seen.begin(), seen.end(), [&](const V& s) { return eq(s, key); }))
        seen.push_back(key), out.push_back(item);
    }
  });
}
V min_max(const V& x, const Args& a, bool is_max) {
  bool cs = truthy(a.get_or(0, "case_sensitive", boolean(false)));
  VList items = iterate(x), keys;
  if (items.empty()) return undef("No aggregated item, sequence was empty.");
  for (const V& item : items) keys.push_back(sort_key(item, a.get(1, "attribute"), cs));
  std::size_t best = 0;
  for (std::size_t i = 1; i < items.size(); ++i)
    if (is_max ? lt(keys[best], keys[i]) : lt(keys[i], keys[best])) best = i;
  return items[best];
}
V f_min(const V& x, const Args& a) { return min_max(x, a, false); }
V f_max(const V& x, const Args& a) { return min_max(x, a, true); }
V f_sum(const V& x, const Args& a) {
  V acc = a.get_or(1, "start", integer(0));
  for (const V& item : iterate(x)) acc = arith("+", acc, attr_path(item, a.get(0, "attribute")));
  return acc;
}
V f_items(const V& x, const Args&) {
  return lazily([&](VList& out) {
    if (x.k == K::Undef) return;
    if (x.k != K::Dict) raise("TypeError", "Can only get item pairs from a mapping.");
    for (const auto& [k, v] : x.d()) out.push_back(list({k, v}, K::Tuple));
  });
}
V f_dictsort(const V& x, const Args& a) {
  bool cs = truthy(a.get_or(0, "case_sensitive", boolean(false)));
  bool reverse = truthy(a.get_or(2, "reverse", boolean(false)));
  std::string by = py_str(a.get_or(1, "by", str("key")));
  if (by != "key" && by != "value") raise("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
  if (x.k != K::Dict) raise("TypeError", "dictsort needs a mapping, not {}", type_name(x));
  VList items = iterate(f_items(x, {})), keys;
  for (const V& kv : items) keys.push_back(sort_key(kv.l()[by == "key" ? 0 : 1], nullptr, cs));
  return list(sorted(std::move(items), keys, reverse));
}
void map_into(VList& out, const V& x, const Args& a) {
  if (!truthy(x)) return;
  if (a.pos.empty() && a.get(99, "attribute")) {
    const V* dflt = a.get(99, "default");
    for (const V& item : iterate(x)) {
      V v = attr_path(item, a.get(99, "attribute"));
      out.push_back(v.k == K::Undef && dflt ? *dflt : v);
    }
    return;
  }
  if (a.pos.empty() || a.pos[0].k != K::Str) raise("FilterArgumentError", "map requires a filter argument");
  const FilterDef* f = find_filter(a.pos[0].s());
  if (!f) raise("TemplateRuntimeError", "No filter named '{}'", a.pos[0].s());
  Args rest{VList(a.pos.begin() + 1, a.pos.end()), a.kw};
  check_params(rest, f->params, f->name);
  for (const V& item : iterate(x)) out.push_back(f->fn(item, rest));
}
V f_map(const V& x, const Args& a) {
  return lazily([&](VList& out) { map_into(out, x, a); });
}
void select_into(VList& out, const V& x, const Args& a, bool by_attr, bool keep) {
  if (!truthy(x)) return;
  std::size_t off = by_attr ? 1 : 0;
  if (by_attr && a.pos.empty()) raise("FilterArgumentError", "Missing parameter for attribute name");
  const TestDef* t = nullptr;
  if (a.pos.size() > off) {
    if (a.pos[off].k != K::Str || !(t = find_test(a.pos[off].s())))
      raise("TemplateRuntimeError", "No test named {}", py_repr(a.pos[off]));
  }
  Args rest{VList(a.pos.begin() + static_cast<std::ptrdiff_t>(std::min(a.pos.size(), off + 1)), a.pos.end()), a.kw};
  for (const V& item : iterate(x)) {
    V v = by_attr ? attr_path(item, &a.pos[0]) : item;
    if ((t ? t->fn(v, rest) : truthy(v)) == keep) out.push_back(item);
  }
}
V select_impl(const V& x, const Args& a, bool by_attr, bool keep) {
  return lazily([&](VList& out) { select_into(out, x, a, by_attr, keep); });
}
V f_select(const V& x, const Args& a) { return select_impl(x, a, false, true); }
V f_reject(const V& x, const Args& a) { return select_impl(x, a, false, false); }
V f_selectattr(const V& x, const Args& a) { return select_impl(x, a, true, true); }
V f_rejectattr(const V& x, const Args& a) { return select_impl(x, a, true, false); }
std::string spaces(std::int64_t n) {  // indent=N for tojson and indent
  if (n > 256) unsupported("an indent of more than 256 spaces");
  return std::string(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), ' ');
}
V f_tojson(const V& x, const Args& a) {
  JsonOpts o;
  o.ascii = truthy(a.get_or(0, "ensure_ascii", boolean(false)));
  o.sort_keys = truthy(a.get_or(3, "sort_keys", boolean(false)));
  V indent = a.get_or(1, "indent", none()), seps = a.get_or(2, "separators", none());
  if (indent.k != K::None) {
    o.pretty = true, o.item_sep = ",";
    o.indent = indent.k == K::Str ? indent.s() : spaces(int_arg(indent, "indent"));
  }
  if (seps.k != K::None) {
    if (!is_seq(seps) || seps.l().size() != 2 || seps.l()[0].k != K::Str || seps.l()[1].k != K::Str)
      raise("TypeError", "separators must be a pair of strings");
    o.item_sep = seps.l()[0].s(), o.key_sep = seps.l()[1].s();
  }
  std::string out;
  json_to(out, x, o, 0);
  return str(std::move(out));
}
V f_indent(const V& x, const Args& a) {
  V width = a.get_or(0, "width", integer(4));
  std::string ind = width.k == K::Str ? width.s() : spaces(int_arg(width, "width"));
  bool first = truthy(a.get_or(1, "first", boolean(false))), blank = truthy(a.get_or(2, "blank", boolean(false)));
  if (x.k == K::Undef) undefined_error(x);
  if (x.k != K::Str) raise("TypeError", "unsupported operand type(s) for +=: '{}' and 'str'", type_name(x));
  VList lines = py_splitlines(x.s() + "\n", false);
  std::string out = first ? ind : "";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].s();
    if (i) out += "\n", out += (blank || !line.empty()) ? ind : "";
    out += line;
    check_len(out.size());
  }
  return str(std::move(out));
}

constexpr FilterDef kFilters[] = {
    {"abs", f_abs, ""}, {"capitalize", f_capitalize, ""}, {"count", f_length, ""},
    {"d", f_default, "default_value boolean"}, {"default", f_default, "default_value boolean"},
    {"dictsort", f_dictsort, "case_sensitive by reverse"}, {"first", f_first, ""}, {"float", f_float, "default"},
    {"indent", f_indent, "width first blank"}, {"int", f_int, "default base"}, {"items", f_items, ""},
    {"join", f_join, "d attribute"}, {"last", f_last, ""}, {"length", f_length, ""}, {"list", f_list, ""},
    {"lower", f_lower, ""}, {"map", f_map, "*"}, {"max", f_max, "case_sensitive attribute"},
    {"min", f_min, "case_sensitive attribute"}, {"reject", f_reject, "*"}, {"rejectattr", f_rejectattr, "*"},
    {"replace", f_replace, "old new count"}, {"reverse", f_reverse, ""}, {"round", f_round, "precision method"},
    {"select", f_select, "*"}, {"selectattr", f_selectattr, "*"},
    {"sort", f_sort, "reverse case_sensitive attribute"}, {"string", f_string, ""}, {"sum", f_sum, "attribute start"},
    {"title", f_title, ""}, {"tojson", f_tojson, "ensure_ascii indent separators sort_keys"},
    {"trim", f_trim, "chars"}, {"unique", f_unique, "case_sensitive attribute"}, {"upper", f_upper, ""},
};

const V& other(const Args& a, std::string_view test) { return a.need(0, "other", test); }
bool cased_all(const V& x, bool upper) {
  std::u32string u = u32(py_str(x));
  bool any = false;
  for (char32_t c : u) {
    if (!is_cased(c)) continue;
    any = true;
    if ((upper ? uni::simple_lower(c) : uni::simple_upper(c)) == c) return false;
  }
  return any;
}
bool t_sequence(const V& x, const Args&) { return x.k == K::Str || is_seq(x) || x.k == K::Dict || x.k == K::Undef; }
bool t_divisibleby(const V& x, const Args& a) { return eq(arith("%", x, a.need(0, "num", "divisibleby")), integer(0)); }
bool t_odd(const V& x, const Args&) { return eq(arith("%", x, integer(2)), integer(1)); }
bool t_even(const V& x, const Args&) { return eq(arith("%", x, integer(2)), integer(0)); }
bool t_sameas(const V& x, const Args& a) {  // `is`: scalars by value (Python interns them), containers by identity
  const V& y = other(a, "sameas");
  if (x.k != y.k) return false;
  if (x.k == K::Undef || x.k == K::Str || x.k == K::None || is_num(x)) return eq(x, y);
  return x.p == y.p;
}

constexpr TestDef kTests[] = {
    {"boolean", [](const V& x, const Args&) { return x.k == K::Bool; }},
    {"callable", [](const V& x, const Args&) { return x.k == K::Fn || x.k == K::Loop; }},
    {"defined", [](const V& x, const Args&) { return x.k != K::Undef; }},
    {"divisibleby", t_divisibleby},
    {"eq", [](const V& x, const Args& a) { return eq(x, other(a, "eq")); }},
    {"equalto", [](const V& x, const Args& a) { return eq(x, other(a, "equalto")); }},
    {"even", t_even},
    {"false", [](const V& x, const Args&) { return x.k == K::Bool && !x.i(); }},
    {"float", [](const V& x, const Args&) { return x.k == K::Float; }},
    {"ge", [](const V& x, const Args& a) { return compare(">=", x, other(a, "ge")); }},
    {"greaterthan", [](const V& x, const Args& a) { return compare(">", x, other(a, "greaterthan")); }},
    {"gt", [](const V& x, const Args& a) { return compare(">", x, other(a, "gt")); }},
    {"in", [](const V& x, const Args& a) { return contains(a.need(0, "seq", "in"), x); }},
    {"integer", [](const V& x, const Args&) { return x.k == K::Int; }},
    {"iterable", [](const V& x, const Args&) { return t_sequence(x, {}) || x.k == K::Gen; }},
    {"le", [](const V& x, const Args& a) { return compare("<=", x, other(a, "le")); }},
    {"lessthan", [](const V& x, const Args& a) { return compare("<", x, other(a, "lessthan")); }},
    {"lower", [](const V& x, const Args&) { return cased_all(x, false); }},
    {"lt", [](const V& x, const Args& a) { return compare("<", x, other(a, "lt")); }},
    {"mapping", [](const V& x, const Args&) { return x.k == K::Dict; }},
    {"ne", [](const V& x, const Args& a) { return !eq(x, other(a, "ne")); }},
    {"none", [](const V& x, const Args&) { return x.k == K::None; }},
    {"number", [](const V& x, const Args&) { return is_num(x); }},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", [](const V& x, const Args&) { return x.k == K::Str; }},
    {"true", [](const V& x, const Args&) { return x.k == K::Bool && x.i(); }},
    {"undefined", [](const V& x, const Args&) { return x.k == K::Undef; }},
    {"upper", [](const V& x, const Args&) { return cased_all(x, true); }},
};

const FilterDef* find_filter(std::string_view name) {
  for (const auto& f : kFilters)
    if (f.name == name) return &f;
  return nullptr;
}
const TestDef* find_test(std::string_view name) {
  for (const auto& t : kTests)
    if (t.name == name) return &t;
  return nullptr;
}

bool affix(const std::string& s, const V& arg, bool prefix) {
  if (is_seq(arg)) return std::any_of(arg.l().begin(), arg.l().end(), [&](const V& a) { return affix(s, a, prefix); });
  if (arg.k != K::Str)
    raise("TypeError", "{}with first arg must be str or a tuple of str, not {}", prefix ? "starts" : "ends",
          type_name(arg));
  const std::string& a = arg.s();
  return a.size() <= s.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0;
}
V str_predicate(const std::string& s, std::string_view m) {
  std::u32string u = u32(s);
  auto all = [&](auto pred) { return boolean(!u.empty() && std::all_of(u.begin(), u.end(), pred)); };
  if (m == "isdigit") return all([](char32_t c) { return uni::category_code(c) == "Nd"; });
  if (m == "isalpha") return all([](char32_t c) { return uni::is_letter(c); });
  if (m == "isalnum") return all([](char32_t c) { return uni::is_letter(c) || uni::is_number(c); });
  if (m == "isspace") return all([](char32_t c) { return uni::is_python_space(c); });
  return boolean(cased_all(str(s), m == "isupper"));
}
V str_find(const V& self, std::string_view m, const Args& a) {  // find rfind count index
  const std::string& s = self.s();
  const V& sub = a.need(0, "sub", m);
  if (sub.k != K::Str) raise("TypeError", "must be str, not {}", type_name(sub));
  if (a.pos.size() > 1) unsupported("str.{}() with start/end positions", m);
  if (m == "count" && sub.s().empty()) return integer(py_len(self) + 1);
  if (m == "count") return integer(static_cast<std::int64_t>(py_split(s, &sub, -1, false).size()) - 1);
  std::size_t at = m == "rfind" ? s.rfind(sub.s()) : s.find(sub.s());
  if (at == s.npos && m == "index") raise("ValueError", "substring not found");
  return integer(at == s.npos ? -1 : static_cast<std::int64_t>(cp_len(std::string_view(s).substr(0, at))));
}
V str_join(const std::string& sep, const V& iterable) {
  std::string out;
  VList items = iterate(iterable);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].k != K::Str)
      raise("TypeError", "sequence item {}: expected str instance, {} found", i, type_name(items[i]));
    out += i ? sep : "", out += items[i].s();
    check_len(out.size());
  }
  return str(std::move(out));
}
V str_method(const V& self, std::string_view m, const Args& a) {
  const std::string& s = self.s();
  if (m == "startswith" || m == "endswith") {
    if (a.pos.size() > 1) unsupported("str.{}() with start/end positions", m);
    return boolean(affix(s, a.need(0, "prefix", m), m == "startswith"));
  }
  if (m == "split" || m == "rsplit") {
    V maxsplit = a.get_or(1, "maxsplit", integer(-1));
    return list(py_split(s, a.get(0, "sep"), int_arg(maxsplit, "maxsplit"), m == "rsplit"));
  }
  if (m == "strip" || m == "lstrip" || m == "rstrip")
    return str(py_strip(s, a.get(0, "chars"), m[0] != 'r', m[0] != 'l'));
  if (m == "upper" || m == "lower" || m == "swapcase")
    return str(map_case(s, m[0] == 's' ? 's' : m[0] == 'u' ? 'u' : 'l'));
  if (m == "title") return str(py_title(s));
  if (m == "capitalize") return str(py_capitalize(s));
  if (m == "replace") {
    V count = a.get_or(2, "count", integer(-1));
    const V &old = a.need(0, "old", m), &rep = a.need(1, "new", m);
    if (old.k != K::Str || rep.k != K::Str) raise("TypeError", "replace() arguments must be str");
    return str(py_replace(s, old.s(), rep.s(), int_arg(count, "count")));
  }
  if (m == "find" || m == "rfind" || m == "count" || m == "index") return str_find(self, m, a);
  if (m == "join") return str_join(s, a.need(0, "iterable", m));
  if (m == "splitlines") return list(py_splitlines(s, truthy(a.get_or(0, "keepends", boolean(false)))));
  if (has_word("isdigit isalpha isalnum isspace islower isupper", m))
    return str_predicate(s, m);
  if (m == "removeprefix" || m == "removesuffix") {
    const V& fix = a.need(0, m == "removeprefix" ? "prefix" : "suffix", m);
    if (fix.k != K::Str) raise("TypeError", "{}() argument must be str, not {}", m, type_name(fix));
    if (!affix(s, fix, m == "removeprefix")) return self;
    std::size_t n = fix.s().size();
    return str(m == "removeprefix" ? s.substr(n) : s.substr(0, s.size() - n));
  }
  unsupported("str.{}()", m);
}
V container_method(const V& self, std::string_view m, const Args& a) {
  static constexpr std::string_view kMutating =
      " append clear extend insert pop popitem remove reverse setdefault sort update ";
  if (has_word(kMutating, m))
    raise("SecurityError", "access to attribute '{}' of '{}' object is unsafe.", m, type_name(self));
  if (m == "copy") return self;
  if (self.k == K::Dict) {
    if (m == "get") {
      const V* v = dict_get(self.d(), a.need(0, "key", m));
      return v ? *v : a.get_or(1, "default", none());
    }
    VList out;
    for (const auto& [k, v] : self.d()) out.push_back(m == "keys" ? k : m == "values" ? v : list({k, v}, K::Tuple));
    if (m == "keys" || m == "values" || m == "items") return list(std::move(out));
    unsupported("dict.{}()", m);
  }
  const V& x = a.need(0, "value", m);
  const VList& l = self.l();
  auto it = std::find_if(l.begin(), l.end(), [&](const V& y) { return eq(x, y); });
  if (m == "count") return integer(std::count_if(l.begin(), l.end(), [&](const V& y) { return eq(x, y); }));
  if (it == l.end()) raise("ValueError", "{} is not in list", py_repr(x));
  return integer(it - l.begin());
}

V call_global(std::string_view name, const Args& a) {
  if (name == "range") {
    if (a.pos.empty() || a.pos.size() > 3) raise("TypeError", "range expected 1 to 3 arguments, got {}", a.pos.size());
    std::int64_t b = a.pos.size() > 1 ? int_arg(a.pos[0], "range()") : 0;
    std::int64_t e = int_arg(a.pos[a.pos.size() > 1], "range()");
    std::int64_t st = a.pos.size() > 2 ? int_arg(a.pos[2], "range()") : 1;
    if (st == 0) raise("ValueError", "range() arg 3 must not be zero");
    VList out;
    for (std::int64_t v = b; st > 0 ? v < e : v > e;) {
      if (static_cast<std::int64_t>(out.size()) == kMaxRange)
        raise("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
      out.push_back(integer(v));
      if (__builtin_add_overflow(v, st, &v)) break;
    }
    return list(std::move(out));
  }
  if (name == "namespace" || name == "dict") {
    VDict d;
    if (a.pos.size() > 1 || (a.pos.size() == 1 && a.pos[0].k != K::Dict))
      raise("TypeError", "{}() takes at most one mapping argument", name);
    if (!a.pos.empty()) d = a.pos[0].d();
    for (const auto& [k, v] : a.kw) dict_set(d, str(k), v);
    for (const auto& [k, v] : d)
      if (v.refs) unsupported("a namespace or loop inside {}()", name);
    return dict(std::move(d), name == "dict" ? K::Dict : K::Ns);
  }
  if (name == "raise_exception") raise("TemplateError", "{}", py_str(a.need(0, "message", name)));
  if (name == "strftime_now") {
    std::string f = py_str(a.need(0, "format", name));
    if (f.size() > 1024) unsupported("a strftime_now() format longer than 1024 bytes");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    std::string out(f.size() * 8 + 64, '\0');
    out.resize(f.empty() ? 0 : std::strftime(out.data(), out.size(), f.c_str(), &tm));
    return str(std::move(out));
  }
  unsupported("the global function {}()", name);
}
V call(const V& callee, const Args& a) {
  if (callee.k == K::Undef) undefined_error(callee);
  if (callee.k != K::Fn) raise("TypeError", "'{}' object is not callable", type_name(callee));
  const Fn& f = callee.fn();
  if (f.global) return call_global(f.name, a);
  if (f.self.k == K::Str) return str_method(f.self, f.name, a);
  if (f.self.k == K::Loop && f.name == "cycle") {
    if (a.pos.empty()) raise("TypeError", "no items for cycling given");
    return a.pos[f.self.loop().i % a.pos.size()];
  }
  if (f.self.k == K::Loop) unsupported("loop.{}()", f.name);
  return container_method(f.self, f.name, a);
}

// ---------------------------------------------------------------------------------------------
// Renderer

struct Scope {
  const Scope* parent = nullptr;
  std::vector<std::pair<std::string, V>> vars;
  const V* find(std::string_view n) const {
    for (const Scope* s = this; s; s = s->parent)
      for (auto it = s->vars.rbegin(); it != s->vars.rend(); ++it)
        if (it->first == n) return &it->second;
    return nullptr;
  }
  void set(std::string_view n, V v) {
    for (auto& [k, x] : vars)
      if (k == n) return void(x = std::move(v));
    vars.emplace_back(std::string(n), std::move(v));
  }
};

enum class Flow { Next, Break, Continue };

class Renderer {
 public:
  explicit Renderer(const VDict* context) : ctx_(context) {}
  Flow exec(const Node& n, Scope& sc, std::string& out);
  V eval(const Node& n, const Scope& sc);
  int line = 0, col = 0;  // of the node being evaluated, for error messages

 private:
  const VDict* ctx_;
  void at(const Node& n) { line = n.line, col = n.col, charge(); }
  V lookup(const std::string& name, const Scope& sc) const;
  Args eval_args(const Node& n, std::size_t first, const Scope& sc);
  V eval_filter(const Node& n, const Scope& sc);
  V eval_cmp(const Node& n, const Scope& sc);
  V eval_literal(const Node& n, const Scope& sc);
  void bind(const Node& target, const V& value, Scope& sc);
  Flow exec_for(const Node& n, Scope& sc, std::string& out);
  void exec_set_ns(const Node& n, Scope& sc);
};

V Renderer::lookup(const std::string& name, const Scope& sc) const {
  if (const V* v = sc.find(name)) return *v;
  if (const V* v = ctx_ ? dict_get(*ctx_, name) : nullptr) return *v;
  static constexpr std::string_view kGlobals[] = {"range",        "namespace", "dict",   "raise_exception",
                                                  "strftime_now", "lipsum",    "cycler", "joiner"};
  if (std::find(std::begin(kGlobals), std::end(kGlobals), name) != std::end(kGlobals)) return bound(none(), name, true);
  return undef(fmt::format("'{}' is undefined", name));
}

Args Renderer::eval_args(const Node& n, std::size_t first, const Scope& sc) {
  Args a;
  std::size_t npos = n.kids.size() - first - n.names.size();
  for (std::size_t i = 0; i < npos; ++i) a.pos.push_back(eval(*n.kids[first + i], sc));
  for (std::size_t i = 0; i < n.names.size(); ++i) a.kw.emplace_back(n.names[i], eval(*n.kids[first + npos + i], sc));
  return a;
}

V Renderer::eval_filter(const Node& n, const Scope& sc) {
  V subject = eval(*n.kids[0], sc);
  Args a = eval_args(n, 1, sc);
  at(n);
  if (n.k == NK::Test) {
    const TestDef* t = find_test(n.name);
    return boolean(t->fn(subject, a));
  }
  const FilterDef* f = find_filter(n.name);
  check_params(a, f->params, f->name);
  return f->fn(subject, a);
}

V Renderer::eval_cmp(const Node& n, const Scope& sc) {
  V left = eval(*n.kids[0], sc);
  for (std::size_t i = 0; i < n.names.size(); ++i) {
    V right = eval(*n.kids[i + 1], sc);
    at(n);
    if (!compare(n.names[i], left, right)) return boolean(false);
    left = std::move(right);
  }
  return boolean(true);
}

V Renderer::eval_literal(const Node& n, const Scope& sc) {
  if (n.k != NK::Dict) {
    VList items;
    for (const auto& c : n.kids) items.push_back(eval(*c, sc));
    return list(std::move(items), n.k == NK::List ? K::List : K::Tuple);
  }
  VDict d;
  for (std::size_t i = 0; i + 1 < n.kids.size(); i += 2) {
    V key = eval(*n.kids[i], sc);
    if (is_seq(key) && key.k == K::List) raise("TypeError", "unhashable type: 'list'");
    if (key.k == K::Dict || key.k == K::Ns) raise("TypeError", "unhashable type: '{}'", type_name(key));
    dict_set(d, std::move(key), eval(*n.kids[i + 1], sc));
  }
  return dict(std::move(d));
}

V Renderer::eval(const Node& n, const Scope& sc) {
  at(n);
  auto kid = [&](std::size_t i) { return eval(*n.kids[i], sc); };
  switch (n.k) {
    case NK::Const: return n.value;
    case NK::Name: return lookup(n.name, sc);
    case NK::Attr: return getattr(kid(0), n.name);
    case NK::Item: {
      V obj = kid(0);
      return getitem(obj, kid(1));
    }
    case NK::Slice: {
      V obj = kid(0), b = n.kids[1] ? kid(1) : none(), e = n.kids[2] ? kid(2) : none(), s = n.kids[3] ? kid(3) : none();
      return slice(obj, &b, &e, &s);
    }
    case NK::Call: {
      V callee = kid(0);
      Args a = eval_args(n, 1, sc);
      at(n);
      return call(callee, a);
    }
    case NK::Filter:
    case NK::Test: return eval_filter(n, sc);
    case NK::Not: return boolean(!truthy(kid(0)));
    case NK::Neg:
    case NK::Pos: return unary(n.k == NK::Neg, kid(0));
    case NK::Bin: {
      V a = kid(0), b = kid(1);
      return at(n), arith(n.name, a, b);
    }
    case NK::Cmp: return eval_cmp(n, sc);
    case NK::And:
    case NK::Or: {
      V a = kid(0);
      return truthy(a) == (n.k == NK::And) ? kid(1) : a;
    }
    case NK::Cond:
      if (truthy(kid(1))) return kid(0);
      return n.kids[2] ? kid(2) : undef("the inline if-expression evaluated to false and no else section was defined.");
    default: return eval_literal(n, sc);
  }
}

void Renderer::bind(const Node& target, const V& value, Scope& sc) {
  if (target.k == NK::Name) return sc.set(target.name, value);
  VList items = iterate(value);
  std::size_t want = target.kids.size();
  if (items.size() > want) raise("ValueError", "too many values to unpack (expected {})", want);
  if (items.size() < want) raise("ValueError", "not enough values to unpack (expected {}, got {})", want, items.size());
  for (std::size_t i = 0; i < want; ++i) bind(*target.kids[i], items[i], sc);
}

Flow Renderer::exec_for(const Node& n, Scope& sc, std::string& out) {
  VList items = iterate(eval(*n.kids[1], sc));
  if (n.kids[2]) {  // for x in xs if cond: filtered before the loop (loop.length counts what is kept)
    VList kept;
    for (V& x : items) {
      Scope probe{&sc, {}};
      bind(*n.kids[0], x, probe);
      if (truthy(eval(*n.kids[2], probe))) kept.push_back(std::move(x));
    }
    items = std::move(kept);
  }
  // jinja2 runs the else block unless some iteration ran to the end of the body (so a loop
  // that breaks or continues in its first iteration still gets it).
  bool completed = false;
  if (items.empty()) return n.kids[4] ? exec(*n.kids[4], sc, out) : Flow::Next;
  auto info = std::make_shared<LoopInfo>();
  info->items = std::make_shared<const VList>(std::move(items));
  V loop = scalar(K::Loop, info);
  loop.refs = true;
  for (std::size_t i = 0; i < info->items->size(); ++i) {
    info->i = i;
    Scope iteration{&sc, {}};
    bind(*n.kids[0], (*info->items)[i], iteration);
    iteration.set("loop", loop);
    Flow f = exec(*n.kids[3], iteration, out);
    completed = completed || f == Flow::Next;
    if (f == Flow::Break) break;
  }
  return !completed && n.kids[4] ? exec(*n.kids[4], sc, out) : Flow::Next;
}

void Renderer::exec_set_ns(const Node& n, Scope& sc) {
  const V* ns = sc.find(n.name);
  if (!ns && ctx_) ns = dict_get(*ctx_, n.name);
  if (!ns || ns->k != K::Ns) raise("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
  V v = eval(*n.kids[0], sc);
  if (v.refs) unsupported("storing a namespace or loop (or a method of one) in a namespace");
  if (v.depth + 1 > kMaxValueDepth) raise("LimitError", "values nested more than {} deep", kMaxValueDepth);
  dict_set(ns->d(), str(n.attr), std::move(v));
}

Flow Renderer::exec(const Node& n, Scope& sc, std::string& out) {
  at(n);
  switch (n.k) {
    case NK::Seq:
      for (const auto& c : n.kids) {
        Flow f = exec(*c, sc, out);
        if (f != Flow::Next) return f;
      }
      return Flow::Next;
    case NK::Text: out += n.value.s(), check_len(out.size()); return Flow::Next;
    case NK::Print: str_to(out, eval(*n.kids[0], sc)); return Flow::Next;
    case NK::If:
      for (std::size_t i = 0; i + 1 < n.kids.size(); i += 2)
        if (truthy(eval(*n.kids[i], sc))) return exec(*n.kids[i + 1], sc, out);
      return n.kids.size() % 2 ? exec(*n.kids.back(), sc, out) : Flow::Next;
    case NK::For: return exec_for(n, sc, out);
    case NK::Set: bind(*n.kids[0], eval(*n.kids[1], sc), sc); return Flow::Next;
    case NK::SetNs: exec_set_ns(n, sc); return Flow::Next;
    case NK::SetBlock: {
      std::string body;
      exec(*n.kids[1], sc, body);
      bind(*n.kids[0], str(std::move(body)), sc);
      return Flow::Next;
    }
    case NK::With: {
      Scope inner{&sc, {}};
      for (std::size_t i = 0; i + 1 < n.kids.size(); i += 2) bind(*n.kids[i], eval(*n.kids[i + 1], sc), inner);
      return exec(*n.kids.back(), inner, out);
    }
    case NK::Break: return Flow::Break;
    case NK::Continue: return Flow::Continue;
    default: return Flow::Next;
  }
}

}  // namespace

namespace detail {
struct Program {
  std::string origin;
  NodeP root;
};
}  // namespace detail

Template Template::parse(std::string_view source, std::string origin) {
  if (auto bad = uni::find_invalid_utf8(source))
    fail(ErrorCode::ModelFormat, "{}: template is not valid UTF-8 (byte {})", origin, *bad);
  auto program = std::make_shared<detail::Program>();
  program->origin = std::move(origin);
  Run* outer = std::exchange(g_run, nullptr);  // literals are not charged to a render
  try {
    program->root = Parser(Lexer(source, program->origin).run(), program->origin).parse_template();
  } catch (...) {
    g_run = outer;
    throw;
  }
  g_run = outer;
  return Template(std::move(program));
}

const std::string& Template::origin() const { return program_->origin; }

std::string Template::render(const Value& context, const Limits& limits) const {
  if (!context.is_object() && !context.is_null())
    fail(ErrorCode::Input, "{}: the template context must be a JSON object", origin());
  Run run{&limits};
  struct Restore {
    Run* prev;
    ~Restore() { g_run = prev; }
  } restore{std::exchange(g_run, &run)};
  Renderer r(nullptr);
  try {
    V ctx = from_json(context.is_null() ? Value::object() : context, 0);
    r = Renderer(&ctx.d());
    Scope root;
    std::string out;
    r.exec(*program_->root, root, out);
    return out;
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}:{}:{}: {}", origin(), r.line, r.col, e.message()));
  }
}

}  // namespace rankemb::text::jinja
