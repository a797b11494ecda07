// Snapshots: exact round trip (and an interrupted AdamW run that continues bit-identically), the `latest`
// pointer written last, keep-last-N, damaged files detected, named and skipped, leftovers of a crash ignored
// and cleaned, a process killed with SIGKILL mid-write, and the collective helpers on one rank.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "fake_communicator.h"
#include "llama_test_util.h"
#include "trainer/adamw.h"
#include "trainer/comm.h"
#include "trainer/snapshot.h"

using namespace linspec;
using namespace linspec::trainer;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("linspec_snapshot_" + std::to_string(::getpid()) + "_" + std::to_string(next_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int next_ = 0;
};

const std::vector<std::string> kParamNames = {"layers.0.self_attn.q_proj.weight", "norm.weight"};
const std::vector<Shape> kParamShapes = {{5, 7}, {7}};

// Gradients drawn from the run's RNG stream, so resuming must restore the stream exactly.
void train(std::vector<Tensor>& params, AdamW& opt, Philox& rng, int from_step, int to_step) {
  for (int step = from_step; step < to_step; ++step) {
    for (auto& p : params) {
      std::vector<float> g(static_cast<size_t>(p.numel()));
      for (auto& x : g) x = static_cast<float>(rng.normal());
      p.zero_grad();
      accumulate_grad(p, Tensor::from_vector(g, p.shape()));
    }
    opt.step(1e-2 * (1 + step));  // a schedule that is a function of the step
  }
}

std::vector<Tensor> initial_params(uint64_t seed) {
  Philox rng(seed);
  std::vector<Tensor> params;
  for (const auto& shape : kParamShapes) {
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (auto& x : v) x = static_cast<float>(rng.normal());
    params.push_back(Tensor::from_vector(v, shape));
    params.back().set_requires_grad(true);
  }
  return params;
}

std::unique_ptr<AdamW> make_optimizer(const std::vector<Tensor>& params) {
  ParamGroup decayed{{params[0]}, 0.1, 1.0, {kParamNames[0]}};
  ParamGroup plain{{params[1]}, 0.0, 1.0, {kParamNames[1]}};
  return std::make_unique<AdamW>(std::vector<ParamGroup>{decayed, plain}, AdamWConfig{});
}

Checkpoint model_part(const std::vector<Tensor>& params) {
  Checkpoint ck;
  ck.config = linspec::testing::tiny_llama_config();
  for (size_t i = 0; i < params.size(); ++i) ck.tensors[kParamNames[i]] = params[i].clone();
  std::vector<float> emb(6 * 4);
  for (size_t i = 0; i < emb.size(); ++i) emb[i] = 0.25f * static_cast<float>(i) - 1.5f;
  ck.tensors["embed_tokens.weight"] = Tensor::from_vector(emb, {6, 4}).to(DType::BF16);  // a frozen bf16 tensor
  ck.tokenizer.type = "bpe";
  ck.tokenizer.vocab = {"a", "b", "ab", "c"};
  ck.tokenizer.merges = {"a b"};
  ck.tokenizer.eos_id = 3;
  ck.config_yaml = "train:\n  steps: 6\n  lr: 0.01\n";
  ck.extra_attrs["source"] = "test_snapshot";
  return ck;
}

TrainerState trainer_state(int64_t step, const Philox& rng) {
  TrainerState st;
  st.step = step;
  st.tokens = step * 4 * 129;
  st.rng_per_rank = {{rng.seed(), rng.counter()}, {0xfedcba9876543210ull, (1ull << 63) + 5}};  // u64 beyond i64
  st.loader_per_rank = {{2, 17}, {2, 18}};
  st.extra = {{"schedule", {{"kind", "cosine"}, {"warmup_steps", 2}}}, {"best_val", 2.5}};
  return st;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(), a.nbytes()) == 0;
}

// Saves a small snapshot at `step` (contents vary with the step).
std::string save_at(const std::string& dir, int64_t step, int keep_last) {
  auto params = initial_params(static_cast<uint64_t>(step));
  auto opt = make_optimizer(params);
  Philox rng(7);
  train(params, *opt, rng, 0, 1);
  return save_snapshot(dir, step, model_part(params), to_tensor_map(opt->state()), opt->step_count(),
                       trainer_state(step, rng), keep_last);
}

std::vector<int64_t> steps_in(const std::string& dir) {
  std::vector<int64_t> steps;
  for (const auto& p : list_snapshots(dir)) steps.push_back(*snapshot_step_from_name(fs::path(p).filename().string()));
  return steps;
}

