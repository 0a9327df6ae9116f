// Kernels as CuPy and cuda-samples users write them, launched on the GPU by both CUDA backends:
// template instantiations named `my_sqrt<float>`, kernels with C++ linkage and in namespaces,
// a kernel declared through a macro (with an explicit signature); and module globals
// (`__constant__` / `__device__`) written before a launch through Kernel::get_global.
#include <array>
#include <cmath>
#include <complex>
#include <filesystem>

#include "gpu/gpu_support.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

using namespace gpu_test;

constexpr const char* kSource = R"(
template <typename T>
__global__ void my_sqrt(T* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = sqrt(x[i]);
}
__global__ void cxx_scale(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2.0f;
}
namespace ops {
__global__ void negate(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = -x[i];
}
}  // namespace ops
#define UNARY_KERNEL(name, expr)                      \
  extern "C" __global__ void name(float* x, int n) {  \
    int i = blockIdx.x * blockDim.x + threadIdx.x;    \
    if (i < n) x[i] = (expr);                         \
  }
UNARY_KERNEL(square_by_macro, x[i] * x[i])
)";

Program one_launch(const std::string& kernel, const char* dtype,
                   std::optional<std::string> signature = std::nullopt) {
  Launch launch(kernel);
  launch.with_grid({"ceildiv(n, 128)"}).with_block({128});
  if (signature) launch.with_signature(*signature);
  return ProgramBuilder("user_kernel")
      .source(kSource)
      .tensor("x", dtype, {"n"})
      .launch(std::move(launch))
      .build();
}

std::vector<std::string> backends() {
  std::vector<std::string> out = {"nvrtc"};
  if (detail::find_program("nvcc") || std::filesystem::exists("/usr/local/cuda/bin/nvcc")) {
    out.emplace_back("nvcc");
  }
  return out;
}

Kernel compile_with(const Program& program, const std::string& backend) {
  CompileOptions options;
  options.execution_backend = backend;
  options.target = "cuda -arch=" + device_arch();
  return compile(program, options);
}

template <class T, class F>
void check_in_place(const Program& program, DataType dtype, F reference) {
  for (const std::string& backend : backends()) {
    SCOPED_TRACE(backend);
    Kernel kernel = compile_with(program, backend);
    for (int64_t n : {1, 127, 1000}) {
      std::vector<float> values = random_floats(static_cast<size_t>(n), 0.01f, 4.0f);
      std::vector<T> host(values.begin(), values.end());
      Tensor x = to_device(host, {n}, dtype);
      kernel({x});
      std::vector<T> got = to_host<T>(x);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], reference(host[i]), std::abs(reference(host[i])) * 1e-6)
            << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(UserKernels, TemplateInstantiationsRunByTheirCxxName) {
  TILEJIT_REQUIRE_GPU();
  check_in_place<float>(one_launch("my_sqrt<float>", "float32"), DataType::parse("float32"),
                        [](float v) { return std::sqrt(v); });
  check_in_place<double>(one_launch("my_sqrt<double>", "float64"), DataType::parse("float64"),
                         [](double v) { return std::sqrt(v); });
}

TEST(UserKernels, CxxLinkageAndNamespacedKernelsRun) {
  TILEJIT_REQUIRE_GPU();
  check_in_place<float>(one_launch("cxx_scale", "float32"), DataType::parse("float32"),
                        [](float v) { return v * 2.0f; });
  check_in_place<float>(one_launch("ops::negate", "float32"), DataType::parse("float32"),
                        [](float v) { return -v; });
}

TEST(UserKernels, MacroDeclaredKernelRunsWithAnExplicitSignature) {
  TILEJIT_REQUIRE_GPU();
  check_in_place<float>(one_launch("square_by_macro", "float32", "float* x, int n"),
                        DataType::parse("float32"), [](float v) { return v * v; });
}

// complex64 tensors (torch.complex64, DLPack kDLComplex) reach a kernel that reads them as
// float2 (cuFloatComplex has the same layout).
TEST(UserKernels, Complex64TensorsRunOnBothBackends) {
  TILEJIT_REQUIRE_GPU();
  Program program =
      ProgramBuilder("conjugate_scale")
          .source(R"(
extern "C" __global__ void conjugate_scale(float2* z, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) z[i] = make_float2(z[i].x * s, -z[i].y * s);
}
)")
          .tensor("z", "complex64", {"n"})
          .scalar("s", "float32")
          .launch(Launch("conjugate_scale").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .build();
  for (const std::string& backend : backends()) {
    SCOPED_TRACE(backend);
    Kernel kernel = compile_with(program, backend);
    const int64_t n = 777;
    std::vector<float> parts = random_floats(2 * static_cast<size_t>(n));
    std::vector<std::complex<float>> host(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host[i] = {parts[2 * i], parts[2 * i + 1]};
    Tensor z = to_device(host, {n}, DataType::parse("complex64"));
    kernel({z, 1.5f});
    std::vector<std::complex<float>> got = to_host<std::complex<float>>(z);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], std::conj(host[i]) * 1.5f) << i;
    }
  }
}

