// rankemb::dist launch environment: the variables torchrun (and Slurm wrappers, and
// `rankemb train --nproc`) set for every rank, read and validated in one place.
//   RANK, WORLD_SIZE        this process's rank and the number of ranks (required together)
//   LOCAL_RANK              rank on this machine (default RANK); picks cuda:LOCAL_RANK
//   MASTER_ADDR, MASTER_PORT where rank 0 (or torchrun's agent) serves the rendezvous store
//   TORCHELASTIC_USE_AGENT_STORE=True  torchrun's agent already hosts that store: every rank
//                           connects as a client (otherwise rank 0 hosts it)
//   TORCHELASTIC_RESTART_COUNT        keys of a restarted group do not meet a stale attempt's
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "rankemb/util/device.h"

namespace rankemb::dist {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  std::uint16_t master_port = 29500;
  bool agent_store = false;   // TORCHELASTIC_USE_AGENT_STORE=True
  int restart_count = 0;      // TORCHELASTIC_RESTART_COUNT
};

// Reads the launch environment through `getenv` (tests pass their own). nullopt when neither
// RANK nor WORLD_SIZE is set (a plain single process). Error(Usage) naming the variable for a
// half-set, non-numeric or out-of-range one (RANK outside [0, WORLD_SIZE), a port outside
// 1..65535, MASTER_ADDR missing when WORLD_SIZE > 1).
using GetEnv = std::function<const char*(const char*)>;
std::optional<LaunchEnv> launch_env_from(const GetEnv& getenv);
std::optional<LaunchEnv> launch_env();  // from the process environment

// The output file of `rank` for a command every rank runs with the same -o: "{rank}" in `path`
// replaced by the rank, else the rank inserted before the extension (chains.jsonl ->
// chains.3.jsonl; no extension: chains -> chains.3), so ranks never write one file.
std::string rank_output_path(const std::string& path, int rank);

// The device of this rank: under a launcher each rank takes its own GPU, so cuda:N means
// cuda:(N + LOCAL_RANK); the CPU and a plain process keep `requested`.
Device rank_device(Device requested);

}  // namespace rankemb::dist
