#include "tests/xen/fake_xenstored.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <xen/io/xs_wire.h>

#include "base/unique_fd.h"

namespace xcg::xen::testing {
namespace {

using Nodes = std::map<std::string, std::string>;

std::system_error sys_error(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
}

// What xenstored accepts: absolute, no empty component, no trailing slash, [A-Za-z0-9-/_@].
bool valid_path(std::string_view p) {
  if (p.empty() || p[0] != '/' || p.find("//") != std::string_view::npos) return false;
  if (p.size() > 1 && p.back() == '/') return false;
  for (char c : p) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '/' || c == '_' || c == '@';
    if (!ok) return false;
  }
  return true;
}

bool is_special(std::string_view p) { return p == "@introduceDomain" || p == "@releaseDomain"; }

// `child` is `parent` or lies below it.
bool is_under(std::string_view child, std::string_view parent) {
  if (parent == "/") return true;
  return child == parent || (child.starts_with(parent) && child[parent.size()] == '/');
}

std::string parent_of(std::string_view p) {
  size_t slash = p.rfind('/');
  return slash == 0 ? "/" : std::string(p.substr(0, slash));
}

void write_node(Nodes& nodes, const std::string& path, std::string value) {
  for (std::string p = path; p != "/" && !nodes.contains(p = parent_of(p));) nodes.emplace(p, "");
  nodes[path] = std::move(value);
}

void remove_node(Nodes& nodes, const std::string& path) {
  nodes.erase(path);
  std::string prefix = path + "/";
  for (auto it = nodes.lower_bound(prefix); it != nodes.end() && it->first.starts_with(prefix);)
    it = nodes.erase(it);
}

std::string children_of(const Nodes& nodes, const std::string& path) {
  std::string prefix = path == "/" ? "/" : path + "/";
  std::string out;
  for (auto it = nodes.lower_bound(prefix); it != nodes.end() && it->first.starts_with(prefix); ++it) {
    std::string_view rest = std::string_view(it->first).substr(prefix.size());
    if (rest.empty() || rest.find('/') != std::string_view::npos) continue;
    out.append(rest);
    out.push_back('\0');
  }
  return out;
}

// The NUL-terminated strings of a payload; what follows the last NUL is the remainder.
std::vector<std::string> split(std::string_view payload) {
  std::vector<std::string> out;
  while (!payload.empty()) {
    size_t nul = payload.find('\0');
    out.emplace_back(payload.substr(0, nul));
    if (nul == std::string_view::npos) break;
    payload.remove_prefix(nul + 1);
  }
  return out;
}

bool is_tree_request(uint32_t type) {
  return type == XS_READ || type == XS_WRITE || type == XS_MKDIR || type == XS_RM || type == XS_DIRECTORY;
}

struct Change {
  std::string path;
  bool removed = false;  // a subtree went: watches below it fire too
};

}  // namespace

struct FakeXenstored::Impl {
  struct Conn {
    UniqueFd fd;
    std::string in, out;
    std::vector<std::pair<std::string, std::string>> watches;  // path, token
    bool closed = false;
  };
  struct Transaction {
    Nodes nodes;
    uint64_t generation = 0;
    std::vector<Change> changes;
  };

  std::string path;
  UniqueFd listener;
  UniqueFd wake;
  std::thread thread;
  mutable std::mutex mu;
  bool stopping = false;
  Nodes nodes{{"/", ""}};
  std::map<std::string, uint32_t> owners;  // nodes not owned by dom0
  uint64_t generation = 0;
  std::map<uint64_t, Conn> conns;
  uint64_t next_conn = 1;
  std::map<uint32_t, Transaction> transactions;
  uint32_t next_transaction = 1;
  size_t served = 0;

