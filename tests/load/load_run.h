// The load run (docs in main.cc): persistent viewers across many domains, a stream of short
// logins, one reboot, and a check of everything every viewer received.
#pragma once

#include <string>
#include <vector>

namespace xcg::load {

struct LoadSettings {
  int port = 0;
  std::string key_dir;               // a private key file per domain, named like the domain
  std::vector<std::string> domains;  // each runs the count guest
  unsigned viewers = 200;            // attached from the ramp to the end, spread over the domains
  double churn_per_second = 20;      // short logins: exec status, and short console attaches
  double duration_s = 60;
  double ramp_s = 10;         // the viewers attach at evenly spread moments in this time
  std::string reboot_domain;  // "" = no reboot
  double reboot_at_s = 30;
  unsigned threads = 2;
  double login_timeout_s = 30;       // from connect to the command running, under load
  double drain_timeout_s = 30;       // for every viewer to reach the live head at the end
  unsigned brief_attach_lines = 20;  // a short attach reads at least this many numbers
  unsigned max_logging_in = 40;      // logins in their handshake at once; more wait their turn
};

// Returns 0 if every session behaved, 1 if not (each failure is printed).
int run_load(const LoadSettings& settings);

}  // namespace xcg::load
