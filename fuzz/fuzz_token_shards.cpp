// Token shard files (`linspec prepare` output): read_token_shards over an in-memory file image, what
// load_token_shards does after opening the file (train and eval), then the vocabulary check eval and train run.
#include <cstdint>

#include "data/token_shards.h"
#include "fuzz/fuzz_support.h"
#include "model/hdf5_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  h5::Handle file(fuzz::open_hdf5_image(data, size, "fuzz_tokens.h5"), H5Fclose);
  if (!file.valid()) return 0;  // not HDF5: load_token_shards' "not an HDF5 file"
  fuzz::expect_input_errors_only([&] {
    const TokenShards shards = read_token_shards(file.get(), "fuzz_tokens.h5");
    check_token_ids(shards, 300, "fuzz_tokens.h5");
  });
  file.reset();
  fuzz::check_no_open_hdf5_objects();
  return 0;
}