// Struct scalars by value on both backends: a float2 (cuComplex's layout: NVRTC cannot include
// cuComplex.h, which pulls in math.h), and a POD with padding inside
// ({char; double; short}) and an array field, whose every field the kernel reads.
TEST(UserKernels, StructScalarsPassByValueOnBothBackends) {
  TILEJIT_REQUIRE_GPU();
  struct Odd {
    char c;
    double d;
    short s;
    float v[3];
  };
  auto f32 = DataType::parse("float32");
  Program program = ProgramBuilder("structs")
                        .source(R"(
struct Odd { char c; double d; short s; float v[3]; };
extern "C" __global__ void mix(float2 z, const Odd o, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = z.x * x[i] + z.y + (float)o.c + (float)o.d + (float)o.s + o.v[i % 3];
}
)")
                        .struct_scalar("z", {{"re", f32}, {"im", f32}})
                        .struct_scalar("o", {{"c", DataType::parse("int8")},
                                             {"d", DataType::parse("float64")},
                                             {"s", DataType::parse("int16")},
                                             {"v", f32, 3}})
                        .tensor("x", "float32", {"n"})
                        .tensor("y", "float32", {"n"})
                        .launch(Launch("mix").with_grid({"ceildiv(n, 128)"}).with_block({128}))
                        .out_idx({-1})
                        .build();
  for (const std::string& backend : backends()) {
    SCOPED_TRACE(backend);
    Kernel kernel = compile_with(program, backend);
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<float> r = random_floats(8, -50.0f, 50.0f);
      const std::complex<float> z(r[0], r[1]);
      Odd o{};
      o.c = static_cast<char>(static_cast<int>(r[2]));
      o.d = r[3] * 1.5;
      o.s = static_cast<short>(static_cast<int>(r[4] * 100));
      o.v[0] = r[5];
      o.v[1] = r[6];
      o.v[2] = r[7];
      const int64_t n = 300 + trial * 71;
      std::vector<float> x = random_floats(static_cast<size_t>(n));
      std::vector<Tensor> outs =
          kernel({Arg::bytes(&z, sizeof z), Arg::bytes(&o, sizeof o), to_device(x, {n}, f32)});
      std::vector<float> y = to_host<float>(outs.at(0));
      for (int64_t i = 0; i < n; ++i) {
        const float expected = z.real() * x[i] + z.imag() + static_cast<float>(o.c) +
                               static_cast<float>(o.d) + static_cast<float>(o.s) + o.v[i % 3];
        ASSERT_NEAR(y[i], expected, std::abs(expected) * 1e-6f + 1e-5f)
            << "trial " << trial << " i " << i;
      }
    }
  }
}

// CuPy's RawModule.get_global: write a __constant__ table and reset a __device__ counter, then
// launch; the kernel sees what was written. nvrtc looks globals up with cuLibraryGetGlobal, the
// nvcc library with cudaLibraryGetGlobal through its get_global entry point.
TEST(UserKernels, ModuleGlobalsWrittenBeforeALaunchAreWhatTheKernelReads) {
  TILEJIT_REQUIRE_GPU();
  Program program = ProgramBuilder("globals")
                        .source(R"(
__constant__ float coefficients[4];
__device__ unsigned int hits;
extern "C" __global__ void weigh(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    y[i] = coefficients[i % 4] * x[i];
    atomicAdd(&hits, 1u);
  }
}
)")
                        .tensor("x", "float32", {"n"})
                        .tensor("y", "float32", {"n"})
                        .launch(Launch("weigh").with_grid({"ceildiv(n, 128)"}).with_block({128}))
                        .out_idx({-1})
                        .build();
  for (const std::string& backend : backends()) {
    SCOPED_TRACE(backend);
    Kernel kernel = compile_with(program, backend);
    GlobalSymbol coefficients = kernel.get_global("coefficients");
    GlobalSymbol hits = kernel.get_global("hits");
    EXPECT_EQ(coefficients.bytes, 4 * sizeof(float));
    EXPECT_EQ(hits.bytes, sizeof(unsigned int));
    EXPECT_EQ(coefficients.device, Device::cuda(0));
    const cuda::DriverApi& api = cuda::driver();
    for (int trial = 0; trial < 2; ++trial) {
      std::vector<float> c = random_floats(4, -2.0f, 2.0f);
      const unsigned int zero = 0;
      cuda::make_current(api, device());
      check_driver(api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(coefficients.ptr), c.data(),
                                    coefficients.bytes),
                   "cuMemcpyHtoD");
      check_driver(
          api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(hits.ptr), &zero, sizeof(zero)),
          "cuMemcpyHtoD");
      const int64_t n = 1000 + trial * 37;
      std::vector<float> x = random_floats(static_cast<size_t>(n));
      std::vector<Tensor> outs = kernel({to_device(x, {n}, DataType::parse("float32"))});
      std::vector<float> y = to_host<float>(outs.at(0));
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(y[i], c[i % 4] * x[i]) << "trial " << trial << " i " << i;
      unsigned int counted = 0;
      check_driver(api.cuMemcpyDtoH(&counted, reinterpret_cast<cuda::CUdeviceptr>(hits.ptr),
                                    sizeof(counted)),
                   "cuMemcpyDtoH");
      EXPECT_EQ(counted, static_cast<unsigned int>(n));
    }
    try {
      kernel.get_global("missing");
      ADD_FAILURE() << "get_global found a variable the module does not have";
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("'missing'"), std::string::npos) << e.what();
    }
    // A failed lookup leaves no error behind for the next launch to report.
    std::vector<float> x = random_floats(64);
    EXPECT_EQ(kernel({to_device(x, {64}, DataType::parse("float32"))}).size(), 1u);
  }
}

}  // namespace
}  // namespace tilejit
