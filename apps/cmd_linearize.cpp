// linspec linearize --in model.h5 --attention PRESET [--set key=value]... [--keep-softmax 0,5] --out lin.h5 [--force]
// Replaces the softmax attention of every layer (except the kept ones) by a linear-attention preset: q/k/v/o,
// MLPs, norms and embeddings stay; the preset's new tensors get their docs/method.md §4 inits and are stored under
// layers.N.self_attn.la.*; the resolved preset goes into the config's "attention" section.
#include <filesystem>
#include <iostream>

#include "apps/command.h"
#include "attention/linear_mixers.h"
#include "attention/registry.h"
#include "core/error.h"
#include "model/checkpoint.h"

namespace linspec::apps {
namespace {

struct Args {
  std::string in, out, preset, keep;
  std::vector<std::string> sets;
  bool force = false;
} args;

bool is_mixer_tensor(const std::string& name) { return name.find(".self_attn.la.") != std::string::npos; }

int run() {
  check_output_path(args.out, args.force, args.in, "--in");

  AttentionSpec spec;
  spec.preset = args.preset;
  for (const auto& s : args.sets) {
    auto [key, value] = parse_option_assignment(s, "linearize --set");
    if (!spec.options.emplace(key, value).second) throw_input_error("linearize --set: option '", key, "' given twice");
  }
  if (!args.keep.empty()) spec.keep_softmax_layers = parse_layer_list(args.keep, "linearize --keep-softmax");

  Checkpoint ck = load_checkpoint(args.in);
  const ModelConfig& c = ck.config;
  const AttentionSpec resolved = resolve_attention_spec(spec, c.num_layers, "linearize");
  if (!c.attention.is_null()) {
    const AttentionSpec current = attention_spec_from_json(c.attention, c.num_layers, args.in);
    if (!args.force)
      throw_input_error(args.in, ": already linearized (attention '", current.preset,
                        "'); pass --force to replace its attention (its linear-attention tensors are dropped)");
  }

  // Drop any previous linear-attention tensors, then add the fresh ones of the new preset.
  for (auto it = ck.tensors.begin(); it != ck.tensors.end();)
    it = is_mixer_tensor(it->first) ? ck.tensors.erase(it) : std::next(it);
  const AttentionShape shape{c.num_heads, c.num_kv_heads, c.head_dim};
  int64_t added = 0, linear_layers = 0;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (resolved.keeps_softmax(i)) continue;
    ++linear_layers;
    auto mixer = make_mixer(resolved.preset, resolved.options, shape, i, MixerInit{DType::F32, false});
    for (const auto& [name, t] : mixer->persistent_tensors()) {
      ck.tensors["layers." + std::to_string(i) + ".self_attn." + name] = t;
      added += t.numel();
    }
  }
  ck.config.attention = attention_spec_to_json(resolved);
  ck.extra_attrs["linearized_from"] = args.in;
  save_checkpoint(args.out, ck);

  std::cerr << "linspec linearize: " << args.in << " -> " << args.out << ": attention '" << resolved.preset << "' in "
            << linear_layers << " of " << c.num_layers << " layers";
  if (!resolved.keep_softmax_layers.empty())
    std::cerr << " (" << resolved.keep_softmax_layers.size() << " kept softmax)";
  std::cerr << ", " << added << " new parameters; options:";
  for (const auto& [k, v] : resolved.options) std::cerr << " " << k << "=" << v;
  std::cerr << "\n";
  return 0;
}

std::string preset_help() {
  std::string s = "Preset:";
  for (const auto& n : attention_preset_names()) s += " " + n;
  return s;
}

// The full preset table after the options (generated from attention/registry.h).
std::string presets_footer() {
  return "Presets, their options (--set key=value) and what they train:\n" + attention_presets_help();
}

RegisterCommand reg(Command{
    "linearize", "Replace softmax attention with a linear-attention preset", [](CLI::App& s) {
      s.add_option("--in", args.in, "Input checkpoint (.h5)")->required();
      s.add_option("--attention", args.preset, preset_help())->required();
      s.add_option("--set", args.sets, "Preset option key=value (each preset's options are listed below)");
      s.footer(presets_footer());
      s.add_option("--keep-softmax", args.keep, "Layers that keep softmax attention, e.g. 0,5");
      s.add_option("--out", args.out, "Output checkpoint (.h5), written atomically")->required();
      s.add_flag("--force", args.force, "Overwrite --out, and re-linearize an already linear checkpoint");
      return run;
    }});

}  // namespace
}  // namespace linspec::apps
