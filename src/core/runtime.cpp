#include "hamlet/core/runtime.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <dlfcn.h>
#include <unistd.h>
#endif

namespace hamlet {

void tune_allocator() {
#if defined(__GLIBC__)
  constexpr int kOneGiB = 1 << 30;
  // Serve every block from the heap (no per-block mmap), and never give freed heap back to the OS.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
  mallopt(M_TOP_PAD, kOneGiB / 4);
#endif
}

std::string blas_core() {
#if defined(__linux__)
  // Looked up at run time: hamlet does not link OpenBLAS itself, LibTorch's BLAS may or may not be it.
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core_name != nullptr) {
    const char* name = core_name();
    if (name != nullptr) return name;
  }
#endif
  return "";
}

std::string blas_core_override() {
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";
  const char* keep = std::getenv("HAMLET_BLAS_CORE");
  if (keep != nullptr && std::strcmp(keep, "keep") == 0) return "";
  const std::string core = blas_core();
  // OpenBLAS writes core names in mixed case ("Prescott"); compare case-insensitively.
  if (strcasecmp(core.c_str(), "prescott") != 0) return "";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void use_best_blas_kernels(char** argv) {
#if defined(__linux__)
  const std::string core = blas_core_override();
  if (core.empty() || argv == nullptr || argv[0] == nullptr) return;
  if (setenv("OPENBLAS_CORETYPE", core.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // exec failed: carry on as before
#else
  (void)argv;
#endif
}

}  // namespace hamlet
