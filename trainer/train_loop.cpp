#include "trainer/train_loop.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/loader.h"
#include "trainer/comm.h"
#include "trainer/config.h"
#include "trainer/flop_count.h"
#include "trainer/grad_sync.h"
#include "trainer/metrics.h"
#include "trainer/objectives.h"
#include "trainer/schedule.h"
#include "trainer/signals.h"
#include "trainer/snapshot.h"
#include "trainer/step_profile.h"
#include "trainer/stages.h"
#include "trainer/train_setup.h"
#include "trainer/train_step.h"

namespace linspec::trainer {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Discards everything (what ranks other than 0 log to).
class NullStream : public std::ostream {
 public:
  NullStream() : std::ostream(nullptr) {}
};

// One job on one rank, after setup.
class Trainer {
 public:
  Trainer(const ExperimentConfig& cfg, Communicator& comm, Communicator& grad_comm, TrainSetup& setup,
          const LoadedSnapshot* snap, std::ostream& log)
      : cfg_(cfg), comm_(comm), setup_(setup), log_(log),
        step_fn_(cfg, comm, grad_comm, setup),
        loader_(setup.data.train, cfg.data.seq_len, comm.rank(), comm.world(), static_cast<uint64_t>(cfg.train.seed)),
        rng_(Philox(static_cast<uint64_t>(cfg.train.seed)).fork(static_cast<uint64_t>(comm.rank()))) {
    schedule_.kind = cfg.train.schedule;
    schedule_.peak_lr = cfg.train.lr;
    schedule_.warmup_steps = cfg.train.warmup_steps;
    schedule_.total_steps = cfg.train.steps;
    schedule_.min_lr_ratio = cfg.train.min_lr_ratio;
    if (snap) {
      step_fn_.optimizer().load_full_state(snap->optimizer_step, snap->optimizer_state);
      step_ = snap->trainer.step;
      tokens_ = snap->trainer.tokens;
      const RngState r = rank_rng_state(*snap, comm.rank(), comm.world());
      rng_.set_state(r.seed, r.counter);
      loader_.restore(rank_loader_state(*snap, comm.rank(), comm.world()));
      last_saved_ = step_;
    }
    can_eval_ = cfg.eval.batches > 0 && val_windows_per_rank() > 0;
    if (cfg.eval.batches > 0 && !can_eval_)
      log_ << "train: the validation split is too small for " << comm.world() << " rank(s) at seq_len "
           << cfg.data.seq_len << "; evaluation is off\n";
    if (comm.rank() == 0) {
      metrics_.emplace(metrics_path(cfg.checkpoint.dir), snap ? std::optional<int64_t>(step_) : std::nullopt);
      progress_ = std::make_unique<ProgressLine>(std::cerr, isatty(STDERR_FILENO) != 0, step_);
    }
    const GradSync& sync = step_fn_.sync();
    size_t n = 0;
    for (const auto& s : sync.slots()) n += s.param.numel();
    log_ << "train: " << comm.world() << " rank(s) × " << num_threads() << " thread(s), " << n
         << " trainable values in " << sync.slots().size() << " tensors, "
         << sync.buckets().size() << " gradient bucket(s)" << (sync.zero() ? ", ZeRO-1" : "") << ", starting at step "
         << step_ << "/" << cfg.train.steps << "\n";
  }

