// CUDA attention kernels vs their CPU twins, one table entry per kernel family: causal flash attention (forward and
// backward, GQA, S > T), the aug chunked linear attention (group states, forward with branch outputs, backward with
// the conv and lambda gradients) over group sizes below, equal to and above the GPU tile, partial groups and branch
// subsets, the L2 normalisation, and the recurrent decode step with prefill. Skips with a message without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/cuda_test_util.h"

#ifdef LINSPEC_WITH_CUDA
#endif

using namespace linspec;
using namespace linspec::cuda_test;

namespace {

#ifdef LINSPEC_WITH_CUDA
namespace gpu = kernels::cuda;

// ---- causal flash attention ----

template <typename T>
void attention_case() {
  struct Cfg {
    int64_t b, hq, hkv, t, s, d;
  };
  const Cfg cfgs[] = {{2, 4, 2, 70, 70, 32}, {1, 2, 1, 50, 83, 64}, {1, 3, 3, 130, 130, 128}, {1, 2, 2, 5, 5, 8}};
  Philox rng(71);
  for (const Cfg& c : cfgs) {
    kernels::AttentionDims dm;
    dm.batch = c.b, dm.heads_q = c.hq, dm.heads_kv = c.hkv, dm.t = c.t, dm.s = c.s, dm.d = c.d;
    dm.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    const std::string tag = " T=" + std::to_string(c.t) + " S=" + std::to_string(c.s) + " d=" + std::to_string(c.d);
    const int64_t nq = c.b * c.hq * c.t * c.d, nkv = c.b * c.hkv * c.s * c.d, rows = c.b * c.hq * c.t;
    auto q = random_vector<T>(nq, rng), k = random_vector<T>(nkv, rng), v = random_vector<T>(nkv, rng);
    auto dout = random_vector<T>(nq, rng);
    std::vector<T> out(nq), lse(rows), dq(nq), dk(nkv), dv(nkv);
    kcpu<T>().attention.causal_forward(dm, q.data(), k.data(), v.data(), out.data(), lse.data());
    kcpu<T>().attention.causal_backward(dm, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), dq.data(),
                                   dk.data(), dv.data());
    Dev<T> gq(q), gk(k), gv(v), gdout(dout), gout(nq), glse(rows), gdq(nq), gdk(nkv), gdv(nkv);
    kgpu<T>().attention.causal_forward(dm, gq.get(), gk.get(), gv.get(), gout.get(), glse.get());
    expect_close("attention out" + tag, out, gout.host(), tolerance<T>());
    expect_close("attention lse" + tag, lse, glse.host(), tolerance<T>());
    kgpu<T>().attention.causal_backward(dm, gq.get(), gk.get(), gv.get(), gout.get(), glse.get(), gdout.get(), gdq.get(),
                                   gdk.get(), gdv.get());
    expect_close("attention dq" + tag, dq, gdq.host(), tolerance<T>() * 10);
    expect_close("attention dk" + tag, dk, gdk.host(), tolerance<T>() * 10);
    expect_close("attention dv" + tag, dv, gdv.host(), tolerance<T>() * 10);
  }
}

// ---- aug chunked linear attention ----

struct AugCfg {
  int64_t b, hq, hkv, t, d, g, c;
  kernels::AugBranches br;
};

std::string describe(const AugCfg& c) {
  return " T=" + std::to_string(c.t) + " d=" + std::to_string(c.d) + " G=" + std::to_string(c.g) +
         " C=" + std::to_string(c.c) + " branches=" + std::to_string(c.br.local) + std::to_string(c.br.global) +
         std::to_string(c.br.conv);
}

const AugCfg kAugCfgs[] = {
    {1, 2, 1, 150, 32, 64, 32, {true, true, true}},   // partial last group, GQA
    {2, 2, 2, 50, 16, 16, 4, {true, true, true}},     // groups smaller than the GPU tile
    {1, 2, 1, 230, 64, 100, 8, {true, true, true}},   // groups larger than the tile, not a multiple of it
    {1, 1, 1, 70, 128, 64, 32, {true, true, true}},   // head_dim at the kernel limit
    {1, 4, 2, 90, 24, 32, 5, {true, false, false}},   // local only
    {1, 4, 2, 90, 24, 32, 5, {false, true, false}},   // global only
    {1, 4, 2, 90, 24, 32, 5, {false, false, true}},   // conv only
    {1, 4, 2, 90, 24, 32, 5, {true, false, true}},    // local + conv
    {1, 2, 2, 20, 8, 64, 40, {true, true, true}},     // one partial group, more taps than tokens
};