bool has_temporaries(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  return false;
}

// Flips one byte inside the stored data of `dataset` (file offset from HDF5 itself).
void flip_byte_in_dataset(const std::string& file, const std::string& dataset) {
  haddr_t offset = HADDR_UNDEF;
  {
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0) << dataset;
    offset = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
  }
  ASSERT_NE(offset, HADDR_UNDEF) << dataset;
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(offset) + 3);
  char c = 0;
  io.get(c);
  io.seekp(static_cast<std::streamoff>(offset) + 3);
  io.put(static_cast<char>(c ^ 0x10));
}

}  // namespace

TEST(Snapshot, FileNames) {
  EXPECT_EQ(snapshot_file_name(120), "snapshot-120.h5");
  EXPECT_EQ(snapshot_step_from_name("snapshot-120.h5"), 120);
  EXPECT_EQ(snapshot_step_from_name("snapshot-0.h5"), 0);
  for (const char* other : {"snapshot-.h5", "snapshot-12.h5.tmp.4711", "snapshot-1a.h5", "latest", "model.h5",
                            "snapshot--3.h5", "snapshot-3.h5.bak"})
    EXPECT_FALSE(snapshot_step_from_name(other)) << other;
}

TEST(Snapshot, RoundTripRestoresEveryPieceExactly) {
  TempDir dir;
  auto params = initial_params(1);
  auto opt = make_optimizer(params);
  Philox rng(42);
  train(params, *opt, rng, 0, 3);
  const Checkpoint ck = model_part(params);
  const auto opt_state = to_tensor_map(opt->state());
  const TrainerState st = trainer_state(3, rng);
  const std::string path = save_snapshot(dir.str(), 3, ck, opt_state, opt->step_count(), st, 3);
  EXPECT_EQ(path, dir.file("snapshot-3.h5"));

  const LoadedSnapshot snap = load_snapshot(path);
  EXPECT_EQ(snap.path, path);
  ASSERT_EQ(snap.model.tensors.size(), ck.tensors.size());
  for (const auto& [name, t] : ck.tensors) EXPECT_TRUE(same_bytes(snap.model.tensors.at(name), t)) << name;
  EXPECT_EQ(nlohmann::json(snap.model.config), nlohmann::json(ck.config));
  EXPECT_EQ(nlohmann::json(snap.model.tokenizer), nlohmann::json(ck.tokenizer));
  EXPECT_EQ(snap.model.config_yaml, ck.config_yaml);
  EXPECT_EQ(snap.model.extra_attrs.at("source"), "test_snapshot");

  ASSERT_EQ(snap.optimizer_state.size(), opt_state.size());
  for (const auto& [name, t] : opt_state) EXPECT_TRUE(same_bytes(snap.optimizer_state.at(name), t)) << name;
  EXPECT_TRUE(snap.optimizer_state.count("m/" + kParamNames[0]));
  EXPECT_EQ(snap.optimizer_step, 3);

  EXPECT_EQ(snap.trainer.step, st.step);
  EXPECT_EQ(snap.trainer.tokens, st.tokens);
  EXPECT_EQ(snap.trainer.rng_per_rank, st.rng_per_rank);
  ASSERT_EQ(snap.trainer.loader_per_rank.size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(snap.trainer.loader_per_rank[r].epoch, st.loader_per_rank[r].epoch);
    EXPECT_EQ(snap.trainer.loader_per_rank[r].cursor, st.loader_per_rank[r].cursor);
  }
  EXPECT_EQ(snap.trainer.extra, st.extra);

  // A snapshot is also an ordinary checkpoint (export / eval read it as one).
  const Checkpoint as_checkpoint = load_checkpoint(path);
  EXPECT_TRUE(same_bytes(as_checkpoint.tensors.at(kParamNames[0]), params[0]));
}

