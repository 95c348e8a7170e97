#include "gateway/cluster/etcd_json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace xcg;

TEST_CASE("base64 round trips every length and byte", "[etcd_json]") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    auto back = base64_decode(base64_encode(bytes));
    REQUIRE(back);
    REQUIRE(*back == bytes);
    bytes.push_back(static_cast<char>(i * 7));
  }
  CHECK(base64_encode("/a/x") == "L2EveA==");
  CHECK_FALSE(base64_decode("L2EveA="));
  CHECK_FALSE(base64_decode("L2E*eA=="));
}

TEST_CASE("a prefix's range end is the next key after all its keys", "[etcd_json]") {
  CHECK(prefix_end("/xcg/domains/") == "/xcg/domains0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
}

TEST_CASE("a page of a prefix: its first key, the prefix's end, a limit, a pinned revision", "[etcd_json]") {
  auto body = nlohmann::json::parse(
      etcd_json::range_page_body(RangePage{.prefix = "/p/", .from = "/p/b", .revision = 9, .limit = 3}));
  CHECK(body == nlohmann::json{{"key", base64_encode("/p/b")},
                               {"range_end", base64_encode("/p0")},
                               {"limit", "3"},
                               {"revision", "9"}});
  CHECK_FALSE(
      nlohmann::json::parse(etcd_json::range_page_body(RangePage{.prefix = "/p/", .from = "/p/", .limit = 3}))
          .contains("revision"));
  auto more = etcd_json::parse_range(R"({"header":{"revision":"9"},"more":true,"count":"5"})");
  REQUIRE(more);
  CHECK(more->more);
  auto last = etcd_json::parse_range(R"({"header":{"revision":"9"}})");
  REQUIRE(last);
  CHECK_FALSE(last->more);
}

TEST_CASE("answers with defaults left out read as zero and false", "[etcd_json]") {
  auto txn = etcd_json::parse_txn(R"({"header":{"revision":"7"},"responses":[{"response_range":)"
                                  R"({"kvs":[{"key":"L2EveA==","mod_revision":"5","value":"aGVsbG8="}]}}]})");
  REQUIRE(txn);
  CHECK_FALSE(txn->succeeded);
  CHECK(txn->revision == 7);
  REQUIRE(txn->current);
  CHECK(txn->current->value == "hello");
  CHECK(txn->current->mod_revision == 5);
  auto ttl = etcd_json::parse_keepalive(R"({"result":{"header":{"revision":"3"},"ID":"123"}})");
  REQUIRE(ttl);
  CHECK(*ttl == 0);
}

TEST_CASE("watch messages: events, deletions, compaction, errors", "[etcd_json]") {
  auto m = etcd_json::parse_watch_message(
      R"({"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"L2EveA==","mod_revision":"3",)"
      R"("value":"aGVsbG8="}},{"type":"DELETE","kv":{"key":"L2EveA==","mod_revision":"4"}}]}})");
  REQUIRE(m);
  REQUIRE(m->events.size() == 2);
  CHECK(m->events[0].type == WatchEvent::Type::put);
  CHECK(m->events[0].kv.key == "/a/x");
  CHECK(m->events[1].type == WatchEvent::Type::del);
  CHECK(m->events[1].kv.mod_revision == 4);
  auto compacted = etcd_json::parse_watch_message(R"({"result":{"canceled":true,"compact_revision":"3"}})");
  REQUIRE(compacted);
  CHECK(compacted->canceled);
  CHECK(compacted->compact_revision == 3);
  CHECK_FALSE(etcd_json::parse_watch_message(R"({"error":{"grpc_code":14,"message":"gone"}})"));
  CHECK_FALSE(etcd_json::parse_watch_message("{not json"));
}

TEST_CASE("a transaction compares the mod revision and reads the key when refused", "[etcd_json]") {
  auto body = nlohmann::json::parse(etcd_json::txn_body("/k", 9, std::string("v"), 0));
  CHECK(body["compare"][0]["target"] == "MOD");
  CHECK(body["compare"][0]["mod_revision"] == "9");
  CHECK(body["success"][0]["request_put"]["value"] == base64_encode("v"));
  CHECK(body["failure"][0]["request_range"]["key"] == base64_encode("/k"));
}
