// RANKEMB_VECTOR_CLONES: on x86-64 with GCC, a function so marked is built twice, for the baseline
// x86-64 (SSE2) and for x86-64-v3 (AVX2 + FMA), and the loader picks the copy the CPU can run.
// For the kernels' loops written for the auto-vectorizer; elsewhere it is empty. The FMA copy
// rounds a multiply-add once, so results may differ by a float32 ulp between CPUs, never
// between runs on one CPU.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RANKEMB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RANKEMB_VECTOR_CLONES
#endif
