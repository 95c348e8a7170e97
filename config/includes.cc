#include "config/includes.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/unique_fd.h"
#include "config/values.h"

namespace xcg::config {
namespace {

bool has_glob_magic(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

// Absolute, without a trailing slash; "" is the working directory.
std::string absolute_directory(const std::filesystem::path& dir) {
  auto out = absolute_path(dir.empty() ? "." : dir.string());
  if (out.size() > 1 && out.ends_with('/')) out.pop_back();
  return out;
}

// The directory whose entries decide what `pattern` matches: its leading components without
// glob characters ("domains.d/*.yaml" → "domains.d"), or a plain path's parent.
std::filesystem::path fixed_directory_of(const std::filesystem::path& pattern) {
  std::filesystem::path fixed;
  for (const auto& part : pattern) {
    if (has_glob_magic(part.native())) return fixed;
    fixed /= part;
  }
  return fixed.parent_path();
}

// "/srv/x[1]" → "/srv/x\\[1]": a name that glob(3) takes literally.
std::string glob_escape(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// glob(3) passes its error callback no context.
thread_local std::pair<std::string, int> glob_failure;

int on_glob_error(const char* path, int err) {
  // A missing directory matches nothing; an unreadable one might hide files that matter.
  if (err == ENOENT || err == ENOTDIR) return 0;
  glob_failure = {path, err};
  return 1;
}

Result<void> glob_result(int rc) {
  if (rc == 0 || rc == GLOB_NOMATCH) return {};
  if (rc == GLOB_ABORTED)
    return fail(Errc::system, fmt::format("cannot read directory '{}': {}", glob_failure.first,
                                          std::strerror(glob_failure.second)));
  if (rc == GLOB_NOSPACE) return fail(Errc::system, "out of memory");
  return fail(Errc::system, fmt::format("glob error {}", rc));
}

// The matches in byte order (not the locale's), so that the same files always load in the same
// order. Matching nothing is not an error.
Result<std::vector<std::string>> expand_glob(const std::string& pattern) {
  glob_t matches{};
  glob_failure = {};
  int rc = ::glob(pattern.c_str(), GLOB_NOSORT, on_glob_error, &matches);
  std::vector<std::string> out;
  if (rc == 0) out.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  ::globfree(&matches);
  if (auto ok = glob_result(rc); !ok) return tl::unexpected(ok.error());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Opening a FIFO would wait for a writer and reading a device may never end, so the open does
// not wait (O_NONBLOCK) and anything but a regular file is refused before the first read.
Result<std::string> read_file(const std::string& path) {
  constexpr size_t kMaxSize = 16 * 1024 * 1024;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return fail_errno("cannot open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat");
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_input, "not a regular file");
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read");
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxSize) return fail(Errc::invalid_input, "the file is larger than 16 MiB");
  }
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

std::string file_identity(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? absolute_path(path) : canonical.string();
}

Result<IncludeTarget> expand_include(const std::string& written, const std::filesystem::path& base_dir) {
  std::filesystem::path path(written);
  // The including file's directory is a name, not a pattern, whatever characters it has.
  auto dir = path.is_absolute() ? std::filesystem::path() : base_dir;
  IncludeTarget out{absolute_directory(dir / fixed_directory_of(path)), {}};
  if (!has_glob_magic(written)) {
    out.files.push_back(resolve_path(base_dir, written));
    return out;
  }
  auto pattern = std::filesystem::path(glob_escape(dir.string())) / path;
  auto matches = expand_glob(pattern.lexically_normal().string());
  if (!matches) return tl::unexpected(matches.error());
  out.files = std::move(*matches);
  return out;
}

}  // namespace xcg::config
