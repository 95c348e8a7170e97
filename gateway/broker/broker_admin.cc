// The operator's side of the broker: reloading the config (SIGHUP, file changes, `xcg ctl
// reload`), ending the sessions whose keys were removed, and the control socket's commands.
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sd_notify.h"
#include "base/text.h"
#include "gateway/broker/broker.h"

namespace xcg::gateway {
namespace {

constexpr auto kReloadDebounce = std::chrono::milliseconds(300);  // editors write, then rename

// What the hypervisor was told about a domain at start-up or when it was added.
std::vector<std::string> hypervisor_fields_changed(const config::Domain& a, const config::Domain& b,
                                                   config::HypervisorKind kind) {
  std::vector<std::string> changed;
  if (kind == config::HypervisorKind::sim) {
    if (a.memory_mib != b.memory_mib) changed.push_back("memory");
    if (a.vcpus != b.vcpus) changed.push_back("vcpus");
  } else {
    if (a.config_file != b.config_file) changed.push_back("config_file");
    if (a.xen_console != b.xen_console) changed.push_back("console");
  }
  return changed;
}

// Settings that are read once at start-up; a reload keeps the running values and says so.
std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b) {
  std::vector<std::string> changed;
  auto listen_text = [](const config::Config& c) {
    std::string t;
    for (const auto& l : c.listen) t += l.text + " ";
    return t;
  };
  if (listen_text(a) != listen_text(b)) changed.push_back("listen");
  if (a.host_keys != b.host_keys) changed.push_back("host_keys");
  if (a.hypervisor != b.hypervisor) changed.push_back("hypervisor");
  if (a.audit_log != b.audit_log) changed.push_back("audit_log");
  if (a.run_as != b.run_as) changed.push_back("run_as");
  if (a.chroot_dir != b.chroot_dir) changed.push_back("chroot_dir");
  // Hubs keep the settings they were made with; only domains added from now on get new ones.
  if (std::tie(a.console.scrollback_bytes, a.console.replay_bytes, a.console.log_dir, a.console.log_max_bytes) !=
      std::tie(b.console.scrollback_bytes, b.console.replay_bytes, b.console.log_dir, b.console.log_max_bytes))
    changed.push_back("console");
  // The backend's own settings; `a` is what runs (a changed `hypervisor` is reported above).
  if (a.hypervisor == config::HypervisorKind::sim &&
      std::tie(a.sim.guest_command, a.sim.autostart, a.sim.shutdown_grace_ms) !=
          std::tie(b.sim.guest_command, b.sim.autostart, b.sim.shutdown_grace_ms))
    changed.push_back("sim");
  if (a.hypervisor == config::HypervisorKind::xen &&
      std::tie(a.xen.toolstack, a.xen.timeout_s, a.xen.lock_dir) !=
          std::tie(b.xen.toolstack, b.xen.timeout_s, b.xen.lock_dir))
    changed.push_back("xen");
  for (const auto& [name, d] : b.domains) {
    auto before = a.domains.find(name);
    if (before == a.domains.end()) continue;  // new: added as it is
    for (const auto& field : hypervisor_fields_changed(before->second, d, a.hypervisor))
      changed.push_back(fmt::format("domain {} {}", name, field));
  }
  return changed;
}

// "added domain web3", "added domains web3, web4"
std::string named_domains(std::string_view done, const std::vector<std::string>& names) {
  std::string text = fmt::format("{} domain{} ", done, names.size() == 1 ? "" : "s");
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text;
}

}  // namespace

Broker::ReloadResult Broker::reload(std::string_view trigger) {
  (void)sd_notify::reloading();  // best effort, like every sd_notify call
  auto result = apply_config(trigger);
  // Rebuilt even when the config was refused: a directory may have been created or replaced.
  if (options_.watch_config) watch_config_files();
  (void)sd_notify::ready(sd_notify::one_line(result.text));
  return result;
}

