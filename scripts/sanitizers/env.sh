# Sourced by scripts/sanitize.sh and scripts/fuzz.sh (with $root set): the sanitized build directory, how it is
# configured, and the sanitizer runtime options. Not a script of its own.
#
# Environment: HAMLET_ASAN_BUILD_DIR (default <repo>/build-asan), HAMLET_JOBS (default nproc), CC / CXX (default
# clang-14 / clang++-14; the fuzz targets need clang).
asan_build="${HAMLET_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${HAMLET_JOBS:-$(nproc)}"

# ASan: stop at the first error, with exit code 86 so that a report is not mistaken for one of hamlet's own exit
# codes (1-3); LeakSanitizer at exit, with suppressions for leaks inside libraries hamlet does not own (lsan.supp says
# why each line is there).
export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1"
# UBSan: every report is fatal (the code is also built with -fno-sanitize-recover=undefined), with a stack trace.
export UBSAN_OPTIONS="halt_on_error=1:exitcode=86:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$root/scripts/sanitizers/lsan.supp:print_suppressions=0"
# Symbolized stack traces (llvm-14 in scripts/setup.sh).
[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] && export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

configure_sanitized() {
  local generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  if [ ! -f "$asan_build/CMakeCache.txt" ]; then
    # RelWithDebInfo: NDEBUG as in the Release build (so the same code runs); HAMLET_SANITIZE replaces its -O2 by -O1.
    CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}" cmake -S "$root" -B "$asan_build" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAMLET_SANITIZE=ON -DHAMLET_FUZZ=ON \
      -DHAMLET_TEST_DATA_DIR="${HAMLET_DATA_DIR:-$root/data}" -DHAMLET_DATA_DIR="${HAMLET_DATA_DIR:-$root/data}" \
      >/dev/null
  fi
}