template <typename T>
void aug_parallel_case() {
  Philox rng(81);
  for (const AugCfg& c : kAugCfgs)
  for (bool mean : {false, true}) {
    if (mean && !c.br.global) continue;
    kernels::AugDims dm;
    dm.batch = c.b, dm.q_heads = c.hq, dm.kv_heads = c.hkv, dm.seq = c.t, dm.head_dim = c.d, dm.group = c.g;
    dm.taps = c.c;
    dm.global_mean = mean;
    const std::string tag = describe(c) + (mean ? " global_mean" : "");
    const int64_t nq = c.b * c.hq * c.t * c.d, nkv = c.b * c.hkv * c.t * c.d;
    const int64_t ns = c.b * c.hkv * dm.groups() * c.d * c.d;
    auto q = random_vector<T>(nq, rng), k = random_vector<T>(nkv, rng), v = random_vector<T>(nkv, rng);
    auto w = random_vector<T>(c.hq * c.c, rng, 0.2), dout = random_vector<T>(nq, rng);
    const T ll = T(0.8), lg = T(0.6);
    std::vector<T> states(ns), out(nq), loc(nq), glob(nq), conv(nq), dq(nq), dk(nkv), dv(nkv), dw(c.hq * c.c);
    T dll = 0, dlg = 0;
    Dev<T> gq(q), gk(k), gv(v), gw(w), gdout(dout), gstates(ns), gout(nq), gloc(nq), gglob(nq), gconv(nq), gdq(nq),
        gdk(nkv), gdv(nkv), gdw(w.size()), gdll(1), gdlg(1), gll(std::vector<T>{ll}), glg(std::vector<T>{lg});
    if (c.br.global) {
      kcpu<T>().aug.group_states(dm, k.data(), v.data(), states.data());
      kgpu<T>().aug.group_states(dm, gk.get(), gv.get(), gstates.get());
      expect_close("aug_group_states" + tag, states, gstates.host(), tolerance<T>() * 5);
    }
    const T* cs = c.br.global ? states.data() : nullptr;
    const T* gs = c.br.global ? gstates.get() : nullptr;
    kcpu<T>().aug.forward(dm, c.br, q.data(), k.data(), v.data(), cs, w.data(), &ll, &lg, out.data(), loc.data(),
                     glob.data(), conv.data());
    kgpu<T>().aug.forward(dm, c.br, gq.get(), gk.get(), gv.get(), gs, gw.get(), gll.get(), glg.get(), gout.get(), gloc.get(),
                     gglob.get(), gconv.get());
    expect_close("aug_forward out" + tag, out, gout.host(), tolerance<T>() * 5);
    expect_close("aug_forward local" + tag, loc, gloc.host(), tolerance<T>() * 5);
    expect_close("aug_forward global" + tag, glob, gglob.host(), tolerance<T>() * 5);
    expect_close("aug_forward conv" + tag, conv, gconv.host(), tolerance<T>() * 5);

    kcpu<T>().aug.backward(dm, c.br, q.data(), k.data(), v.data(), cs, w.data(), &ll, &lg, dout.data(), dq.data(),
                      dk.data(), dv.data(), dw.data(), &dll, &dlg);
    kgpu<T>().aug.backward(dm, c.br, gq.get(), gk.get(), gv.get(), gs, gw.get(), gll.get(), glg.get(), gdout.get(), gdq.get(),
                      gdk.get(), gdv.get(), gdw.get(), gdll.get(), gdlg.get());
    expect_close("aug_backward dq" + tag, dq, gdq.host(), tolerance<T>() * 20);
    expect_close("aug_backward dk" + tag, dk, gdk.host(), tolerance<T>() * 20);
    expect_close("aug_backward dv" + tag, dv, gdv.host(), tolerance<T>() * 20);
    expect_close("aug_backward dconv_w" + tag, dw, gdw.host(), tolerance<T>() * 20);
    expect_close_scalar("aug_backward dlambda_local" + tag, dll, gdll.scalar(), tolerance<T>() * 20);
    expect_close_scalar("aug_backward dlambda_global" + tag, dlg, gdlg.scalar(), tolerance<T>() * 20);
  }
}

