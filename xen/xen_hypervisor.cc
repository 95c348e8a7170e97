#include "xen/xen_hypervisor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"
#include "xen/console_tty.h"

namespace xcg::xen {
namespace {

constexpr const char* kToken = "xcg";
constexpr const char* kIntroduce = "@introduceDomain";
constexpr const char* kRelease = "@releaseDomain";
constexpr const char* kPrivcmd = "/dev/xen/privcmd";

std::optional<uint32_t> parse_domid(std::string_view text) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// xenconsoled names the pty slave it made ("/dev/pts/N"). Anything else is refused: the broker
// is root, and must never be talked into opening some other file for a customer.
bool plausible_tty(std::string_view path) {
  constexpr std::string_view kPts = "/dev/pts/";
  if (!path.starts_with(kPts)) return false;
  return parse_domid(path.substr(kPts.size())).has_value();
}

}  // namespace

struct XenHypervisor::Domain {
  DomainSpec spec;
  Seen seen;
  std::vector<std::string> watched;   // the tty nodes watched for seen.domid
  ConsoleLock lock;                   // held from open_console until the domid goes away
  EventLoop::Timer retry;             // refers to this Domain, so it ends with it
  bool lock_busy = false;             // said so in the log already
  std::optional<uint32_t> suspended;  // the domid last seen suspended, until it resumes or goes
};

std::unique_ptr<XenHypervisor> XenHypervisor::open(EventLoop& loop, std::vector<DomainSpec> domains,
                                                   XenOptions options) {
  std::vector<std::string> missing;
  if (::access(kPrivcmd, F_OK) != 0)
    missing.push_back(
        fmt::format("no {} ({}): this is not a Xen dom0, or the xen_privcmd module is "
                    "not loaded",
                    kPrivcmd, std::strerror(errno)));
  auto store = XenStore::open();
  if (!store) missing.push_back(store.error().message + " (is xenstored running?)");
  if (::access(options.toolstack.c_str(), X_OK) != 0)
    missing.push_back(fmt::format("toolstack {}: {}", options.toolstack, std::strerror(errno)));
  struct stat st {};
  if (::stat(options.lock_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    missing.push_back(fmt::format("lock_dir {} is not a directory", options.lock_dir));
  if (!missing.empty()) throw std::runtime_error("hypervisor xen: " + join(missing, "; "));
  auto info = open_xenctrl();
  return std::make_unique<XenHypervisor>(loop, std::move(domains), std::move(options), std::move(*store),
                                         std::move(info));
}

XenHypervisor::XenHypervisor(EventLoop& loop, std::vector<DomainSpec> domains, XenOptions options,
                             XenStore store, std::unique_ptr<DomainInfoSource> info)
    : loop_(loop),
      options_(std::move(options)),
      store_(std::move(store)),
      info_(std::move(info)),
      toolstack_(loop, options_.toolstack, options_.timeout) {
  for (auto& spec : domains) {
    if (auto added = insert(std::move(spec)); !added) throw std::invalid_argument(added.error().message);
  }
  for (const char* path : {kIntroduce, kRelease}) {
    if (auto w = store_.watch(path, kToken); !w)
      throw std::runtime_error("hypervisor xen: " + w.error().message);
  }
  store_watch_ = loop_.watch(store_.fd(), EPOLLIN, "xenstore watch", [this](uint32_t) { on_watch_event(); });
  refresh();
}

XenHypervisor::~XenHypervisor() = default;  // the registrations end with the members

std::vector<std::string> XenHypervisor::domains() const {
  std::vector<std::string> names;
  for (const auto& [name, d] : domains_) names.push_back(name);
  return names;
}

XenHypervisor::Domain* XenHypervisor::find(const std::string& name) const {
  auto it = domains_.find(name);
  return it == domains_.end() ? nullptr : it->second.get();
}

Result<void> XenHypervisor::insert(DomainSpec spec) {
  if (spec.name.empty()) return fail(Errc::invalid_input, "xen: a domain without a name");
  if (spec.config_file.empty()) spec.config_file = "/etc/xen/" + spec.name + ".cfg";
  std::string name = spec.name;
  auto d = std::make_unique<Domain>();
  d->spec = std::move(spec);
  if (!domains_.emplace(name, std::move(d)).second)
    return fail(Errc::invalid_input, "xen: domain '" + name + "' is listed twice");
  return {};
}

// The same path as at start-up: refresh() finds the name in xenstore, watches its tty and
// announces it if it is there.
Result<void> XenHypervisor::add_domain(DomainSpec spec) {
  std::string name = spec.name;
  if (auto added = insert(std::move(spec)); !added) return added;
  log::info("xen: following {}", name);
  refresh();
  return {};
}

Result<void> XenHypervisor::remove_domain(const std::string& domain) {
  auto it = domains_.find(domain);
  if (it == domains_.end()) return fail(Errc::not_found, "no such domain '" + domain + "'");
  Domain& d = *it->second;
  watch_ttys(d, {});
  domains_.erase(it);  // lets go of its console lock and its retry timer
  log::info("xen: {} is no longer followed", domain);
  return {};
}

// --- finding domains ---

// The domids of every configured name, from /local/domain/*/name. Domain-0 is never a customer's.
Result<XenHypervisor::Names> XenHypervisor::scan() const {
  auto entries = store_.directory("/local/domain");
  if (!entries) return tl::unexpected(entries.error());
  Names found;
  for (const auto& entry : *entries) {
    auto domid = parse_domid(entry);
    if (!domid || *domid == 0) continue;
    auto name = store_.read(fmt::format("/local/domain/{}/name", *domid));
    if (!name) return tl::unexpected(name.error());
    if (*name && domains_.contains(**name)) found[**name].push_back(*domid);
  }
  return found;
}

// Of the domains under one name (during a reboot the old one may linger while dying), the live
// one, else the newest. A name in xenstore without a domain behind it is a leftover: ignored.
Result<std::optional<XenHypervisor::Found>> XenHypervisor::pick(const std::vector<uint32_t>& domids) const {
  std::optional<Found> best;
  std::optional<Error> failed;
  for (uint32_t domid : domids) {
    auto info = info_->info(domid);
    if (!info) {
      failed = info.error();
      continue;
    }
    if (!*info) continue;
    Found f{domid, **info};
    if (!best || std::pair(!f.info.dying, f.domid) > std::pair(!best->info.dying, best->domid)) best = f;
  }
  if (!best && failed) return fail(Errc::unavailable, failed->message);
  return best;
}

Result<std::optional<XenHypervisor::Found>> XenHypervisor::locate(const std::string& name) const {
  auto domids = domids_named(name);
  if (!domids) return fail(Errc::unavailable, domids.error().message);
  return pick(*domids);
}

// From the last scan, those still named so; a fresh scan while there is none.
Result<std::vector<uint32_t>> XenHypervisor::domids_named(const std::string& name) const {
  auto fresh = names_ ? Result<Names>() : scan();
  if (!fresh) return tl::unexpected(fresh.error());
  const Names& names = names_ ? *names_ : *fresh;
  auto it = names.find(name);
  if (it == names.end()) return std::vector<uint32_t>();
  std::vector<uint32_t> still;
  for (uint32_t domid : it->second) {
    auto now = store_.read(fmt::format("/local/domain/{}/name", domid));
    if (!now) return tl::unexpected(now.error());
    if (*now == name) still.push_back(domid);
  }
  return still;
}

std::vector<std::string> XenHypervisor::tty_paths(const Domain& d, const Found& found) const {
  auto dom_path = store_.domain_path(found.domid);
  std::string base = dom_path ? *dom_path : fmt::format("/local/domain/{}", found.domid);
  std::string pv = base + "/console/tty", serial = base + "/serial/0/tty";
  switch (d.spec.console) {
    case ConsoleType::pv: return {pv};
    case ConsoleType::serial: return {serial};
    case ConsoleType::automatic: break;
  }
  if (found.info.hvm) return {serial, pv};
  return {pv};
}

// The first tty named of `paths`, and where; empty while xenconsoled has not written one yet.
Result<XenHypervisor::TtyNode> XenHypervisor::read_tty_node(const std::vector<std::string>& paths) const {
  for (const auto& path : paths) {
    auto tty = store_.read(path);
    if (!tty) return tl::unexpected(tty.error());
    if (*tty && !(*tty)->empty()) return TtyNode{path, **tty};
  }
  return TtyNode{};
}

Result<std::string> XenHypervisor::read_tty(const std::vector<std::string>& paths) const {
  auto found = read_tty_node(paths);
  if (!found) return tl::unexpected(found.error());
  return found->tty;
}

// The node must be dom0's (libxl makes it read-only for the guest, xenconsoled or QEMU write
// it): a node the guest could write would let it name any file for the broker to open.
Result<void> XenHypervisor::check_tty_node(const TtyNode& tty, const std::string& domain,
                                           uint32_t domid) const {
  auto owner = store_.owner(tty.node);
  if (!owner) return fail(Errc::unavailable, owner.error().message);
  if (*owner == 0 && plausible_tty(tty.tty)) return {};
  log::error("xen: {} (domid {}) names '{}' as its console in {}, owned by domain {}; refusing it", domain,
             domid, printable(tty.tty, 80), tty.node, *owner);
  return fail(Errc::unavailable, fmt::format("the console of {} is not usable", domain));
}

// libxl records the start in /vm/<uuid>/start_time ("1700000000.42").
std::chrono::seconds XenHypervisor::uptime(uint32_t domid) const {
  auto vm = store_.read(fmt::format("/local/domain/{}/vm", domid));
  if (!vm || !*vm) return std::chrono::seconds(0);
  auto start = store_.read(**vm + "/start_time");
  if (!start || !*start) return std::chrono::seconds(0);
  std::string_view text = **start;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc()) return std::chrono::seconds(0);
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  return std::max(now - std::chrono::seconds(seconds), std::chrono::seconds(0));
}

// --- the interface ---

Result<DomainStatus> XenHypervisor::status(const std::string& domain) const {
  const Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  auto found = locate(domain);
  if (!found) return tl::unexpected(found.error());
  DomainStatus s;
  s.name = domain;
  // Seen suspended, and gone before the watch has told: it still counts as suspended until the
  // domain-left notice, so that no one announces an ordinary stop first.
  s.suspended = d->suspended && (!*found || (*found)->domid != *d->suspended);
  if (!*found) return s;
  const Found& f = **found;
  s.state = state_of(f.info);
  s.domid = f.domid;
  s.memory_mib = f.info.memory_kib / 1024;
  s.vcpus = f.info.vcpus;
  s.cpu_time = std::chrono::duration_cast<std::chrono::seconds>(f.info.cpu_time);
  s.rebooting = f.info.shutdown && f.info.reason == ShutdownReason::reboot;
  s.suspended = s.suspended || suspended(f.info);
  if (s.state == DomainState::running) s.uptime = uptime(f.domid);
  return s;
}

Result<XenHypervisor::Found> XenHypervisor::locate_running(const std::string& name) const {
  auto found = locate(name);
  if (!found) return tl::unexpected(found.error());
  DomainState state = *found ? state_of((*found)->info) : DomainState::shut_off;
  if (state != DomainState::running)
    return fail(Errc::wrong_state, fmt::format("{} is not running ({})", name, state_name(state)));
  return **found;
}

Result<UniqueFd> XenHypervisor::open_console(const std::string& domain) {
  Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  auto running = locate_running(domain);
  if (!running) return tl::unexpected(running.error());
  const Found& f = *running;
  auto tty = read_tty_node(tty_paths(*d, f));
  if (!tty) return fail(Errc::unavailable, tty.error().message);
  if (tty->tty.empty())
    return fail(Errc::unavailable, fmt::format("the console of {} is not ready yet", domain));
  if (auto usable = check_tty_node(*tty, domain, f.domid); !usable) return tl::unexpected(usable.error());
  if (!d->lock.held() || d->lock.domid() != f.domid) {
    d->lock.release();
    auto lock = ConsoleLock::take(options_.lock_dir, f.domid);
    if (!lock) {
      if (lock.error().sys_errno != EWOULDBLOCK)
        return fail(Errc::unavailable, fmt::format("the console of {}: {}", domain, lock.error().message));
      retry_console_later(*d);
      return fail(Errc::unavailable,
                  fmt::format("the console of {} is in use by another program (xl console?)", domain));
    }
    d->lock = std::move(*lock);
    d->lock_busy = false;
  }
  auto fd = open_raw_tty(tty->tty);
  if (!fd) return fail(Errc::unavailable, fmt::format("the console of {}: {}", domain, fd.error().message));
  return fd;
}

void XenHypervisor::act_async(const std::string& domain, Lifecycle action, ActDone done) {
  Domain* d = find(domain);
  if (!d) return done(fail(Errc::not_found, "no such domain '" + domain + "'"));
  auto args = toolstack_args(*d, action);
  if (!args) return done(tl::unexpected(args.error()));
  // By name: a reload may remove the domain while xl runs.
  toolstack_.run_async(*args, [this, domain, action, done = std::move(done)](Result<void> ran) {
    done(finish(domain, action, std::move(ran)));
  });
}

void XenHypervisor::send_sysrq(const std::string& domain, char key, ActDone done) {
  auto domid = sysrq_target(domain, key);
  if (!domid) return done(tl::unexpected(domid.error()));
  if (key != 0) return done(write_sysrq(*domid, key));
  toolstack_.run_async(
      {"trigger", std::to_string(*domid), "nmi"}, [domain, done = std::move(done)](Result<void> ran) {
        if (!ran)
          return done(fail(ran.error().code,
                           fmt::format("cannot send an NMI to {}: {}", domain, ran.error().message)));
        done({});
      });
}

Result<uint32_t> XenHypervisor::sysrq_target(const std::string& domain, char key) const {
  if (!find(domain)) return fail(Errc::not_found, "no such domain '" + domain + "'");
  bool valid = key == 0 || (key >= '0' && key <= '9') || (key >= 'a' && key <= 'z');
  if (!valid) return fail(Errc::invalid_input, "a SysRq key is one of 0-9 and a-z");
  auto running = locate_running(domain);
  if (!running) return tl::unexpected(running.error());
  return running->domid;
}

// What libxl_send_sysrq does: the guest's xenbus driver watches control/sysrq.
Result<void> XenHypervisor::write_sysrq(uint32_t domid, char key) {
  auto dom_path = store_.domain_path(domid);
  if (!dom_path) return fail(Errc::unavailable, dom_path.error().message);
  if (auto w = store_.write(*dom_path + "/control/sysrq", std::string(1, key)); !w)
    return fail(Errc::unavailable, w.error().message);
  return {};
}

// --- lifecycle ---

Result<std::vector<std::string>> XenHypervisor::toolstack_args(const Domain& d, Lifecycle action) const {
  const std::string& name = d.spec.name;
  auto found = locate(name);
  if (!found) return tl::unexpected(found.error());
  DomainState state = *found ? state_of((*found)->info) : DomainState::shut_off;
  std::string domid = *found ? std::to_string((*found)->domid) : "";
  switch (action) {
    case Lifecycle::start:
      if (state == DomainState::running) return fail(Errc::wrong_state, name + " is already running");
      if (state == DomainState::shutting_down)
        return fail(Errc::wrong_state, name + " is still shutting down");
      if (state == DomainState::crashed)
        return fail(Errc::wrong_state, name + " has crashed; destroy it before starting it again");
      return std::vector<std::string>{"create", d.spec.config_file};
    case Lifecycle::shutdown:
    case Lifecycle::reboot:
      if (state != DomainState::running)
        return fail(Errc::wrong_state, fmt::format("{} is not running ({})", name, state_name(state)));
      // -F: HVM guests without PV drivers get an ACPI event instead of an error.
      return std::vector<std::string>{std::string(lifecycle_name(action)), "-F", domid};
    case Lifecycle::destroy:
      if (!*found) return fail(Errc::wrong_state, name + " is not running (shut off)");
      return std::vector<std::string>{"destroy", domid};
  }
  return fail(Errc::invalid_input, "unknown action");
}

Result<void> XenHypervisor::finish(const std::string& name, Lifecycle action, Result<void> ran) {
  if (!ran) {
    log::warn("xen: {} {}: {}", lifecycle_name(action), name, ran.error().message);
    return fail(ran.error().code,
                fmt::format("cannot {} {}: {}", lifecycle_name(action), name, ran.error().message));
  }
  const Domain* d = find(name);
  if (action == Lifecycle::start && d) {
    auto found = locate(name);
    if (found && !*found) {
      log::error(
          "xen: `{} create {}` succeeded, but no domain named {} exists; is name=\"{}\" set in that file?",
          options_.toolstack, d->spec.config_file, name, name);
      return fail(Errc::system, fmt::format("{} did not start; the gateway's log says why", name));
    }
  }
  refresh();  // the watches would tell soon; listeners should know before the customer does
  return {};
}

// --- following domains ---

void XenHypervisor::on_watch_event() {
  bool fired = false, domains_changed = false;
  for (;;) {
    auto event = store_.next_event();
    if (!event) {
      log::error("xen: {}; domains are no longer followed", event.error().message);
      store_watch_.reset();
      names_.reset();  // no watch keeps it current any more: every lookup scans
      break;
    }
    if (!*event) break;
    log::debug("xen: watch {} fired", (*event)->path);
    fired = true;
    domains_changed = domains_changed || (*event)->path == kIntroduce || (*event)->path == kRelease;
  }
  if (fired) refresh(domains_changed);
}

void XenHypervisor::refresh(bool rescan) {
  if (rescan || !names_) {
    auto names = scan();
    if (!names) return log::warn("xen: {}", names.error().message);
    names_ = std::move(*names);
  }
  std::vector<std::string> changed, left;
  for (auto& [name, d] : domains_) {
    auto now = observe(*d);
    if (!now) {
      log::warn("xen: {}: {}", name, now.error().message);
      continue;
    }
    if (d->lock.held() && now->domid != d->lock.domid()) d->lock.release();  // that domain is gone
    if (*now == d->seen) continue;
    log::info("xen: {} is {}{}{}", name, state_name(now->state),
              now->domid ? fmt::format(", domid {}", *now->domid) : "",
              now->tty.empty() ? "" : ", console " + now->tty);
    if (left_host(*d, *now)) left.push_back(name);
    d->seen = *now;
    changed.push_back(name);
  }
  for (const auto& name : left) notify_domain_left(name);
  for (const auto& name : changed) notify_console_changed(name);
}

// `xl save` and `xl migrate` suspend the guest, take its memory, then destroy it (a migration
// renames it away first, and on the same host its name comes back on the new domid); `xl save
// -c` resumes the same domid. A poweroff, reboot or crash is never a suspend.
bool XenHypervisor::left_host(Domain& d, const Seen& now) {
  if (now.suspended) {
    d.suspended = now.domid;
    return false;
  }
  auto was = std::exchange(d.suspended, std::nullopt);
  if (!was || now.domid == was) return false;
  log::info("xen: {} (domid {}) was suspended and is gone: it left this host", d.spec.name, *was);
  return true;
}

Result<XenHypervisor::Seen> XenHypervisor::observe(Domain& d) {
  Seen seen;
  auto picked = locate(d.spec.name);
  if (!picked) return tl::unexpected(picked.error());
  auto& found = *picked;
  if (!found) {
    watch_ttys(d, {});
    return seen;
  }
  seen.domid = found->domid;
  seen.state = state_of(found->info);
  seen.suspended = suspended(found->info);
  auto paths = tty_paths(d, *found);
  watch_ttys(d, paths);
  auto tty = read_tty(paths);
  if (!tty) return tl::unexpected(tty.error());
  seen.tty = *tty;
  return seen;
}

// The tty node appears some time after the domain (xenconsoled writes it when it has noticed
// the domain), and changes if xenconsoled is restarted.
void XenHypervisor::watch_ttys(Domain& d, std::vector<std::string> paths) {
  if (paths == d.watched) return;
  for (const auto& path : d.watched)
    if (auto r = store_.unwatch(path, kToken); !r) log::debug("xen: {}", r.error().message);
  d.watched.clear();
  for (auto& path : paths) {
    if (auto r = store_.watch(path, kToken); !r) {
      log::warn("xen: {}", r.error().message);
      continue;
    }
    d.watched.push_back(std::move(path));
  }
}

// Nothing in xenstore says when an `xl console` lets go of the lock, so ask again in a while.
void XenHypervisor::retry_console_later(Domain& d) {
  if (d.retry) return;
  if (!d.lock_busy)
    log::warn("xen: the console of {} is locked by another program (xl console?); retrying every {} ms",
              d.spec.name, options_.lock_retry.count());
  d.lock_busy = true;
  d.retry = loop_.timer(options_.lock_retry, "console lock retry " + d.spec.name, [this, &d] {
    d.retry.reset();
    notify_console_changed(d.spec.name);
  });
}

}  // namespace xcg::xen
