// linspec generate --checkpoint C --prompt TEXT [--max-new N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//                  [--speculative off|heads|draft [--tree T] [--draft D] [--gamma G]]
//                  [--json OUT]
// Prints only the generated text to stdout; diagnostics go to stderr; --json also writes the prompt's and the new
// tokens' ids (what tests compare with other implementations: text alone can hide a different tokenization). Speculative decoding is lossless: greedy output
// equals --speculative off token for token, sampled output has the same distribution.
#include <chrono>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "model/generation.h"
#include "serve/model_loader.h"
#include "serve/report.h"
#include "serve/speculative_loader.h"

namespace linspec::apps {
namespace {
struct Args {
  std::string checkpoint, prompt, speculative = "off", draft, device = "cpu", weights = "f32", json;
  int64_t max_new = 64, top_k = 0;
  double temperature = 0.0, top_p = 1.0;
  uint64_t seed = 0;
  bool ignore_eos = false;
  SpeculativeSetup spec;
} args;

int run() {
  GenerationConfig cfg;
  cfg.max_new_tokens = args.max_new;
  cfg.sampling = {args.temperature, args.top_k, args.top_p, args.seed};
  cfg.sampling.validate();
  if (args.max_new < 0) throw_input_error("--max-new ", args.max_new, ": must be >= 0");
  LlamaOptions opt;
  opt.device = device_flag(args.device);
  LoadedModel m = load_model(args.checkpoint, opt);
  m.model->set_inference_weights(weights_flag(args.weights));
  if (!args.ignore_eos && m.tokenizer->eos() >= 0) cfg.stop_ids.push_back(m.tokenizer->eos());
  std::vector<int32_t> prompt = m.tokenizer->encode(args.prompt);
  LoadedSpeculator spec;
  if (args.speculative != "off") {
    args.spec.mode = args.speculative;
    args.spec.draft = args.draft;
    spec = load_speculator(*m.model, args.checkpoint, args.spec);
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> tokens;
  SpeculativeStats stats;
  if (spec.speculator) tokens = spec.speculator->generate(prompt, cfg, &stats).tokens;
  else tokens = generate(*m.model, prompt, cfg).tokens;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string text = m.tokenizer->decode(tokens, {.skip_special = true});
  std::cout << text << std::flush;
  if (!args.json.empty())
    write_json_atomically(args.json, nlohmann::json{{"prompt_ids", prompt}, {"ids", tokens}});
  std::cerr << "\ngenerate: " << prompt.size() << " prompt + " << tokens.size() << " new tokens in " << s << " s ("
            << tokens.size() / std::max(s, 1e-9) << " tokens/s incl. prefill)\n";
  if (spec.speculator)
    std::cerr << "generate: speculative " << spec.speculator->describe().dump() << ": " << stats.steps
              << " target steps, " << stats.mean_tokens_per_step() << " tokens per step (bonus counted), "
              << stats.mean_accepted_per_step() << " accepted draft tokens per step\n";
  return 0;
}

RegisterCommand reg(Command{"generate", "Generate text from a prompt", [](CLI::App& s) {
                              s.add_option("--checkpoint", args.checkpoint, "Checkpoint (.h5)")->required();
                              s.add_option("--device", args.device, "cpu (default) | cuda | auto: where the model and its decode states live (the baseline kernels run on the CPU only)");
                              add_weights_flag(s, args.weights);
                              add_draft_weights_flag(s, args.spec.draft_weights);
                              s.add_option("--prompt", args.prompt, "Prompt text")->required();
                              s.add_option("--max-new", args.max_new, "New tokens at most")->capture_default_str();
                              s.add_option("--temperature", args.temperature, "0: greedy")->capture_default_str();
                              s.add_option("--top-k", args.top_k, "Keep the k most likely tokens (0: all)");
                              s.add_option("--top-p", args.top_p, "Nucleus mass")->capture_default_str();
                              s.add_option("--seed", args.seed, "Sampling seed")->capture_default_str();
                              s.add_flag("--ignore-eos", args.ignore_eos, "Do not stop at the EOS token");
                              s.add_option("--json", args.json,
                                           "Also write {prompt_ids, ids} (ids: the new tokens) to this file");
                              s.add_option("--speculative", args.speculative, "off | heads | eagle | draft")
                                  ->check(CLI::IsMember({"off", "heads", "eagle", "draft"}))
                              ->capture_default_str();
                              s.add_option("--draft", args.draft,
                                           "Draft model: checkpoint PATH or first-layers:N (default: the "
                                           "checkpoint's /draft/model)");
                              s.add_flag("--fresh-heads", args.spec.fresh_heads,
                                         "Untrained heads (LM-head copies) instead of /draft/heads: smoke tests, baselines");
                              s.add_option("--tree", args.spec.tree, "Heads tree: default | auto (chosen each step from the heads' confidence and this machine's verify cost, cached by `bench decode`) | FILE.json")
                                  ->capture_default_str();
                              s.add_option("--gamma", args.spec.gamma, "Draft tokens per step")->capture_default_str();
                              return run;
                            }});
}  // namespace
}  // namespace linspec::apps
