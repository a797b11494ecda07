#include "serve/serving_checkpoint.h"

#include "core/error.h"
#include "model/hdf5_util.h"
#include "model/lora.h"

namespace linspec {
namespace {

// The speculative-decoding parts a serving checkpoint keeps (model/draft_heads.h, model/draft_model.h).
const char* const kDraftGroups[] = {"draft/heads", "draft/model", "draft/eagle"};

void copy_verified_group(H5Handle src, H5Handle dst, const std::string& group, const std::string& source) {
  read_tensor_group(src, group, source, /*verify_checksums=*/true);  // throws naming the file and tensor
  h5::Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  if (H5Ocopy(src, group.c_str(), dst, group.c_str(), H5P_DEFAULT, lcpl.get()) < 0)
    throw_input_error(source, ": cannot copy /", group, " into ", h5::file_name(dst));
}

}  // namespace

Checkpoint load_serving_checkpoint(const std::string& path, int* merged_adapters) {
  Checkpoint ck = load_checkpoint(path, /*verify_checksums=*/true);
  auto lora = ck.extra_attrs.find("lora");
  const int merged = merge_lora_tensors(ck.tensors, lora == ck.extra_attrs.end() ? "" : lora->second, path);
  if (lora != ck.extra_attrs.end()) ck.extra_attrs.erase(lora);
  if (merged_adapters) *merged_adapters = merged;
  return ck;
}

void write_serving_checkpoint(const Checkpoint& model, const std::string& source, const std::string& out) {
  write_hdf5_atomically(out, [&](H5Handle dst) {
    write_checkpoint_contents(dst, model);
    with_hdf5_file(source, [&](H5Handle src) {
      for (const char* group : kDraftGroups)
        if (h5::has_link(src, group)) copy_verified_group(src, dst, group, source);
    });
  });
}

}  // namespace linspec
