// A domain's recent console output, for replay to viewers who attach later.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace xcg::gateway {

class Scrollback {
 public:
  static constexpr unsigned kScreenLines = 24;

  explicit Scrollback(size_t capacity) : capacity_(capacity) {}

  void append(std::string_view bytes);
  // The next byte appended starts a new boot of the domain.
  void mark_boot() { boot_ = end_; }
  // What a new viewer sees first: the current boot's output, or at least the last screenful,
  // at most `limit` bytes; when cut short it starts at a line boundary.
  std::string replay(size_t limit) const;

  size_t size() const { return buf_.size(); }

 private:
  size_t screen_start() const;  // index in buf_ where the last kScreenLines lines begin

  size_t capacity_;
  std::string buf_;     // the last `capacity_` bytes (up to a quarter more before trimming)
  uint64_t begin_ = 0;  // stream offset of buf_[0]
  uint64_t end_ = 0;    // stream offset just past the last byte
  uint64_t boot_ = 0;   // stream offset where the current boot began
};

}  // namespace xcg::gateway
