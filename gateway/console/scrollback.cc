#include "gateway/console/scrollback.h"

#include <algorithm>

namespace xcg::gateway {

void Scrollback::append(std::string_view bytes) {
  if (capacity_ == 0) return;
  buf_.append(bytes);
  end_ += bytes.size();
  // Trim in batches so appending stays amortised O(1).
  if (buf_.size() > capacity_ + capacity_ / 4) {
    size_t drop = buf_.size() - capacity_;
    buf_.erase(0, drop);
    begin_ += drop;
  }
}

size_t Scrollback::screen_start() const {
  size_t i = buf_.size();
  if (i > 0 && buf_[i - 1] == '\n') --i;
  for (unsigned seen = 0; i > 0; --i)
    if (buf_[i - 1] == '\n' && ++seen == kScreenLines) break;
  return i;
}

std::string Scrollback::replay(size_t limit) const {
  size_t from_boot = boot_ > begin_ ? static_cast<size_t>(boot_ - begin_) : 0;
  size_t from = std::min(from_boot, screen_start());
  size_t floor = buf_.size() > limit ? buf_.size() - limit : 0;
  if (from < floor || (from == 0 && begin_ > 0)) {
    // Cut short (by the limit or by the ring's own end): start at the next line, so the viewer
    // never sees half a line.
    from = std::max(from, floor);
    size_t nl = buf_.find('\n', from);
    from = nl == std::string::npos ? floor : nl + 1;
  }
  return buf_.substr(from);
}

}  // namespace xcg::gateway
