#include "bench/loadgen/stats.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace xcg::bench {

void Samples::merge(const Samples& other) {
  values_.insert(values_.end(), other.values_.begin(), other.values_.end());
  sorted_ = false;
}

double Samples::percentile(double p) const {
  if (values_.empty()) return 0;
  if (!sorted_) {
    std::sort(values_.begin(), values_.end());
    sorted_ = true;
  }
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values_.size())));
  return values_[std::clamp<size_t>(rank, 1, values_.size()) - 1];
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void Json::key(const std::string& k) {
  if (!body_.empty()) body_ += ',';
  body_ += json_quote(k) + ':';
}

Json& Json::num(const std::string& k, double value) {
  key(k);
  body_ += std::isfinite(value) ? fmt::format("{:.6g}", value) : "null";
  return *this;
}

Json& Json::integer(const std::string& k, int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

Json& Json::str(const std::string& k, const std::string& value) {
  key(k);
  body_ += json_quote(value);
  return *this;
}

Json& Json::raw(const std::string& k, const std::string& json) {
  key(k);
  body_ += json;
  return *this;
}

Json& Json::stats(const std::string& k, const Samples& s) {
  double sum = std::accumulate(s.values().begin(), s.values().end(), 0.0);
  Json j;
  j.integer("count", static_cast<int64_t>(s.count()))
      .num("p50", s.percentile(50))
      .num("p95", s.percentile(95))
      .num("p99", s.percentile(99))
      .num("max", s.percentile(100))
      .num("mean", s.count() ? sum / static_cast<double>(s.count()) : 0);
  return raw(k, j.text());
}

Json& Json::samples(const std::string& k, const Samples& s) {
  std::string list = "[";
  for (size_t i = 0; i < s.values().size(); ++i) {
    if (i) list += ',';
    list += fmt::format("{:.4f}", s.values()[i]);
  }
  return raw(k, list + "]");
}

Json& Json::counts(const std::string& k, const std::map<std::string, int>& c) {
  Json j;
  for (const auto& [name, n] : c) j.integer(name, n);
  return raw(k, j.text());
}

double cpu_seconds() {
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

}  // namespace xcg::bench
