// SSH wire encoding (RFC 4251 section 5) for the bad-input client: it builds packets field by
// field, so it can also build the malformed ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace xcg::badinput {

class Writer {
 public:
  Writer& byte(uint8_t v);
  Writer& u32(uint32_t v);
  Writer& boolean(bool v) { return byte(v ? 1 : 0); }
  Writer& string(std::string_view s);
  Writer& mpint(std::string_view unsigned_big_endian);
  Writer& raw(std::string_view s);
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Reads fields in order; a read past the end yields zero or empty and clears ok().
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t byte();
  uint32_t u32();
  bool boolean() { return byte() != 0; }
  std::string_view string();
  std::string_view rest();
  bool ok() const { return ok_; }

 private:
  std::string_view take(size_t n);
  std::string_view in_;
  bool ok_ = true;
};

std::string random_bytes(size_t n);
uint32_t random_u32();

}  // namespace xcg::badinput
