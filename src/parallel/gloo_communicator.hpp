#pragma once
// Private to src/parallel: the Gloo process group behind parallel::connect().
#include "hamlet/parallel/communicator.hpp"

namespace hamlet::parallel::detail {

CommunicatorPtr connect_gloo(const DistributedOptions& options);

}  // namespace hamlet::parallel::detail
