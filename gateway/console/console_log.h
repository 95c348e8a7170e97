// The persistent per-domain console log: every byte the guest prints, written by the broker
// whether or not anyone is attached, rotated by size so the newest data is always kept.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg::gateway {

class ConsoleLog {
 public:
  // `path` is "<log_dir>/<domain>.log"; past `max_bytes` it is renamed to "<path>.1" (replacing
  // the previous one) and a new file is started. An empty path disables the log.
  ConsoleLog(std::string path, size_t max_bytes);

  // Appends; on failure logs once and keeps trying on later writes (the disk may come back).
  void append(std::string_view bytes);
  // The last `lines` lines across "<path>.1" and "<path>", at most `max_bytes` of them.
  Result<std::string> tail(unsigned lines, size_t max_bytes) const;

  const std::string& path() const { return path_; }

 private:
  bool open_file();
  void rotate();

  std::string path_;
  size_t max_bytes_;
  UniqueFd fd_;
  size_t size_ = 0;
  bool failing_ = false;
};

}  // namespace xcg::gateway
