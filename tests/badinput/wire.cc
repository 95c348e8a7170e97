#include "tests/badinput/wire.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace xcg::badinput {

Writer& Writer::byte(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

Writer& Writer::u32(uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>((v >> shift) & 0xff));
  return *this;
}

Writer& Writer::string(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  out_.append(s);
  return *this;
}

Writer& Writer::mpint(std::string_view n) {
  while (!n.empty() && n.front() == '\0') n.remove_prefix(1);
  // A set top bit would make the number negative: prefix a zero byte.
  if (!n.empty() && (static_cast<uint8_t>(n.front()) & 0x80)) {
    u32(static_cast<uint32_t>(n.size() + 1));
    out_.push_back('\0');
    out_.append(n);
    return *this;
  }
  return string(n);
}

Writer& Writer::raw(std::string_view s) {
  out_.append(s);
  return *this;
}

std::string_view Reader::take(size_t n) {
  if (!ok_ || n > in_.size()) {
    ok_ = false;
    return {};
  }
  std::string_view part = in_.substr(0, n);
  in_.remove_prefix(n);
  return part;
}

uint8_t Reader::byte() {
  auto b = take(1);
  return b.empty() ? 0 : static_cast<uint8_t>(b[0]);
}

uint32_t Reader::u32() {
  auto b = take(4);
  uint32_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string_view Reader::string() { return take(u32()); }

std::string_view Reader::rest() { return take(in_.size()); }

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  // Test-program start-up failure: nothing sensible to do but stop.
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

uint32_t random_u32() {
  std::string bytes = random_bytes(4);
  return Reader(bytes).u32();
}

}  // namespace xcg::badinput
