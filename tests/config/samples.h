// What the config tests share: keys made by `ssh-keygen` (public_key_test.cc checks their
// fingerprints), and the problems a config text has.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace xcg::config::samples {

inline const std::string kAlice =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICE/4M2VoKgAH0U212LYmVBUCGY+E5kQn3S1AR6B7JHu alice@laptop";
inline const std::string kAliceFingerprint = "SHA256:CKTvBVVK0HpK/jSTdSn2NK+7fs8kuiombmxuE1CCxy0";
inline const std::string kBob =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJiUNEhG2FBdmlyfNUS96Rjr"
    "bQCscnF7YgFYll9rVI8MaMB1+0zY/pzyVx4NqRAeHtBfAB1sqMJo/hgFVZnKF78= bob@ecdsa256";
inline const std::string kBobFingerprint = "SHA256:URxX0N5O8/+NFtFlihdzf7HYEyta1Dm01fcQUpxhSO4";

// Every problem of a config text as "FILE:LINE:COLUMN: message" (the file is t.yaml); empty
// if the text is valid.
inline std::vector<std::string> problems(const std::string& text) {
  try {
    parse_config(text, "t.yaml");
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const auto& p : e.problems()) out.push_back(p.str());
    return out;
  }
  return {};
}

}  // namespace xcg::config::samples
