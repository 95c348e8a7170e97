// The `web:` section: the browser console's listeners, address, TLS pair and secrets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/loader.h"
#include "config/table.h"

namespace xcg::config {

const Table<WebSettings>& web_table();

// Reads the section into config.web; false if it reported a problem.
bool read_web(Loader& in, const Field& f, Config& c);

// "unix:/ABSOLUTE/PATH": a listener for a process on this host; who may connect is up to the
// socket's directory. The path must fit a sockaddr_un.
Result<ListenAddress> parse_unix_listen(std::string_view text);

// "ADDR/PREFIX" (or a lone address: all of its bits), normalised; nullopt if malformed or
// if bits below the prefix are set.
std::optional<std::string> parse_cidr(std::string_view text);

}  // namespace xcg::config
