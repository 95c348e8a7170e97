// menu::scan_console_input on arbitrary customer input while attached to a console. Checks
// that every byte is accounted for: forwarded to the guest, or the Ctrl-] that detaches and
// what followed it; and that input split over two reads (as the session reads it) forwards
// exactly what the same bytes in one read do.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "menu/commands.h"
#include "tests/fuzz/fuzz_check.h"

using namespace xcg::menu;

namespace {

void check_one_read(std::string_view input) {
  ConsoleInput in = scan_console_input(input);
  FUZZ_CHECK(in.to_guest.data() == input.data());  // a prefix of the input, not a copy
  FUZZ_CHECK(in.to_guest.find(kDetachKey) == std::string_view::npos);
  if (in.detach) {
    FUZZ_CHECK(in.to_guest.size() < input.size() && input[in.to_guest.size()] == kDetachKey);
  } else {
    FUZZ_CHECK(in.to_guest.size() == input.size());
  }
}

// What a session forwards when the input arrives in two reads: the second read is scanned
// only if the first did not detach.
std::string forwarded_in_two_reads(std::string_view first, std::string_view second, bool& detached) {
  ConsoleInput a = scan_console_input(first);
  std::string out(a.to_guest);
  detached = a.detach;
  if (detached) return out;
  ConsoleInput b = scan_console_input(second);
  detached = b.detach;
  return out.append(b.to_guest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_one_read(input);
  if (size == 0) return 0;
  size_t split = data[0] % size;
  bool detached = false;
  std::string two = forwarded_in_two_reads(input.substr(0, split), input.substr(split), detached);
  ConsoleInput one = scan_console_input(input);
  FUZZ_CHECK(two == one.to_guest);
  FUZZ_CHECK(detached == one.detach);
  return 0;
}