  // Returns true when a stop signal ended the run early.
  bool run() {
    if (!last_saved_ && can_eval_ && step_ == 0) evaluate();
    // tokens/s counts training steps only (not evaluation or snapshot writing).
    double step_seconds = 0;
    int64_t tokens_at_log = tokens_;
    while (step_ < cfg_.train.steps) {
      const auto t0 = std::chrono::steady_clock::now();
      const StepMetrics m = train_step();
      step_seconds += seconds_since(t0);
      const bool last = step_ == cfg_.train.steps;
      if (comm_.rank() == 0 && (step_ % cfg_.log.every == 0 || last)) {
        StepMetrics shown = m;
        shown.tokens_per_s = static_cast<double>(tokens_ - tokens_at_log) / std::max(step_seconds, 1e-9);
        metrics_->log_step(shown);
        progress_->update(shown);
        step_seconds = 0;
        tokens_at_log = tokens_;
      }
      if (can_eval_ && (step_ % cfg_.eval.every == 0 || last)) evaluate();
      const bool stop = any_rank_stop_requested(comm_);
      if (step_ % cfg_.checkpoint.every == 0 || last || stop) save();
      if (stop) {
        if (progress_)
          progress_->note("stopped by signal " + std::to_string(stop_signal()) + " after step " + std::to_string(step_) +
                          "; continue with --resume auto");
        return true;
      }
    }
    if (last_saved_ != step_) save();  // e.g. resumed past the last step
    return false;
  }

 private:
  int64_t val_windows_per_rank() const {
    const int64_t n = static_cast<int64_t>(setup_.data.val.tokens.size());
    return n > cfg_.data.seq_len ? (n - 1) / cfg_.data.seq_len / comm_.world() : 0;
  }

  StepMetrics train_step() {
    const double lr = learning_rate(schedule_, static_cast<int>(step_));
    // log.profile_every: this step runs under an op profile (model/op_profile.h), reported by rank 0.
    const bool profile = cfg_.log.profile_every > 0 && (step_ + 1) % cfg_.log.profile_every == 0;
    OpProfile prof;
    std::optional<OpProfile::Scope> scope;
    if (profile) scope.emplace(&prof);
    const StepResult r = step_fn_.run([this] { return loader_.next(cfg_.train.micro_batch); }, rng_, lr, step_);
    scope.reset();
    ++step_;
    if (profile && comm_.rank() == 0) report_profile(prof, r.phases);
    tokens_ += step_fn_.tokens_per_step();

    StepMetrics m;
    m.step = step_;
    m.total_steps = cfg_.train.steps;
    m.loss = r.values[0].second;
    m.objectives.assign(r.values.begin() + 1, r.values.end());
    m.lr = lr;
    m.grad_norm = r.grad_norm;
    return m;
  }

  // The profile of the step just run: op families against the GEMM ceiling (measured once, at the first report)
  // on the progress output, the full profile (regions, GEMM shapes) in metrics.jsonl.
  void report_profile(const OpProfile& prof, const StepPhases& phases) {
    if (ceiling_gflops_ < 0)
      ceiling_gflops_ = gemm_ceiling_gflops(measure_gemm_rates(setup_.model->rope_inv_freq().device(), 1024, 3),
                                            training_precision(cfg_, setup_.model->rope_inv_freq().device()));
    StepProfileInput in;
    in.profile = &prof;
    in.step_s = phases.forward_s + phases.backward_s + phases.optimizer_s;
    in.optimizer_s = phases.optimizer_s;
    in.flops = count_step_flops(setup_, cfg_.train.micro_batch, cfg_.data.seq_len);
    in.micro_batches = cfg_.train.grad_accum;
    in.ceiling_gflops = ceiling_gflops_;
    in.precision = training_precision(cfg_, setup_.model->rope_inv_freq().device());
    std::ostringstream os;
    os << "profile of step " << step_ << ": ";
    print_flop_summary(os, in);
    print_step_profile(os, in, false);
    std::string text = os.str();
    if (!text.empty() && text.back() == '\n') text.pop_back();
    progress_->note(text);
    metrics_->log_profile(step_, step_profile_json(in));
  }

