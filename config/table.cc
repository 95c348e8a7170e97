#include "config/table.h"

#include <algorithm>

namespace xcg::config {

const Field* Outcome::ok(std::string_view name) const {
  return failed.contains(name) ? nullptr : find(given, name);
}

Fields known_fields(Loader& in, const Entries& entries, const std::vector<std::string_view>& names) {
  Fields out;
  for (const auto& [name, field] : entries) {
    if (std::find(names.begin(), names.end(), name) != names.end()) out.emplace(name, field);
    else
      in.report(field.key.Mark(), fmt::format("unknown field '{}': expected {}", name,
                                              one_of(std::vector<std::string>(names.begin(), names.end()))));
  }
  return out;
}

void require(Loader& in, const Fields& given, const YAML::Node& map, std::string_view name,
             std::string_view unless) {
  if (find(given, name) || (!unless.empty() && find(given, unless))) return;
  in.report(map.Mark(), fmt::format("missing required field '{}'", name));
}

std::optional<Strings> read_strings(Loader& in, const Field& f, bool nonempty) {
  if (!f.value.IsSequence()) {
    in.report(mark_of(f), fmt::format("{}: expected a list of strings", name_of(f)));
    return std::nullopt;
  }
  Strings out;
  bool ok = true;
  for (const auto& item : f.value) {
    if (item.IsScalar()) {
      out.emplace_back(item.Scalar(), item);
      continue;
    }
    in.report(item.Mark(),
              fmt::format("{}: expected a list of strings; this item is not a string", name_of(f)));
    ok = false;
  }
  if (ok && nonempty && out.empty()) {
    in.report(mark_of(f), fmt::format("{}: must list at least one item", name_of(f)));
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace xcg::config
