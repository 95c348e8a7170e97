// Files a config reads: the `include:` patterns, a file's identity, and reading one safely.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"

namespace xcg::config {

// The whole file, or why not. Only a regular file will do, and at most 16 MiB; the open never
// waits (the broker reloads from its event loop).
Result<std::string> read_file(const std::string& path);

// Absolute and lexically normal; as given if the working directory is gone.
std::string absolute_path(const std::string& path);

// The same file under another name (symlinks, "a/../b") compares equal.
std::string file_identity(const std::string& path);

// What one `include:` item names: the directory whose changes may change it, and its files in
// the order to read them. A plain path names one file (that must exist); a glob(3) pattern any
// number, in byte order.
struct IncludeTarget {
  std::string watch_dir;
  std::vector<std::string> files;
};
// `written` is relative to `base_dir` unless absolute; not empty.
Result<IncludeTarget> expand_include(const std::string& written, const std::filesystem::path& base_dir);

}  // namespace xcg::config
