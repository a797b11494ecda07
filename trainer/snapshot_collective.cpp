// The multi-rank side of snapshots: gathering per-rank state for rank 0 to write, and agreeing on the file to
// resume from. Only Communicator::broadcast and allreduce are used, so it works for any backend.
#include <cstring>
#include <exception>
#include <stdexcept>

#include "core/error.h"
#include "trainer/snapshot.h"

namespace linspec::trainer {

namespace {

void broadcast_string(Communicator& comm, std::string& s, int root) {
  uint64_t size = s.size();
  comm.broadcast(&size, sizeof size, root);
  s.resize(static_cast<size_t>(size));
  if (size > 0) comm.broadcast(s.data(), s.size(), root);
}

// What rank 0 found, as every rank learns it.
enum class Outcome : int64_t { kNone = 0, kFound = 1, kInputError = 2, kOtherError = 3 };

}  // namespace

TrainerState gather_trainer_state(Communicator& comm, int64_t step, int64_t tokens, const RngState& my_rng,
                                  const LoaderState& my_loader, const nlohmann::json& extra) {
  const int world = comm.world();
  // Four u64 per rank: seed, counter, epoch, cursor. Each rank broadcasts its own row.
  std::vector<uint64_t> rows(static_cast<size_t>(world) * 4, 0);
  uint64_t* mine = rows.data() + 4 * static_cast<size_t>(comm.rank());
  mine[0] = my_rng.seed, mine[1] = my_rng.counter, mine[2] = my_loader.epoch, mine[3] = my_loader.cursor;
  for (int r = 0; r < world; ++r) comm.broadcast(rows.data() + 4 * static_cast<size_t>(r), 4 * sizeof(uint64_t), r);

  TrainerState st;
  st.step = step;
  st.tokens = tokens;
  st.extra = extra;
  for (int r = 0; r < world; ++r) {
    const uint64_t* row = rows.data() + 4 * static_cast<size_t>(r);
    st.rng_per_rank.push_back({row[0], row[1]});
    st.loader_per_rank.push_back({row[2], row[3]});
  }
  return st;
}

std::optional<LoadedSnapshot> find_resume_collective(Communicator& comm, const std::string& dir,
                                                     const std::string& spec, std::ostream& warn) {
  std::optional<LoadedSnapshot> found;
  Outcome outcome = Outcome::kNone;
  std::string text;  // the chosen path, or the error message
  std::exception_ptr root_error;
  if (comm.rank() == 0) {
    try {
      found = find_resume(dir, spec, warn);
      if (found) outcome = Outcome::kFound, text = found->path;
    } catch (const InputError& e) {
      outcome = Outcome::kInputError, text = e.what(), root_error = std::current_exception();
    } catch (const std::exception& e) {
      outcome = Outcome::kOtherError, text = e.what(), root_error = std::current_exception();
    }
  }
  comm.broadcast(&outcome, sizeof outcome, 0);
  broadcast_string(comm, text, 0);
  if (root_error) std::rethrow_exception(root_error);
  if (outcome == Outcome::kInputError) throw InputError(text);
  if (outcome == Outcome::kOtherError) throw std::runtime_error("rank 0 failed to find a snapshot: " + text);
  if (outcome == Outcome::kNone) return std::nullopt;

  // Every other rank reads the same file; all must succeed (e.g. a checkpoint dir not shared between nodes
  // fails here), or all stop with an error instead of some waiting forever in the next collective.
  std::string my_error;
  if (comm.rank() != 0) {
    try {
      found = load_snapshot(text);
    } catch (const std::exception& e) {
      my_error = e.what();
    }
  }
  double failures = my_error.empty() ? 0.0 : 1.0;
  comm.allreduce_sum(&failures, 1);
  if (!my_error.empty()) throw InputError("rank " + std::to_string(comm.rank()) + ": " + my_error);
  if (failures > 0)
    throw_input_error(text, ": another rank could not load this snapshot (is checkpoint.dir on a file system every "
                            "node shares?)");
  return found;
}

}  // namespace linspec::trainer
