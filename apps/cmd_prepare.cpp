// linspec prepare --tokenizer model.h5 --input FILE... --out data.h5 [--val-fraction F]
#include <filesystem>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "data/prepare.h"
#include "model/checkpoint.h"

namespace linspec::apps {
namespace {
struct Args {
  std::string tokenizer, out;
  std::vector<std::string> inputs;
  double val_fraction = 0.05;
  uint64_t seed = 0;
  bool force = false;
} args;

int run() {
  check_output_path(args.out, args.force, args.tokenizer, "--tokenizer");
  const Checkpoint ckpt = load_checkpoint(args.tokenizer, /*verify_checksums=*/false);
  auto tok = make_tokenizer(ckpt.tokenizer, args.tokenizer);
  TokenShards shards = prepare_tokens(*tok, args.inputs, {args.val_fraction, args.seed});
  save_token_shards(args.out, shards);
  std::cerr << "prepare: " << shards.train.tokens.size() << " train tokens (" << shards.train.doc_offsets.size()
            << " docs), " << shards.val.tokens.size() << " val tokens (" << shards.val.doc_offsets.size()
            << " docs) -> " << args.out << "\n";
  return 0;
}

RegisterCommand reg(Command{"prepare", "Tokenize text/JSONL into HDF5 token shards", [](CLI::App& s) {
                              s.add_option("--tokenizer", args.tokenizer, "Checkpoint whose tokenizer to use")
                                  ->required();
                              s.add_option("--input", args.inputs, "Input files (.txt: one document each; .jsonl: "
                                                                   "one {\"text\": ...} per line)")
                                  ->required();
                              s.add_option("--out", args.out, "Output token shards (.h5)")->required();
                              s.add_option("--val-fraction", args.val_fraction, "Documents held out for validation")
                                  ->capture_default_str();
                              s.add_option("--seed", args.seed, "Seed of the validation split")->capture_default_str();
                              s.add_flag("--force", args.force, "Replace an existing --out");
                              return run;
                            }});
}  // namespace
}  // namespace linspec::apps
