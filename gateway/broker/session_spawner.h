// Starting a session process for an accepted connection. The broker is given a spawner, so
// that its policy can be tested with one that starts nothing.
#pragma once

#include <string>
#include <vector>

#include "base/child.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "gateway/session/seccomp_program.h"

namespace xcg::gateway {

struct SpawnedSession {
  Child child;
  UniqueFd ipc;  // the broker's end of the session's IPC channel
};

class SessionSpawner {
 public:
  virtual ~SessionSpawner() = default;
  // Hands `tcp` to a new session process. Without `tcp`, a spare: the session is parked until
  // the broker sends its hello with the connection (spare_pool.h).
  virtual Result<SpawnedSession> spawn(UniqueFd tcp) = 0;
};

// Execs `program` (xcg-session or xcg-web), fresh, for each connection: nothing of the broker's memory
// reaches the process that parses the network. The child is started as posix_spawn starts one
// (spawn_child), so a connection does not cost a copy of the broker's page tables. The seccomp
// filter is compiled once, here, and each session gets the program on descriptor 4.
class ExecSessionSpawner final : public SessionSpawner {
 public:
  // Throws if `program` is not an absolute path to an executable, or `filter` cannot be compiled.
  ExecSessionSpawner(std::string program, Filter filter);
  Result<SpawnedSession> spawn(UniqueFd tcp) override;

 private:
  std::string program_;
  std::string arg0_;  // the program's file name
  std::vector<std::string> env_;
  std::vector<char*> envp_;
  UniqueFd seccomp_;  // the compiled filter, sealed (seccomp_program_memfd)
};

}  // namespace xcg::gateway
