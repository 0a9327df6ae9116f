// TMA descriptors on a GPU: a tiled 2-D tile copy (cp.async.bulk.tensor load and store) at
// shapes with ragged edges, descriptor reuse across calls, and an im2col descriptor feeding a
// small convolution.
#include <thread>

#include "cuda/tma.h"
#include "gpu/gpu_support.h"

namespace tilejit {
namespace {

using namespace gpu_test;

bool has_tma() {
  return device().cc_major >= 9;
}

TmaDescriptor tile_descriptor(std::string name, std::string buffer) {
  TmaDescriptor d;
  d.name = std::move(name);
  d.buffer = std::move(buffer);
  d.rank = 2;
  d.box_dims = {32, 32};
  return d;
}

TEST(GpuTma, TiledTileCopyAtRaggedShapes) {
  TILEJIT_REQUIRE_GPU();
  if (!has_tma()) GTEST_SKIP() << "TMA needs sm_90; device is " << device_arch();
  Program program = ProgramBuilder("tma_tile_copy")
                        .source(kernel_source("tma_tile_copy.cu"))
                        .tensor("in", "float32", {"M", "N"})
                        .tensor("out", "float32", {"M", "N"})
                        .tma(tile_descriptor("in_desc", "in"))
                        .tma(tile_descriptor("out_desc", "out"))
                        .launch(Launch("tma_tile_copy")
                                    .with_grid({"ceildiv(N, 32)", "ceildiv(M, 32)"})
                                    .with_block({128}))
                        .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  // N is a multiple of 4 (TMA needs 16-byte row strides); M and N are otherwise ragged.
  for (auto [M, N] :
       {std::pair<int64_t, int64_t>{32, 32}, {1, 4}, {100, 68}, {257, 132}, {33, 1000}}) {
    std::vector<float> in = random_floats(static_cast<size_t>(M * N));
    Tensor In = to_device(in, {M, N}, f32);
    // Twice into fresh outputs: the second call reuses the cached descriptor of `in`.
    for (int repeat = 0; repeat < 2; ++repeat) {
      Tensor Out = poisoned(f32, {M, N});
      kernel({In, Out});
      std::vector<float> out = to_host<float>(Out);
      for (int64_t i = 0; i < M * N; ++i) {
        ASSERT_EQ(out[i], 2.0f * in[i] + 1.0f)
            << "M=" << M << " N=" << N << " i=" << i << " repeat=" << repeat;
      }
    }
  }
}

// Two launches take the same two descriptors: each is encoded once per call, and not at all
// on a later call with the same buffers; a new output buffer re-encodes only its descriptor.
TEST(GpuTma, DescriptorsAreEncodedOncePerCallAndReusedAcrossCalls) {
  TILEJIT_REQUIRE_GPU();
  TILEJIT_REQUIRE_NVRTC_BACKEND();  // counts nvrtc's encodes
  if (!has_tma()) GTEST_SKIP() << "TMA needs sm_90";
  Launch copy =
      Launch("tma_tile_copy").with_grid({"ceildiv(N, 32)", "ceildiv(M, 32)"}).with_block({128});
  Program program = ProgramBuilder("tma_twice")
                        .source(kernel_source("tma_tile_copy.cu"))
                        .tensor("in", "float32", {"M", "N"})
                        .tensor("out", "float32", {"M", "N"})
                        .tma(tile_descriptor("in_desc", "in"))
                        .tma(tile_descriptor("out_desc", "out"))
                        .launch(copy)
                        .launch(copy)
                        .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  const int64_t M = 70, N = 52;
  std::vector<float> in = random_floats(static_cast<size_t>(M * N));
  Tensor In = to_device(in, {M, N}, f32);
  Tensor Out = poisoned(f32, {M, N});
  uint64_t before = cuda::tma_encode_count();
  kernel({In, Out});
  EXPECT_EQ(cuda::tma_encode_count() - before, 2u) << "two descriptors, two launches, one call";
  kernel({In, Out});
  EXPECT_EQ(cuda::tma_encode_count() - before, 2u) << "same buffers: both maps reused";
  Tensor Out2 = poisoned(f32, {M, N});
  kernel({In, Out2});
  EXPECT_EQ(cuda::tma_encode_count() - before, 3u) << "a new output: only out_desc re-encoded";
  for (const Tensor* t : {&Out, &Out2}) {
    std::vector<float> out = to_host<float>(*t);
    for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(out[i], 2.0f * in[i] + 1.0f) << i;
  }
}

TEST(GpuTma, MisalignedRowStrideIsRefusedBeforeTheDriver) {
  TILEJIT_REQUIRE_GPU();
  if (!has_tma()) GTEST_SKIP() << "TMA needs sm_90";
  Program program = ProgramBuilder("tma_tile_copy")
                        .source(kernel_source("tma_tile_copy.cu"))
                        .tensor("in", "float32", {"M", "N"})
                        .tensor("out", "float32", {"M", "N"})
                        .tma(tile_descriptor("in_desc", "in"))
                        .tma(tile_descriptor("out_desc", "out"))
                        .launch(Launch("tma_tile_copy")
                                    .with_grid({"ceildiv(N, 32)", "ceildiv(M, 32)"})
                                    .with_block({128}))
                        .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  Tensor In = poisoned(f32, {10, 7});  // 28-byte rows
  Tensor Out = poisoned(f32, {10, 7});
  if (!testing_nvrtc()) {
    EXPECT_THROW(kernel({In, Out}), Error);
    return;
  }
  try {
    kernel({In, Out});
    FAIL() << "encoded a 28-byte row stride";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("in_desc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("global_strides[0]"), std::string::npos) << e.what();
  }
}

// Threads calling one Kernel with their own buffers race on the descriptor cache (a seqlock
// with a try-lock publisher): every call must still get the map of its own buffers.
TEST(GpuTma, ConcurrentCallsWithDifferentBuffers) {
  TILEJIT_REQUIRE_GPU();
  if (!has_tma()) GTEST_SKIP() << "TMA needs sm_90";
  Program program = ProgramBuilder("tma_tile_copy")
                        .source(kernel_source("tma_tile_copy.cu"))
                        .tensor("in", "float32", {"M", "N"})
                        .tensor("out", "float32", {"M", "N"})
                        .tma(tile_descriptor("in_desc", "in"))
                        .tma(tile_descriptor("out_desc", "out"))
                        .launch(Launch("tma_tile_copy")
                                    .with_grid({"ceildiv(N, 32)", "ceildiv(M, 32)"})
                                    .with_block({128}))
                        .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  constexpr int kThreads = 4;
  constexpr int kCalls = 40;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        const cuda::DriverApi& api = cuda::driver();
        cuda::make_current(api, device());
        cuda::CUstream stream = nullptr;
        cuda::check(api.cuStreamCreate(&stream, 0), "cuStreamCreate");
        const int64_t M = 40 + 9 * t, N = 36 + 8 * t;  // a different shape per thread
        for (int call = 0; call < kCalls && failures[t].empty(); ++call) {
          std::vector<float> in = random_floats(static_cast<size_t>(M * N));
          Tensor In = to_device(in, {M, N}, f32);
          Tensor Out = poisoned(f32, {M, N});
          kernel({In, Out}, StreamRef(stream));
          cuda::check(api.cuStreamSynchronize(stream), "cuStreamSynchronize");
          std::vector<float> out = to_host<float>(Out);
          for (int64_t i = 0; i < M * N; ++i) {
            if (out[i] != 2.0f * in[i] + 1.0f) {
              failures[t] = fmt::format("thread {} call {} element {}: {} != 2 * {} + 1", t, call,
                                        i, out[i], in[i]);
              break;
            }
          }
        }
        api.cuStreamDestroy(stream);
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");
}

// out[n][h][w][k] = sum over a 3x3 window (padding 1) and 8 channels of in * weight.
TEST(GpuTma, Im2colConvolution) {
  TILEJIT_REQUIRE_GPU();
  if (!has_tma()) GTEST_SKIP() << "TMA needs sm_90";
  TmaDescriptor d;
  d.name = "in_desc";
  d.buffer = "in";
  d.kind = TmaDescriptor::Kind::kIm2col;
  d.rank = 4;
  d.lower_corner = {-1, -1};
  d.upper_corner = {-1, -1};
  d.channels_per_pixel = 8;
  d.pixels_per_column = 32;
  Program program =
      ProgramBuilder("im2col_conv")
          .source(kernel_source("im2col_conv.cu"))
          .tensor("in", "float32", {"N", "H", "W", 8})
          .tensor("weight", "float32", {9, 8, 4})
          .tensor("out", "float32", {"N", "H", "W", 4})
          .tma(d)
          .launch(Launch("im2col_conv").with_grid({"ceildiv(N * H * W, 32)"}).with_block({128}))
          .out_idx({2})
          .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  for (auto [N, H, W] : {std::tuple<int64_t, int64_t, int64_t>{2, 5, 6}, {1, 7, 9}, {3, 4, 11}}) {
    std::vector<float> in = random_floats(static_cast<size_t>(N * H * W * 8));
    std::vector<float> weight = random_floats(9 * 8 * 4);
    Tensor In = to_device(in, {N, H, W, 8}, f32);
    Tensor Weight = to_device(weight, {9, 8, 4}, f32);
    std::vector<Tensor> outs = kernel({In, Weight});
    std::vector<float> out = to_host<float>(outs[0]);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t w = 0; w < W; ++w) {
          for (int64_t k = 0; k < 4; ++k) {
            double expected = 0;
            for (int64_t kh = 0; kh < 3; ++kh) {
              for (int64_t kw = 0; kw < 3; ++kw) {
                int64_t y = h + kh - 1, x = w + kw - 1;
                if (y < 0 || y >= H || x < 0 || x >= W) continue;
                for (int64_t c = 0; c < 8; ++c) {
                  expected += double(in[((n * H + y) * W + x) * 8 + c]) *
                              weight[((kh * 3 + kw) * 8 + c) * 4 + k];
                }
              }
            }
            float got = out[((n * H + h) * W + w) * 4 + k];
            ASSERT_NEAR(got, expected, 1e-4)
                << "N=" << N << " H=" << H << " W=" << W << " at n=" << n << " h=" << h
                << " w=" << w << " k=" << k;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tilejit
