// The audit log: one JSON object per line, for operators and their tools.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace xcg::gateway {

struct AuditEvent {
  std::string event;        // auth_success, auth_failure, session_start, session_end, ...
  std::string remote;       // "203.0.113.7:51234"
  std::string domain;       // the domain, or for failures the user name asked for
  std::string fingerprint;  // "SHA256:..." or empty
  std::vector<std::pair<std::string, std::string>> extra;  // e.g. {"action","reboot"}
};

// Escapes a string for a JSON string literal (quotes not included). Control bytes and
// invalid UTF-8 become \u escapes, so attacker-chosen text can't break the line format.
std::string json_escape(std::string_view s);
// {"time":"...","event":"...","remote":"...","domain":"...","fingerprint":"...",extra...}
std::string format_audit_line(const AuditEvent& e, std::string_view time);

class AuditLog {
 public:
  // "-" writes to stderr. Throws std::system_error if the file can't be opened for append.
  explicit AuditLog(const std::string& path);

  void write(const AuditEvent& e);

 private:
  UniqueFd fd_;
};

}  // namespace xcg::gateway
