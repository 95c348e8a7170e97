#include "config/metrics_section.h"

#include <fmt/format.h>

#include "config/values.h"
#include "config/web_section.h"

namespace xcg::config {
namespace {

// Plain HTTP with no login: reachable from this host only, never from the network.
Result<ListenAddress> parse_metrics_listen(std::string_view text) {
  if (text.starts_with("unix:")) return parse_unix_listen(text);
  auto address = parse_listen_address(text);
  if (!address || is_loopback(*address)) return address;
  return fail(
      Errc::invalid_input,
      fmt::format("'{}' is not allowed: metrics are served only on loopback (127.0.0.0/8 or [::1]) or "
                  "a unix socket; let a proxy on this host carry them further",
                  text));
}

bool read_listen(Loader& in, const Field& f, MetricsSettings& metrics) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  size_t bad = 0;
  for (const auto& [text, node] : *items) {
    auto address = parse_metrics_listen(text);
    if (address) {
      metrics.listen.push_back(*address);
      continue;
    }
    in.report(node.Mark(), fmt::format("{}: {}", name_of(f), address.error().message));
    ++bad;
  }
  return bad == 0;
}

}  // namespace

const Table<MetricsSettings>& metrics_table() {
  static const Table<MetricsSettings> table{{
      required(custom("listen", read_listen)),
  }};
  return table;
}

bool read_metrics(Loader& in, const Field& f, Config& c) {
  auto entries = in.entries(f);
  if (!entries) return false;
  MetricsSettings metrics;
  auto out = read_table(in, *entries, f.value, metrics_table(), metrics);
  c.metrics = std::move(metrics);
  return out.failed.empty();
}

}  // namespace xcg::config
