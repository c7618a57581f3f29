// rankemb: the command table. Each verb is one file (cli/cmd_<verb>.cpp); this file only wires
// them up, applies the shared flags and maps errors to exit statuses (2 usage, 3 input data,
// 4 model format, 1 anything else). It is the only catch-all in the program.
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string_view>
#include <thread>

#include <unistd.h>

#include "cli.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/types.h"
#include "rankemb/util/version.h"

namespace {
// Output that never reached its file (a full disk, a closed pipe) must not end in status 0; the
// streams buffer, so the error shows only when they are flushed.
int check_stdout(int rc) {
  std::cout.flush();
  if (std::cout.fail() || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    rankemb::log::error("writing standard output failed: {}", std::strerror(errno));
    return rc != 0 ? rc : static_cast<int>(rankemb::ErrorCode::Other);
  }
  return rc;
}

// OpenMP threads that finish a parallel region spin for a while before sleeping (libgomp's
// default "active" wait). On cores shared with another busy process the spinning threads steal
// the time the working ones need: measured here (2 cores, two busy loops alongside), encoding 500
// sentences took 11.6 s instead of 3.5 s quiet, and 6.2 s with OMP_WAIT_POLICY=PASSIVE (the fair
// share of the cores would be about 7 s); quiet runs are the same either way (3 runs each, within
// noise). libgomp reads the variable when it loads, before main (setting it from the
// executable's .preinit_array was tried and did not take effect), so a command that runs a model
// restarts the process once with it set; that costs one more start (~0.4 s), which the light
// commands (tokenize, info, convert, --help, --version) do not pay. A user's own
// OMP_WAIT_POLICY is kept.
void prefer_passive_openmp_wait(int argc, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  static const std::string_view kModelCommands[] = {"encode", "eval",  "train",  "generate", "chains",
                                                    "demo",   "serve", "index",  "search",   "report"};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--threads") ++i;  // the one global option with a value
    if (arg.empty() || arg.front() == '-') continue;
    if (std::find(std::begin(kModelCommands), std::end(kModelCommands), arg) == std::end(kModelCommands)) return;
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
    return;
  }
}
}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_wait(argc, argv);
  using namespace rankemb;
  CLI::App app{
      "rankemb: refine sentence embedding models with LLM-generated ranking sentences.\n"
      "Generate ranking chains, post-train an encoder on them, evaluate, encode.",
      "rankemb"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default(true);  // --help shows every default
  app.fallthrough();
  app.set_version_flag("--version", std::string("rankemb ") + version());
  app.footer("Run 'rankemb <command> --help' for the options of a command.");

  int threads = 0;
  bool quiet = false;
  int verbose = 0;
  // More threads than cores only adds contention; far more is a typo that would take minutes to spawn.
  const int max_threads = usable_cpu_cores() * 4;
  app.add_option("--threads", threads, fmt::format("Intra-op threads for tensor work (0 = all cores; at most {})", max_threads))
      ->check(cli::in_range(0, max_threads));
  app.add_flag("-q,--quiet", quiet, "Only print errors");
  app.add_flag("-v,--verbose", verbose, "More logging (-v info, -vv debug)");

  cli::set_command_line(argc, argv);
  cli::ExitCode rc = 0;
  using Register = void (*)(CLI::App&, cli::ExitCode&);
  const Register commands[] = {
      cli::register_tokenize, cli::register_encode, cli::register_eval,  cli::register_train,
      cli::register_generate, cli::register_chains, cli::register_convert, cli::register_demo,
      cli::register_info,     cli::register_serve,    cli::register_index, cli::register_search,
      cli::register_report,
  };
  for (Register r : commands) r(app, rc);

  app.parse_complete_callback([&] {
    if (quiet) log::set_level(log::Level::Error);
    if (verbose >= 2) log::set_level(log::Level::Debug);
    else if (verbose == 1) log::set_level(log::Level::Info);
    // 0 = all cores, said explicitly: Debian's libtorch 1.13 starts with 1 intra-op thread on a
    // 2-core machine (measured: encode of 2,000 sentences took 10.1-10.8 s against 6.4-7.9 s at 2).
    // OMP_NUM_THREADS / MKL_NUM_THREADS still rule when set (libtorch reads them; the local ranks
    // of `train --nproc` and torchrun share the cores through them).
    if (threads > 0) {
      torch::set_num_threads(threads);
    } else if (!std::getenv("OMP_NUM_THREADS") && !std::getenv("MKL_NUM_THREADS")) {
      torch::set_num_threads(usable_cpu_cores());
    }
    log::debug("intra-op threads: {}", torch::get_num_threads());
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int status = app.exit(e);
    return status == 0 ? 0 : 2;
  } catch (const Error& e) {
    log::error("{}", e.what());
    return check_stdout(static_cast<int>(e.code()));
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the program could not inspect (a symlink loop, no permission): bad input data.
    log::error("{}", e.what());
    return static_cast<int>(ErrorCode::Input);
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    return 1;
  }
  return check_stdout(rc);
}
