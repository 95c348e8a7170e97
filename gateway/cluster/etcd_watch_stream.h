// One /v3/watch stream on one etcd member, cut into its messages. EtcdWatch keeps two of them
// on two members (etcd_watch.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/cluster/curl_multi.h"
#include "gateway/cluster/etcd_json.h"

namespace xcg {

class EtcdClient;

struct WatchStreamCallbacks {
  // Each message, in order; may destroy the stream.
  std::function<void(const WatchMessage&)> on_message;
  // The stream ended, or sent what does not parse (`why`); it sends nothing more.
  std::function<void(const std::string& why)> on_failed;
};

class WatchStream {
 public:
  WatchStream(EtcdClient& client, size_t endpoint, const std::string& prefix, int64_t from_revision,
              WatchStreamCallbacks callbacks);
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;
  ~WatchStream();

  size_t endpoint() const { return endpoint_; }
  std::chrono::system_clock::time_point opened() const { return opened_; }
  // etcd has confirmed the stream: changes from now on reach it.
  bool confirmed() const { return confirmed_; }

 private:
  void on_data(std::string_view bytes);
  bool on_line(std::string_view line);
  void on_closed(const Result<HttpResponse>& outcome);

  size_t endpoint_;
  std::chrono::system_clock::time_point opened_ = std::chrono::system_clock::now();
  WatchStreamCallbacks callbacks_;
  std::string partial_;  // a message not yet ended by its newline
  bool confirmed_ = false;
  std::unique_ptr<HttpCall> call_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // callbacks may destroy us
};

}  // namespace xcg
