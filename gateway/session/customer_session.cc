#include "gateway/session/customer_session.h"

#include <fmt/format.h>

#include "base/text.h"
#include "gateway/session/login_marks.h"
#include "menu/commands.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxPendingInput = 64 * 1024;    // customer bytes not yet handled
constexpr size_t kMaxPendingOutput = 256 * 1024;  // then stop reading the console
// Reads per wake-up: a fast console fills several chunks between two polls, and each poll
// round costs more than a read.
constexpr int kReadsPerWakeup = 4;

}  // namespace

CustomerSession::CustomerSession(Terminal& terminal, BrokerClient& broker, Customer customer,
                                 unsigned idle_timeout_s)
    : terminal_(terminal), broker_(broker), customer_(std::move(customer)), idle_timeout_s_(idle_timeout_s) {}

CustomerSession::~CustomerSession() { detach_console(); }

// --- events from the customer's end ----------------------------------------------------------

bool CustomerSession::start_shell() {
  if (started_) return false;
  started_ = true;
  pending_start_ = Start::shell;
  return true;
}

bool CustomerSession::start_exec(std::string_view command) {
  if (started_) return false;
  started_ = true;
  pending_start_ = Start::exec;
  pending_command_ = std::string(command.substr(0, 4096));
  return true;
}

void CustomerSession::input(std::string_view bytes, Clock::time_point now) {
  // Keep the queue bounded: a customer pasting faster than we handle it loses the excess.
  size_t room = kMaxPendingInput - std::min(kMaxPendingInput, input_.size());
  input_.append(bytes.substr(0, room));
  last_input_ = now;
}

// The console keeps showing output after the client's input ends (`ssh gw console </dev/null`),
// and an exec command runs to its end; only the menu has nothing left to do.
void CustomerSession::input_ended() { input_ended_ = true; }

void CustomerSession::hung_up() { hung_up_ = true; }

// --- the step ---------------------------------------------------------------------------------

void CustomerSession::step(Clock::time_point now) {
  check_revoked();
  check_narrowed();
  start_pending();
  handle_input();
  if (console_) console_->send({});  // what the hub could not take before
  if (hung_up_ && !ending()) {
    detach_console();
    mode_ = Mode::over;
  }
  if (input_ended_ && mode_ == Mode::menu) finish(0);
  check_idle(now);
  flush();
  end_when_flushed();
}

void CustomerSession::start_pending() {
  Start start = std::exchange(pending_start_, Start::none);
  if (start == Start::shell) start_menu();
  if (start == Start::exec) run_exec(pending_command_);
}

void CustomerSession::handle_input() {
  if (input_.empty()) return;
  std::string bytes = std::exchange(input_, {});
  if (mode_ == Mode::menu && menu_) {
    handle_menu_request(menu_->feed(bytes));
    send_menu_output();
  } else if (mode_ == Mode::console) {
    send_to_console(bytes);
  }
}

void CustomerSession::check_idle(Clock::time_point now) {
  if (idle_timeout_s_ == 0 || mode_ == Mode::idle || ending()) return;
  if (now - last_input_ < std::chrono::seconds(idle_timeout_s_)) return;
  std::string why = fmt::format("idle for {} s; closing the session", idle_timeout_s_);
  out("\r\n[xcg: " + why + "]\r\n");
  finish(0, why);
}

void CustomerSession::check_revoked() {
  if (!broker_.revoked() || ending()) return;
  detach_console();
  std::string why = printable(*broker_.revoked());
  if (broker_.handover()) return finish(ipc::kExitMoved, why);  // the front says where it went
  out("\r\n[xcg: " + why + "]\r\n");
  finish(1, why);
}

// A reload took rights away. The broker enforces it already (and the hub told an attached
// viewer); from now on the menu no longer offers them.
void CustomerSession::check_narrowed() {
  auto narrowed = broker_.take_narrowed();
  if (!narrowed || ending()) return;
  customer_.readonly |= narrowed->readonly;
  if (narrowed->console_withdrawn) std::erase(customer_.actions, config::Action::console);
  if (!menu_) return;
  menu_.emplace(customer_.domain, customer_.actions, customer_.readonly);
  if (mode_ != Mode::menu) return;  // shown when the customer is back in the menu
  out("\r\n[xcg: " + printable(narrowed->text) + "]\r\n");
  menu_->show_status(screen_status());
  send_menu_output();
}

// --- the console -------------------------------------------------------------------------------

void CustomerSession::attach_console(bool from_menu) {
  UniqueFd socket;
  auto r = broker_.attach(socket);
  if (!r || !r->ok) {
    std::string why = r ? r->text : r.error().message;
    if (!from_menu) {
      err("xcg: " + why + "\n");
      return finish(1);
    }
    menu_->attach_failed(why, screen_status());
    return send_menu_output();
  }
  console_.emplace(std::move(socket));
  mark_login_step(LoginStep::console);
  ++console_attachments_;
  console_paused_ = false;
  mode_ = Mode::console;
  if (!menu_ || menu_->state() != menu::Menu::State::console)  // the menu prints its own hint
    out("[xcg: console of " + customer_.domain + (customer_.readonly ? ", view only" : "") +
        "; Ctrl-] detaches]\r\n");
}

void CustomerSession::detach_console() {
  console_.reset();  // the hub sees EOF and records the detach
}

void CustomerSession::send_to_console(std::string_view bytes) {
  auto scanned = menu::scan_console_input(bytes);
  // A read-only viewer's keystrokes go nowhere (the hub drops them too); Ctrl-] still detaches.
  console_->send(customer_.readonly ? std::string_view() : std::string_view(scanned.to_guest));
  if (scanned.detach) leave_console();
}

void CustomerSession::console_readable() {
  for (int reads = 0; console_ && reads < kReadsPerWakeup; ++reads) {
    if (output_.bytes() >= kMaxPendingOutput) {
      console_paused_ = true;  // the hub bounds what waits for us meanwhile
      return;
    }
    auto r = console_->read_into(output_);
    if (r == ConsoleLink::Read::drained) return;
    if (r == ConsoleLink::Read::closed) return leave_console();  // the hub went away
  }
}

std::optional<int> CustomerSession::console_to_watch() const {
  if (!console_ || console_paused_) return std::nullopt;
  return console_->fd();
}

// The console ended (Ctrl-] or the hub went away): back to the menu, or the end of an exec.
void CustomerSession::leave_console() {
  detach_console();
  if (exec_console_ || !menu_) return finish(0);
  mode_ = Mode::menu;
  menu_->console_detached(screen_status());
  send_menu_output();
}

// --- output and the end ------------------------------------------------------------------------

void CustomerSession::send_menu_output() {
  if (menu_) out(menu_->take_output());
}

void CustomerSession::flush() {
  if (mode_ == Mode::over) return;
  if (!output_.flush(terminal_)) {
    detach_console();
    mode_ = Mode::over;  // the customer is gone
    return;
  }
  if (console_paused_ && output_.bytes() < kMaxPendingOutput / 2) console_paused_ = false;
}

void CustomerSession::finish(int exit_status, std::string reason) {
  detach_console();
  mode_ = Mode::finishing;
  exit_status_ = exit_status;
  end_reason_ = std::move(reason);
}

void CustomerSession::end_when_flushed() {
  if (mode_ != Mode::finishing || !output_.empty()) return;
  terminal_.end(exit_status_, end_reason_);
  mode_ = Mode::over;
}

}  // namespace xcg::gateway
