#include "hamlet/meta/gradient_estimator.hpp"

#include "hamlet/core/error.hpp"
#include "hamlet/meta/bptt.hpp"
#include "hamlet/meta/es.hpp"
#include "hamlet/meta/pes.hpp"

namespace hamlet::meta {

GradientEstimatorPtr make_estimator(const MetaTrainOptions& options) {
  options.validate();
  if (options.estimator == "bptt") return std::make_unique<TruncatedBptt>(options);
  if (options.estimator == "es") return std::make_unique<TruncatedEs>(options);
  if (options.estimator == "pes") return std::make_unique<PersistentEs>(options);
  throw Error("meta_train.estimator must be bptt, es or pes, got '" + options.estimator + "'");
}

}  // namespace hamlet::meta
