// ipc::decode on arbitrary bytes: a session process is untrusted, so the broker decodes
// whatever it sends. Besides memory safety, checks the round trip of every accepted frame.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/ipc/ipc.h"
#include "tests/fuzz/fuzz_check.h"

using namespace xcg::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto decoded = ipc::decode(frame);
  if (!decoded) {
    FUZZ_CHECK(decoded.error().code == xcg::Errc::invalid_input);
    FUZZ_CHECK(!decoded.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(static_cast<uint8_t>(ipc::type_of(*decoded)) == data[0]);
  FUZZ_CHECK(ipc::type_name(ipc::type_of(*decoded)) != "unknown");

  std::string encoded = ipc::encode(*decoded);
  auto again = ipc::decode(encoded);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *decoded);
  // The decoder is strict (booleans are 0 or 1, no trailing bytes), so each message has
  // exactly one accepted encoding: the input itself.
  FUZZ_CHECK(encoded == frame);
  return 0;
}
