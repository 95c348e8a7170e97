// PLACEHOLDER, replaced at merge by the table gateway/web/page/ generates: a one-line page so
// that xcg-web can be built and tested before the real page lands.
#include <algorithm>

#include "gateway/web/static_files.h"

namespace xcg::gateway::web {
namespace {

constexpr StaticFile kFiles[] = {
    {"/", "text/html; charset=utf-8", "<!doctype html><title>xcg</title><p>xcg browser console (placeholder)\n",
     "", "", false},
};

}  // namespace

std::span<const StaticFile> static_files() { return kFiles; }

const StaticFile* find_static_file(std::string_view path) {
  auto it = std::ranges::find(kFiles, path, &StaticFile::path);
  return it == std::end(kFiles) ? nullptr : &*it;
}

}  // namespace xcg::gateway::web
