// CTX_CLONES: compile a function once per x86-64 level and pick the clone at load time
// through an ifunc, so the shipped binary uses AVX-512 or AVX2 + FMA where the CPU has
// them without being built for one machine (no -march=native).
//
// Each string is one clone: "avx2,fma" would be two, an AVX2 one without FMA and an FMA
// one without AVX2. The x86-64 levels name the whole set: v3 = AVX2 + FMA + BMI, v4 =
// AVX-512 F/BW/CD/DQ/VL. Sanitizer builds define CONTEXTD_NO_TARGET_CLONES: ifunc
// resolvers run before the sanitizer runtime is up.
//
// CONTEXTD_KERNEL_LEVEL (0 = baseline x86-64, 3 = v3, 4 = v4) builds one path only: the
// kernel files compiled with that level's -march, and hand-written kernels picking the
// fastest code the level allows rather than what the CPU has. The kernel tests build each
// level this way (tests/CMakeLists.txt), so every dispatched path is tested on a machine
// that has it, whichever path that machine would pick itself.
#pragma once

#if defined(CONTEXTD_NO_TARGET_CLONES) || defined(CONTEXTD_KERNEL_LEVEL)
#define CTX_CLONES
#else
#define CTX_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace contextd {

// Whether a hand-dispatched kernel may use AVX2: the CPU's answer, or the level's.
inline bool KernelsMayUseAvx2() {
#ifdef CONTEXTD_KERNEL_LEVEL
  return CONTEXTD_KERNEL_LEVEL >= 3;
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#endif
}

}  // namespace contextd
