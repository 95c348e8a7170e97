// A section of the config as a table: one row per field with its name, how its value is read
// and checked (values.h), and where it goes. The table is the only place a field is named:
// unknown, missing, mistyped and out-of-range fields are all reported from it.
#pragma once

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "config/values.h"

namespace xcg::config {

template <class Target>
struct Row {
  std::string_view name;
  // Reads the field's value into the target; false if it reported a problem.
  std::function<bool(Loader&, const Field&, Target&)> read;
  bool required = false;
  std::string_view unless = {};  // not required when this other field is given
  // The names in the table the field's value is read by, if any (for schema_fields).
  std::function<std::vector<std::string>()> nested = {};
};

// What reading a section found: the known fields given, and those with a problem.
struct Outcome {
  Fields given;
  std::set<std::string, std::less<>> failed;
  // Given and read without a problem, or nullptr.
  const Field* ok(std::string_view name) const;
};

// Rows are read in their order, so a row may rely on the ones above it; `check` runs last,
// for rules between fields.
template <class Target>
struct Table {
  std::vector<Row<Target>> rows;
  void (*check)(Loader&, const Outcome&, Target&) = nullptr;
};

// Every field of the table and of the tables under it: "limits", "limits.max_actions", ...
template <class Target>
std::vector<std::string> names_of(const Table<Target>& table) {
  std::vector<std::string> out;
  for (const auto& row : table.rows) {
    out.emplace_back(row.name);
    if (!row.nested) continue;
    for (const auto& name : row.nested()) out.push_back(fmt::format("{}.{}", row.name, name));
  }
  return out;
}

// The entries whose names are in `names`; each other one is reported with the names allowed.
Fields known_fields(Loader& in, const Entries& entries, const std::vector<std::string_view>& names);
// Reports `name` missing at the mapping unless it, or `unless`, is given.
void require(Loader& in, const Fields& given, const YAML::Node& map, std::string_view name,
             std::string_view unless);
// A list of strings, each with its node for positions; nullopt after reporting a problem.
using Strings = std::vector<std::pair<std::string, YAML::Node>>;
std::optional<Strings> read_strings(Loader& in, const Field& f, bool nonempty);

template <class Target>
Outcome read_table(Loader& in, const Entries& entries, const YAML::Node& map, const Table<Target>& table,
                   Target& target) {
  std::vector<std::string_view> names;
  for (const auto& row : table.rows) names.push_back(row.name);
  Outcome out{known_fields(in, entries, names), {}};
  for (const auto& row : table.rows)
    if (row.required) require(in, out.given, map, row.name, row.unless);
  for (const auto& row : table.rows) {
    auto f = find(out.given, row.name);
    if (f && !row.read(in, *f, target)) out.failed.emplace(row.name);
  }
  if (table.check) table.check(in, out, target);
  return out;
}

// The value read by `read`, or nullopt after reporting "NAME: what was expected" at it.
template <class Read>
auto read_value(Loader& in, const Field& f, const Read& read) {
  auto value = [&] {
    if constexpr (std::is_invocable_v<const Read&, const YAML::Node&, const std::filesystem::path&>)
      return read(f.value, in.base_dir());
    else return read(f.value);
  }();
  if (!value) in.report(mark_of(f), fmt::format("{}: {}", name_of(f), value.error().message));
  return value;
}

// A field stored in a member of the target.
template <class Target, class Read, class Member>
Row<Target> field(std::string_view name, Read read, Member Target::*member) {
  return {name, [read, member](Loader& in, const Field& f, Target& target) {
            auto value = read_value(in, f, read);
            if (value) target.*member = static_cast<Member>(*value);
            return value.has_value();
          }};
}

// A field stored by a function, for one value that sets several members.
template <class Target, class Read, class Value>
Row<Target> field(std::string_view name, Read read, void (*store)(Target&, const Value&)) {
  return {name, [read, store](Loader& in, const Field& f, Target& target) {
            auto value = read_value(in, f, read);
            if (value) store(target, *value);
            return value.has_value();
          }};
}

// A field with a reader of its own (lists, mappings of names).
template <class Target>
Row<Target> custom(std::string_view name, bool (*read)(Loader&, const Field&, Target&)) {
  return {name, read};
}

// The same, where the reader reads parts of the value by `table`.
template <class Target, class Part>
Row<Target> custom(std::string_view name, bool (*read)(Loader&, const Field&, Target&),
                   const Table<Part>& (*table)()) {
  return {.name = name, .read = read, .nested = [table] { return names_of(table()); }};
}

// A mapping field read by a table of its own into a member of the target.
template <class Target, class Member>
Row<Target> section(std::string_view name, const Table<Member>& (*table)(), Member Target::*member) {
  return {.name = name,
          .read =
              [table, member](Loader& in, const Field& f, Target& target) {
                auto entries = in.entries(f);
                if (!entries) return false;
                auto out = read_table(in, *entries, f.value, table(), target.*member);
                return out.failed.empty();
              },
          .nested = [table] { return names_of(table()); }};
}

template <class Target>
Row<Target> required(Row<Target> row, std::string_view unless = {}) {
  row.required = true;
  row.unless = unless;
  return row;
}

}  // namespace xcg::config
