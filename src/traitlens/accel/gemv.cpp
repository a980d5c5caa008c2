// traitlens: weight-streaming products for one or a few rows on AVX-512 CPUs (see gemv.py).
// bf16_mv: out[r] = bfloat16(sum_j w[r, j] * x[j]), summed in float32 by the AVX512-BF16 dot
// product, four weight rows at a time. f32_rows: out[i, r] = sum_j w[r, j] * x[i, j] for up to
// eight rows of x, each weight row read once. Both prefetch weight rows a block ahead and split
// the weight rows over ATen's threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <cstdint>

namespace {

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }

inline __m512 dot(__m512 acc, const uint16_t* a, __m512bh x) {
  return _mm512_dpbf16_ps(acc, as_bh(_mm512_loadu_si512(a)), x);
}

at::Tensor bf16_mv(const at::Tensor& w, const at::Tensor& x) {
  TORCH_CHECK(w.dim() == 2 && x.dim() == 1, "bf16_mv: a matrix and a vector");
  TORCH_CHECK(w.scalar_type() == at::kBFloat16 && x.scalar_type() == at::kBFloat16, "bf16_mv: bfloat16 only");
  TORCH_CHECK(w.size(1) == x.size(0) && w.size(1) % 32 == 0, "bf16_mv: columns must match, a multiple of 32");
  TORCH_CHECK(w.device().is_cpu() && x.device().is_cpu(), "bf16_mv: CPU tensors only");
  const at::Tensor wc = w.contiguous(), xc = x.contiguous();
  const int64_t n = wc.size(0), k = wc.size(1);
  at::Tensor out = at::empty({n}, wc.options());
  const auto* W = reinterpret_cast<const uint16_t*>(wc.data_ptr<at::BFloat16>());
  const auto* X = reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>());
  at::BFloat16* O = out.data_ptr<at::BFloat16>();
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    int64_t r = begin;
    for (; r + 4 <= end; r += 4) {
      const uint16_t* a = W + r * k;
      const char* ahead = reinterpret_cast<const char*>(a + 8 * k);  // four rows, a block ahead
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
      for (int64_t j = 0; j < k; j += 32) {
        for (int64_t row = 0; row < 4; ++row) _mm_prefetch(ahead + 2 * (row * k + j), _MM_HINT_T0);
        const __m512bh v = as_bh(_mm512_loadu_si512(X + j));
        s0 = dot(s0, a + j, v);
        s1 = dot(s1, a + k + j, v);
        s2 = dot(s2, a + 2 * k + j, v);
        s3 = dot(s3, a + 3 * k + j, v);
      }
      O[r] = at::BFloat16(_mm512_reduce_add_ps(s0));
      O[r + 1] = at::BFloat16(_mm512_reduce_add_ps(s1));
      O[r + 2] = at::BFloat16(_mm512_reduce_add_ps(s2));
      O[r + 3] = at::BFloat16(_mm512_reduce_add_ps(s3));
    }
    for (; r < end; ++r) {
      __m512 s = _mm512_setzero_ps();
      for (int64_t j = 0; j < k; j += 32) s = dot(s, W + r * k + j, as_bh(_mm512_loadu_si512(X + j)));
      O[r] = at::BFloat16(_mm512_reduce_add_ps(s));
    }
  });
  return out;
}

template <int M>
void f32_rows_kernel(const float* W, const float* X, float* O, int64_t n, int64_t k) {
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* a = W + r * k;
      const char* ahead = reinterpret_cast<const char*>(a + 4 * k);  // a block of rows ahead
      __m512 s[M];
      for (int i = 0; i < M; ++i) s[i] = _mm512_setzero_ps();
      for (int64_t j = 0; j < k; j += 16) {
        _mm_prefetch(ahead + 4 * j, _MM_HINT_T0);
        const __m512 w = _mm512_loadu_ps(a + j);
        for (int i = 0; i < M; ++i) s[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(X + i * k + j), s[i]);
      }
      for (int i = 0; i < M; ++i) O[i * n + r] = _mm512_reduce_add_ps(s[i]);
    }
  });
}

at::Tensor f32_rows(const at::Tensor& w, const at::Tensor& x) {
  TORCH_CHECK(w.dim() == 2 && x.dim() == 2, "f32_rows: a matrix and rows");
  TORCH_CHECK(w.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat, "f32_rows: float32 only");
  TORCH_CHECK(w.size(1) == x.size(1) && w.size(1) % 16 == 0, "f32_rows: columns must match, a multiple of 16");
  TORCH_CHECK(x.size(0) >= 1 && x.size(0) <= 8, "f32_rows: one to eight rows");
  TORCH_CHECK(w.device().is_cpu() && x.device().is_cpu(), "f32_rows: CPU tensors only");
  const at::Tensor wc = w.contiguous(), xc = x.contiguous();
  const int64_t n = wc.size(0), k = wc.size(1), m = xc.size(0);
  at::Tensor out = at::empty({m, n}, wc.options());
  const float* W = wc.data_ptr<float>();
  const float* X = xc.data_ptr<float>();
  float* O = out.data_ptr<float>();
  switch (m) {
    case 1: f32_rows_kernel<1>(W, X, O, n, k); break;
    case 2: f32_rows_kernel<2>(W, X, O, n, k); break;
    case 3: f32_rows_kernel<3>(W, X, O, n, k); break;
    case 4: f32_rows_kernel<4>(W, X, O, n, k); break;
    case 5: f32_rows_kernel<5>(W, X, O, n, k); break;
    case 6: f32_rows_kernel<6>(W, X, O, n, k); break;
    case 7: f32_rows_kernel<7>(W, X, O, n, k); break;
    default: f32_rows_kernel<8>(W, X, O, n, k); break;
  }
  return out;
}

}  // namespace

TORCH_LIBRARY(traitlens_gemv, m) {
  m.def("bf16_mv(Tensor w, Tensor x) -> Tensor");
  m.def("f32_rows(Tensor w, Tensor x) -> Tensor");
}
TORCH_LIBRARY_IMPL(traitlens_gemv, CPU, m) {
  m.impl("bf16_mv", &bf16_mv);
  m.impl("f32_rows", &f32_rows);
}
