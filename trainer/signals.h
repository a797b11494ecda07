// Graceful stop: SIGTERM (Slurm, mpirun, kill), SIGINT (Ctrl-C) and SIGUSR1 (`sbatch --signal=USR1@secs`) only
// set a flag. The training loop checks it after each step (all ranks together, any_rank_stop_requested), writes
// a snapshot and exits 0. A second SIGINT while a stop is already pending kills the process at once, for a user
// who does not want to wait for the snapshot.
#pragma once
#include "trainer/comm.h"

namespace linspec::trainer {

// Installs the handlers (idempotent). SA_RESTART, so system calls in progress are not cut short.
void install_stop_handlers();
// Restores the handlers that were in place before install_stop_handlers (and clears the flag).
void uninstall_stop_handlers();

// True once a stop signal arrived (in this process).
bool stop_requested();
// The signal that asked to stop (0 when none).
int stop_signal();
// Forgets a pending request (tests; a loop that chose to ignore it).
void clear_stop_request();

// Collective: true on every rank when a stop was requested on any rank. Every rank must call it at the same
// point of every step, or the collectives of the ranks no longer pair up.
bool any_rank_stop_requested(Communicator& comm);

}  // namespace linspec::trainer
