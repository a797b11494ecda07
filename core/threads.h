// CPU thread count for OpenMP loops and oneDNN (both use the same OpenMP runtime).
#pragma once

namespace linspec {
// n <= 0 keeps the default (OMP_NUM_THREADS, else all cores).
void set_num_threads(int n);
int num_threads();
}  // namespace linspec
