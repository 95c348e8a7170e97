// YAML text → Config. Every problem is collected with its position; nothing is returned
// unless the main file and every included one are valid.
#include "config/loader.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>
#include <tuple>

#include "config/includes.h"
#include "config/schema.h"

namespace xcg::config {
namespace {

constexpr std::string_view kMainTop = "of settings (listen, host_keys, ...)";
constexpr std::string_view kIncludedTop = "with 'domains'";

// yaml-cpp 0.7's LoadAll never returns on some inputs (",", "[a],b"): the parser reports a new
// empty document forever without consuming input (found by our fuzzer). Counting documents
// with a parser that builds nothing, bounded by the input size since every real document
// consumes at least one byte, tells whether LoadAll would come back.
class IgnoreEvents : public YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}
};

// Throws YAML::Exception on syntax errors, like LoadAll.
bool document_count_is_bounded(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  for (size_t docs = 0; docs <= text.size() + 1; ++docs)
    if (!parser.HandleNextDocument(ignore)) return true;
  return false;
}

}  // namespace

YAML::Mark mark_of(const Field& f) { return f.value.IsNull() ? f.key.Mark() : f.value.Mark(); }

const Field* find(const Fields& fields, std::string_view name) {
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : &it->second;
}

Loader::Loader(std::string file, std::filesystem::path base_dir)
    : file_(std::move(file)), base_dir_(std::move(base_dir)) {
  config_.path = file_;
  add_source_file(file_);
}

std::shared_ptr<const Config> Loader::load(const std::string& text) {
  if (auto root = parse_yaml(text, kMainTop)) read_main(*this, *root);
  if (!problems_.empty()) {
    sort_problems();
    throw ConfigError(std::move(problems_));
  }
  for (const auto& [blob, first] : key_owners_) config_.domain_by_blob_[blob] = first.domain;
  return std::make_shared<const Config>(std::move(config_));
}

std::shared_ptr<const Config> Loader::load_included(const std::vector<std::string>& paths) {
  config_.source_files.clear();
  file_ranks_.clear();
  for (const auto& path : paths) {
    // Named on the command line, not included from anywhere: said without an "included from".
    if (auto text = read_file(path); !text) report_at(Location{path, 1, 1}, text.error().message);
    else read_included(path, YAML::Node());
  }
  if (!problems_.empty()) {
    sort_problems();
    throw ConfigError(std::move(problems_));
  }
  for (const auto& [blob, first] : key_owners_) config_.domain_by_blob_[blob] = first.domain;
  return std::make_shared<const Config>(std::move(config_));
}

// Files in the order they were read; each file's problems in its order.
void Loader::sort_problems() {
  auto position = [this](const Problem& p) {
    auto rank = file_ranks_.find(p.where.file);
    return std::tuple(rank == file_ranks_.end() ? 0 : rank->second, p.where.line, p.where.column);
  };
  std::stable_sort(problems_.begin(), problems_.end(),
                   [&](const auto& a, const auto& b) { return position(a) < position(b); });
}

Location Loader::where(const YAML::Mark& m) const {
  if (m.is_null() || m.line < 0) return Location{file_, 1, 1};
  return Location{file_, m.line + 1, m.column + 1};
}

void Loader::report(const YAML::Mark& m, std::string message) {
  problems_.push_back(Problem{where(m), std::move(message)});
}

void Loader::report_at(Location where, std::string message) {
  problems_.push_back(Problem{std::move(where), std::move(message)});
}

std::optional<YAML::Node> Loader::parse_yaml(const std::string& text, std::string_view top) {
  std::vector<YAML::Node> docs;
  try {
    if (!document_count_is_bounded(text)) {
      report(YAML::Mark(), "YAML syntax error: this file does not parse as YAML (stray ',' or ']'?)");
      return std::nullopt;
    }
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    report(e.mark, "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  if (docs.size() > 1) report(docs[1].Mark(), "only one YAML document is allowed per file");
  if (docs.empty() || docs[0].IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!docs[0].IsMap()) {
    report(docs[0].Mark(), fmt::format("expected a mapping {} at the top", top));
    return std::nullopt;
  }
  return docs[0];
}

std::optional<Entries> Loader::entries(const Field& f) {
  if (f.value.IsNull()) return Entries{};
  if (!f.value.IsMap()) {
    report(mark_of(f), fmt::format("{}: expected a mapping", name_of(f)));
    return std::nullopt;
  }
  return entries(f.value);
}

Entries Loader::entries(const YAML::Node& map) {
  Entries out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;  // a copy: `it->` points into a temporary
    if (!key.IsScalar()) {
      report(key.Mark(), "expected a plain name as a mapping key");
      continue;
    }
    auto first = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == key.Scalar(); });
    if (first != out.end())
      report(key.Mark(), fmt::format("duplicate key '{}' (first at {})", key.Scalar(),
                                     where(first->second.key.Mark()).str()));
    else out.emplace_back(key.Scalar(), Field{key, it->second});
  }
  return out;
}

