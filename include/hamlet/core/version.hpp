#pragma once
#include <string>

namespace hamlet {
// hamlet's version string, recorded in every output file.
std::string version();
// Versions of the libraries hamlet was built against (LibTorch, HDF5, Boost, spdlog), one line.
std::string dependency_versions();
}  // namespace hamlet
