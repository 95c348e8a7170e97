// Command-line options shared by the load generator's modes, and the targets they reach.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/conn.h"
#include "tests/load/ssh_client/handles.h"

namespace xcg::bench {

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string keys_dir;  // <dir>/<domain>: the private key of that domain's customer
  std::string user;      // the SSH user; empty: the domain name (xcg)
  std::string prefix = "vm";
  unsigned first = 1;  // domains prefix+first .. prefix+(first+count-1)
  unsigned count = 1;
  unsigned logins = 50;       // latency
  double duration_s = 30;     // rate
  unsigned concurrency = 16;  // rate, hold: logins in flight
  unsigned threads = 1;       // rate
  unsigned keystrokes = 500;  // echo
  uint64_t seq = 1000000;     // throughput: the guest runs `seq N`
  unsigned timeout_s = 20;    // per login or per wait
};

struct Targets {
  std::vector<Target> list;
  std::vector<ssh_client::Key> keys;  // what the targets' keys point to
};

// Loads <keys_dir>/<domain> for each domain of the range; throws on a missing key.
std::unique_ptr<Targets> load_targets(const Options& o);

// A string no earlier run or login has typed: "Z" + per-process nonce + counter.
std::string make_token();

int run_latency(const Options& o);
int run_rate(const Options& o);
int run_echo(const Options& o);
int run_throughput(const Options& o);
int run_hold(const Options& o);
int run_web_echo(const Options& o);  // web.cc
int run_web_hold(const Options& o);

}  // namespace xcg::bench
