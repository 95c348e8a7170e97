// The CPU a session has used at each step of a login, for bench/login_steps.py
// (docs/performance.md, "One login, step by step"). Test builds only (meson -Dtest_hooks=true):
// in a package every mark is an empty inline function.
#pragma once

namespace xcg::gateway {

// In the order a login passes them.
enum class LoginStep { exec, libraries, hello, sandbox, key_exchange, auth, channel, console };

#ifdef XCG_TEST_HOOKS
// Records the process's CPU time now; at `console`, logs every step in one line.
void mark_login_step(LoginStep step);
#else
inline void mark_login_step(LoginStep) {}
#endif

}  // namespace xcg::gateway