template <typename T>
void l2_normalize_case() {
  Philox rng(82);
  const int64_t rows = 77, d = 48;
  auto x = random_vector<T>(rows * d, rng);
  for (int64_t j = 0; j < d; ++j) x[5 * d + j] = 0;  // a zero row stays finite thanks to eps
  std::vector<T> xhat(x.size()), rinv(rows);
  Dev<T> gx(x), gxhat(x.size()), grinv(rows);
  kcpu<T>().aug.l2_normalize_rows(x.data(), xhat.data(), rinv.data(), rows, d, T(1e-6));
  kgpu<T>().aug.l2_normalize_rows(gx.get(), gxhat.get(), grinv.get(), rows, d, T(1e-6));
  expect_close("l2_normalize_rows xhat", xhat, gxhat.host(), tolerance<T>());
  expect_close("l2_normalize_rows rinv", rinv, grinv.host(), tolerance<T>());
}

// The decode / tree cases' shape: GQA 2:1, d = 32, groups of 8, 5 conv taps, all three branches.
kernels::AugDims small_decode_dims(bool global_mean) {
  kernels::AugDims dm;
  dm.batch = 2, dm.q_heads = 4, dm.kv_heads = 2, dm.head_dim = 32, dm.group = 8, dm.taps = 5;
  dm.global_mean = global_mean;
  return dm;
}

// `rows` random unit rows of d (the decode and tree kernels take normalised q̂, k̂).
template <typename T>
std::vector<T> normalized_rows(int64_t rows, int64_t d, Philox& rng) {
  auto x = random_vector<T>(rows * d, rng);
  std::vector<T> xhat(x.size()), rinv(rows);
  kcpu<T>().aug.l2_normalize_rows(x.data(), xhat.data(), rinv.data(), rows, d, T(1e-6));
  return xhat;
}

// A decode state on the host and its twin on the GPU, both empty at position 0 (all branches on).
template <typename T>
struct TwinAugState {
  std::vector<T> S, bk, bv, hist;
  Dev<T> gS, gbk, gbv, ghist;
  kernels::AugStateRef<T> cs, gs;
  explicit TwinAugState(const kernels::AugDims& dm)
      : S(dm.batch * dm.kv_heads * dm.head_dim * dm.head_dim, 0),
        bk(dm.batch * dm.kv_heads * dm.group * dm.head_dim, 0),
        bv(bk.size(), 0),
        hist(dm.batch * dm.kv_heads * (dm.taps - 1) * dm.head_dim, 0),
        gS(S),
        gbk(bk),
        gbv(bv),
        ghist(hist),
        cs{S.data(), bk.data(), bv.data(), hist.data(), 0},
        gs{gS.get(), gbk.get(), gbv.get(), ghist.get(), 0} {}
  // Absorbs n random tokens into both (the prefill path).
  void prefill(const kernels::AugDims& dm, int64_t n, Philox& rng) {
    if (n == 0) return;
    auto pk = normalized_rows<T>(dm.batch * dm.kv_heads * n, dm.head_dim, rng);
    auto pv = random_vector<T>(pk.size(), rng);
    Dev<T> gpk(pk), gpv(pv);
    kcpu<T>().aug.absorb(dm, {true, true, true}, cs, pk.data(), pv.data(), n);
    kgpu<T>().aug.absorb(dm, {true, true, true}, gs, gpk.get(), gpv.get(), n);
    cs.pos += n, gs.pos += n;
  }
};

// Prefill by aug_absorb across a group boundary, then decode steps through three more group completions; outputs at
// every step and the final state must agree.
template <typename T>
void aug_decode_case(bool global_mean) {
  Philox rng(83);
  kernels::AugDims dm = small_decode_dims(global_mean);
  const kernels::AugBranches br{true, true, true};
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, d = dm.head_dim, steps = 27;
  TwinAugState<T> st(dm);
  auto& [S, bk, bv, hist, gS, gbk, gbv, ghist, cs, gs] = st;
  auto w = random_vector<T>(Hq * dm.taps, rng, 0.3);
  Dev<T> gw(w);
  auto normalized = [&](int64_t rows) { return normalized_rows<T>(rows, d, rng); };
  st.prefill(dm, 11, rng);

  for (int64_t step = 0; step < steps; ++step) {
    auto q = normalized(B * Hq), k = normalized(B * Hkv);
    auto v = random_vector<T>(k.size(), rng);
    std::vector<T> out(B * Hq * d);
    const std::vector<T> lambdas{T(0.9), T(0.7)};
    Dev<T> gq(q), gk(k), gv(v), gout(out.size()), glambdas(lambdas);
    kcpu<T>().aug.decode_step(dm, br, cs, q.data(), k.data(), v.data(), w.data(), &lambdas[0], &lambdas[1], out.data());
    kgpu<T>().aug.decode_step(dm, br, gs, gq.get(), gk.get(), gv.get(), gw.get(), glambdas.get(), glambdas.get() + 1,
                              gout.get());
    expect_close("aug_decode_step out at pos " + std::to_string(cs.pos), out, gout.host(), tolerance<T>() * 5);
    ++cs.pos, ++gs.pos;
  }
  expect_close("decode state S", S, gS.host(), tolerance<T>() * 5);
  expect_close("decode state buf_k", bk, gbk.host(), 0.0);
  expect_close("decode state buf_v", bv, gbv.host(), 0.0);
  expect_close("decode state hist_v", hist, ghist.host(), 0.0);
}