  // Mean over eval.batches micro-batches of the validation split per rank: the student's next-token cross-entropy
  // and, with drafts, their held-out divergences (Objectives::evaluate).
  void evaluate() {
    const int T = cfg_.data.seq_len;
    const int64_t per_rank = val_windows_per_rank();
    const int batch = static_cast<int>(std::min<int64_t>(cfg_.train.micro_batch, per_rank));
    const int64_t batches = std::min<int64_t>(cfg_.eval.batches, per_rank / batch);
    WindowLoader val(setup_.data.val, T, comm_.rank(), comm_.world(), 0, /*shuffle=*/false);
    std::vector<std::pair<std::string, double>> sums;  // "loss" first
    for (int64_t i = 0; i < batches; ++i) {
      const Tensor w = val.next(batch);
      const auto values = step_fn_.objectives().evaluate(*setup_.student, w.slice(1, 0, T).contiguous(), w.slice(1, 1, T + 1).contiguous());
      if (sums.empty())
        for (const auto& [name, v] : values) sums.emplace_back(name, 0.0);
      for (size_t j = 0; j < values.size(); ++j) sums[j].second += values[j].second;
    }
    std::vector<double> flat{static_cast<double>(batches)};
    for (const auto& s : sums) flat.push_back(s.second);
    comm_.allreduce_sum(flat.data(), flat.size());
    if (comm_.rank() != 0 || sums.empty()) return;
    for (size_t j = 0; j < sums.size(); ++j) sums[j].second = flat[j + 1] / flat[0];
    const double loss = sums[0].second;
    const std::vector<std::pair<std::string, double>> drafts(sums.begin() + 1, sums.end());
    metrics_->log_val(step_, loss, drafts);
    std::ostringstream os;
    os << "val at step " << step_ << ": loss " << loss << ", ppl " << std::exp(loss);
    for (const auto& [name, v] : drafts) os << ", " << name << " " << v;
    progress_->note(os.str());
  }

  void save() {
    const std::map<std::string, Tensor> state = step_fn_.optimizer().full_state();  // collective with ZeRO
    nlohmann::json extra = {{"schedule", cfg_.train.schedule}, {"lr_peak", cfg_.train.lr}};
    const TrainerState ts = gather_trainer_state(comm_, step_, tokens_, RngState{rng_.seed(), rng_.counter()},
                                                 loader_.state(), extra);
    if (comm_.rank() == 0) {
      const SnapshotModelPart part = snapshot_model_part(setup_, cfg_);
      const std::string path = save_snapshot(cfg_.checkpoint.dir, step_, part.checkpoint, state, step_fn_.optimizer().step_count(), ts,
                                             cfg_.checkpoint.keep_last, part.drafts);
      progress_->note("snapshot " + path);
    }
    comm_.barrier();  // nobody exits (or stops on a signal) before the file is complete
    last_saved_ = step_;
  }

