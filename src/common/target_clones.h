// CTX_CLONES: compile a function once per x86-64 level and pick the clone at load time
// through an ifunc, so the shipped binary uses AVX-512 or AVX2 + FMA where the CPU has
// them without being built for one machine (no -march=native).
//
// Each string is one clone: "avx2,fma" would be two, an AVX2 one without FMA and an FMA
// one without AVX2. The x86-64 levels name the whole set: v3 = AVX2 + FMA + BMI, v4 =
// AVX-512 F/BW/CD/DQ/VL. Sanitizer builds define CONTEXTD_NO_TARGET_CLONES: ifunc
// resolvers run before the sanitizer runtime is up.
#pragma once

#ifdef CONTEXTD_NO_TARGET_CLONES
#define CTX_CLONES
#else
#define CTX_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
