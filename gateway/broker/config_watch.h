// Watches the config's files for changes, so that an edit reloads the config without a
// SIGHUP. Directories are watched, not files: editors replace files by renaming over them,
// and provisioning swaps whole include directories the same way. For an include directory
// its parent (or nearest existing ancestor) is watched too, so creating, deleting or renaming
// the directory itself is seen.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "config/config.h"

namespace xcg::gateway {

class ConfigWatch {
 public:
  // `changed` runs once a burst of changes has settled (editors write, then rename).
  ConfigWatch(EventLoop& loop, std::function<void()> changed);
  // Watches what `config` was read from; again after every reload, since `include:` may change.
  void follow(const config::Config& config);

 private:
  void watch_directories(const std::set<std::string>& dirs);
  void on_events();
  void on_changed();   // (re)starts the settle timer
  bool read_events();  // whether one of them concerns the config

  EventLoop& loop_;
  std::function<void()> changed_;
  UniqueFd inotify_;
  EventLoop::Watch watch_;
  std::set<std::string> watched_names_;  // file and directory names whose changes mean reload
  EventLoop::Timer debounce_;
};

}  // namespace xcg::gateway
