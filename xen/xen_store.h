// A connection to xenstored through libxenstore, with errors as values.
//
// libxenstore honours XENSTORED_PATH (a unix socket), so the tests point it at a fake xenstored.
// Requests are synchronous round trips to the local xenstored: they take microseconds, but there
// is no timeout on them; libxenstore offers none.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

struct xs_handle;

namespace xcg::xen {

class XenStore {
 public:
  struct WatchEvent {
    std::string path;
    std::string token;
  };

  // xs_open(0): $XENSTORED_PATH, else xenstored's socket, else /dev/xen/xenbus.
  static Result<XenStore> open();
  // Where xs_open looks first, for messages.
  static std::string socket_path();

  XenStore() = default;

  // nullopt when the node does not exist.
  Result<std::optional<std::string>> read(const std::string& path) const;
  // The names of the children; empty when the node does not exist.
  Result<std::vector<std::string>> directory(const std::string& path) const;
  // The domain that owns the node (the first entry of its permissions); xenstored lets the
  // owner write it, so only dom0's nodes are trusted for anything dom0 acts on.
  Result<uint32_t> owner(const std::string& path) const;
  Result<void> write(const std::string& path, std::string_view value);
  Result<void> remove(const std::string& path);
  // "/local/domain/<domid>", as xenstored says.
  Result<std::string> domain_path(uint32_t domid) const;

  // A watch fires once when set, then whenever the node or one below it changes.
  Result<void> watch(const std::string& path, const std::string& token);
  Result<void> unwatch(const std::string& path, const std::string& token);
  // Readable while watch events are pending.
  int fd() const;
  // The next pending event without blocking; nullopt when none is pending. Fails with
  // Errc::unavailable once the connection to xenstored is lost.
  Result<std::optional<WatchEvent>> next_event();

 private:
  struct Close {
    void operator()(xs_handle* h) const noexcept;
  };
  explicit XenStore(xs_handle* h) : handle_(h) {}

  std::unique_ptr<xs_handle, Close> handle_;
  int fd_ = -1;
};

}  // namespace xcg::xen
