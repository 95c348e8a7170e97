// A failed property in a fuzz target: say which, then abort so libFuzzer saves the input.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace xcg::fuzz {

[[noreturn]] inline void property_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", file, line, what);
  std::abort();
}

}  // namespace xcg::fuzz

// Unlike assert(), never compiled out.
#define FUZZ_CHECK(cond) ((cond) ? void(0) : ::xcg::fuzz::property_failed(#cond, __FILE__, __LINE__))
