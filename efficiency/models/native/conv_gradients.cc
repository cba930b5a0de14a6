// Gradients of a 2D NHWC float32 convolution (HWIO kernel, no dilation, one group) for XLA:CPU.
//
// Built, loaded and called through XLA's FFI by efficiency/models/native_conv.py (`-O3
// -march=native`), from the custom gradient of its `conv`; why and how fast: its docstring and
// benchmarks/RESULTS.md. XLA:CPU 0.10 runs a kernel gradient as an Eigen convolution over x
// transposed to (C, H, W, N), and a strided layer's input gradient as a convolution of the
// zero-dilated output gradient (3/4 of its products multiply zeros). These loops read x, dy
// and the kernel as they lie:
//
//   KernelGradient: dw[i, j, ci, co] = sum_{n, oh, ow} x[n, oh*sh + i - pt, ow*sw + j - pl, ci]
//                                                     * dy[n, oh, ow, co]
//   InputGradient:  dx[n, ih, iw, ci] = sum over (i, j, oh, ow) with ih = oh*sh + i - pt and
//                                       iw = ow*sw + j - pl of sum_co dy[n, oh, ow, co] * k[i, j, ci, co]
//
// Taps that fall on padding contribute nothing. The work is split by image (the kernel
// gradient: by fixed runs of images, summed in order, so results repeat exactly) across XLA's
// intra-op thread pool; the calling thread takes work too and waits only for items another
// thread has started, so a busy pool cannot deadlock it. Vectors are L floats wide
// (L = 16 with AVX-512, 8 with AVX, else 4); KernelGradient needs C_out % L == 0,
// InputGradient C_in % L == 0 (the Python side checks `vector_width()` and falls back).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int L = 16, kRegisters = 32;
#elif defined(__AVX__)
constexpr int L = 8, kRegisters = 16;
#elif defined(__aarch64__)
constexpr int L = 4, kRegisters = 32;
#else
constexpr int L = 4, kRegisters = 16;
#endif
typedef float vec __attribute__((vector_size(4 * L)));
using Image4 = ffi::Buffer<ffi::F32, 4>;
using Result4 = ffi::ResultBuffer<ffi::F32, 4>;

inline vec load(const float* p) { vec v; std::memcpy(&v, p, sizeof v); return v; }
inline void add_to(float* p, vec v) { vec old = load(p); old += v; std::memcpy(p, &old, sizeof v); }

// Accumulator rows that leave registers for V vector loads and a broadcast.
constexpr int rows_for(int v) { return std::min(24, (kRegisters - v - 2) / v); }

struct Shape {
  int64_t n, h, w, ci, oh, ow, co, kh, kw, sh, sw, pt, pl;
  // The output positions [lo, hi) whose tap `t` reads input inside [0, size): position o reads
  // o*stride + t - pad. (C++ division truncates towards zero; these bounds need the floor.)
  static void valid(int64_t t, int64_t stride, int64_t pad, int64_t size, int64_t out, int64_t* lo,
                    int64_t* hi) {
    auto floor_div = [stride](int64_t a) { return a >= 0 ? a / stride : -((-a + stride - 1) / stride); };
    *lo = std::max<int64_t>(0, -floor_div(t - pad));
    *hi = std::min<int64_t>(out, floor_div(size - 1 - t + pad) + 1);
  }
};

// dw[i, j, ci0 .. ci0+R, co0 .. co0+V*L] += one image's sum over the positions of tap (i, j).
template <int R, int V>
void kernel_block(const Shape& s, const float* x, const float* dy, float* dw, int64_t i, int64_t j,
                  int64_t ci0, int64_t co0) {
  vec acc[R][V] = {};
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  Shape::valid(i, s.sh, s.pt, s.h, s.oh, &oh_lo, &oh_hi);
  Shape::valid(j, s.sw, s.pl, s.w, s.ow, &ow_lo, &ow_hi);
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    const float* x_row = x + (oh * s.sh + i - s.pt) * s.w * s.ci + ci0;
    const float* dy_row = dy + oh * s.ow * s.co + co0;
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      const float* xp = x_row + (ow * s.sw + j - s.pl) * s.ci;
      vec d[V];
      for (int v = 0; v < V; ++v) d[v] = load(dy_row + ow * s.co + L * v);
      for (int r = 0; r < R; ++r) {
        vec b = vec{} + xp[r];
        for (int v = 0; v < V; ++v) acc[r][v] += b * d[v];
      }
    }
  }
  float* out = dw + ((i * s.kw + j) * s.ci + ci0) * s.co + co0;
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) add_to(out + r * s.co + L * v, acc[r][v]);
}

// Rows ci0 .. ci0 + left (left < R) of the columns co0 .. co0 + V*L.
template <int V, int R>
void kernel_tail(const Shape& s, const float* x, const float* dy, float* dw, int64_t i, int64_t j,
                 int64_t ci0, int64_t co0, int64_t left) {
  if constexpr (R > 0) {
    if (left == R) return kernel_block<R, V>(s, x, dy, dw, i, j, ci0, co0);
    kernel_tail<V, R - 1>(s, x, dy, dw, i, j, ci0, co0, left);
  }
}