Broker::ReloadResult Broker::apply_config(std::string_view trigger) {
  std::shared_ptr<const config::Config> fresh;
  try {
    fresh = config::load_config(config_->path);
  } catch (const config::ConfigError& e) {
    log::error("reload ({}): {} is not valid; still running the previous config:", trigger, config_->path);
    for (const auto& p : e.problems()) log::error("  {}", p.str());
    return {false, e.what()};
  } catch (const std::exception& e) {
    log::error("reload ({}): {}; still running the previous config", trigger, e.what());
    return {false, e.what()};
  }
  auto restart_only = restart_only_changes(*config_, *fresh);
  config_ = fresh;
  take_session_limits();

  unsigned revoked = 0;
  for (auto& [id, s] : sessions_) {
    if (s.phase != Phase::authorized || s.revoked) continue;
    const config::Domain* d = config_->domain_for_key(s.key_blob);
    if (d == nullptr || d->name != s.domain) {
      revoke(s, fmt::format("access to {} was revoked", s.domain));
      ++revoked;
      continue;
    }
    narrow_rights(s, *d);
  }
  std::string text = fmt::format("reloaded {} ({}): {} domains, {} sessions ended", config_->path, trigger,
                                 config_->domains.size(), revoked);
  text += apply_domain_changes();
  for (const auto& c : restart_only) text += fmt::format("; {} changed: restart xcg to apply it", c);
  log::info("{}", text);
  return {true, text};
}

// Serves the config's domains: those new in it are added, those gone from it removed (after
// their sessions were revoked). Compared with what is served rather than with the previous
// config, so that a domain whose adding failed is tried again on the next reload. Returns
// what was done, as "; ..." parts of the reload's result.
std::string Broker::apply_domain_changes() {
  std::vector<std::string> names = hypervisor_->domains();
  std::set<std::string> served(names.begin(), names.end());
  std::vector<std::string> added, removed;
  std::string failures;
  for (const auto& name : served) {
    if (config_->domains.contains(name)) continue;
    remove_domain(name);
    removed.push_back(name);
  }
  for (const auto& [name, d] : config_->domains) {
    if (served.contains(name)) continue;
    if (auto r = add_domain(d); !r) {
      log::error("reload: cannot add domain {}: {}", name, r.error().message);
      failures += fmt::format("; cannot add domain {}: {}", name, r.error().message);
      continue;
    }
    added.push_back(name);
  }
  std::string text;
  if (!added.empty()) text += "; " + named_domains("added", added);
  if (!removed.empty()) text += "; " + named_domains("removed", removed);
  return text + failures;
}

// Rights a reload takes away apply at once, also to a console already attached: a key made
// read-only stops typing, a domain without `console` loses its viewers (the session and its
// menu stay). Rights a reload adds apply from the next login (docs/operators.md): the session
// was told at login what it may do and keeps to it.
void Broker::narrow_rights(Session& s, const config::Domain& d) {
  auto hub = hubs_.find(s.domain);
  if (!d.allows(config::Action::console) && hub != hubs_.end() &&
      hub->second->detach_session(s.id, fmt::format("console access to {} was withdrawn; detached", s.domain)) > 0)
    audit(s, "rights_narrowed", {{"change", "console withdrawn"}});
  const config::DomainKey* key = d.key_for(s.key_blob);
  if (s.readonly || key == nullptr || !key->readonly) return;
  s.readonly = true;
  if (hub != hubs_.end())
    hub->second->make_readonly(s.id, fmt::format("your access to {} is now read-only", s.domain));
  audit(s, "rights_narrowed", {{"change", "read-only"}});
}

void Broker::revoke(Session& s, const std::string& text) {
  s.revoked = true;
  audit(s, "session_revoked", {{"reason", text}});
  if (s.ipc) (void)ipc::send(s.ipc.get(), ipc::Revoke{text});  // best effort: the kill follows
  pid_t pid = s.pid;
  uint64_t id = s.id;
  loop_.add_timer(kRevokeGrace, fmt::format("session {} revocation", id), [this, id, pid] {
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second.pid == pid) ::kill(pid, SIGKILL);
  });
}

// --- control socket -------------------------------------------------------------------------

std::string Broker::handle_control(const std::string& request) {
  std::string cmd = request.substr(0, request.find(' '));
  std::string arg = request.size() > cmd.size() ? request.substr(cmd.size() + 1) : "";
  if (cmd == "sessions" && arg.empty()) return list_sessions();
  if (cmd == "status" && arg.empty()) return status_report();
  if (cmd == "kick" && !arg.empty()) return kick(arg);
  if (cmd == "reload" && arg.empty()) {
    auto r = reload("xcg ctl reload");
    return r.ok ? r.text : "error: config not applied; the previous one keeps running:\n" + r.text;
  }
  return "error: unknown request; use sessions, status, kick DOMAIN|SESSION, reload";
}

