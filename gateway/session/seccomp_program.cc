#include "gateway/session/seccomp_program.h"

#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace xcg::gateway {
namespace {

bool compares_with_placeholder(const sock_filter& insn) {
  return BPF_CLASS(insn.code) == BPF_JMP && BPF_SRC(insn.code) == BPF_K && insn.k == kOwnPidPlaceholder;
}

// Up to the kernel's largest program and one byte more, so that a longer one is seen.
Result<std::string> read_all(int fd) {
  constexpr size_t kLimit = BPF_MAXINSNS * sizeof(sock_filter) + 1;
  std::string bytes(kLimit, '\0');
  size_t got = 0;
  while (got < kLimit) {
    ssize_t n = ::pread(fd, bytes.data() + got, kLimit - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("reading the seccomp program");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

}  // namespace

Result<void> put_own_pid(SeccompProgram& program, pid_t own_pid) {
  sock_filter* found = nullptr;
  for (auto& insn : program) {
    if (!compares_with_placeholder(insn)) continue;
    if (found != nullptr)
      return fail(Errc::invalid_input, "the seccomp program holds the pid placeholder twice");
    found = &insn;
  }
  if (found == nullptr) return fail(Errc::invalid_input, "the seccomp program lacks the pid placeholder");
  found->k = static_cast<uint32_t>(own_pid);
  return {};
}

Result<SeccompProgram> read_seccomp_instructions(int fd) {
  auto bytes = read_all(fd);
  if (!bytes) return tl::unexpected(bytes.error());
  if (bytes->empty()) return fail(Errc::invalid_input, "the seccomp program is empty");
  if (bytes->size() % sizeof(sock_filter) != 0)
    return fail(Errc::invalid_input, "the seccomp program is not a whole number of instructions");
  if (bytes->size() / sizeof(sock_filter) > BPF_MAXINSNS)
    return fail(Errc::invalid_input, "the seccomp program is longer than the kernel takes");
  SeccompProgram program(bytes->size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes->data(), bytes->size());
  return program;
}

Result<SeccompProgram> read_seccomp_program(int fd, pid_t own_pid) {
  auto program = read_seccomp_instructions(fd);
  if (!program) return program;
  if (auto r = put_own_pid(*program, own_pid); !r) return tl::unexpected(r.error());
  return program;
}

Result<SeccompProgram> take_broker_seccomp_program() {
  auto program = read_seccomp_program(kSessionSeccompFd, ::getpid());
  ::close(kSessionSeccompFd);  // nothing to do about a failure: the descriptor is gone either way
  return program;
}

Result<void> load_seccomp_program(const SeccompProgram& program) {
  sock_fprog fprog{static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
    return fail_errno("loading the seccomp filter");
  return {};
}

}  // namespace xcg::gateway
