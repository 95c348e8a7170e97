// Erasing secrets (host private keys) from memory once they are no longer needed, so that a
// later bug that leaks memory (or an attacker who reads it) finds zeros instead.
#pragma once

#include <string.h>

#include <string>
#include <vector>

namespace xcg {

// Zeroes every byte the string may have held: its whole capacity, which covers both the heap
// buffer and the small-string buffer inside the object, then leaves it empty. explicit_bzero,
// because the compiler may drop a memset of memory that is not read afterwards.
inline void wipe(std::string& s) noexcept {
  ::explicit_bzero(s.data(), s.capacity());
  s.clear();
}

// Each string is wiped and left (empty) in place.
inline void wipe(std::vector<std::string>& strings) noexcept {
  for (auto& s : strings) wipe(s);
}

}  // namespace xcg
