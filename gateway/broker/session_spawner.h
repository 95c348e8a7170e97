// Starting a session process for an accepted connection. The broker is given a spawner, so
// that its policy can be tested with one that starts nothing.
#pragma once

#include <string>
#include <vector>

#include "base/child.h"
#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg::gateway {

struct SpawnedSession {
  Child child;
  UniqueFd ipc;  // the broker's end of the session's IPC channel
};

class SessionSpawner {
 public:
  virtual ~SessionSpawner() = default;
  // Hands `tcp` to a new session process.
  virtual Result<SpawnedSession> spawn(UniqueFd tcp) = 0;
};

// Execs `program` (xcg-session or xcg-web), fresh, for each connection: nothing of the broker's memory
// reaches the process that parses the network.
class ExecSessionSpawner final : public SessionSpawner {
 public:
  // Throws if `program` is not an absolute path to an executable.
  explicit ExecSessionSpawner(std::string program);
  Result<SpawnedSession> spawn(UniqueFd tcp) override;

 private:
  std::string program_;
  std::string arg0_;  // the program's file name
  std::vector<std::string> env_;
  std::vector<char*> envp_;
};

}  // namespace xcg::gateway
