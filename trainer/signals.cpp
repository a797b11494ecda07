#include "trainer/signals.h"

#include <csignal>

namespace linspec::trainer {

namespace {

// Written only by the handler (and by clear_stop_request outside of any handler); sig_atomic_t keeps
// the handler async-signal-safe.
volatile std::sig_atomic_t pending_signal = 0;

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGUSR1};
struct sigaction previous[3];
bool installed = false;

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && pending_signal != 0) {
    // Second Ctrl-C: stop waiting for the snapshot. signal() and raise() are async-signal-safe.
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  pending_signal = sig;
}

}  // namespace

void install_stop_handlers() {
  if (installed) return;
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &sa, &previous[i]);
  installed = true;
}

void uninstall_stop_handlers() {
  if (!installed) return;
  for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &previous[i], nullptr);
  installed = false;
  pending_signal = 0;
}

bool stop_requested() { return pending_signal != 0; }
int stop_signal() { return pending_signal; }
void clear_stop_request() { pending_signal = 0; }

bool any_rank_stop_requested(Communicator& comm) {
  double requested = stop_requested() ? 1.0 : 0.0;
  comm.allreduce_sum(&requested, 1);
  return requested > 0;
}

}  // namespace linspec::trainer