// Tree verification over committed prefixes that end at, just before and just after group boundaries (and shorter
// than the conv history), with a chain that crosses two boundaries and a bushy part: every node's output agrees.
template <typename T>
void aug_tree_case(bool global_mean) {
  Philox rng(84);
  kernels::AugDims dm = small_decode_dims(global_mean);
  const kernels::AugBranches br{true, true, true};
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, d = dm.head_dim;
  const std::vector<int32_t> parent = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, 11, 11, 0, 14, 2};
  const int64_t N = static_cast<int64_t>(parent.size());
  dm.seq = N;
  auto normalized = [&](int64_t rows) { return normalized_rows<T>(rows, d, rng); };
  auto w = random_vector<T>(Hq * dm.taps, rng, 0.3);
  const std::vector<T> lambdas{T(0.9), T(0.7)};
  Dev<T> gw(w), glambdas(lambdas);
  Dev<int32_t> gparent(parent);
  for (int64_t P : {0, 2, 7, 8, 13, 16}) {
    TwinAugState<T> st(dm);
    st.prefill(dm, P, rng);
    const auto& cs = st.cs;
    const auto& gs = st.gs;
    auto q = normalized(B * Hq * N), k = normalized(B * Hkv * N);
    auto v = random_vector<T>(k.size(), rng);
    std::vector<T> out(q.size());
    Dev<T> gq(q), gk(k), gv(v), gout(q.size());
    kcpu<T>().aug.tree_forward(dm, br, cs, parent.data(), q.data(), k.data(), v.data(), w.data(), &lambdas[0],
                               &lambdas[1], out.data());
    kgpu<T>().aug.tree_forward(dm, br, gs, gparent.get(), gq.get(), gk.get(), gv.get(), gw.get(), glambdas.get(),
                               glambdas.get() + 1, gout.get());
    expect_close("aug_tree_forward at P " + std::to_string(P), out, gout.host(), tolerance<T>() * 5);
  }
}
#endif  // LINSPEC_WITH_CUDA

std::vector<OpCase> cases() {
  return {
      LINSPEC_CUDA_CASE("causal_attention_f32", attention_case<float>),
      LINSPEC_CUDA_CASE("causal_attention_f64", attention_case<double>),
      LINSPEC_CUDA_CASE("aug_parallel_f32", aug_parallel_case<float>),
      LINSPEC_CUDA_CASE("aug_parallel_f64", aug_parallel_case<double>),
      LINSPEC_CUDA_CASE("l2_normalize_f32", l2_normalize_case<float>),
      LINSPEC_CUDA_CASE("aug_decode_f32", [] { aug_decode_case<float>(false); }),
      LINSPEC_CUDA_CASE("aug_decode_f64", [] { aug_decode_case<double>(false); }),
      LINSPEC_CUDA_CASE("aug_decode_global_mean_f64", [] { aug_decode_case<double>(true); }),
      LINSPEC_CUDA_CASE("aug_tree_f32", [] { aug_tree_case<float>(false); }),
      LINSPEC_CUDA_CASE("aug_tree_global_mean_f64", [] { aug_tree_case<double>(true); }),
  };
}

class CudaAttentionOps : public ::testing::TestWithParam<OpCase> {};

TEST_P(CudaAttentionOps, MatchesCpu) {
  LINSPEC_REQUIRE_GPU();
  GetParam().run();
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaAttentionOps, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; });

}  // namespace
