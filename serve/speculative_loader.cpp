#include "serve/speculative_loader.h"

#include "core/error.h"
#include "model/draft_model.h"
#include "serve/tree.h"

namespace linspec {

DType draft_weight_format(const std::string& draft_weights, DType target_format) {
  if (draft_weights == "target") return target_format;
  if (draft_weights == "f32") return DType::F32;
  if (draft_weights == "bf16") return DType::BF16;
  if (draft_weights == "int8") return DType::Q8;
  throw_input_error("--draft-weights ", draft_weights, ": expected f32, bf16, int8 or target");
}

LoadedSpeculator load_speculator(const LlamaModel& target, const std::string& checkpoint_path,
                                 const SpeculativeSetup& setup) {
  const DType draft_format = draft_weight_format(setup.draft_weights, target.inference_weights());
  LoadedSpeculator out;
  LlamaOptions opt = target.options();
  opt.requires_grad = false;
  if (setup.mode == "heads") {
    if (setup.fresh_heads) {
      DraftHeadsConfig fresh;
      fresh.shared_projection = true;  // identical logits to copies while untrained, without the copies' memory
      out.heads = std::make_unique<DraftHeads>(DraftHeads::init_from(target, fresh, false));
    } else {
      out.heads = std::make_unique<DraftHeads>(load_draft_heads(checkpoint_path, target));
    }
    out.heads->set_inference_weights(draft_format);
    if (setup.tree == "auto")
      out.speculator = std::make_unique<Speculator>(target, *out.heads, cached_decode_cost(target, out.heads.get()));
    else
      out.speculator = std::make_unique<Speculator>(target, *out.heads, load_tree(setup.tree, out.heads->count()));
    return out;
  }
  if (setup.mode == "eagle") {
    if (setup.tree != "default" && setup.tree != "auto")
      throw_input_error("--tree ", setup.tree, ": eagle grows its own trees (default or auto)");
    out.eagle = std::make_unique<FeatureDraft>(load_feature_draft(checkpoint_path, target));
    out.eagle->set_inference_weights(draft_format);
    out.speculator = std::make_unique<Speculator>(target, *out.eagle, cached_decode_cost(target, nullptr),
                                                  Speculator::EagleTree{});
    return out;
  }
  if (setup.mode != "draft") throw_input_error("--speculative: '", setup.mode, "' is not one of heads, eagle, draft");
  const std::string prefix = "first-layers:";
  if (setup.draft.empty()) {
    if (!has_draft_model(checkpoint_path))
      throw_input_error(checkpoint_path, ": no draft model (/draft/model); train one with objectives.draft_model, or "
                        "pass --draft PATH or --draft first-layers:N");
    out.draft = std::make_unique<LlamaModel>(load_draft_model(checkpoint_path, opt));
  } else if (setup.draft.rfind(prefix, 0) == 0) {
    int64_t layers = 0;
    try {
      layers = std::stoll(setup.draft.substr(prefix.size()));
    } catch (const std::exception&) {
      throw_input_error("--draft ", setup.draft, ": expected first-layers:N with N a number of layers");
    }
    out.draft = std::make_unique<LlamaModel>(make_draft_model(target, layers, opt, /*share_weights=*/true));
  } else {
    out.draft = std::make_unique<LlamaModel>(load_draft_model(setup.draft, opt));
  }
  out.draft->set_inference_weights(draft_format);
  out.speculator = std::make_unique<Speculator>(target, *out.draft, setup.gamma);
  return out;
}

}  // namespace linspec
