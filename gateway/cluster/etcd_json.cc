#include "gateway/cluster/etcd_json.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace xcg {
namespace {

using nlohmann::json;

Result<json> parse(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::invalid_input, "etcd answered with no JSON object");
  return j;
}

// 64-bit integers come as strings; absent ones are 0.
int64_t integer(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  if (it->is_number_integer()) return it->get<int64_t>();
  throw std::invalid_argument(std::string("etcd's '") + field + "' is no integer");
}

std::string bytes(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return {};
  auto decoded = base64_decode(it->get<std::string>());
  if (!decoded) throw std::invalid_argument(std::string("etcd's '") + field + "' is not base64");
  return *decoded;
}

int64_t header_revision(const json& j) {
  auto it = j.find("header");
  return it == j.end() ? 0 : integer(*it, "revision");
}

KeyValue key_value(const json& j) {
  return KeyValue{
      bytes(j, "key"),       bytes(j, "value"),  integer(j, "create_revision"), integer(j, "mod_revision"),
      integer(j, "version"), integer(j, "lease")};
}

std::vector<KeyValue> key_values(const json& j) {
  std::vector<KeyValue> kvs;
  if (auto it = j.find("kvs"); it != j.end())
    for (const auto& kv : *it) kvs.push_back(key_value(kv));
  return kvs;
}

json key_range(std::string_view key, bool prefix) {
  json j = {{"key", base64_encode(key)}};
  if (prefix) j["range_end"] = base64_encode(prefix_end(key));
  return j;
}

json put_request(std::string_view key, std::string_view value, int64_t lease) {
  json j = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j;
}

// Runs `read` on the parsed body, turning a malformed answer into an error.
template <class T, class F>
Result<T> read_answer(std::string_view body, F read) {
  auto j = parse(body);
  if (!j) return tl::unexpected(j.error());
  try {
    return read(*j);
  } catch (const std::exception& e) {
    return fail(Errc::invalid_input, std::string("malformed etcd answer: ") + e.what());
  }
}

WatchEvent watch_event(const json& j) {
  auto type = j.value("type", std::string("PUT"));
  return WatchEvent{type == "DELETE" ? WatchEvent::Type::del : WatchEvent::Type::put, key_value(j.at("kv"))};
}

WatchMessage watch_message(const json& result) {
  WatchMessage m;
  m.created = result.value("created", false);
  m.canceled = result.value("canceled", false);
  m.compact_revision = integer(result, "compact_revision");
  m.revision = header_revision(result);
  m.cancel_reason = result.value("cancel_reason", std::string());
  if (auto it = result.find("events"); it != result.end())
    for (const auto& e : *it) m.events.push_back(watch_event(e));
  return m;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return fail(Errc::invalid_input, "base64 of a length not a multiple of 4");
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return fail(Errc::invalid_input, "not base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t padding = in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

namespace etcd_json {

std::string range_body(std::string_view key, bool prefix) { return key_range(key, prefix).dump(); }

std::string range_page_body(const RangePage& page) {
  json j = {{"key", base64_encode(page.from)},
            {"range_end", base64_encode(prefix_end(page.prefix))},
            {"limit", std::to_string(page.limit)}};
  if (page.revision > 0) j["revision"] = std::to_string(page.revision);
  return j.dump();
}

std::string put_body(std::string_view key, std::string_view value, int64_t lease) {
  return put_request(key, value, lease).dump();
}

std::string delete_body(std::string_view key, bool prefix) { return key_range(key, prefix).dump(); }

std::string txn_body(std::string_view key, int64_t mod_revision, const std::optional<std::string>& value,
                     int64_t lease) {
  json compare = {{"target", "MOD"},
                  {"result", "EQUAL"},
                  {"key", base64_encode(key)},
                  {"mod_revision", std::to_string(mod_revision)}};
  json then = value ? json{{"request_put", put_request(key, *value, lease)}}
                    : json{{"request_delete_range", key_range(key, false)}};
  json otherwise = {{"request_range", key_range(key, false)}};
  return json{{"compare", json::array({compare})},
              {"success", json::array({then})},
              {"failure", json::array({otherwise})}}
      .dump();
}

std::string compact_body(int64_t revision) { return json{{"revision", std::to_string(revision)}}.dump(); }

std::string lease_grant_body(int64_t ttl) { return json{{"TTL", std::to_string(ttl)}}.dump(); }

std::string lease_id_body(int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

std::string watch_body(std::string_view prefix, int64_t start_revision) {
  json create = key_range(prefix, true);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  // So that a watch on a quiet prefix learns it is current (watch_lag.h).
  create["progress_notify"] = true;
  return json{{"create_request", create}}.dump();
}

Result<RangeResult> parse_range(std::string_view body) {
  return read_answer<RangeResult>(body, [](const json& j) {
    return RangeResult{key_values(j), header_revision(j), j.value("more", false)};
  });
}

Result<int64_t> parse_revision(std::string_view body) {
  return read_answer<int64_t>(body, [](const json& j) { return header_revision(j); });
}

Result<TxnResult> parse_txn(std::string_view body) {
  return read_answer<TxnResult>(body, [](const json& j) {
    TxnResult r{j.value("succeeded", false), header_revision(j), std::nullopt};
    if (r.succeeded) return r;
    for (const auto& response : j.value("responses", json::array())) {
      auto kvs = key_values(response.value("response_range", json::object()));
      if (!kvs.empty()) r.current = kvs.front();
    }
    return r;
  });
}

Result<LeaseGrant> parse_lease_grant(std::string_view body) {
  return read_answer<LeaseGrant>(body, [](const json& j) {
    return LeaseGrant{integer(j, "ID"), integer(j, "TTL")};
  });
}

Result<int64_t> parse_keepalive(std::string_view body) {
  return read_answer<int64_t>(
      body, [](const json& j) { return integer(j.value("result", json::object()), "TTL"); });
}

Result<WatchMessage> parse_watch_message(std::string_view line) {
  return read_answer<WatchMessage>(line, [](const json& j) -> Result<WatchMessage> {
    if (auto it = j.find("error"); it != j.end())
      return fail(Errc::unavailable, "watch stream error: " + it->value("message", std::string("?")));
    return watch_message(j.at("result"));
  });
}

std::string error_message(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    return printable(j["message"].get<std::string>());
  return printable(body, 200);
}

}  // namespace etcd_json
}  // namespace xcg
