// The state of one load: the file being read, every problem found with its position, and the
// Config being built. The schema (schema.cc) says what to read; this says where it is and
// keeps what is wrong.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/includes.h"

namespace xcg::config {

// A mapping entry: the key node (for positions) and its value.
struct Field {
  YAML::Node key;
  YAML::Node value;
};
using Entries = std::vector<std::pair<std::string, Field>>;  // in file order
using Fields = std::map<std::string, Field, std::less<>>;

// A null value ("memory:" with nothing after it) has the position of the next token, which
// may be lines further down; the key is where the operator looks.
YAML::Mark mark_of(const Field& f);
const Field* find(const Fields& fields, std::string_view name);
// The field's name as written.
inline const std::string& name_of(const Field& f) { return f.key.Scalar(); }

class Loader {
 public:
  Loader(std::string file, std::filesystem::path base_dir);
  // The Config, or throws ConfigError with every problem in file order.
  std::shared_ptr<const Config> load(const std::string& text);
  // Files read as included ones (only `domains:`), into a Config with their domains only;
  // throws ConfigError like load.
  std::shared_ptr<const Config> load_included(const std::vector<std::string>& paths);

  Config& config() { return config_; }
  // The directory of the file being read: relative paths in it are relative to that.
  const std::filesystem::path& base_dir() const { return base_dir_; }
  Location where(const YAML::Mark& m) const;
  void report(const YAML::Mark& m, std::string message);
  void report_at(Location where, std::string message);

  // The entries of a mapping field ("NAME: expected a mapping" if it is not one); none if null.
  std::optional<Entries> entries(const Field& f);
  // Keys that are not plain names, and second uses of a key, are reported and left out.
  Entries entries(const YAML::Node& map);

  // Reads the files an include item names, each once however often it is named, with its own
  // positions and directory; watches the directory they are in for reloads.
  void include(const IncludeTarget& target, const YAML::Node& from);
  // Adds a key line to the domain, unless another domain (or this one) already has it.
  void add_key(const YAML::Node& line, bool readonly, Domain& d);
  // The domain that has the key (by its blob), or nullptr.
  const std::string* key_owner(const std::string& blob) const;

 private:
  struct KeyOwner {
    std::string domain;
    Location where;
  };

  std::optional<YAML::Node> parse_yaml(const std::string& text, std::string_view top);
  void include_file(const std::string& path, const YAML::Node& from);
  void read_included(const std::string& path, const YAML::Node& from);
  void sort_problems();
  const std::string& main_identity();
  void add_source_file(const std::string& path);
  void add_watch_dir(const std::string& dir);

  std::string file_;  // the file being read: the main one, or an included one
  std::filesystem::path base_dir_;
  Config config_;
  std::vector<Problem> problems_;
  std::map<std::string, KeyOwner> key_owners_;  // by key blob
  std::map<std::string, size_t> file_ranks_;    // by name in messages: the order files are read
  std::set<std::string> included_;              // file_identity of every included file
  std::optional<std::string> main_identity_;
};

}  // namespace xcg::config