  const ExperimentConfig& cfg_;
  Communicator& comm_;
  TrainSetup& setup_;
  std::ostream& log_;
  TrainStep step_fn_;
  WindowLoader loader_;
  Philox rng_;
  ScheduleConfig schedule_;
  int64_t step_ = 0, tokens_ = 0;
  std::optional<int64_t> last_saved_;
  bool can_eval_ = false;
  double ceiling_gflops_ = -1;  // the GEMM ceiling for profiles, measured at the first one
  std::optional<MetricsLog> metrics_;
  std::unique_ptr<ProgressLine> progress_;
};

// One stage (or a whole file without stages:) on every rank. Returns 2 for bad input found before training, 0 when
// the run finished, 1 when a stop signal ended it early (a snapshot was written: continue with --resume auto).
int run_stage(const ExperimentConfig& stage_cfg, const std::string& resume, Communicator& world, std::ostream& log) {
  const int rank = world.rank();
  ExperimentConfig resolved = stage_cfg;  // train.precision "auto" settled below, once, for every use
  const ExperimentConfig* cfg = &resolved;
  std::unique_ptr<Communicator> grads;  // the gradient buckets' communicator (host scalars go through `world`)
  std::optional<LoadedSnapshot> snap;
  std::optional<TrainSetup> setup;
  std::string error;
  try {
    const Device device = training_device(*cfg);
    // "auto" follows the gradients: NCCL for a CUDA model, MPI otherwise.
    grads = make_communicator(cfg->distributed.backend, device);
    if (cfg->train.threads > 0) set_num_threads(cfg->train.threads);
    log << "train: device " << device_name(device) << ", gradients reduced by " << grads->backend() << "\n";
    log << "train: resolved config (" << cfg->source << ")\n" << cfg->resolved_yaml() << "\n";
    if (!resume.empty()) {
      snap = find_resume_collective(world, cfg->checkpoint.dir, resume, log);
      if (!snap) log << "train: no snapshot in " << cfg->checkpoint.dir << ", starting fresh\n";
      else log << "train: resuming from " << snap->path << " (step " << snap->trainer.step << ")\n";
    }
    resolve_auto_precision(resolved, device, &world, log);
    setup.emplace(build_training(*cfg, snap ? &*snap : nullptr, log, device));
  } catch (const InputError& e) {
    error = e.what();
  }
  double flags[2] = {error.empty() ? 0.0 : 1.0, rank == 0 && !error.empty() ? 1.0 : 0.0};
  world.allreduce_sum(flags, 2);
  if (flags[0] > 0) {
    if (!error.empty() && (rank == 0 || flags[1] == 0)) std::cerr << "linspec: error: " << error << "\n";
    return 2;
  }

  bool stopped = false;
  install_stop_handlers();
  try {
    Trainer trainer(*cfg, world, *grads, *setup, snap ? &*snap : nullptr, log);
    snap.reset();  // the model shares its tensors; the optimizer copied its state
    stopped = trainer.run();
  } catch (const std::exception& e) {
    if (world.world() == 1) throw;
    const bool input = dynamic_cast<const InputError*>(&e) != nullptr;
    std::cerr << "linspec: " << (input ? "error" : "internal error") << " on rank " << rank << ": " << e.what() << "\n";
    MPI_Abort(MPI_COMM_WORLD, input ? 2 : 3);
  }
  uninstall_stop_handlers();
  return stopped ? 1 : 0;
}

// A stage whose final snapshot is in place finished in an earlier run (resume skips it).
bool stage_finished(const ExperimentConfig& cfg) {
  const std::vector<std::string> done = list_snapshots(cfg.checkpoint.dir);
  if (done.empty()) return false;
  const auto step = snapshot_step_from_name(std::filesystem::path(done.back()).filename().string());
  return step && *step >= cfg.train.steps;
}

}  // namespace

int run_training(const TrainRequest& request) {
  // Setup errors (config, files, snapshots) are found by every rank alike: agree on the outcome, report it once.
  std::unique_ptr<Communicator> world = make_communicator("mpi");
  NullStream quiet;
  std::ostream& log = world->rank() == 0 ? std::cerr : quiet;

  std::vector<TrainingStage> stages;
  std::string error;
  try {
    stages = load_training_stages(request.config_path, request.overrides);  // every stage checked before any work
    if (stages.size() > 1 && !request.resume.empty() && request.resume != "auto")
      throw_input_error(request.config_path, ": --resume ", request.resume,
                        ": a staged config resumes with --resume "
                        "auto (each stage continues from its own directory)");
  } catch (const InputError& e) {
    error = e.what();
  }
  if (!error.empty()) {
    if (world->rank() == 0) std::cerr << "linspec: error: " << error << "\n";
    return 2;
  }
  for (size_t i = 0; i < stages.size(); ++i) {
    const TrainingStage& st = stages[i];
    if (!st.name.empty()) {
      if (request.resume == "auto" && stage_finished(st.config)) {
        log << "train: stage " << i + 1 << "/" << stages.size() << " '" << st.name << "' finished earlier ("
            << final_snapshot_path(st.config) << ")\n";
        continue;
      }
      log << "train: == stage " << i + 1 << "/" << stages.size() << " '" << st.name << "': " << st.config.train.steps
          << " steps in " << st.config.checkpoint.dir << " ==\n";
    }
    const int rc = run_stage(st.config, request.resume, *world, log);
    if (rc == 2) return 2;
    if (rc == 1) return 0;  // stopped by a signal after its snapshot; the next stages wait for --resume auto
  }
  return 0;
}

}  // namespace linspec::trainer