  void serve();
  void accept_all();
  void read_from(Conn& c);
  void flush(Conn& c);
  void handle(Conn& c, const xsd_sockmsg& hdr, std::string_view payload);
  void handle_tree(Conn& c, const xsd_sockmsg& hdr, const std::vector<std::string>& args,
                   std::string_view payload);
  void reply(Conn& c, const xsd_sockmsg& hdr, std::string_view payload);
  void error(Conn& c, const xsd_sockmsg& hdr, const char* name) {
    reply_as(c, XS_ERROR, hdr, std::string(name) + '\0');
  }
  void ack(Conn& c, const xsd_sockmsg& hdr) { reply(c, hdr, std::string_view("OK\0", 3)); }
  void reply_as(Conn& c, uint32_t type, const xsd_sockmsg& hdr, std::string_view payload);
  void event(Conn& c, const std::string& path, const std::string& token);
  void fire(const Change& change);
  void fire_special(const std::string& name);
  void kick();
  void end_transaction(Conn& c, const xsd_sockmsg& hdr, const std::string& commit);
};

FakeXenstored::FakeXenstored(std::string socket_path) : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(socket_path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (impl_->path.size() >= sizeof addr.sun_path)
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "socket path");
  impl_->path.copy(addr.sun_path, impl_->path.size());
  ::unlink(impl_->path.c_str());
  impl_->listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!impl_->listener) throw sys_error("socket");
  if (::bind(impl_->listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw sys_error("bind");
  if (::listen(impl_->listener.get(), 16) < 0) throw sys_error("listen");
  impl_->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl_->wake) throw sys_error("eventfd");
  impl_->thread = std::thread([impl = impl_.get()] { impl->serve(); });
}

FakeXenstored::~FakeXenstored() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->kick();
  impl_->thread.join();
  ::unlink(impl_->path.c_str());
}

const std::string& FakeXenstored::socket_path() const { return impl_->path; }

void FakeXenstored::write(const std::string& path, const std::string& value) {
  std::lock_guard lock(impl_->mu);
  write_node(impl_->nodes, path, value);
  ++impl_->generation;
  impl_->fire({path});
  impl_->kick();
}

void FakeXenstored::remove(const std::string& path) {
  std::lock_guard lock(impl_->mu);
  remove_node(impl_->nodes, path);
  std::erase_if(impl_->owners, [&path](const auto& entry) { return is_under(entry.first, path); });
  ++impl_->generation;
  impl_->fire({path, true});
  impl_->kick();
}

std::optional<std::string> FakeXenstored::read(const std::string& path) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->nodes.find(path);
  if (it == impl_->nodes.end()) return std::nullopt;
  return it->second;
}

void FakeXenstored::set_owner(const std::string& path, uint32_t domid) {
  std::lock_guard lock(impl_->mu);
  impl_->owners[path] = domid;
}

void FakeXenstored::introduce_domain() {
  std::lock_guard lock(impl_->mu);
  impl_->fire_special("@introduceDomain");
  impl_->kick();
}

void FakeXenstored::release_domain() {
  std::lock_guard lock(impl_->mu);
  impl_->fire_special("@releaseDomain");
  impl_->kick();
}

size_t FakeXenstored::watch_count() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& [id, c] : impl_->conns) n += c.watches.size();
  return n;
}

size_t FakeXenstored::requests_served() const {
  std::lock_guard lock(impl_->mu);
  return impl_->served;
}

size_t FakeXenstored::connection_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->conns.size();
}

// --- the server thread ---

void FakeXenstored::Impl::kick() {
  uint64_t one = 1;
  if (::write(wake.get(), &one, sizeof one) < 0 && errno != EAGAIN) std::abort();
}

