#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "hamlet/core/runtime.hpp"

int main(int argc, char** argv) {
  hamlet::use_best_blas_kernels(argv);
  hamlet::tune_allocator();
  return Catch::Session().run(argc, argv);
}