TEST(Snapshot, InterruptedRunContinuesBitIdentically) {
  // Uninterrupted: 6 steps.
  auto ref_params = initial_params(5);
  auto ref_opt = make_optimizer(ref_params);
  Philox ref_rng(99);
  train(ref_params, *ref_opt, ref_rng, 0, 6);

  // 3 steps, snapshot, everything thrown away, resume from the file, 3 more steps.
  TempDir dir;
  {
    auto params = initial_params(5);
    auto opt = make_optimizer(params);
    Philox rng(99);
    train(params, *opt, rng, 0, 3);
    TrainerState st;
    st.step = 3;
    st.rng_per_rank = {{rng.seed(), rng.counter()}};
    st.loader_per_rank = {{0, 3}};
    save_snapshot(dir.str(), 3, model_part(params), to_tensor_map(opt->state()), opt->step_count(), st, 2);
  }
  std::ostringstream warn;
  auto snap = find_resume(dir.str(), "auto", warn);
  ASSERT_TRUE(snap);
  std::vector<Tensor> params;
  for (const auto& name : kParamNames) {
    params.push_back(snap->model.tensors.at(name).clone());
    params.back().set_requires_grad(true);
  }
  auto opt = make_optimizer(params);
  opt->load_state(snap->optimizer_step, to_named_tensors(snap->optimizer_state));
  const RngState r = rank_rng_state(*snap, 0, 1);
  Philox rng(r.seed, r.counter);
  train(params, *opt, rng, static_cast<int>(snap->trainer.step), 6);

  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(same_bytes(params[i], ref_params[i])) << kParamNames[i];
  EXPECT_EQ(opt->step_count(), 6);
  EXPECT_EQ(warn.str(), "");
}

TEST(Snapshot, LatestPointsAtTheNewestAndKeepLastPrunes) {
  TempDir dir;
  for (int64_t step : {10, 20, 30, 40, 50}) {
    save_at(dir.str(), step, 2);
    EXPECT_EQ(read_latest_pointer(dir.str()), snapshot_file_name(step));
  }
  EXPECT_EQ(steps_in(dir.str()), (std::vector<int64_t>{40, 50}));
  EXPECT_FALSE(has_temporaries(dir.str()));

  TempDir all;
  for (int64_t step : {1, 2, 3}) save_at(all.str(), step, 0);  // keep_last 0: keep everything
  EXPECT_EQ(steps_in(all.str()), (std::vector<int64_t>{1, 2, 3}));

  // keep_last 1 never deletes the snapshot just written, even when an older run left a higher step behind.
  TempDir mixed;
  save_at(mixed.str(), 90, 0);
  save_at(mixed.str(), 5, 1);
  EXPECT_EQ(steps_in(mixed.str()), (std::vector<int64_t>{5}));
}

TEST(Snapshot, PointerIsUpdatedLastSoACrashBeforeItLosesNothing) {
  TempDir dir;
  save_at(dir.str(), 1, 1);
  // Make the pointer update fail (a non-empty directory where `latest` should go): that is the moment a
  // crash between the snapshot's rename and the pointer update would leave behind.
  fs::remove(dir.file("latest"));
  fs::create_directories(dir.file("latest"));
  std::ofstream(dir.file("latest/blocker")) << "x";
  EXPECT_THROW(save_at(dir.str(), 2, 1), InputError);
  // The snapshot was complete before the pointer was touched, and pruning had not started.
  EXPECT_EQ(steps_in(dir.str()), (std::vector<int64_t>{1, 2}));

  fs::remove_all(dir.file("latest"));
  std::ofstream(dir.file("latest")) << "snapshot-1.h5\n";  // a stale pointer
  std::ostringstream warn;
  auto snap = find_resume(dir.str(), "auto", warn);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->trainer.step, 2);
  EXPECT_EQ(warn.str(), "");
}

TEST(Snapshot, LeftoverTemporaryFilesAreIgnoredAndRemoved) {
  TempDir dir;
  save_at(dir.str(), 4, 3);
  std::ofstream(dir.file("snapshot-8.h5.tmp.4242")) << "half a snapshot";  // killed mid-write
  std::ofstream(dir.file("latest.tmp.4242")) << "snapshot-8.h5";
  std::ofstream(dir.file("notes.txt.tmp.1")) << "not ours";
  std::ostringstream warn;
  auto snap = find_resume(dir.str(), "auto", warn);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->trainer.step, 4);
  EXPECT_FALSE(fs::exists(dir.file("snapshot-8.h5.tmp.4242")));
  EXPECT_FALSE(fs::exists(dir.file("latest.tmp.4242")));
  EXPECT_TRUE(fs::exists(dir.file("notes.txt.tmp.1")));  // someone else's file stays
  EXPECT_NE(warn.str().find("snapshot-8.h5.tmp.4242"), std::string::npos) << warn.str();
}

class CorruptSnapshot : public ::testing::TestWithParam<std::string> {};

