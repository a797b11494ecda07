// linspec train CONFIG.yaml [--set key=value]... [--resume auto|PATH]   (under mpirun -np N for data parallel)
#include "apps/command.h"
#include "trainer/train_loop.h"

namespace linspec::apps {
namespace {

trainer::TrainRequest args;

RegisterCommand reg(Command{
    "train", "Fine-tune from a YAML experiment (run under mpirun -np N for data parallel)", [](CLI::App& s) {
      s.add_option("config", args.config_path, "Experiment YAML (keys: README, configs/*.yaml)")->required();
      s.add_option("--set", args.overrides, "Override a config key: a.b=value (repeatable)");
      s.add_option("--resume", args.resume,
                   "auto (newest valid snapshot in checkpoint.dir, else start fresh) or a snapshot path");
      return [] { return trainer::run_training(args); };
    }});

}  // namespace
}  // namespace linspec::apps
