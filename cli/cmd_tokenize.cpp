// rankemb tokenize: text lines -> token ids (JSONL), or ids -> text with --decode. A window into
// every tokenizer rankemb supports, useful for checking a model directory before encoding.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer;          // model dir or tokenizer file
  std::string input = "-";        // lines of text (or JSONL ids with --decode)
  bool no_special = false;        // do not add [CLS]/[SEP]/BOS
  std::size_t max_length = 0;     // truncate to this many ids (0 = no limit)
  bool tokens = false;            // also print the token strings
  bool decode = false;            // input is {"ids": [...]} per line; print the text
};

int run_tokenize(const TokenizeArgs& a) {
  auto tok = text::load_tokenizer(a.tokenizer);
  LineReader reader(a.input);
  std::string line;
  text::EncodeOptions opts{.add_special_tokens = !a.no_special, .max_length = a.max_length};
  while (reader.next(line)) {
    std::string where = fmt::format("{}:{}", reader.name(), reader.line_number());
    nlohmann::json out;
    if (a.decode) {
      nlohmann::json in;
      try {
        in = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::Input, "{}: invalid JSON ({})", where, e.what());
      }
      if (!in.is_object() || !in.contains("ids") || !in["ids"].is_array()) {
        fail(ErrorCode::Input, "{}: expected an object with an \"ids\" array", where);
      }
      std::vector<text::TokenId> ids;
      for (const auto& v : in["ids"]) {
        if (!v.is_number_integer()) fail(ErrorCode::Input, "{}: ids must be integers", where);
        ids.push_back(v.get<text::TokenId>());
      }
      try {
        out["text"] = tok->decode(ids, !a.tokens);
      } catch (Error& e) {
        throw e.with_context(where);
      }
    } else {
      std::vector<text::TokenId> ids;
      try {
        ids = tok->encode(line, opts);
      } catch (Error& e) {
        throw e.with_context(where);
      }
      out["ids"] = ids;
      if (a.tokens) {
        auto& t = out["tokens"] = nlohmann::json::array();
        for (auto id : ids) t.push_back(tok->id_to_token(id));
      }
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return 0;
}

}  // namespace

void register_tokenize(CLI::App& root, ExitCode& rc) {
  auto args = std::make_shared<TokenizeArgs>();
  auto* cmd = root.add_subcommand("tokenize", "Text lines to token ids (JSONL on stdout), or ids back to text");
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "Model directory or tokenizer file (tokenizer.json, vocab.txt, USE-Lite vocab.json)")
      ->required();
  cmd->add_option("input", args->input, "Input file, one text per line ('-' = stdin)");
  cmd->add_flag("--no-special", args->no_special, "Do not add the model's special tokens ([CLS]/[SEP], BOS)");
  cmd->add_option("--max-length", args->max_length, "Truncate to this many ids, specials included (0 = no limit)");
  cmd->add_flag("--tokens", args->tokens, "Also print token strings (with --decode: keep special tokens)");
  cmd->add_flag("--decode", args->decode, "Read {\"ids\": [...]} lines and print the decoded text");
  cmd->callback([args, &rc] { rc = run_tokenize(*args); });
}

}  // namespace rankemb::cli
