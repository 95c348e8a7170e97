// The broker's metrics (docs/metrics.md): what it counts as things happen, and a writer of the
// Prometheus text exposition format 0.0.4. Our own few lines rather than prometheus-cpp: its
// HTTP exposer (civetweb) would parse the network inside the root broker, where nothing may;
// the text goes out through a sandboxed xcg-web instead.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace xcg::gateway {

// Why a connection ended without logging in: its last refused attempt.
enum class LoginFailure : uint8_t { key, token, domain_full, forwarded_for };
inline constexpr std::array kLoginFailures{LoginFailure::key, LoginFailure::token, LoginFailure::domain_full,
                                           LoginFailure::forwarded_for};
std::string_view login_failure_name(LoginFailure f);

// Indexed by SessionKind (ssh, web) where by kind.
struct BrokerCounters {
  static constexpr size_t kKinds = 2;
  std::array<uint64_t, kKinds> logins{};
  std::array<std::array<uint64_t, kLoginFailures.size()>, kKinds> login_failures{};
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  uint64_t relays_ok = 0;
  uint64_t relays_failed = 0;
  uint64_t scrapes = 0;
};

// Writes one metric family after the other: its HELP and TYPE lines, then its samples.
class MetricsWriter {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  // A counter's name ends in _total.
  void counter(std::string_view name, std::string_view help) { family(name, "counter", help); }
  void gauge(std::string_view name, std::string_view help) { family(name, "gauge", help); }
  // A sample of the family begun last.
  void sample(uint64_t value) { sample({}, value); }
  void sample(Labels labels, uint64_t value);
  void sample_seconds(double seconds);  // to the millisecond
  const std::string& text() const { return text_; }

 private:
  void family(std::string_view name, std::string_view type, std::string_view help);
  std::string text_;
  std::string name_;
};

// HELP text: backslash and newline escaped. A label value: backslash, double quote, newline.
std::string escape_help(std::string_view text);
std::string escape_label_value(std::string_view text);

}  // namespace xcg::gateway
