// Native HDF5 checkpoints: read_checkpoint over an in-memory file image, what load_checkpoint does after opening
// the file (train, eval, export, linearize, info all load checkpoints through it): format attributes, /config JSON,
// every tensor dataset with size and checksum checks, the tokenizer; then the tensor listing info prints.
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "model/checkpoint.h"
#include "model/hdf5_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  h5::Handle file(fuzz::open_hdf5_image(data, size, "fuzz.h5"), H5Fclose);
  if (!file.valid()) return 0;  // not HDF5: load_checkpoint's "not an HDF5 file"
  fuzz::expect_input_errors_only([&] { read_checkpoint(file.get(), "fuzz.h5", /*verify_checksums=*/true); });
  fuzz::expect_input_errors_only([&] { list_tensor_group(file.get(), "model", "fuzz.h5"); });
  file.reset();
  fuzz::check_no_open_hdf5_objects();
  return 0;
}
