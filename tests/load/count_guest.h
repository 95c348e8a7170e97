// A guest for the simulated hypervisor (config `sim: guest_command`) that prints numbered lines
// at a steady rate, so that a viewer can tell exactly which console output it lost, doubled or
// reordered. Its output, in CR LF lines:
//
//   Booting count guest DOMAIN (domid N)     once, first
//   DOMAIN 1, DOMAIN 2, ...                  RATE lines per second, forever
//   DOMAIN halt K                            on SIGTERM (shutdown or reboot): K is the last number
//                                            printed; then it exits 0. With a halt burst of B, the
//                                            B numbers after the last are printed at once first,
//                                            as a kernel's last messages are.
//
// DOMAIN and N come from the sim's XCG_DOMAIN and XCG_DOMID. Input is read and discarded.
#pragma once

#include <cstdint>

namespace xcg::load {

// Runs until SIGTERM; returns the exit status.
int run_count_guest(double lines_per_second, uint64_t halt_burst = 0);

}  // namespace xcg::load
