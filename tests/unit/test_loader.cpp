#include <gtest/gtest.h>

#include <set>

#include "data/loader.h"

using namespace linspec;

namespace {
TokenSplit counting_split(int n) {
  TokenSplit s;
  for (int i = 0; i < n; ++i) s.tokens.push_back(static_cast<uint32_t>(i));
  s.doc_offsets = {0};
  return s;
}
}  // namespace

TEST(WindowLoader, WindowsAreConsecutiveTokens) {
  TokenSplit s = counting_split(1000);
  WindowLoader l(s, 16, 0, 1, 7);
  Tensor b = l.next(3);
  ASSERT_EQ(b.shape(), (Shape{3, 17}));
  for (int r = 0; r < 3; ++r) {
    const int32_t* row = b.data<int32_t>() + r * 17;
    EXPECT_EQ(row[0] % 16, 0);  // windows start at multiples of seq_len
    for (int t = 1; t < 17; ++t) EXPECT_EQ(row[t], row[0] + t);
  }
}

TEST(WindowLoader, RanksAreDisjointAndCoverAnEpoch) {
  TokenSplit s = counting_split(16 * 40 + 1);  // 40 windows
  std::set<int32_t> seen;
  for (int rank = 0; rank < 4; ++rank) {
    WindowLoader l(s, 16, rank, 4, 3);
    EXPECT_EQ(l.windows_per_rank(), 10);
    Tensor b = l.next(10);
    for (int r = 0; r < 10; ++r) EXPECT_TRUE(seen.insert(b.data<int32_t>()[r * 17]).second) << "window reused";
  }
  EXPECT_EQ(seen.size(), 40u);
}

TEST(WindowLoader, ShuffleDiffersAcrossEpochsAndResumesExactly) {
  TokenSplit s = counting_split(16 * 50 + 1);
  WindowLoader a(s, 16, 0, 1, 11);
  auto e0 = a.next(50).to_vector<int32_t>();
  auto e1 = a.next(50).to_vector<int32_t>();
  EXPECT_NE(e0, e1);  // a fresh permutation each epoch
  a.next(7);
  LoaderState saved = a.state();
  auto expected = a.next(60).to_vector<int32_t>();
  WindowLoader b(s, 16, 0, 1, 11);
  b.restore(saved);
  EXPECT_EQ(b.next(60).to_vector<int32_t>(), expected);
}

TEST(WindowLoader, TooLittleDataIsAnInputError) {
  TokenSplit s = counting_split(10);
  EXPECT_THROW(WindowLoader(s, 16, 0, 1, 0), InputError);
}
