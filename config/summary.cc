#include "config/summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <tuple>

namespace xcg::config {
namespace {

std::string count(size_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

// "SHA256:... (alice@laptop)": what `ssh-keygen -l` shows, so the operator can find the key.
std::string describe_key(const PublicKey& key) {
  if (key.comment.empty()) return key.fingerprint();
  return fmt::format("{} ({})", key.fingerprint(), key.comment);
}

// With `cluster:`, a domain's keys come from etcd: none in the file is the normal case.
void check_domain(const Domain& d, bool keys_in_etcd, std::vector<Problem>& out) {
  if (!d.keys.empty() && keys_in_etcd)
    out.push_back(
        {d.where, fmt::format("domain '{}' lists keys, which are not used: with cluster: a domain's "
                              "keys are etcd's (xcg keys import puts them there)",
                              d.name)});
  if (d.keys.empty() && !keys_in_etcd)
    out.push_back({d.where, fmt::format("domain '{}' has no keys: nobody can log in to it", d.name)});
  if (d.actions.empty())
    out.push_back({d.where, fmt::format("domain '{}' allows no actions: its users can log in but "
                                        "neither see its console nor start or stop it",
                                        d.name)});
  for (const auto& k : d.keys) {
    if (k.key.type == "ssh-rsa" && k.key.bits < kStrongRsaBits)
      out.push_back({k.where, fmt::format("key {} of domain '{}' is a weak {}-bit RSA key: use "
                                          "{} bits or more, or ssh-ed25519",
                                          describe_key(k.key), d.name, k.key.bits, kStrongRsaBits)});
    if (k.key.comment.empty())
      out.push_back({k.where, fmt::format("key {} of domain '{}' has no comment saying whose it "
                                          "is",
                                          k.key.fingerprint(), d.name)});
  }
}

// The main file first, then included files by name: the order they are read in.
void sort_by_position(const Config& config, std::vector<Problem>& warnings) {
  auto rank = [&](const Problem& p) {
    const Location& w = p.where;
    return std::tuple(w.file != config.path, std::string_view(w.file), w.line, w.column);
  };
  std::stable_sort(warnings.begin(), warnings.end(),
                   [&](const Problem& a, const Problem& b) { return rank(a) < rank(b); });
}

}  // namespace

std::string Summary::counts() const {
  std::string readonly = readonly_keys ? fmt::format(" ({} read-only)", readonly_keys) : "";
  return fmt::format("{}, {}{}, {}", count(domains, "domain"), count(keys, "key"), readonly,
                     count(files, "file"));
}

std::string Summary::str() const {
  std::string out = counts() + "\n";
  if (!cluster.empty()) out += cluster + "\n";
  for (const auto& w : warnings) out += warning_line(w) + "\n";
  return out;
}

std::string warning_line(const Problem& warning) {
  if (warning.where.file.empty()) return "warning: " + warning.message;
  return warning.where.str() + ": warning: " + warning.message;
}

std::string cluster_line(const Config& config) {
  if (!config.cluster) return "";
  const auto& k = *config.cluster;
  auto etcd = fmt::format("prefix {}, etcd at {}", k.prefix, fmt::join(k.endpoints, ", "));
  if (k.role == ClusterRole::front) return fmt::format("cluster: front '{}', {}", k.node, etcd);
  return fmt::format("cluster: node '{}' (advertised as {}), {}; {}", k.node, k.advertise, etcd,
                     count(config.fronts.size(), "front"));
}

Summary summary_of(const Config& config) {
  Summary s;
  s.domains = config.domains.size();
  s.files = config.source_files.size();
  for (const auto& [name, d] : config.domains) {
    s.keys += d.keys.size();
    s.readonly_keys +=
        std::count_if(d.keys.begin(), d.keys.end(), [](const DomainKey& k) { return k.readonly; });
    check_domain(d, config.cluster.has_value(), s.warnings);
  }
  sort_by_position(config, s.warnings);
  s.cluster = cluster_line(config);
  return s;
}

std::string summarize(const Config& config) { return summary_of(config).str(); }

}  // namespace xcg::config
