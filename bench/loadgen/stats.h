// Samples and the JSON lines the load generator prints for bench.py.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace xcg::bench {

// Milliseconds; percentiles by the nearest-rank method.
class Samples {
 public:
  void add(double ms) { values_.push_back(ms); }
  void merge(const Samples& other);
  size_t count() const { return values_.size(); }
  double percentile(double p) const;
  const std::vector<double>& values() const { return values_; }

 private:
  mutable std::vector<double> values_;
  mutable bool sorted_ = false;
};

// A flat JSON object built field by field: {"a":1,"b":"x","c":{"p50":..}}.
class Json {
 public:
  Json& num(const std::string& key, double value);
  Json& integer(const std::string& key, int64_t value);
  Json& str(const std::string& key, const std::string& value);
  Json& raw(const std::string& key, const std::string& json);
  Json& stats(const std::string& key, const Samples& s);    // count, p50, p95, p99, max, mean
  Json& samples(const std::string& key, const Samples& s);  // every value
  Json& counts(const std::string& key, const std::map<std::string, int>& c);
  std::string text() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

std::string json_quote(const std::string& s);

// CPU seconds (user + system) this process has used so far.
double cpu_seconds();

}  // namespace xcg::bench
