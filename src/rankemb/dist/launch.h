// rankemb::dist local launcher: what `torchrun --nproc-per-node N --no-python rankemb ...` does on
// one machine, without Python: N copies of the running binary, each with the launch environment
// of env.h (RANK = LOCAL_RANK = i, WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1, a free MASTER_PORT)
// and, unless the user set it, OMP_NUM_THREADS = cores / N so the ranks do not fight over cores.
#pragma once

#include <string>
#include <vector>

namespace rankemb::dist {

// Runs `args` (argv[1..] of the child command, the launcher's own option removed) as `nproc`
// local ranks of /proc/self/exe and waits for them. Returns 0 when every rank exited 0; otherwise
// stops the others (SIGTERM, SIGKILL after 10 s) and returns the first failure's exit status
// (128 + signal for a rank killed by a signal). Error(Usage) for nproc < 1 or above 256,
// Error(Other) when a process cannot be started.
int run_local_ranks(int nproc, const std::vector<std::string>& args);

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0).
int free_loopback_port();

}  // namespace rankemb::dist
