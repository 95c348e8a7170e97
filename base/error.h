// Errors as values for runtime module boundaries (start-up code throws instead).
#pragma once

#include <string>
#include <type_traits>

#include <tl/expected.hpp>

namespace xcg {

enum class Errc {
  system,         // a system call failed; sys_errno says why
  not_found,      // no such domain, file, ...
  wrong_state,    // e.g. starting a running domain
  not_allowed,    // the operator did not grant this action
  invalid_input,  // malformed message, bad argument
  timeout,
  unavailable,  // hypervisor or toolstack not reachable
  peer_closed,  // the other end of a socket closed it
};

struct Error {
  Errc code = Errc::system;
  std::string message;  // one line, fit to show a customer
  int sys_errno = 0;

  static Error from_errno(std::string what, int err);
  static Error from_errno(std::string what);  // uses the current errno
};

// tl::expected<T, Error> that a caller cannot silently ignore (-Wunused-result): an error
// dropped on the floor is a failure nobody hears of.
template <class T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using tl::expected<T, Error>::expected;
  Result(tl::expected<T, Error> e) : tl::expected<T, Error>(std::move(e)) {}  // what map() returns
};

inline tl::unexpected<Error> fail(Errc code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message), 0});
}

inline tl::unexpected<Error> fail_errno(std::string what) {
  return tl::unexpected<Error>(Error::from_errno(std::move(what)));
}

}  // namespace xcg

// Lets and_then() take callbacks that return a Result.
template <class T>
struct tl::detail::is_expected_impl<xcg::Result<T>> : std::true_type {};