void FakeXenstored::Impl::serve() {
  std::unique_lock lock(mu);
  while (!stopping) {
    std::vector<pollfd> fds{{listener.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns) {
      fds.push_back({c.fd.get(), static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      ids.push_back(id);
    }
    lock.unlock();
    int n = ::poll(fds.data(), fds.size(), -1);
    lock.lock();
    if (n < 0 && errno != EINTR) std::abort();
    if (n <= 0) continue;
    if (fds[1].revents) {
      uint64_t count;
      if (::read(wake.get(), &count, sizeof count) < 0 && errno != EAGAIN) std::abort();
    }
    if (fds[0].revents) accept_all();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = conns.find(ids[i]);
      if (it == conns.end()) continue;
      if (fds[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) read_from(it->second);
      flush(it->second);
      if (it->second.closed) conns.erase(it);
    }
  }
  conns.clear();
}

void FakeXenstored::Impl::accept_all() {
  for (;;) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    conns[next_conn++].fd.reset(fd);
  }
}

void FakeXenstored::Impl::read_from(Conn& c) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno != EAGAIN) c.closed = true;
    break;
  }
  while (c.in.size() >= sizeof(xsd_sockmsg)) {
    xsd_sockmsg hdr;
    std::memcpy(&hdr, c.in.data(), sizeof hdr);
    if (hdr.len > XENSTORE_PAYLOAD_MAX) {  // xenstored drops such a client
      c.closed = true;
      return;
    }
    if (c.in.size() < sizeof hdr + hdr.len) break;
    std::string payload = c.in.substr(sizeof hdr, hdr.len);
    c.in.erase(0, sizeof hdr + hdr.len);
    ++served;
    handle(c, hdr, payload);
  }
}

void FakeXenstored::Impl::flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) c.closed = true;
    return;
  }
}

void FakeXenstored::Impl::reply_as(Conn& c, uint32_t type, const xsd_sockmsg& hdr, std::string_view payload) {
  xsd_sockmsg out{type, hdr.req_id, hdr.tx_id, static_cast<uint32_t>(payload.size())};
  c.out.append(reinterpret_cast<const char*>(&out), sizeof out);
  c.out.append(payload);
}

void FakeXenstored::Impl::reply(Conn& c, const xsd_sockmsg& hdr, std::string_view payload) {
  reply_as(c, hdr.type, hdr, payload);
}

void FakeXenstored::Impl::event(Conn& c, const std::string& path, const std::string& token) {
  xsd_sockmsg hdr{XS_WATCH_EVENT, 0, 0, 0};
  reply_as(c, XS_WATCH_EVENT, hdr, path + '\0' + token + '\0');
}

void FakeXenstored::Impl::fire(const Change& change) {
  for (auto& [id, c] : conns) {
    for (const auto& [watched, token] : c.watches) {
      if (is_special(watched)) continue;
      if (is_under(change.path, watched)) event(c, change.path, token);
      else if (change.removed && is_under(watched, change.path)) event(c, watched, token);
    }
  }
}

void FakeXenstored::Impl::fire_special(const std::string& name) {
  for (auto& [id, c] : conns)
    for (const auto& [watched, token] : c.watches)
      if (watched == name) event(c, watched, token);
}

void FakeXenstored::Impl::handle(Conn& c, const xsd_sockmsg& hdr, std::string_view payload) {
  auto args = split(payload);
  switch (hdr.type) {
    case XS_WATCH:
    case XS_UNWATCH: {
      if (args.size() < 2 || !(valid_path(args[0]) || is_special(args[0]))) return error(c, hdr, "EINVAL");
      auto watch = std::make_pair(args[0], args[1]);
      auto it = std::find(c.watches.begin(), c.watches.end(), watch);
      if (hdr.type == XS_UNWATCH) {
        if (it == c.watches.end()) return error(c, hdr, "ENOENT");
        c.watches.erase(it);
        return ack(c, hdr);
      }
      if (it != c.watches.end()) return error(c, hdr, "EEXIST");
      c.watches.push_back(watch);
      ack(c, hdr);
      return event(c, args[0], args[1]);  // "fire once up front", as xenstored does
    }
    case XS_TRANSACTION_START: {
      uint32_t id = next_transaction++;
      transactions[id] = Transaction{nodes, generation, {}};
      return reply(c, hdr, std::to_string(id) + '\0');
    }
    case XS_TRANSACTION_END: return end_transaction(c, hdr, args.empty() ? "" : args[0]);
    case XS_GET_DOMAIN_PATH:
      if (args.empty() || args[0].empty()) return error(c, hdr, "EINVAL");
      return reply(c, hdr, "/local/domain/" + args[0] + '\0');
    case XS_GET_PERMS: {
      if (args.empty() || !valid_path(args[0])) return error(c, hdr, "EINVAL");
      if (!nodes.contains(args[0])) return error(c, hdr, "ENOENT");
      auto owner = owners.find(args[0]);
      // The owner first, with its default for everyone else: "n" (no access).
      return reply(c, hdr, "n" + std::to_string(owner == owners.end() ? 0 : owner->second) + '\0');
    }
    case XS_INTRODUCE:
    case XS_RELEASE:
      ack(c, hdr);
      return fire_special(hdr.type == XS_INTRODUCE ? "@introduceDomain" : "@releaseDomain");
    default:
      if (is_tree_request(hdr.type)) return handle_tree(c, hdr, args, payload);
      error(c, hdr, "EINVAL");  // xenstored's answer to what it does not know
  }
}

