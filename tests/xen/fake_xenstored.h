// A small xenstored for tests: the real wire protocol (xs_wire.h: a header of type, req_id,
// tx_id and len, then NUL-separated strings) on a unix socket, served from its own thread.
// Point libxenstore at it with XENSTORED_PATH and real client code runs unchanged.
//
// It speaks READ, WRITE, MKDIR, RM, DIRECTORY, WATCH, UNWATCH (with watch events, fired once
// when set, as xenstored does), TRANSACTION_START/END (a snapshot, EAGAIN on conflict),
// GET_DOMAIN_PATH, INTRODUCE and RELEASE (which fire @introduceDomain and @releaseDomain), and
// GET_PERMS, which names the node's owner (dom0 unless set_owner said otherwise); permissions
// are not enforced, there are no quotas, and paths must be absolute.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace xcg::xen::testing {

class FakeXenstored {
 public:
  // Listens on `socket_path`. Throws std::system_error.
  explicit FakeXenstored(std::string socket_path);
  ~FakeXenstored();
  FakeXenstored(const FakeXenstored&) = delete;
  FakeXenstored& operator=(const FakeXenstored&) = delete;

  const std::string& socket_path() const;

  // The tree, changed from the test; watches fire as they would for a client's request.
  void write(const std::string& path, const std::string& value);
  void remove(const std::string& path);  // with everything below it
  std::optional<std::string> read(const std::string& path) const;
  // The domain GET_PERMS names as the node's owner, as if that domain had written it; kept
  // until remove() takes the node away.
  void set_owner(const std::string& path, uint32_t domid);
  // What xenstored says when a domain is introduced (built) or released (shut down, destroyed).
  void introduce_domain();
  void release_domain();

  size_t watch_count() const;  // over every connection
  size_t requests_served() const;
  size_t connection_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xcg::xen::testing
