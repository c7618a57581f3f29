// Whether the hand-written kernels of this folder (and the fused optimizer step built the same
// way, train/fused_adamw) are used where they apply. On unless the environment variable
// RANKEMB_KERNELS is off (also 0, false, no; any other value keeps them on, with a warning):
// benchmarks run the libtorch operators they replace side by side in
// one build (bench/kernels_ab.py), and a user who suspects a kernel can rule it out.
// Also how the kernels' parallel loops run here: the threads they get and the least work worth a
// parallel region, and whether the CPU runs their AVX2 loops.
#pragma once

#include <cstdint>

namespace rankemb::models::kernels {

bool enabled();

// Overrides the environment for the rest of the process (tests compare both paths in one run).
void set_enabled(bool on);

// The number of threads at::parallel_for spreads a wide range over in this build, at most
// at::get_num_threads(). The kernels' parallel loops are at::parallel_for, a header template whose
// OpenMP pragma is compiled with this library's flags: without -fopenmp it is 1 at any thread
// setting, and every kernel runs on the calling thread (tests check that it is not).
int parallel_team_size();

// The least work, in multiply-adds, worth a parallel region of the decoder's small steps. Each
// region wakes the pool's other threads: spinning ones (libgomp's default) answer in
// microseconds, but under OMP_WAIT_POLICY=PASSIVE (the CLI's default, cli/main.cpp) they sleep
// in the kernel between regions and a wake-up cost ~90 µs here: a one-slot decode step (151
// regions) took 23 ms at 2 threads against 15 ms at 1. So 2M (~0.5 ms of one core) when the
// policy is passive (or GOMP_SPINCOUNT=0), 16k otherwise.
std::int64_t min_parallel_work();

// Whether this CPU runs the kernels' AVX2 + FMA loops (x86-64 with GCC or clang; false elsewhere).
bool cpu_has_avx2_fma();

}  // namespace rankemb::models::kernels
