#include "trainer/stages.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "trainer/snapshot.h"
#include "trainer/yaml_scalar.h"

namespace linspec::trainer {
namespace {

constexpr const char* kStagesKey = "stages";
constexpr const char* kStageOverridePrefix = "stages.";
constexpr const char* kSkipKey = "skip";  // a stage-level key beside `name`
// Keys the chain sets for every stage (stages.h); a stage or a stages.<name>.* override may not.
const std::vector<std::string> kChainKeys = {"model.init", "checkpoint.dir"};

bool valid_stage_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// The text of the scalar at `path`, or `fallback`.
std::string scalar_at(const YAML::Node& root, const std::string& path, const std::string& fallback) {
  const YAML::Node n = yaml_lookup(root, path);
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : fallback;
}

// --set overrides split into those for every stage and those for one stage (stages.<name>.key=value, prefix removed).
struct SplitOverrides {
  std::vector<std::string> all;
  std::map<std::string, std::vector<std::string>> per_stage;
};

SplitOverrides split_overrides(const std::vector<std::string>& overrides) {
  SplitOverrides out;
  for (const std::string& ov : overrides) {
    if (ov.rfind(kStageOverridePrefix, 0) != 0) {
      out.all.push_back(ov);
      continue;
    }
    const std::string rest = ov.substr(std::string(kStageOverridePrefix).size());
    const auto dot = rest.find('.'), eq = rest.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot > eq)
      throw_input_error("--set ", ov, ": expected stages.<name>.<key>=value");
    out.per_stage[rest.substr(0, dot)].push_back(rest.substr(dot + 1));
  }
  return out;
}

void refuse_chain_keys(const YAML::Node& stage, const std::string& where_, const std::string& name) {
  for (const std::string& key : kChainKeys) {
    if (const YAML::Node n = yaml_lookup(stage, key); n.IsDefined())
      throw_input_error(yaml_where(where_, n), ": stage '", name, "': key '", key, "' is set by the chain (stage k trains in <checkpoint.dir>/<name> and starts from stage k-1's "
                        "final snapshot); set it at the top level");
  }
}

void refuse_chain_overrides(const std::vector<std::string>& overrides, const std::string& name) {
  for (const std::string& ov : overrides)
    for (const std::string& key : kChainKeys)
      if (ov.rfind(key + "=", 0) == 0)
        throw_input_error("--set stages.", name, ".", ov, ": key '", key, "' is set by the chain; --set it without the stages.<name> prefix");
}

// `skip: true` in the entry, or stages.<name>.skip=... (taken out of `overrides`), leaves the stage out of the chain.
bool stage_skipped(const YAML::Node& entry, std::vector<std::string>& overrides, const std::string& source,
                   const std::string& name) {
  YAML::Node value(YAML::NodeType::Undefined);  // a default Node is a defined null
  std::string where_ = source;
  const YAML::Node& e = entry;
  if (e[kSkipKey]) {
    value.reset(e[kSkipKey]);
    where_ = yaml_where(source, e[kSkipKey]);
  }
  const std::string prefix = std::string(kSkipKey) + "=";
  for (auto it = overrides.begin(); it != overrides.end();) {
    if (it->rfind(prefix, 0) != 0) {
      ++it;
      continue;
    }
    value.reset(YAML::Node(it->substr(prefix.size())));
    where_ = "--set stages." + name + "." + *it;
    it = overrides.erase(it);
  }
  if (!value) return false;
  const auto skip = yaml_bool(value);
  if (!skip) throw_input_error(where_, ": stage '", name, "': key 'skip' must be true or false");
  return *skip;
}

}  // namespace

std::string final_snapshot_path(const ExperimentConfig& stage) {
  return stage.checkpoint.dir + "/" + snapshot_file_name(stage.train.steps);
}

