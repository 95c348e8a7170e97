#include "xen/xen_store.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

// Xen 4.17's headers have no extern "C" guards.
extern "C" {
#include <xenstore.h>
}

namespace xcg::xen {
namespace {

// Frees what libxenstore malloc()s.
struct Free {
  void operator()(void* p) const noexcept { std::free(p); }
};
template <class T>
using Malloced = std::unique_ptr<T, Free>;

tl::unexpected<Error> xs_failure(std::string_view what, const std::string& path) {
  return fail_errno(fmt::format("xenstore {} {}", what, path));
}

}  // namespace

void XenStore::Close::operator()(xs_handle* h) const noexcept { xs_close(h); }

std::string XenStore::socket_path() {
  const char* path = xs_daemon_socket();
  return path ? path : "?";
}

Result<XenStore> XenStore::open() {
  xs_handle* h = xs_open(0);
  if (!h)
    return fail(Errc::unavailable,
                fmt::format("cannot reach xenstored at {}: {}", socket_path(), std::strerror(errno)));
  XenStore store(h);
  // Made now, so that fd() is the same descriptor for the whole life of the connection.
  store.fd_ = xs_fileno(h);
  if (store.fd_ < 0) return fail_errno("xenstore watch pipe");
  if (::fcntl(store.fd_, F_SETFD, FD_CLOEXEC) < 0) return fail_errno("xenstore watch pipe");
  return store;
}

Result<std::optional<std::string>> XenStore::read(const std::string& path) const {
  unsigned len = 0;
  Malloced<char> value(static_cast<char*>(xs_read(handle_.get(), XBT_NULL, path.c_str(), &len)));
  if (!value) {
    if (errno == ENOENT) return std::optional<std::string>();
    return xs_failure("read", path);
  }
  return std::optional<std::string>(std::string(value.get(), len));
}

Result<std::vector<std::string>> XenStore::directory(const std::string& path) const {
  unsigned count = 0;
  Malloced<char*> names(xs_directory(handle_.get(), XBT_NULL, path.c_str(), &count));
  if (!names) {
    if (errno == ENOENT) return std::vector<std::string>();
    return xs_failure("directory", path);
  }
  return std::vector<std::string>(names.get(), names.get() + count);
}

Result<uint32_t> XenStore::owner(const std::string& path) const {
  unsigned count = 0;
  Malloced<xs_permissions> perms(xs_get_permissions(handle_.get(), XBT_NULL, path.c_str(), &count));
  if (!perms) return xs_failure("get permissions", path);
  if (count == 0) return fail(Errc::invalid_input, fmt::format("xenstore {} has no permissions", path));
  return perms.get()[0].id;
}

Result<void> XenStore::write(const std::string& path, std::string_view value) {
  if (!xs_write(handle_.get(), XBT_NULL, path.c_str(), value.data(), static_cast<unsigned>(value.size())))
    return xs_failure("write", path);
  return {};
}

Result<void> XenStore::remove(const std::string& path) {
  if (!xs_rm(handle_.get(), XBT_NULL, path.c_str())) return xs_failure("rm", path);
  return {};
}

Result<std::string> XenStore::domain_path(uint32_t domid) const {
  Malloced<char> path(xs_get_domain_path(handle_.get(), domid));
  if (!path) return fail_errno(fmt::format("xenstore domain path of {}", domid));
  return std::string(path.get());
}

Result<void> XenStore::watch(const std::string& path, const std::string& token) {
  if (!xs_watch(handle_.get(), path.c_str(), token.c_str())) return xs_failure("watch", path);
  return {};
}

Result<void> XenStore::unwatch(const std::string& path, const std::string& token) {
  if (!xs_unwatch(handle_.get(), path.c_str(), token.c_str())) return xs_failure("unwatch", path);
  return {};
}

int XenStore::fd() const { return fd_; }

Result<std::optional<XenStore::WatchEvent>> XenStore::next_event() {
  Malloced<char*> event(xs_check_watch(handle_.get()));
  if (!event) {
    if (errno == EAGAIN) return std::optional<WatchEvent>();
    // libxenstore's reader thread closed the connection (xenstored went away).
    return fail(Errc::unavailable, fmt::format("lost the connection to xenstored: {}", std::strerror(errno)));
  }
  return std::optional<WatchEvent>(WatchEvent{event.get()[XS_WATCH_PATH], event.get()[XS_WATCH_TOKEN]});
}

}  // namespace xcg::xen
