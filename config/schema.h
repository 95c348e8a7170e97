// What a config file may hold, section by section (the tables are in schema.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/loader.h"

namespace xcg::config {

// Every field a config may have, from the tables: "listen", "limits.max_actions",
// "domains.keys.readonly", ...
std::vector<std::string> schema_fields();

// The main file's top-level mapping.
void read_main(Loader& in, const YAML::Node& root);
// An included file's top-level mapping: only `domains`.
void read_included(Loader& in, const YAML::Node& root);

}  // namespace xcg::config