std::vector<TrainingStage> parse_training_stages(const std::string& yaml_text, const std::string& source,
                                                 const std::vector<std::string>& overrides) {
  const YAML::Node root = load_yaml_text(yaml_text, source);
  const YAML::Node& r = root;
  const YAML::Node stages = r[kStagesKey];
  SplitOverrides split = split_overrides(overrides);
  if (!stages) {
    for (const std::string& ov : overrides)
      if (ov.rfind(kStageOverridePrefix, 0) == 0) throw_input_error("--set ", ov, ": ", source, " has no stages: key");
    return {TrainingStage{"", parse_experiment_root(root, source, overrides)}};
  }
  if (!stages.IsSequence() || stages.size() == 0)
    throw_input_error(yaml_where(source, stages),
                      ": key 'stages' must be a non-empty list of stages, each a mapping "
                      "with a name and the keys it changes");

  // The top level without `stages:`; the chain keys from --set belong to it (they seed the chain).
  YAML::Node base(YAML::NodeType::Map);
  for (auto it = root.begin(); it != root.end(); ++it)
    if (it->first.Scalar() != kStagesKey) base.force_insert(it->first, it->second);
  std::vector<std::string> for_every_stage;
  for (const std::string& ov : split.all) {
    bool chain = false;
    for (const std::string& key : kChainKeys)
      if (ov.rfind(key + "=", 0) == 0) {
        yaml_assign(base, key, YAML::Node(ov.substr(key.size() + 1)));
        chain = true;
      }
    if (!chain) for_every_stage.push_back(ov);
  }
  const std::string base_dir = scalar_at(base, "checkpoint.dir", ExperimentConfig{}.checkpoint.dir);
  const std::string base_init = scalar_at(base, "model.init", "");

  std::vector<TrainingStage> out;
  std::set<std::string> names;
  for (size_t i = 0; i < stages.size(); ++i) {
    const YAML::Node entry = stages[i];
    const std::string at = yaml_where(source, entry);
    if (!entry.IsMap())
      throw_input_error(at, ": stage ", i + 1, " must be a mapping with a name and the keys it changes");
    const YAML::Node& e = entry;
    if (!e["name"] || !e["name"].IsScalar() || !valid_stage_name(e["name"].Scalar()))
      throw_input_error(at, ": stage ", i + 1,
                        ": key 'name' must be given, 1-64 characters of letters, digits, _ or -");
    const std::string name = e["name"].Scalar();
    if (!names.insert(name).second) throw_input_error(at, ": stage '", name, "': the name is used by an earlier stage");
    refuse_chain_keys(entry, source, name);

    std::vector<std::string> own_overrides;
    if (auto it = split.per_stage.find(name); it != split.per_stage.end()) {
      own_overrides = it->second;
      split.per_stage.erase(it);
    }
    if (stage_skipped(entry, own_overrides, source, name)) continue;

    YAML::Node changes(YAML::NodeType::Map);
    for (auto it = entry.begin(); it != entry.end(); ++it)
      if (it->first.Scalar() != "name" && it->first.Scalar() != kSkipKey) changes.force_insert(it->first, it->second);
    if (changes[kStagesKey]) throw_input_error(at, ": stage '", name, "': stages cannot nest");
    YAML::Node merged = merged_yaml(base, changes);
    yaml_assign(merged, "checkpoint.dir", YAML::Node(base_dir + "/" + name));
    if (!out.empty()) yaml_assign(merged, "model.init", YAML::Node(final_snapshot_path(out.back().config)));
    if (scalar_at(merged, "model.teacher", "").empty() && !base_init.empty())
      yaml_assign(merged, "model.teacher", YAML::Node(base_init));

    refuse_chain_overrides(own_overrides, name);
    std::vector<std::string> stage_overrides = for_every_stage;
    stage_overrides.insert(stage_overrides.end(), own_overrides.begin(), own_overrides.end());
    try {
      out.push_back({name, parse_experiment_root(merged, source, stage_overrides)});
      out.back().config.source = source + " (stage '" + name + "')";  // what later errors name
    } catch (const InputError& err) {
      throw_input_error("stage '", name, "': ", err.what());
    }
  }
  if (!split.per_stage.empty())
    throw_input_error("--set stages.", split.per_stage.begin()->first, ".*: ", source, " has no stage named '",
                      split.per_stage.begin()->first, "'");
  if (out.empty()) throw_input_error(source, ": every stage is skipped");
  return out;
}

std::vector<TrainingStage> load_training_stages(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_training_stages(read_config_file(path), path, overrides);
}

}  // namespace linspec::trainer
