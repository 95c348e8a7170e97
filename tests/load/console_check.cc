#include "tests/load/console_check.h"

#include <charconv>

#include <fmt/format.h>

namespace xcg::load {
namespace {

constexpr size_t kContextLines = 4;
constexpr size_t kMaxLine = 4096;  // longer without a line end: garbage

// The decimal number that is all of `s`, if it is one.
std::optional<uint64_t> number(std::string_view s) {
  uint64_t n = 0;
  if (s.empty() || s.size() > 19) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// The number in "PREFIXnSUFFIX", if `line` has that shape.
std::optional<uint64_t> number_between(std::string_view line, std::string_view prefix,
                                       std::string_view suffix) {
  if (!line.starts_with(prefix) || !line.ends_with(suffix) || line.size() < prefix.size() + suffix.size())
    return std::nullopt;
  return number(line.substr(prefix.size(), line.size() - prefix.size() - suffix.size()));
}

// `s` in double quotes, control bytes and non-ASCII as \xNN.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace

ConsoleCheck::ConsoleCheck(std::string domain) : domain_(std::move(domain)) {}

void ConsoleCheck::feed(std::string_view bytes) {
  while (ok() && !bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      if (partial_.size() > kMaxLine) fail(fmt::format("{} bytes without a line end", partial_.size()));
      return;
    }
    partial_.append(bytes.substr(0, nl));
    bytes.remove_prefix(nl + 1);
    std::string line = std::move(partial_);
    partial_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ++line_no_;
    current_ = line;
    take_line(line);
    recent_.push_back(std::move(line));
    if (recent_.size() > kContextLines) recent_.pop_front();
  }
}

void ConsoleCheck::take_line(std::string_view line) {
  if (phase_ == Phase::hint) {
    if (line != fmt::format("[xcg: console of {}; Ctrl-] detaches]", domain_))
      return fail("the session's hint should come first");
    phase_ = Phase::start;
    return;
  }
  std::string counted = domain_ + " ";
  if (auto k = number_between(line, counted + "halt ", "")) return on_halt(*k);
  if (auto n = number_between(line, counted, "")) return on_number(*n);
  if (auto d = number_between(line, fmt::format("[xcg: {} rebooted, new domid ", domain_), "]"))
    return on_notice(*d);
  if (auto d = number_between(line, fmt::format("[xcg: {} started, domid ", domain_), "]"))
    return on_notice(*d);
  if (auto d = number_between(line, fmt::format("Booting count guest {} (domid ", domain_), ")"))
    return on_banner(*d);
  if (auto s = number_between(line, "[xcg: ", " bytes skipped]"))
    return fail(fmt::format("the viewer fell behind and skipped {} bytes", *s));
  fail("unexpected line");
}

void ConsoleCheck::on_number(uint64_t n) {
  switch (phase_) {
    case Phase::start: first_ = n; break;
    case Phase::booted:
      if (n != 1) return fail(fmt::format("a boot's first number should be 1, got {}", n));
      break;
    case Phase::counting:
      if (n != *last_ + 1) {
        return fail(n <= *last_ ? fmt::format("after {} came {}: duplicate or reorder", *last_, n)
                                : fmt::format("after {} came {}: {} lines lost", *last_, n, n - *last_ - 1));
      }
      break;
    case Phase::halted:
    case Phase::rebooted: return fail(fmt::format("number {} between a halt and the next boot's banner", n));
    case Phase::hint: return;
  }
  if (!first_) first_ = n;
  last_ = n;
  ++numbers_seen_;
  phase_ = Phase::counting;
}

void ConsoleCheck::on_halt(uint64_t k) {
  if (phase_ == Phase::counting && k != *last_)
    return fail(fmt::format("the guest halted after {} but the last number seen was {}", k, *last_));
  if (phase_ == Phase::booted && k != 0)
    return fail(fmt::format("the guest halted after {} but no number of that boot was seen", k));
  if (phase_ == Phase::halted || phase_ == Phase::rebooted) return fail("a second halt line");
  last_ = k;
  phase_ = Phase::halted;
}

void ConsoleCheck::on_notice(uint64_t domid) {
  if (phase_ == Phase::counting || phase_ == Phase::booted)
    return fail("a reboot notice without the guest's halt line before it: the end of the old boot was lost");
  if (phase_ == Phase::rebooted) return fail("two reboot notices without a boot between them");
  if (phase_ == Phase::halted) ++reboots_;
  new_domid_ = domid;
  phase_ = Phase::rebooted;
}

void ConsoleCheck::on_banner(uint64_t domid) {
  if (phase_ == Phase::rebooted && domid != new_domid_)
    return fail(fmt::format("the notice said domid {}, the banner says {}", new_domid_, domid));
  if (phase_ != Phase::rebooted && phase_ != Phase::start)
    return fail("a boot banner without a reboot notice before it");
  last_.reset();
  phase_ = Phase::booted;
}

void ConsoleCheck::fail(std::string what) {
  std::string context;
  for (const auto& l : recent_) context += "\n    " + quoted(l);
  error_ = fmt::format("line {} {}: {}; it came after:{}", line_no_, quoted(current_), what,
                       context.empty() ? " (nothing)" : context);
}

}  // namespace xcg::load
