// Training snapshots: everything needed to continue a run exactly where it stopped.
//
// A snapshot is a native checkpoint (model/checkpoint.h: /config with the resolved YAML, /model, /tokenizer, so
// `export` and `eval` read it like any checkpoint) plus
//   /optimizer/<m|v>/<name>, /optimizer/updates   the optimizer state (AdamW::state()), attr step (step_count())
//   /trainer                                      attr state (JSON: step, tokens, world, extra) and its xxh64;
//                                                 datasets rng [world, 2] (seed, counter) and loader
//                                                 [world, 2] (epoch, cursor), one row per rank
// Every dataset carries an xxh64 so resume can tell a damaged file from a good one.
//
// Files: <dir>/snapshot-<step>.h5, written to a temporary name, fsynced and renamed; then <dir>/latest (a text
// file holding the snapshot's file name) is replaced the same way, LAST; then snapshots beyond keep-last-N are
// deleted. A crash at any point leaves every complete snapshot intact, and resume scans the directory (it does
// not trust `latest`), so a crash between the rename and the pointer update loses nothing.
//
// Distributed runs: rank 0 alone writes. All ranks call gather_trainer_state() so rank 0 holds every rank's
// RNG and loader state; with ZeRO-1 the sharded optimizer state must be gathered (Communicator::allgather) into
// full tensors on rank 0 before save_snapshot. On resume all ranks call find_resume_collective(): rank 0 picks
// and verifies the file, every rank loads that same file, and a failure reaches every rank as the same error.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "data/loader.h"
#include "model/checkpoint.h"
#include "trainer/adamw.h"
#include "trainer/comm.h"

namespace linspec::trainer {

struct RngState {
  uint64_t seed = 0, counter = 0;  // a Philox stream (core/rng.h)
  bool operator==(const RngState&) const = default;
};

struct TrainerState {
  int64_t step = 0;    // optimizer updates completed
  int64_t tokens = 0;  // training tokens consumed so far, all ranks together
  std::vector<RngState> rng_per_rank;        // one per rank, rank order
  std::vector<LoaderState> loader_per_rank;  // one per rank, rank order
  nlohmann::json extra = nlohmann::json::object();  // schedule state and anything else the loop wants back

  int world() const { return static_cast<int>(rng_per_rank.size()); }
};

struct LoadedSnapshot {
  std::string path;
  Checkpoint model;
  std::map<std::string, Tensor> optimizer_state;  // names as AdamW::state() gives them ("m/<name>", "updates")
  int64_t optimizer_step = 0;
  TrainerState trainer;
};

// Writes groups of the model part beside /model into the open snapshot file (the drafts' /draft/heads, /draft/model).
using ExtraGroupsWriter = std::function<void(H5Handle file)>;

// "snapshot-<step>.h5"
std::string snapshot_file_name(int64_t step);
// The step in a snapshot file name, or nullopt for any other name.
std::optional<int64_t> snapshot_step_from_name(const std::string& file_name);

// Writes <dir>/snapshot-<step>.h5 (creating dir), points <dir>/latest at it, then deletes all but the newest
// `keep_last` snapshots (keep_last <= 0 keeps all; the one just written is always kept). Leftover temporary
// files of an earlier crash are removed first. Rank 0 only. Returns the snapshot's path. `extra_groups`, when set,
// writes more of the model part into the same file.
std::string save_snapshot(const std::string& dir, int64_t step, const Checkpoint& model_part,
                          const std::map<std::string, Tensor>& optimizer_state, int64_t optimizer_step,
                          const TrainerState& trainer, int keep_last, const ExtraGroupsWriter& extra_groups = {});

// Reads and verifies (every checksum) one snapshot. InputError naming the file, and the tensor or key, when it is
// missing, not a snapshot, inconsistent or corrupt.
LoadedSnapshot load_snapshot(const std::string& path);

// spec "auto": the newest snapshot in `dir` (by step) that loads and verifies; each one that does not is
// reported on `warn` (file and tensor named) and skipped; nullopt when `dir` holds no snapshot at all;
// InputError when it holds some but none is valid. Leftover temporary files are removed (and reported).
// Any other spec is a snapshot path, loaded as load_snapshot() does (corrupt → InputError).
std::optional<LoadedSnapshot> find_resume(const std::string& dir, const std::string& spec, std::ostream& warn);

// Paths of the complete snapshots in `dir`, oldest step first.
std::vector<std::string> list_snapshots(const std::string& dir);
// The file name `latest` points at ("" when there is no pointer).
std::string read_latest_pointer(const std::string& dir);
// A training directory (holding a `latest` pointer) or the pointer file itself, as the path of the snapshot it
// names; any other path unchanged. A pointer naming a missing file → InputError naming the pointer.
std::string resolve_latest_pointer(const std::string& path);

// ---- collective helpers (every rank calls them at the same point) ----

// Every rank passes its own RNG and loader state; every rank gets back all ranks' states in rank order.
TrainerState gather_trainer_state(Communicator& comm, int64_t step, int64_t tokens, const RngState& my_rng,
                                  const LoaderState& my_loader, const nlohmann::json& extra = nlohmann::json::object());

// find_resume() on rank 0 (warnings go to rank 0's `warn`), then every rank loads the chosen file. Errors on
// rank 0 are rethrown as the same InputError on every rank.
std::optional<LoadedSnapshot> find_resume_collective(Communicator& comm, const std::string& dir,
                                                     const std::string& spec, std::ostream& warn);

// This rank's RNG and loader state from a snapshot; InputError when it was written by a different world size.
RngState rank_rng_state(const LoadedSnapshot& snap, int rank, int world);
LoaderState rank_loader_state(const LoadedSnapshot& snap, int rank, int world);

// Conversions between AdamW's state() list and the name → tensor map kept in snapshots.
std::map<std::string, Tensor> to_tensor_map(const std::vector<NamedTensor>& named);
std::vector<NamedTensor> to_named_tensors(const std::map<std::string, Tensor>& tensors);

}  // namespace linspec::trainer
