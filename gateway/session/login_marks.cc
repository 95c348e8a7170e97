#include "gateway/session/login_marks.h"

#ifdef XCG_TEST_HOOKS
#include <time.h>

#include <array>
#include <string>

#include "base/log.h"

namespace xcg::gateway {
namespace {

constexpr int kSteps = static_cast<int>(LoginStep::console) + 1;
constexpr std::array<const char*, kSteps> kNames = {"exec",         "libraries", "hello",   "sandbox",
                                                    "key_exchange", "auth",      "channel", "console"};

// Plain storage, no constructor: the first mark comes before any initialiser runs.
long long g_cpu_us[kSteps];
bool g_reported;

// The process's CPU time counts from the clone: the child's work before its exec is in it.
long long cpu_us() {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return -1;
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void report() {
  std::string line = "login steps (CPU us since the clone):";
  for (int i = 0; i < kSteps; ++i) line += fmt::format(" {}={}", kNames[i], g_cpu_us[i]);
  log::info("{}", line);
}

}  // namespace

void mark_login_step(LoginStep step) {
  const int i = static_cast<int>(step);
  if (g_cpu_us[i] == 0) g_cpu_us[i] = cpu_us();  // the first time only: a re-attach is no login
  if (step == LoginStep::console && !g_reported) {
    g_reported = true;
    report();
  }
}

}  // namespace xcg::gateway
#endif