template <int V>
void kernel_columns(const Shape& s, const float* x, const float* dy, float* dw, int64_t i, int64_t j,
                    int64_t co0) {
  constexpr int R = rows_for(V);
  int64_t ci0 = 0;
  for (; ci0 + R <= s.ci; ci0 += R) kernel_block<R, V>(s, x, dy, dw, i, j, ci0, co0);
  kernel_tail<V, R - 1>(s, x, dy, dw, i, j, ci0, co0, s.ci - ci0);
}

void kernel_gradient_image(const Shape& s, const float* x, const float* dy, float* dw) {
  for (int64_t i = 0; i < s.kh; ++i)
    for (int64_t j = 0; j < s.kw; ++j) {
      int64_t co0 = 0;
      for (; co0 + 4 * L <= s.co; co0 += 4 * L) kernel_columns<4>(s, x, dy, dw, i, j, co0);
      for (; co0 + 2 * L <= s.co; co0 += 2 * L) kernel_columns<2>(s, x, dy, dw, i, j, co0);
      for (; co0 < s.co; co0 += L) kernel_columns<1>(s, x, dy, dw, i, j, co0);
    }
}

// dx[row, ow0 .. ow0+R taps, ci0 .. ci0+V*L] += dy[R positions] @ kt (kt: this tap as (co, ci)).
template <int R, int V>
void input_block(const Shape& s, const float* dy_row, const float* kt, float* dx_row, int64_t ow0,
                 int64_t j, int64_t ci0) {
  vec acc[R][V] = {};
  const float* dp = dy_row + ow0 * s.co;
  for (int64_t co = 0; co < s.co; ++co) {
    vec k[V];
    for (int v = 0; v < V; ++v) k[v] = load(kt + co * s.ci + ci0 + L * v);
    for (int r = 0; r < R; ++r) {
      vec b = vec{} + dp[r * s.co + co];
      for (int v = 0; v < V; ++v) acc[r][v] += b * k[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    float* out = dx_row + ((ow0 + r) * s.sw + j - s.pl) * s.ci + ci0;
    for (int v = 0; v < V; ++v) add_to(out + L * v, acc[r][v]);
  }
}

template <int V>
void input_row(const Shape& s, const float* dy_row, const float* kt, float* dx_row, int64_t ow_lo,
               int64_t ow_hi, int64_t j, int64_t ci0) {
  constexpr int R = rows_for(V);
  int64_t ow = ow_lo;
  for (; ow + R <= ow_hi; ow += R) input_block<R, V>(s, dy_row, kt, dx_row, ow, j, ci0);
  for (; ow < ow_hi; ++ow) input_block<1, V>(s, dy_row, kt, dx_row, ow, j, ci0);
}

void input_gradient_image(const Shape& s, const float* dy, const float* kt, float* dx) {
  std::memset(dx, 0, sizeof(float) * s.h * s.w * s.ci);
  for (int64_t i = 0; i < s.kh; ++i)
    for (int64_t j = 0; j < s.kw; ++j) {
      int64_t oh_lo, oh_hi, ow_lo, ow_hi;
      Shape::valid(i, s.sh, s.pt, s.h, s.oh, &oh_lo, &oh_hi);
      Shape::valid(j, s.sw, s.pl, s.w, s.ow, &ow_lo, &ow_hi);
      const float* tap = kt + (i * s.kw + j) * s.co * s.ci;
      for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
        const float* dy_row = dy + oh * s.ow * s.co;
        float* dx_row = dx + (oh * s.sh + i - s.pt) * s.w * s.ci;
        int64_t ci0 = 0;
        for (; ci0 + 4 * L <= s.ci; ci0 += 4 * L) input_row<4>(s, dy_row, tap, dx_row, ow_lo, ow_hi, j, ci0);
        for (; ci0 + 2 * L <= s.ci; ci0 += 2 * L) input_row<2>(s, dy_row, tap, dx_row, ow_lo, ow_hi, j, ci0);
        for (; ci0 < s.ci; ci0 += L) input_row<1>(s, dy_row, tap, dx_row, ow_lo, ow_hi, j, ci0);
      }
    }
}

// Items (images, or runs of images) handed out one at a time to whichever thread asks next.
struct WorkQueue {
  int64_t count = 0;
  std::atomic<int64_t> next{0}, done{0};
  template <typename F>
  void take_all(F&& one_image) {
    for (int64_t n; (n = next.fetch_add(1)) < count;) {
      one_image(n);
      done.fetch_add(1, std::memory_order_release);
    }
  }
  void wait() const {
    while (done.load(std::memory_order_acquire) < count) std::this_thread::yield();
  }
};

// The batch in `chunks` runs of images; each run sums into its own copy of dw (run 0 into dw
// itself), added up in run order at the end, so the result does not depend on which thread
// took which run.
struct KernelWork {
  Shape s;
  const float* x;
  const float* dy;
  float* dw;
  int64_t size;                      // entries of dw
  std::unique_ptr<float[]> partial;  // runs 1 .. chunks-1
  WorkQueue runs;
  void run() {
    runs.take_all([&](int64_t c) {
      float* sum = c == 0 ? dw : partial.get() + (c - 1) * size;
      std::memset(sum, 0, sizeof(float) * size);
      for (int64_t n = c * s.n / runs.count; n < (c + 1) * s.n / runs.count; ++n)
        kernel_gradient_image(s, x + n * s.h * s.w * s.ci, dy + n * s.oh * s.ow * s.co, sum);
    });
  }
};

struct InputWork {
  Shape s;
  const float* dy;
  std::vector<float> kt;  // the kernel as (kh, kw, co, ci)
  float* dx;
  WorkQueue images;
  void run() {
    images.take_all([&](int64_t n) {
      input_gradient_image(s, dy + n * s.oh * s.ow * s.co, kt.data(), dx + n * s.h * s.w * s.ci);
    });
  }
};

int64_t helpers(ffi::ThreadPool& pool, int64_t images) {
  return std::max<int64_t>(0, std::min<int64_t>(pool.num_threads(), images) - 1);
}

ffi::Error KernelGradientImpl(ffi::ThreadPool pool, Image4 x, Image4 dy, Result4 dw,
                              int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  auto xd = x.dimensions(), dyd = dy.dimensions(), wd = dw->dimensions();
  if (dyd[3] % L != 0) return ffi::Error::InvalidArgument("C_out is not a multiple of the vector width");
  if (xd[0] == 0) {   // an empty batch: no run would zero dw
    std::memset(dw->typed_data(), 0, sizeof(float) * wd[0] * wd[1] * wd[2] * wd[3]);
    return ffi::Error::Success();
  }
  auto work = std::make_shared<KernelWork>();
  work->s = Shape{xd[0], xd[1], xd[2], xd[3], dyd[1], dyd[2], dyd[3], wd[0], wd[1], sh, sw, pt, pl};
  work->x = x.typed_data();
  work->dy = dy.typed_data();
  work->dw = dw->typed_data();
  work->size = wd[0] * wd[1] * wd[2] * wd[3];
  // Two runs per thread balance the load; copies of dw are held under 64 MiB.
  int64_t threads = std::max<int64_t>(1, pool.num_threads());
  int64_t affordable = std::max<int64_t>(1, (int64_t{64} << 20) / (sizeof(float) * work->size));
  work->runs.count = std::min({xd[0], 2 * threads, affordable});
  work->partial.reset(new float[std::max<int64_t>(1, (work->runs.count - 1) * work->size)]);
  for (int64_t t = 0, extra = helpers(pool, work->runs.count); t < extra; ++t)
    pool.Schedule([work] { work->run(); });
  work->run();
  work->runs.wait();
  for (int64_t c = 1; c < work->runs.count; ++c) {
    const float* p = work->partial.get() + (c - 1) * work->size;
    for (int64_t e = 0; e < work->size; ++e) work->dw[e] += p[e];
  }
  return ffi::Error::Success();
}

ffi::Error InputGradientImpl(ffi::ThreadPool pool, Image4 dy, Image4 kernel, Result4 dx,
                             int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  auto xd = dx->dimensions(), dyd = dy.dimensions(), wd = kernel.dimensions();
  if (xd[3] % L != 0) return ffi::Error::InvalidArgument("C_in is not a multiple of the vector width");
  auto work = std::make_shared<InputWork>();
  Shape s{xd[0], xd[1], xd[2], xd[3], dyd[1], dyd[2], dyd[3], wd[0], wd[1], sh, sw, pt, pl};
  work->s = s;
  work->dy = dy.typed_data();
  work->dx = dx->typed_data();
  work->kt.resize(s.kh * s.kw * s.ci * s.co);
  const float* k = kernel.typed_data();
  for (int64_t t = 0; t < s.kh * s.kw; ++t)
    for (int64_t ci = 0; ci < s.ci; ++ci)
      for (int64_t co = 0; co < s.co; ++co) work->kt[(t * s.co + co) * s.ci + ci] = k[(t * s.ci + ci) * s.co + co];
  work->images.count = s.n;
  for (int64_t t = 0, extra = helpers(pool, s.n); t < extra; ++t) pool.Schedule([work] { work->run(); });
  work->run();
  work->images.wait();
  return ffi::Error::Success();
}

}  // namespace

extern "C" int efficiency_vector_width() { return L; }

// Both take two rank-4 float32 arrays and the strides and low pads, and may use the thread pool.
static auto Signature() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<Image4>()
      .Arg<Image4>()
      .Ret<Image4>()
      .Attr<int64_t>("sh")
      .Attr<int64_t>("sw")
      .Attr<int64_t>("pt")
      .Attr<int64_t>("pl");
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(KernelGradient, KernelGradientImpl, Signature());
XLA_FFI_DEFINE_HANDLER_SYMBOL(InputGradient, InputGradientImpl, Signature());
