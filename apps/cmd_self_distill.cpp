// linspec self-distill --checkpoint C --data SHARDS.h5 --out OUT.h5 [--sequences N] [--val-sequences M]
//                      [--prompt-len P] [--new-tokens T] [--batch B] [--weights f32|bf16|int8] [--temperature T]
//                      [--seed S] [--ignore-eos]
// Writes token shards of the model's own continuations of prompts drawn from SHARDS.h5 (serve/self_distill.h): the
// self-distilled data of the drafts' training recipes (configs/draft-eagle-self.yaml). OUT.h5 is written atomically.
#include <chrono>
#include <filesystem>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "serve/model_loader.h"
#include "serve/self_distill.h"

namespace linspec::apps {
namespace {
struct Args {
  std::string checkpoint, data, out, weights = "int8";
  int64_t sequences = 256, val_sequences = 8, prompt_len = 32, new_tokens = 224, batch = 16;
  double temperature = 0.0;
  uint64_t seed = 0;
  bool ignore_eos = false;
} args;

int run() {
  namespace fs = std::filesystem;
  if (args.sequences < 1 || args.val_sequences < 0)
    throw_input_error("--sequences must be >= 1 and --val-sequences >= 0");
  if (fs::exists(args.out) && fs::equivalent(args.out, args.data))
    throw_input_error("--out ", args.out, " is the --data file itself");
  LoadedModel m = load_model(args.checkpoint, {});
  m.model->set_inference_weights(weights_flag(args.weights));
  const TokenShards source = load_token_shards(args.data, m.model->config().vocab_size);
  SelfDistillConfig cfg;
  cfg.train_sequences = args.sequences;
  cfg.val_sequences = args.val_sequences;
  cfg.prompt_len = args.prompt_len;
  cfg.batch = args.batch;
  cfg.generation.max_new_tokens = args.new_tokens;
  cfg.generation.sampling = {args.temperature, 0, 1.0, args.seed};
  if (!args.ignore_eos && m.tokenizer->eos() >= 0) cfg.generation.stop_ids.push_back(m.tokenizer->eos());
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const TokenShards shards = self_distill(*m.model, source, cfg, [&](int64_t done, int64_t total) {
    std::cerr << "self-distill: " << done << "/" << total << " sequences, " << seconds() << " s\n";
  });
  save_token_shards(args.out, shards);
  const double s = seconds();
  std::cerr << "self-distill: " << args.out << ": " << shards.train.tokens.size() << " train + "
            << shards.val.tokens.size() << " val tokens (" << shards.train.doc_offsets.size() << " + "
            << shards.val.doc_offsets.size() << " documents) in " << s << " s\n";
  return 0;
}

RegisterCommand reg(Command{
    "self-distill", "Write token shards of the model's own continuations of corpus prompts (drafts' training data)",
    [](CLI::App& s) {
      s.add_option("--checkpoint", args.checkpoint, "The target model (.h5)")->required();
      s.add_option("--data", args.data, "Token shards the prompts are drawn from (train and val splits)")->required();
      s.add_option("--out", args.out, "Token shards to write")->required();
      s.add_option("--sequences", args.sequences, "Train documents")->capture_default_str();
      s.add_option("--val-sequences", args.val_sequences, "Val documents (prompts from the val split)")
          ->capture_default_str();
      s.add_option("--prompt-len", args.prompt_len, "Prompt tokens per document")->capture_default_str();
      s.add_option("--new-tokens", args.new_tokens, "Generated tokens per document at most")->capture_default_str();
      s.add_option("--batch", args.batch, "Sequences decoded together")->capture_default_str();
      add_weights_flag(s, args.weights);
      s.add_option("--temperature", args.temperature, "0: greedy (what greedy serving drafts against)")
          ->capture_default_str();
      s.add_option("--seed", args.seed, "Prompt offsets and sampling")->capture_default_str();
      s.add_flag("--ignore-eos", args.ignore_eos, "Do not end a document at the EOS token");
      return run;
    }});
}  // namespace
}  // namespace linspec::apps
