// A move-only owner of a file descriptor.
#pragma once

#include <utility>

namespace xcg {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(fd_, -1); }
  // Errors from close() are ignored on purpose: the descriptor is gone either way.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// Sets O_NONBLOCK; returns false (errno set) on failure.
bool set_nonblocking(int fd) noexcept;

}  // namespace xcg
