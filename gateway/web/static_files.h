// The page's files, compiled into xcg-web at build time (gateway/web/page/), so that the
// chrooted process opens no file.
#pragma once

#include <span>
#include <string_view>

namespace xcg::gateway::web {

struct StaticFile {
  std::string_view path;          // as requested: "/" or "/static/NAME"
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
  std::string_view gzip;    // the same, `gzip -n -9`; served when the browser accepts gzip
  std::string_view sha384;  // "sha384-BASE64" of body, for integrity= attributes
  bool immutable = false;   // /static/ files may be cached; the page itself never
};

std::span<const StaticFile> static_files();
// nullptr if there is no such file.
const StaticFile* find_static_file(std::string_view path);

}  // namespace xcg::gateway::web
