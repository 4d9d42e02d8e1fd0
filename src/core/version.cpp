#include "hamlet/core/version.hpp"

#include <H5public.h>
#include <boost/version.hpp>
#include <spdlog/version.h>
#include <torch/version.h>

#include <string>

#ifndef HAMLET_VERSION
#define HAMLET_VERSION "0.0.0"
#endif

namespace hamlet {

std::string version() { return HAMLET_VERSION; }

std::string dependency_versions() {
  return std::string("libtorch ") + std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH) + ", hdf5 " + std::to_string(H5_VERS_MAJOR) + "." +
         std::to_string(H5_VERS_MINOR) + "." + std::to_string(H5_VERS_RELEASE) + ", boost " +
         std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) + ", spdlog " +
         std::to_string(SPDLOG_VER_MAJOR) + "." + std::to_string(SPDLOG_VER_MINOR) + "." +
         std::to_string(SPDLOG_VER_PATCH);
}

}  // namespace hamlet
