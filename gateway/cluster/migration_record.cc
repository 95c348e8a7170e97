#include "gateway/cluster/migration_record.h"

#include <array>
#include <utility>

#include <nlohmann/json.hpp>

namespace xcg {
namespace {

constexpr std::array<std::pair<MigrationStep, const char*>, 4> kSteps{{{MigrationStep::asked, "asked"},
                                                                       {MigrationStep::ready, "ready"},
                                                                       {MigrationStep::moved, "moved"},
                                                                       {MigrationStep::refused, "refused"}}};

const char* step_name(MigrationStep step) {
  for (const auto& [s, name] : kSteps)
    if (s == step) return name;
  return "asked";
}

std::optional<MigrationStep> step_named(std::string_view name) {
  for (const auto& [s, n] : kSteps)
    if (name == n) return s;
  return std::nullopt;
}

}  // namespace

std::string migrations_prefix(std::string_view prefix) { return std::string(prefix) + "migrations/"; }

std::string encode_migration(const MigrationRecord& record) {
  nlohmann::json j{{"from", record.from}, {"to", record.to}, {"step", step_name(record.step)}};
  if (!record.error.empty()) j["error"] = record.error;
  return j.dump();
}

std::optional<MigrationRecord> decode_migration(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* field) -> std::string {
    auto it = j.find(field);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto step = step_named(text("step"));
  MigrationRecord record{text("from"), text("to"), step.value_or(MigrationStep::asked), text("error")};
  if (!step || record.from.empty() || record.to.empty() || record.from == record.to) return std::nullopt;
  return record;
}

}  // namespace xcg
