// xcg-session: the session process, one per connection (gateway/session/session.h). Only the broker
// (`xcg serve`) runs it, with the descriptors laid out as session.h says and no arguments.
// A program of its own so that each connection loads only what a session needs.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "gateway/session/login_marks.h"
#include "gateway/session/process_setup.h"
#include "gateway/session/session.h"

namespace {

// The broker passes the IPC socket, a SOCK_SEQPACKET socket, as fd 3 (and fd 2).
bool started_by_broker() {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(xcg::gateway::kSessionIpcFd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
         type == SOCK_SEQPACKET;
}

#ifdef XCG_TEST_HOOKS
// .preinit_array runs before any shared library's initialiser: the CPU of the clone, the exec
// and the dynamic linker, apart from OpenSSL's and libssh's start-up, marked at main.
void mark_exec() { xcg::gateway::mark_login_step(xcg::gateway::LoginStep::exec); }
[[gnu::section(".preinit_array"), gnu::used]] void (*const g_mark_exec)() = mark_exec;
#endif

}  // namespace

int main(int argc, char**) {
  xcg::gateway::mark_login_step(xcg::gateway::LoginStep::libraries);
  if (argc > 1 || !started_by_broker()) {
    // Not the broker's layout, so fd 2 is not the IPC socket: stderr is safe to write to.
    std::fputs(
        "xcg-session: the broker (xcg serve) starts this for each connection; "
        "it is not run by hand\n",
        stderr);
    return 2;
  }
  // Before the log reaches the broker: a refusal shows as a connection closed before its banner.
  if (!xcg::gateway::set_up_session_process()) return 1;
  // _exit: everything is cleaned up already, and exit handlers (LeakSanitizer's among them in
  // test builds) would make syscalls the sandbox forbids.
  ::_exit(xcg::gateway::run_session());
}
