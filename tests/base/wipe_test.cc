#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "base/wipe.h"

namespace {

// The bytes of the string's buffer, read through the buffer the string still owns after wipe
// (clear() keeps the allocation).
bool all_zero(const char* p, size_t n) {
  return std::all_of(p, p + n, [](char c) { return c == '\0'; });
}

}  // namespace

TEST_CASE("wipe zeroes a heap-allocated string over its whole capacity") {
  std::string secret(300, 'k');
  secret.reserve(1000);
  secret.resize(200);  // bytes 200..299 still hold the old key, past size()
  const char* buffer = secret.data();
  size_t capacity = secret.capacity();
  xcg::wipe(secret);
  CHECK(secret.empty());
  REQUIRE(secret.data() == buffer);
  CHECK(all_zero(buffer, capacity));
}

TEST_CASE("wipe zeroes a string held in the small-string buffer") {
  std::string secret = "short key";
  const char* buffer = secret.data();
  size_t capacity = secret.capacity();
  xcg::wipe(secret);
  REQUIRE(secret.data() == buffer);
  CHECK(all_zero(buffer, capacity));
}

TEST_CASE("wipe of a list wipes every string") {
  std::vector<std::string> keys{std::string(500, 'a'), std::string(600, 'b')};
  std::vector<std::pair<const char*, size_t>> buffers;
  buffers.reserve(keys.size());
  for (auto& k : keys) buffers.emplace_back(k.data(), k.capacity());
  xcg::wipe(keys);
  REQUIRE(keys.size() == 2);
  for (size_t i = 0; i < keys.size(); ++i) {
    CHECK(keys[i].empty());
    REQUIRE(keys[i].data() == buffers[i].first);
    CHECK(all_zero(buffers[i].first, buffers[i].second));
  }
}
