// linspec train CONFIG.yaml [--set key=value]... [--resume auto|PATH]   (under mpirun -np N for data parallel)
#include "apps/command.h"
#include "attention/registry.h"
#include "trainer/train_loop.h"

namespace linspec::apps {
namespace {

trainer::TrainRequest args;

// model.attention.<option> keys per preset, from the preset table (ranges and defaults: linspec linearize --help).
std::string attention_keys_footer() {
  std::string s = "model.attention.preset and the model.attention.<option> keys each preset takes:\n";
  for (const auto& p : attention_presets()) {
    s += "  " + p.name + ":";
    for (const auto& o : p.options) s += " " + o.name;
    s += p.options.empty() ? " (none)\n" : "\n";
  }
  return s;
}

RegisterCommand reg(Command{
    "train", "Fine-tune from a YAML experiment (run under mpirun -np N for data parallel)", [](CLI::App& s) {
      s.add_option("config", args.config_path,
                   "Experiment YAML (keys: README, configs/*.yaml); `stages:` chains several runs (trainer/stages.h)")
          ->required();
      s.add_option("--set", args.overrides,
                   "Override a config key: a.b=value (repeatable; every stage), stages.<name>.a.b=value (one stage)");
      s.add_option("--resume", args.resume,
                   "auto (newest valid snapshot in checkpoint.dir, else start fresh; a staged config skips finished "
                   "stages and continues the first unfinished one) or a snapshot path");
      s.footer(attention_keys_footer());
      return [] { return trainer::run_training(args); };
    }});

}  // namespace
}  // namespace linspec::apps
