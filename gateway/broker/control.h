// The operator's control socket: a root-only Unix socket in the broker, and the `xcg ctl`
// client. One request line per connection ("sessions", "kick web1", "reload", "status"); the
// broker answers with text and closes.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "base/unique_fd.h"

namespace xcg::gateway {

class ControlServer {
 public:
  // Answers one request line through `reply`, at once or later from the loop (a client gone
  // by then is not answered); a reply starting with "error: " makes `xcg ctl` exit 1.
  using Reply = std::function<void(std::string text)>;
  using Handler = std::function<void(const std::string& request, Reply reply)>;

  // Creates the socket (mode 0600; the parent directory is created 0755 if missing). Throws.
  ControlServer(EventLoop& loop, std::string path, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  struct Client {
    UniqueFd fd;
    std::string in;
    std::string out;
    bool asked = false;  // the request is with the handler
    uint64_t serial = 0;
    // After `fd`: they end before the socket closes, and with the client they call back into.
    EventLoop::Watch watch;
    EventLoop::Timer deadline;
  };
  void on_accept();
  void on_client(int fd, uint32_t events);
  void close_client(int fd);
  void answer(int fd, uint64_t serial, std::string text);

  EventLoop& loop_;
  std::string path_;
  Handler handler_;
  UniqueFd listen_;
  EventLoop::Watch listen_watch_;  // after listen_, so that it ends before the socket closes
  std::map<int, Client> clients_;
  uint64_t next_serial_ = 1;  // tells a client from a later one on the same descriptor
};

// `xcg ctl`: sends `words` joined by spaces, prints the reply; returns the exit code.
int run_control_client(const std::string& socket_path, const std::vector<std::string>& words);

}  // namespace xcg::gateway
