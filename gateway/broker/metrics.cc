#include "gateway/broker/metrics.h"

#include <fmt/format.h>

namespace xcg::gateway {
namespace {

std::string escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

}  // namespace

std::string_view login_failure_name(LoginFailure f) {
  switch (f) {
    case LoginFailure::key: return "key";
    case LoginFailure::token: return "token";
    case LoginFailure::domain_full: return "domain_full";
    case LoginFailure::forwarded_for: return "forwarded_for";
  }
  return "unknown";
}

std::string escape_help(std::string_view text) { return escape(text, false); }
std::string escape_label_value(std::string_view text) { return escape(text, true); }

void MetricsWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  name_ = name;
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

void MetricsWriter::sample(Labels labels, uint64_t value) {
  text_ += name_;
  const char* separator = "{";
  for (const auto& [label, text] : labels) {
    text_ += fmt::format("{}{}=\"{}\"", separator, label, escape_label_value(text));
    separator = ",";
  }
  if (labels.size() > 0) text_ += "}";
  text_ += fmt::format(" {}\n", value);
}

void MetricsWriter::sample_seconds(double seconds) { text_ += fmt::format("{} {:.3f}\n", name_, seconds); }

}  // namespace xcg::gateway
