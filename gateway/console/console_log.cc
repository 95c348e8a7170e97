#include "gateway/console/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/log.h"

namespace xcg::gateway {
namespace {

// Reads the last `max_bytes` of a file (all of it if shorter); a missing file is empty.
std::string read_tail(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return {};
  size_t size = static_cast<size_t>(st.st_size);
  size_t want = std::min(size, max_bytes);
  std::string out(want, '\0');
  ssize_t n = ::pread(fd.get(), out.data(), want, static_cast<off_t>(size - want));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

UniqueFd open_append(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
}

}  // namespace

ConsoleLog::ConsoleLog(std::string path, size_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {
  if (!path_.empty()) open_file();
}

bool ConsoleLog::open_file() {
  fd_ = open_append(path_);
  if (!fd_ && errno == ENOENT) {  // first use, or the directory was removed
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    fd_ = open_append(path_);
  }
  if (!fd_) {
    if (!failing_) log::error("console log {}: {}", path_, std::strerror(errno));
    failing_ = true;
    return false;
  }
  struct stat st {};
  size_ = ::fstat(fd_.get(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  failing_ = false;
  return true;
}

// The old "<path>.1" is removed before the rename, so that the rename replaces nothing: ext4
// writes a file renamed over another out to disk at once (auto_da_alloc), which made every
// rotation cost ten times more, on the console's read path.
void ConsoleLog::rotate() {
  fd_.reset();
  std::string old = path_ + ".1";
  if (::unlink(old.c_str()) != 0 && errno != ENOENT)
    log::error("console log {}: rotate: {}", old, std::strerror(errno));
  if (::rename(path_.c_str(), old.c_str()) != 0 && errno != ENOENT)
    log::error("console log {}: rotate: {}", path_, std::strerror(errno));
  open_file();
}

void ConsoleLog::append(std::string_view bytes) {
  if (path_.empty() || bytes.empty()) return;
  if (!fd_ && !open_file()) return;
  if (size_ + bytes.size() > max_bytes_ && size_ > 0) {
    rotate();
    if (!fd_) return;
  }
  ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
  if (n < 0) {
    if (!failing_) log::error("console log {}: {}", path_, std::strerror(errno));
    failing_ = true;
    fd_.reset();  // reopen on the next write
    return;
  }
  size_ += static_cast<size_t>(n);
}

Result<std::string> ConsoleLog::tail(unsigned lines, size_t max_bytes) const {
  if (path_.empty()) return fail(Errc::unavailable, "the console log is not enabled");
  std::string text = read_tail(path_ + ".1", max_bytes) + read_tail(path_, max_bytes);
  if (text.size() > max_bytes) text.erase(0, text.size() - max_bytes);
  // Keep the last `lines` lines; a trailing partial line (a prompt) counts as one.
  size_t i = text.size();
  if (i > 0 && text[i - 1] == '\n') --i;
  for (unsigned seen = 0; i > 0; --i) {
    if (text[i - 1] == '\n' && ++seen == lines) break;
  }
  return text.substr(i);
}

}  // namespace xcg::gateway