std::string Broker::list_sessions() const {
  std::string out = "ID     PID      DOMAIN           REMOTE                   SINCE                 KEY\n";
  for (const auto& [id, s] : sessions_) {
    std::string domain = s.phase == Phase::authorized ? s.domain : "(logging in)";
    out += fmt::format("{:<6} {:<8} {:<16} {:<24} {:<21} {}{}\n", id, s.pid, domain, s.remote,
                       utc_timestamp(s.since), s.key_label, s.readonly ? " (read-only)" : "");
  }
  return out;
}

std::string Broker::status_report() const {
  unsigned authorized = 0;
  for (const auto& [id, s] : sessions_) authorized += s.phase == Phase::authorized;
  std::string out = fmt::format("xcg serving {} since {}\nsessions: {} logged in, {} logging in\n",
                                config_->path, utc_timestamp(started_), authorized, preauth_count_);
  for (const auto& name : hypervisor_->domains()) {
    auto st = hypervisor_->status(name);
    auto hub = hubs_.find(name);
    size_t viewers = hub == hubs_.end() ? 0 : hub->second->viewer_count();
    out += fmt::format("{}; {} viewers\n", st ? xen::format_status(*st) : name + ": " + st.error().message,
                       viewers);
  }
  return out;
}

std::string Broker::kick(const std::string& target) {
  unsigned n = 0;
  bool numeric = !target.empty() && std::all_of(target.begin(), target.end(), ::isdigit);
  for (auto& [id, s] : sessions_) {
    bool match = numeric ? std::to_string(id) == target : (s.phase == Phase::authorized && s.domain == target);
    if (!match || s.revoked) continue;
    if (s.phase == Phase::authorized) {
      revoke(s, "disconnected by the operator");
    } else {
      ::kill(s.pid, SIGKILL);
    }
    ++n;
  }
  if (n == 0) return fmt::format("error: no session matches '{}'", target);
  return fmt::format("ended {} session{}", n, n == 1 ? "" : "s");
}

// --- watching the config files ----------------------------------------------------------------

// Watches directories, not files: editors replace files by renaming over them, and provisioning
// swaps whole include directories the same way. For an include directory we also watch its
// parent (or its nearest existing ancestor), so creating, deleting or renaming the directory
// itself is seen. The set is rebuilt after every applied reload, since `include:` may change.
void Broker::watch_config_files() {
  if (inotify_) loop_.remove(inotify_.get());
  inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_) return log::warn("inotify: {}; reload with SIGHUP instead", std::strerror(errno));
  namespace fs = std::filesystem;
  std::set<std::string> dirs;
  watched_names_.clear();
  auto add_file = [&](const fs::path& f) {
    dirs.insert(f.parent_path().empty() ? "." : f.parent_path().string());
    watched_names_.insert(f.filename().string());
  };
  add_file(config_->path);
  for (const auto& f : config_->source_files) add_file(f);
  for (const auto& d : config_->watch_dirs) {
    fs::path dir = fs::path(d).lexically_normal();
    if (dir.has_filename()) watched_names_.insert(dir.filename().string());
    std::error_code ec;
    if (fs::is_directory(dir, ec)) dirs.insert(dir.string());
    for (fs::path up = dir.parent_path(); !up.empty(); up = up.parent_path()) {
      if (fs::is_directory(up, ec)) {
        dirs.insert(up.string());
        break;
      }
      if (up.has_filename()) watched_names_.insert(up.filename().string());
      if (up == up.root_path()) break;
    }
  }
  for (const auto& dir : dirs) {
    if (::inotify_add_watch(inotify_.get(), dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0)
      log::warn("inotify watch {}: {}", dir, std::strerror(errno));
  }
  loop_.add(inotify_.get(), EPOLLIN, "config watch", [this](uint32_t) { on_config_change(); });
}

void Broker::on_config_change() {
  alignas(inotify_event) char buf[4096];
  bool relevant = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      std::string name = ev->len ? ev->name : "";
      // YAML files, the files and directories the config names; editors' swap and backup
      // files are ignored.
      if (name.ends_with(".yaml") || name.ends_with(".yml") || watched_names_.contains(name)) relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (!relevant) return;
  if (reload_timer_) loop_.cancel_timer(reload_timer_);
  reload_timer_ = loop_.add_timer(kReloadDebounce, "config reload", [this] {
    reload_timer_ = 0;
    reload("config file changed");
  });
}

}  // namespace xcg::gateway