void Loader::include(const IncludeTarget& target, const YAML::Node& from) {
  add_watch_dir(target.watch_dir);
  for (const auto& path : target.files) include_file(path, from);
}

// Each file once, even when two patterns match it.
void Loader::include_file(const std::string& path, const YAML::Node& from) {
  auto identity = file_identity(path);
  if (identity == main_identity()) {
    report(from.Mark(), fmt::format("include: '{}' is the main config file itself; keep "
                                    "included files in a directory of their own",
                                    path));
    return;
  }
  if (included_.insert(identity).second) read_included(path, from);
}

void Loader::read_included(const std::string& path, const YAML::Node& from) {
  auto from_place = where(from.Mark());
  // Positions from here on are in the included file, and its relative paths are its own.
  auto main_file = std::exchange(file_, path);
  auto main_dir = std::exchange(base_dir_, std::filesystem::path(path).parent_path());
  add_source_file(path);
  if (auto text = read_file(path); !text)
    report(YAML::Mark::null_mark(),
           fmt::format("{} (included from {})", text.error().message, from_place.str()));
  else if (auto root = parse_yaml(*text, kIncludedTop)) config::read_included(*this, *root);
  file_ = std::move(main_file);
  base_dir_ = std::move(main_dir);
}

// `line` is a scalar node: its position is the key's.
void Loader::add_key(const YAML::Node& line, bool readonly, Domain& d) {
  auto key = parse_public_key(line.Scalar());
  if (!key) {
    report(line.Mark(), "bad public key: " + key.error().message);
    return;
  }
  auto [owner, inserted] = key_owners_.try_emplace(key->blob, KeyOwner{d.name, where(line.Mark())});
  if (!inserted) {
    auto comment = key->comment.empty() ? "" : fmt::format(" ({})", key->comment);
    report(line.Mark(), fmt::format("key {}{} is already listed for domain '{}' at {}", key->fingerprint(),
                                    comment, owner->second.domain, owner->second.where.str()));
    return;
  }
  d.keys.push_back(DomainKey{std::move(*key), where(line.Mark()), readonly});
}

const std::string* Loader::key_owner(const std::string& blob) const {
  auto owner = key_owners_.find(blob);
  return owner == key_owners_.end() ? nullptr : &owner->second.domain;
}

// file_identity of the main file, looked up once per load.
const std::string& Loader::main_identity() {
  if (!main_identity_) main_identity_ = file_identity(config_.path);
  return *main_identity_;
}

void Loader::add_source_file(const std::string& path) {
  file_ranks_.try_emplace(path, file_ranks_.size());
  config_.source_files.push_back(absolute_path(path));
}

void Loader::add_watch_dir(const std::string& dir) {
  auto& dirs = config_.watch_dirs;
  if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
}

std::shared_ptr<const Config> parse_config(const std::string& text, const std::string& path) {
  return Loader(path, std::filesystem::path(path).parent_path()).load(text);
}

std::shared_ptr<const Config> load_domain_files(const std::vector<std::string>& paths) {
  if (paths.empty()) throw ConfigError({Problem{{}, "no files given"}});
  return Loader(paths.front(), std::filesystem::path(paths.front()).parent_path()).load_included(paths);
}

std::shared_ptr<const Config> load_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw ConfigError({Problem{Location{path, 1, 1}, text.error().message}});
  // Relative paths inside stay valid if the gateway later changes its working directory.
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  auto base_dir = (ec ? std::filesystem::path(path) : absolute).parent_path();
  return Loader(path, base_dir).load(*text);
}

}  // namespace xcg::config
