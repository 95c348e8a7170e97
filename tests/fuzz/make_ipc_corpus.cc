// Writes the IPC seed corpus: real messages of every type, encoded by ipc::encode.
// `tests/fuzz/run.sh --seed-ipc` builds and runs it into tests/fuzz/corpus/ipc/.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gateway/ipc/ipc.h"

using namespace xcg;
using namespace xcg::gateway;
using config::Action;

namespace {

ipc::Hello hello() {
  ipc::Hello m;
  m.host_keys_pem = {
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
      "-----END OPENSSH PRIVATE KEY-----\n",
      "second"};
  m.drop_privileges = true;
  m.uid = 998;
  m.gid = 998;
  m.chroot_dir = "/run/xcg/empty";
  m.idle_timeout_s = 600;
  return m;
}

std::vector<std::pair<std::string, ipc::Message>> seeds() {
  return {
      {"hello", hello()},
      {"hello_empty", ipc::Hello{}},
      {"log", ipc::LogRecord{2, "session 1234: key accepted"}},
      {"authorize_req", ipc::AuthorizeReq{"web1", "ssh-ed25519",
                                          "AAAAC3NzaC1lZDI1NTE5AAAAICE/4M2VoKgAH0U212LYmVBUCGY+"
                                          "E5kQn3S1AR6B7JHu",
                                          true}},
      {"authorize_req_probe", ipc::AuthorizeReq{"db1", "ssh-rsa", "AAAAB3NzaC1yc2E", false}},
      {"authorize_ans",
       ipc::AuthorizeAns{true,
                         "web1",
                         false,
                         {Action::console, Action::start, Action::shutdown, Action::reboot, Action::destroy},
                         "SHA256:CKTvBVVK0HpK/jSTdSn2NK+7fs8kuiombmxuE1CCxy0"}},
      {"authorize_ans_denied", ipc::AuthorizeAns{}},
      {"status_req", ipc::StatusReq{}},
      {"status_ans", ipc::StatusAns{true, "web1: running, 1024 MiB, 2 vCPUs"}},
      {"action_req", ipc::ActionReq{Action::reboot}},
      {"action_ans", ipc::ActionAns{false, "web1 is not running"}},
      {"attach_req", ipc::AttachReq{}},
      {"attach_ans", ipc::AttachAns{true, ""}},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  int n = 0;
  for (const auto& [name, message] : seeds()) {
    std::string frame = ipc::encode(message);
    if (!ipc::decode(frame)) {
      std::fprintf(stderr, "%s: does not decode\n", name.c_str());
      return 1;
    }
    ++n;
    std::string prefix = (n < 10 ? "0" : "") + std::to_string(n) + "_";
    std::string path = std::string(argv[1]) + "/" + prefix + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "%s: cannot write\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
