#pragma once
// Private to src/dist: the Gloo process group behind dist::connect().
#include "hamlet/dist/communicator.hpp"

namespace hamlet::dist::detail {

CommunicatorPtr connect_gloo(const DistributedOptions& options);

}  // namespace hamlet::dist::detail
