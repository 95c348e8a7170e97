#include "gateway/broker/config_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/log.h"

namespace xcg::gateway {
namespace {

namespace fs = std::filesystem;

constexpr auto kDebounce = std::chrono::milliseconds(300);

// The directory to watch for an include directory that may not exist yet: its nearest
// existing ancestor. The names on the way down are the ones whose changes matter.
void add_ancestor(const fs::path& dir, std::set<std::string>& dirs, std::set<std::string>& names) {
  std::error_code ec;
  for (fs::path up = dir.parent_path(); !up.empty(); up = up.parent_path()) {
    if (fs::is_directory(up, ec)) {
      dirs.insert(up.string());
      return;
    }
    if (up.has_filename()) names.insert(up.filename().string());
    if (up == up.root_path()) return;
  }
}

}  // namespace

ConfigWatch::ConfigWatch(EventLoop& loop, std::function<void()> changed)
    : loop_(loop), changed_(std::move(changed)) {}

void ConfigWatch::follow(const config::Config& config) {
  std::set<std::string> dirs;
  watched_names_.clear();
  auto add_file = [&](const fs::path& f) {
    dirs.insert(f.parent_path().empty() ? "." : f.parent_path().string());
    watched_names_.insert(f.filename().string());
  };
  add_file(config.path);
  for (const auto& f : config.source_files) add_file(f);
  for (const auto& d : config.watch_dirs) {
    fs::path dir = fs::path(d).lexically_normal();
    if (dir.has_filename()) watched_names_.insert(dir.filename().string());
    std::error_code ec;
    if (fs::is_directory(dir, ec)) dirs.insert(dir.string());
    add_ancestor(dir, dirs, watched_names_);
  }
  watch_directories(dirs);
}

// The new watch is in place before the old one goes, and what the old one saw meanwhile still
// counts: an edit made while a reload runs (between reading the files and this call) would
// otherwise be lost until the next one.
void ConfigWatch::watch_directories(const std::set<std::string>& dirs) {
  UniqueFd fresh(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fresh) return log::warn("inotify: {}; reload with SIGHUP instead", std::strerror(errno));
  for (const auto& dir : dirs) {
    if (::inotify_add_watch(fresh.get(), dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0)
      log::warn("inotify watch {}: {}", dir, std::strerror(errno));
  }
  bool missed = inotify_ && read_events();
  watch_.reset();
  inotify_ = std::move(fresh);
  watch_ = loop_.watch(inotify_.get(), EPOLLIN, "config watch", [this](uint32_t) { on_events(); });
  if (missed) on_changed();
}

void ConfigWatch::on_events() {
  if (read_events()) on_changed();
}

void ConfigWatch::on_changed() {
  debounce_ = loop_.timer(kDebounce, "config reload", [this] { changed_(); });
}

bool ConfigWatch::read_events() {
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
  return relevant;
}

}  // namespace xcg::gateway