// READ, WRITE, MKDIR, RM and DIRECTORY, in or out of a transaction.
void FakeXenstored::Impl::handle_tree(Conn& c, const xsd_sockmsg& hdr, const std::vector<std::string>& args,
                                      std::string_view payload) {
  Transaction* tx = nullptr;
  if (hdr.tx_id != 0) {
    auto it = transactions.find(hdr.tx_id);
    if (it == transactions.end()) return error(c, hdr, "ENOENT");
    tx = &it->second;
  }
  Nodes& tree = tx ? tx->nodes : nodes;
  if (args.empty() || !valid_path(args[0])) return error(c, hdr, "EINVAL");
  const std::string& path = args[0];
  auto changed = [&](Change change) {
    if (tx) return tx->changes.push_back(std::move(change));
    ++generation;
    fire(change);
  };
  switch (hdr.type) {
    case XS_READ: {
      auto it = tree.find(path);
      if (it == tree.end()) return error(c, hdr, "ENOENT");
      return reply(c, hdr, it->second);
    }
    case XS_DIRECTORY:
      if (!tree.contains(path)) return error(c, hdr, "ENOENT");
      return reply(c, hdr, children_of(tree, path));
    case XS_WRITE: {
      size_t nul = payload.find('\0');  // the value is everything after the path's NUL
      if (nul == std::string_view::npos) return error(c, hdr, "EINVAL");
      write_node(tree, path, std::string(payload.substr(nul + 1)));
      changed({path});
      return ack(c, hdr);
    }
    case XS_MKDIR:
      if (!tree.contains(path)) write_node(tree, path, "");
      changed({path});
      return ack(c, hdr);
    default:  // XS_RM
      if (path == "/") return error(c, hdr, "EINVAL");
      if (!tree.contains(path)) {
        // Gone already: fine, if its parent is there.
        if (!tree.contains(parent_of(path))) return error(c, hdr, "ENOENT");
        return ack(c, hdr);
      }
      remove_node(tree, path);
      changed({path, true});
      return ack(c, hdr);
  }
}

void FakeXenstored::Impl::end_transaction(Conn& c, const xsd_sockmsg& hdr, const std::string& commit) {
  auto it = transactions.find(hdr.tx_id);
  if (it == transactions.end()) return error(c, hdr, "ENOENT");
  Transaction tx = std::move(it->second);
  transactions.erase(it);
  if (commit == "F") return ack(c, hdr);
  if (commit != "T") return error(c, hdr, "EINVAL");
  if (tx.generation != generation) return error(c, hdr, "EAGAIN");  // someone else wrote meanwhile
  nodes = std::move(tx.nodes);
  ++generation;
  ack(c, hdr);
  for (const auto& change : tx.changes) fire(change);
}

}  // namespace xcg::xen::testing
