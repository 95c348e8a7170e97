#include "gateway/broker/audit_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"

namespace xcg::gateway {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return len;
}

}  // namespace

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
    } else if (size_t len = utf8_length(s, i); len > 1) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    } else if (len == 0) {
      out += "\\ufffd";  // not UTF-8: keep the line valid JSON
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

std::string format_audit_line(const AuditEvent& e, std::string_view time) {
  std::string line = fmt::format(
      R"({{"time":"{}","event":"{}","remote":"{}","domain":"{}","fingerprint":"{}")", json_escape(time),
      json_escape(e.event), json_escape(e.remote), json_escape(e.domain), json_escape(e.fingerprint));
  for (const auto& [k, v] : e.extra) line += fmt::format(R"(,"{}":"{}")", json_escape(k), json_escape(v));
  line += "}\n";
  return line;
}

// "-" is a copy of stderr, so that the log owns its descriptor either way.
AuditLog::AuditLog(const std::string& path)
    : fd_(path == "-" ? ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)
                      : ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) {
  if (!fd_) throw std::system_error(errno, std::generic_category(), "open audit log " + path);
}

// One write(2) per record on an O_APPEND file: a line is whole in the file or absent, and
// never interleaved with another writer's.
void AuditLog::write(const AuditEvent& e) {
  std::string line = format_audit_line(e, utc_timestamp(std::chrono::system_clock::now(), true));
  ssize_t n;
  do {
    n = ::write(fd_.get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return log::error("audit log write failed: {}", std::strerror(errno));
  if (static_cast<size_t>(n) != line.size())
    log::error("audit log write cut short ({} of {} bytes)", n, line.size());
}

}  // namespace xcg::gateway
