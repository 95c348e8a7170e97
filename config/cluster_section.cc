#include "config/cluster_section.h"

#include <unistd.h>

#include <fmt/format.h>

#include <climits>

#include "config/includes.h"
#include "config/values.h"

namespace xcg::config {
namespace {

constexpr long long kMinLeaseTtl = 2, kMaxLeaseTtl = 60;

tl::unexpected<Error> bad(std::string_view text, std::string_view why) {
  return fail(Errc::invalid_input, fmt::format("'{}': {}", text, why));
}

bool loopback_host(const PublicUrl& url) {
  if (url.host == "localhost") return true;
  return url.ip && is_loopback(ListenAddress{.host = url.host, .ipv6 = url.ipv6});
}

// parse_public_url leaves out a default port; etcd has none, so it must be written.
bool has_port(std::string_view text) {
  auto colon = text.rfind(':');
  auto close = text.rfind(']');
  return colon != std::string_view::npos && colon > text.find("://") + 1 &&
         (close == std::string_view::npos || colon > close);
}

std::string with_port(const PublicUrl& url) {
  unsigned port = url.port ? url.port : url.https ? 443 : 80;
  auto host = url.ipv6 ? "[" + url.host + "]" : url.host;
  return fmt::format("{}://{}:{}", url.https ? "https" : "http", host, port);
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

bool read_endpoints(Loader& in, const Field& f, ClusterSettings& cluster) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  size_t bad_items = 0;
  for (const auto& [text, node] : *items) {
    auto endpoint = parse_endpoint(text);
    if (endpoint) {
      cluster.endpoints.push_back(*endpoint);
      continue;
    }
    in.report(node.Mark(), fmt::format("{}: {}", name_of(f), endpoint.error().message));
    ++bad_items;
  }
  return bad_items == 0;
}

bool read_node(Loader& in, const Field& f, ClusterSettings& cluster) {
  auto text = read_value(in, f, Text{.nonempty = true});
  if (!text) return false;
  if (!valid_domain_name(*text)) {
    in.report(mark_of(f), fmt::format("{}: bad node name '{}': expected 1 to 64 letters, digits, '_', "
                                      "'.' or '-', starting with a letter or digit",
                                      name_of(f), *text));
    return false;
  }
  cluster.node = *text;
  return true;
}

bool read_prefix(Loader& in, const Field& f, ClusterSettings& cluster) {
  auto text = read_value(in, f, Text{.nonempty = true});
  if (!text) return false;
  if (!text->starts_with('/') || !text->ends_with('/')) {
    in.report(mark_of(f),
              fmt::format("{}: must start and end with '/', like /xcg/, got '{}'", name_of(f), *text));
    return false;
  }
  cluster.prefix = *text;
  return true;
}

bool read_advertise(Loader& in, const Field& f, ClusterSettings& cluster) {
  auto text = read_value(in, f, Text{.nonempty = true});
  if (!text) return false;
  auto address = parse_advertise(*text);
  if (!address) {
    in.report(mark_of(f), fmt::format("{}: {}", name_of(f), address.error().message));
    return false;
  }
  cluster.advertise = *address;
  return true;
}

// A client certificate without its key (or the reverse) cannot be used.
void check_cluster(Loader& in, const Outcome& read, ClusterSettings&) {
  auto cert = find(read.given, "cert_file");
  auto key = find(read.given, "key_file");
  if (cert && !key)
    in.report(mark_of(*cert), "cert_file: needs key_file too (the client certificate's private key)");
  if (key && !cert) in.report(mark_of(*key), "key_file: needs cert_file too (the client certificate)");
}

void add_front(Loader& in, const std::string& text, const YAML::Node& node, Config& c) {
  auto key = parse_public_key(text);
  if (!key) {
    in.report(node.Mark(), "fronts: bad public key: " + key.error().message);
    return;
  }
  if (auto first = c.front_for_key(key->blob)) {
    in.report(node.Mark(), fmt::format("fronts: key {} is listed twice (first at {})", key->fingerprint(),
                                       first->where.str()));
    return;
  }
  c.fronts.push_back(FrontKey{std::move(*key), in.where(node.Mark())});
}

void report_front_only(Loader& in, const Outcome& read, std::string_view name, std::string_view why) {
  if (auto f = find(read.given, name))
    in.report(f->key.Mark(), fmt::format("{}: not allowed with cluster role 'front': {}", name, why));
}

void check_front(Loader& in, const Outcome& read) {
  constexpr std::string_view kDomains =
      "a front has no domains of its own; it learns them and their keys from etcd";
  report_front_only(in, read, "domains", kDomains);
  report_front_only(in, read, "include", kDomains);
  report_front_only(in, read, "fronts", "only a node trusts fronts");
}

void check_node(Loader& in, const Outcome& read, const YAML::Node& root) {
  require(in, read.given, root, "hypervisor", {});
  require(in, read.given, root, "domains", "include");
}

// A key that is both a front's and a customer's would make a login mean two things.
void check_front_keys(Loader& in, const Config& c) {
  for (const auto& f : c.fronts)
    if (auto owner = in.key_owner(f.key.blob))
      in.report_at(f.where, fmt::format("fronts: key {} is also a key of domain '{}'; a front needs a key "
                                        "of its own",
                                        f.key.fingerprint(), *owner));
}

}  // namespace

Result<std::string> parse_endpoint(std::string_view text) {
  auto url = parse_public_url(text);
  if (!url) return tl::unexpected(url.error());
  if (!has_port(text)) return bad(text, "expected https://HOST:PORT, with the port (etcd's is 2379)");
  if (!url->https && !loopback_host(*url))
    return bad(text, "http:// only on loopback (localhost, 127.0.0.0/8 or [::1]); use https://");
  return with_port(*url);
}

Result<std::string> parse_advertise(std::string_view text) {
  auto url = parse_public_url(fmt::format("https://{}", text));
  if (!url || !has_port(fmt::format("https://{}", text)) || text.find('/') != std::string_view::npos)
    return bad(text, "expected HOST:PORT or [IPV6]:PORT, the address fronts reach this node's SSH at");
  auto authority = with_port(*url);
  return authority.substr(authority.find("://") + 3);
}

const Table<ClusterSettings>& cluster_table() {
  static const Table<ClusterSettings> table{
      {
          field("role", Choice<ClusterRole>{{{"node", ClusterRole::node}, {"front", ClusterRole::front}}},
                &ClusterSettings::role),
          custom("node", read_node),
          required(custom("endpoints", read_endpoints)),
          field("ca_file", AbsolutePath{}, &ClusterSettings::ca_file),
          field("cert_file", AbsolutePath{}, &ClusterSettings::cert_file),
          field("key_file", AbsolutePath{}, &ClusterSettings::key_file),
          custom("prefix", read_prefix),
          field("lease_ttl", Duration{kMinLeaseTtl, kMaxLeaseTtl}, &ClusterSettings::lease_ttl_s),
          custom("advertise", read_advertise),
      },
      check_cluster};
  return table;
}

bool read_cluster(Loader& in, const Field& f, Config& c) {
  auto entries = in.entries(f);
  if (!entries) return false;
  ClusterSettings cluster;
  cluster.node = host_name();
  if (!c.listen.empty()) cluster.advertise = c.listen.front().text;
  auto out = read_table(in, *entries, f.value, cluster_table(), cluster);
  c.cluster = std::move(cluster);
  return out.failed.empty();
}

bool read_fronts(Loader& in, const Field& f, Config& c) {
  if (f.value.IsNull()) return true;  // "fronts:" with none yet
  auto items = read_strings(in, f, false);
  if (!items) return false;
  for (const auto& [text, node] : *items) add_front(in, text, node, c);
  return true;
}

void check_role(Loader& in, const Outcome& read, const YAML::Node& root, Config& c) {
  if (c.is_front()) check_front(in, read);
  else check_node(in, read, root);
  check_front_keys(in, c);
}

std::vector<std::string> cluster_file_problems(const ClusterSettings& cluster) {
  std::vector<std::string> out;
  auto check = [&](std::string_view name, const std::string& path) {
    if (path.empty()) return;
    if (auto text = read_file(path); !text) out.push_back(fmt::format("{}: {}", name, text.error().message));
  };
  check("ca_file", cluster.ca_file);
  check("cert_file", cluster.cert_file);
  check("key_file", cluster.key_file);
  return out;
}

}  // namespace xcg::config
