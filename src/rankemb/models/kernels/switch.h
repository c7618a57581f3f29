// Whether the hand-written kernels of this folder (and the fused optimizer step built the same
// way, train/fused_adamw) are used where they apply. On unless the environment variable
// RANKEMB_KERNELS is off (also 0, false, no; any other value keeps them on, with a warning):
// benchmarks run the libtorch operators they replace side by side in
// one build (bench/kernels_ab.py), and a user who suspects a kernel can rule it out.
#pragma once

namespace rankemb::models::kernels {

bool enabled();

// Overrides the environment for the rest of the process (tests compare both paths in one run).
void set_enabled(bool on);

}  // namespace rankemb::models::kernels
