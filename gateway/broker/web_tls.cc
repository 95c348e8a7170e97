#include "gateway/broker/web_tls.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace xcg::gateway {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the web TLS file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

// A first cut: reads the pair as it is; making one and checking it come next.
WebTls load_or_make_web_tls(const config::WebSettings& web) {
  return WebTls{read_file(web.tls_cert), read_file(web.tls_key), ""};
}

}  // namespace xcg::gateway

namespace xcg::gateway {

// Until the checks of its owner and mode land (webconfig), the bytes as they are.
std::string load_panel_secret(const std::string& path) { return read_file(path); }

}  // namespace xcg::gateway
