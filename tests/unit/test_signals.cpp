// Stop signals only set a flag; the flag reaches every rank through an allreduce; a second Ctrl-C kills.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "fake_communicator.h"
#include "trainer/signals.h"

using namespace linspec::trainer;

namespace {
volatile std::sig_atomic_t previous_handler_calls = 0;
extern "C" void previous_handler(int) { previous_handler_calls = previous_handler_calls + 1; }
}  // namespace

TEST(Signals, StopSignalsSetTheFlagAndTheProcessLivesOn) {
  install_stop_handlers();
  clear_stop_request();
  EXPECT_FALSE(stop_requested());
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    std::raise(sig);
    EXPECT_TRUE(stop_requested()) << sig;
    EXPECT_EQ(stop_signal(), sig);
    clear_stop_request();
    EXPECT_FALSE(stop_requested());
  }
  uninstall_stop_handlers();
}

TEST(Signals, AnyRankAgreesThroughTheCommunicator) {
  linspec::testing::SingleRankCommunicator comm;
  install_stop_handlers();
  clear_stop_request();
  EXPECT_FALSE(any_rank_stop_requested(comm));
  std::raise(SIGTERM);
  EXPECT_TRUE(any_rank_stop_requested(comm));
  EXPECT_EQ(comm.collectives, 2);  // one allreduce per call
  uninstall_stop_handlers();
}

TEST(Signals, UninstallRestoresThePreviousHandler) {
  auto* old = std::signal(SIGUSR1, previous_handler);
  install_stop_handlers();
  std::raise(SIGUSR1);
  EXPECT_EQ(previous_handler_calls, 0);
  uninstall_stop_handlers();
  EXPECT_FALSE(stop_requested());
  std::raise(SIGUSR1);
  EXPECT_EQ(previous_handler_calls, 1);
  std::signal(SIGUSR1, old);
}

TEST(Signals, SecondInterruptKillsOneInterruptDoesNot) {
  for (int interrupts : {1, 2}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      install_stop_handlers();
      for (int i = 0; i < interrupts; ++i) std::raise(SIGINT);
      ::_exit(stop_requested() ? 0 : 3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (interrupts == 1) {
      ASSERT_TRUE(WIFEXITED(status)) << status;
      EXPECT_EQ(WEXITSTATUS(status), 0);
    } else {
      ASSERT_TRUE(WIFSIGNALED(status)) << status;
      EXPECT_EQ(WTERMSIG(status), SIGINT);
    }
  }
}
