// The etcd v3 JSON gateway's bodies: what we send and what we read back. Keys and values are
// base64 in both directions, 64-bit integers are strings, and fields at their default value
// (false, 0, empty) are left out of answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace xcg {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store's revision the answer is from
  bool more = false;     // a limited range left keys out
};

// One page of a prefix: at most `limit` keys from `from` (a key under `prefix`) on, as of
// `revision` (0: the latest).
struct RangePage {
  std::string prefix;
  std::string from;
  int64_t revision = 0;
  size_t limit = 0;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;             // the store's revision after the transaction
  std::optional<KeyValue> current;  // when refused: the key as it is (absent: no such key)
};

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl = 0;
};

struct WatchEvent {
  enum class Type { put, del };
  Type type = Type::put;
  KeyValue kv;  // a deletion carries the key and its mod_revision only
};

// One message of a watch stream.
struct WatchMessage {
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // set when canceled because the start revision is gone
  int64_t revision = 0;
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

std::string base64_encode(std::string_view in);
Result<std::string> base64_decode(std::string_view in);
// The range_end that makes a range or watch cover every key starting with `prefix`.
std::string prefix_end(std::string_view prefix);

namespace etcd_json {

std::string range_body(std::string_view key, bool prefix);
std::string range_page_body(const RangePage& page);
std::string put_body(std::string_view key, std::string_view value, int64_t lease);
std::string delete_body(std::string_view key, bool prefix);
// If `key`'s mod_revision is `mod_revision` (0: the key does not exist), put `value` (or
// delete the key when `value` is absent); otherwise read the key.
std::string txn_body(std::string_view key, int64_t mod_revision, const std::optional<std::string>& value,
                     int64_t lease);
std::string compact_body(int64_t revision);
std::string lease_grant_body(int64_t ttl);
std::string lease_id_body(int64_t id);
std::string watch_body(std::string_view prefix, int64_t start_revision);

Result<RangeResult> parse_range(std::string_view body);
Result<int64_t> parse_revision(std::string_view body);  // the header's
Result<TxnResult> parse_txn(std::string_view body);
Result<LeaseGrant> parse_lease_grant(std::string_view body);
Result<int64_t> parse_keepalive(std::string_view body);  // the TTL left; 0 when the lease is gone
Result<WatchMessage> parse_watch_message(std::string_view line);
// The message of an error answer ({"error": ..., "code": ...}), or the body's start.
std::string error_message(std::string_view body);

}  // namespace etcd_json
}  // namespace xcg
