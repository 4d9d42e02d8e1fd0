#include "hamlet/core/runtime.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <utility>

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

namespace {

// The first number after `key` in a /proc-style text file, or -1.
double read_number_after(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    try {
      return std::stod(line.substr(key.size()));
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

// A file holding one number (cgroup v2), or -1 ("max" or missing).
double read_single_number(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return -1;
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return -1;
  }
}

std::pair<double, std::string> memory_bound() {
  double best = std::numeric_limits<double>::infinity();
  std::string source = "no limit found";
  const double available_kib = read_number_after("/proc/meminfo", "MemAvailable:");
  if (available_kib >= 0) best = available_kib * 1024, source = "MemAvailable in /proc/meminfo";
  const double cgroup_max = read_single_number("/sys/fs/cgroup/memory.max");
  const double cgroup_used = read_single_number("/sys/fs/cgroup/memory.current");
  if (cgroup_max >= 0 && cgroup_used >= 0 && cgroup_max - cgroup_used < best) {
    best = std::max(0.0, cgroup_max - cgroup_used), source = "the cgroup's memory.max";
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const double vm_kib = read_number_after("/proc/self/status", "VmSize:");
    const double left = static_cast<double>(limit.rlim_cur) - std::max(0.0, vm_kib) * 1024;
    if (left < best) best = std::max(0.0, left), source = "ulimit -v (RLIMIT_AS)";
  }
  return {best, source};
}

}  // namespace

double available_memory_bytes() { return memory_bound().first; }
std::string available_memory_source() { return memory_bound().second; }

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
