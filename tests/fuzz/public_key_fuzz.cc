// config::parse_public_key on arbitrary lines; an accepted key must survive the round trip
// through its canonical line and through public_key_from_blob.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/public_key.h"
#include "tests/fuzz/fuzz_check.h"

using namespace xcg::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto key = parse_public_key(line);
  if (!key) {
    FUZZ_CHECK(!key.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(key->bits > 0);
  std::string fp = key->fingerprint();
  FUZZ_CHECK(fp.size() == 7 + 43 && fp.starts_with("SHA256:"));

  auto again = parse_public_key(key->openssh_line());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->type == key->type && again->blob == key->blob && again->bits == key->bits);
  FUZZ_CHECK(again->comment.empty());

  auto from_blob = public_key_from_blob(key->type, key->blob);
  FUZZ_CHECK(from_blob.has_value());
  FUZZ_CHECK(from_blob->bits == key->bits);
  return 0;
}
