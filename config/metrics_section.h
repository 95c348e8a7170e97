// The `metrics:` section: where the Prometheus endpoint listens (docs/metrics.md).
#pragma once

#include "config/config.h"
#include "config/loader.h"
#include "config/table.h"

namespace xcg::config {

const Table<MetricsSettings>& metrics_table();

// Reads the section into config.metrics; false if it reported a problem.
bool read_metrics(Loader& in, const Field& f, Config& c);

}  // namespace xcg::config