TEST_P(CorruptSnapshot, AutoResumeNamesItAndFallsBack) {
  const std::string dataset = GetParam();
  const std::string tensor_name = dataset.substr(1);  // messages name it relative to the root: 'model/...' 
  TempDir dir;
  save_at(dir.str(), 1, 3);
  save_at(dir.str(), 2, 3);
  flip_byte_in_dataset(dir.file("snapshot-2.h5"), dataset);
  std::ostringstream warn;
  auto snap = find_resume(dir.str(), "auto", warn);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->trainer.step, 1);
  EXPECT_EQ(snap->path, dir.file("snapshot-1.h5"));
  const std::string msg = warn.str();
  EXPECT_NE(msg.find("snapshot-2.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'" + tensor_name + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("snapshot-1.h5"), std::string::npos) << msg;

  // Named explicitly, the same file is an input error naming file and tensor.
  try {
    find_resume(dir.str(), dir.file("snapshot-2.h5"), warn);
    ADD_FAILURE() << "a corrupt explicit snapshot must throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("snapshot-2.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'" + tensor_name + "'"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Datasets, CorruptSnapshot,
                         ::testing::Values("/model/layers.0.self_attn.q_proj.weight", "/optimizer/v/norm.weight",
                                           "/trainer/rng"),
                         [](const auto& info) { return "dataset" + std::to_string(info.index); });

TEST(Snapshot, NothingToResumeAndNothingValid) {
  TempDir dir;
  std::ostringstream warn;
  EXPECT_FALSE(find_resume(dir.str(), "auto", warn));                  // empty directory: a fresh start
  EXPECT_FALSE(find_resume(dir.file("missing"), "auto", warn));        // not created yet
  EXPECT_FALSE(find_resume(dir.str(), "", warn));                      // no --resume
  save_at(dir.str(), 3, 3);
  flip_byte_in_dataset(dir.file("snapshot-3.h5"), "/optimizer/m/norm.weight");
  EXPECT_THROW(find_resume(dir.str(), "auto", warn), InputError);      // snapshots, but none usable
}

TEST(Snapshot, ExplicitPathErrors) {
  TempDir dir;
  std::ostringstream warn;
  EXPECT_THROW(find_resume(dir.str(), dir.file("snapshot-9.h5"), warn), InputError);
  std::ofstream(dir.file("junk.h5")) << "not hdf5";
  EXPECT_THROW(find_resume(dir.str(), dir.file("junk.h5"), warn), InputError);
  // A model checkpoint has no optimizer or trainer state.
  save_checkpoint(dir.file("model.h5"), model_part(initial_params(1)));
  try {
    find_resume(dir.str(), dir.file("model.h5"), warn);
    ADD_FAILURE() << "a model checkpoint must not resume";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a training snapshot"), std::string::npos) << e.what();
  }
}

TEST(Snapshot, KilledMidWriteLeavesTheLastCompleteSnapshotUsable) {
  // Everything is built before fork(): the child only writes (an OpenMP pool does not survive fork()).
  auto params = initial_params(3);
  Checkpoint ck = model_part(params);
  ck.tensors["big"] = Tensor::full({1 << 20}, 0.5);
  auto opt = make_optimizer(params);
  Philox rng(1);
  train(params, *opt, rng, 0, 1);
  const auto state = to_tensor_map(opt->state());
  for (int delay_ms : {0, 3, 11, 29}) {
    TempDir dir;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {  // snapshot after snapshot of a few MB each, until killed
        for (int64_t step = 1;; ++step) save_snapshot(dir.str(), step, ck, state, 1, trainer_state(step, rng), 2);
      } catch (...) {
        ::_exit(1);
      }
    }
    int status = 0;
    bool exited = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(dir.file("snapshot-2.h5")) && std::chrono::steady_clock::now() < deadline && !exited) {
      exited = ::waitpid(child, &status, WNOHANG) == child;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_FALSE(exited) << "the writer died on its own, status " << status;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));

    const auto steps = steps_in(dir.str());
    ASSERT_FALSE(steps.empty());
    std::ostringstream warn;
    auto snap = find_resume(dir.str(), "auto", warn);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->trainer.step, steps.back()) << warn.str();
    EXPECT_EQ(warn.str().find("skipping"), std::string::npos) << warn.str();
    EXPECT_FALSE(has_temporaries(dir.str()));
    // The pointer lags the newest complete snapshot by at most the one whose pointer update was cut off.
    const auto latest = snapshot_step_from_name(read_latest_pointer(dir.str()));
    ASSERT_TRUE(latest);
    EXPECT_GE(*latest, steps.back() - 1);
    EXPECT_LE(*latest, steps.back());
  }
}

