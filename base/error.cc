#include "base/error.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace xcg {

Error Error::from_errno(std::string what, int err) {
  return Error{Errc::system, std::move(what) + ": " + std::strerror(err), err};
}

Error Error::from_errno(std::string what) { return from_errno(std::move(what), errno); }

}  // namespace xcg