TEST(SnapshotCollective, GatherAndResumeOnOneRank) {
  linspec::testing::SingleRankCommunicator comm;
  Philox rng(5, 123);
  TrainerState st = gather_trainer_state(comm, 7, 700, {rng.seed(), rng.counter()}, {1, 9}, {{"k", 1}});
  EXPECT_GT(comm.collectives, 0);
  ASSERT_EQ(st.world(), 1);
  EXPECT_EQ(st.rng_per_rank[0], (RngState{5, 123}));
  EXPECT_EQ(st.loader_per_rank[0].epoch, 1u);
  EXPECT_EQ(st.loader_per_rank[0].cursor, 9u);
  EXPECT_EQ(st.step, 7);
  EXPECT_EQ(st.extra["k"], 1);

  TempDir dir;
  auto params = initial_params(2);
  auto opt = make_optimizer(params);
  save_snapshot(dir.str(), 7, model_part(params), to_tensor_map(opt->state()), 0, st, 1);
  std::ostringstream warn;
  auto snap = find_resume_collective(comm, dir.str(), "auto", warn);
  ASSERT_TRUE(snap);
  EXPECT_EQ(rank_rng_state(*snap, 0, 1), (RngState{5, 123}));
  EXPECT_EQ(rank_loader_state(*snap, 0, 1).cursor, 9u);
  EXPECT_THROW(rank_rng_state(*snap, 0, 2), InputError);  // written by one rank, resumed by two

  EXPECT_THROW(find_resume_collective(comm, dir.str(), dir.file("nope.h5"), warn), InputError);
  EXPECT_FALSE(find_resume_collective(comm, dir.file("empty"), "auto", warn));
}

// Runs with any world size: alone (a singleton MPI process, as ctest runs it) and under
// `mpirun -np 2` (tests/integration/test_snapshot_mpi.sh).
TEST(SnapshotMpi, RanksShareStateAndAgreeOnTheSnapshot) {
  auto comm = make_communicator("mpi");
  const int rank = comm->rank(), world = comm->world();

  // Rank 0 names the directory; everyone uses it.
  char dir_buf[512] = {};
  std::unique_ptr<TempDir> owned;
  if (rank == 0) {
    owned = std::make_unique<TempDir>();
    std::snprintf(dir_buf, sizeof dir_buf, "%s", owned->str().c_str());
  }
  comm->broadcast(dir_buf, sizeof dir_buf, 0);
  const std::string dir = dir_buf;

  const RngState my_rng{100u + rank, (1ull << 63) + 7u * rank};
  const LoaderState my_loader{static_cast<uint64_t>(rank), 10u + rank};
  const TrainerState st = gather_trainer_state(*comm, 4, 400, my_rng, my_loader, {{"from", "mpi"}});
  ASSERT_EQ(st.world(), world);
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(st.rng_per_rank[r], (RngState{100u + r, (1ull << 63) + 7u * r})) << "rank " << rank << " row " << r;
    EXPECT_EQ(st.loader_per_rank[r].cursor, 10u + r);
  }

  if (rank == 0) {
    for (int64_t step : {2, 4}) {
      auto params = initial_params(static_cast<uint64_t>(step));
      auto opt = make_optimizer(params);
      TrainerState at = st;
      at.step = step;
      save_snapshot(dir, step, model_part(params), to_tensor_map(opt->state()), 0, at, 3);
    }
  }
  comm->barrier();
  std::ostringstream warn;
  auto snap = find_resume_collective(*comm, dir, "auto", warn);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->trainer.step, 4);
  EXPECT_EQ(rank_rng_state(*snap, rank, world), my_rng);
  EXPECT_EQ(rank_loader_state(*snap, rank, world).cursor, my_loader.cursor);

  // A damaged newest snapshot: rank 0 reports it, every rank falls back to the same older one.
  comm->barrier();
  if (rank == 0) flip_byte_in_dataset(dir + "/snapshot-4.h5", "/model/norm.weight");
  comm->barrier();
  std::ostringstream warn2;
  snap = find_resume_collective(*comm, dir, "auto", warn2);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->trainer.step, 2);
  EXPECT_EQ(warn2.str().find("snapshot-4.h5") != std::string::npos, rank == 0) << warn2.str();

  // An error on rank 0 is an error on every rank.
  EXPECT_THROW(find_resume_collective(*comm, dir, dir + "/snapshot-4.h5", warn2), InputError);
  comm->barrier();
}
