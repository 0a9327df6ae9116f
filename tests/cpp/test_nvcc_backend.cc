// The nvcc backend without a GPU: building needs only nvcc (the driver is not needed to
// compile or to load the library), so CI checks the artifact, the compile command, the errors
// and the backends that are not available here. Running kernels is the GPU suite's job
// (tests/cpp/gpu/test_nvcc_parity.cc).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "codegen/wrapper.h"
#include "compile/kernel_state.h"
#include "cuda/driver.h"
#include "test_codegen_programs.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

// Kernels compiled here go to a private cache directory, not the user's.
class PrivateCache : public ::testing::Environment {
 public:
  void SetUp() override { ::setenv("TILELANG_CACHE_DIR", dir_.path().c_str(), 1); }

 private:
  detail::TempDir dir_{"tilejit-test-cache"};
};
const auto* const kPrivateCache = ::testing::AddGlobalTestEnvironment(new PrivateCache);

bool have_nvcc() {
  return detail::find_program("nvcc").has_value() ||
         std::filesystem::exists("/usr/local/cuda/bin/nvcc");
}

CompileOptions nvcc_options(const std::string& target) {
  CompileOptions options;
  options.execution_backend = "nvcc";
  options.target = target;
  return options;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(NvccBackend, BuildsTheDeviceSourceAloneAndEmbedsItsCubinInTheWrapperLibrary) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  const Program program = testing::cuda_golden_cases()[0].program;  // vector_add
  Kernel kernel = compile(program, nvcc_options("cuda -arch=sm_90a"));
  const CompiledArtifact& artifact = kernel.artifact();
  EXPECT_EQ(artifact.backend, "nvcc");
  EXPECT_EQ(artifact.target, "cuda -arch=sm_90a");
  EXPECT_EQ(artifact.binary_kind, "shared_library");
  ASSERT_GT(artifact.binary.size(), 4u);
  EXPECT_EQ(artifact.binary.substr(0, 4), std::string("\x7f"
                                                      "ELF"));
  // The host source is the generated wrapper with the cubin (an ELF file) embedded at its end.
  const std::string wrapper = detail::generate_cuda_wrapper(program, "kernel.cu");
  EXPECT_EQ(artifact.host_source.substr(0, wrapper.size()), wrapper);
  EXPECT_TRUE(contains(artifact.host_source.substr(wrapper.size()),
                       "const unsigned char tj_device_image[] = {\n    0x7f, 0x45, 0x4c, 0x46,"))
      << artifact.host_source.substr(wrapper.size(), 400);
  EXPECT_EQ(artifact.device_source, program.source);
  EXPECT_EQ(kernel.out_idx(), std::vector<int>{2});
  const std::string& command = artifact.metadata.at("compile_command");
  // Two steps: the device source alone to a cubin (with its header list), then the wrapper.
  EXPECT_TRUE(contains(command, "--cubin")) << command;
  EXPECT_TRUE(contains(command, "-MD -MF")) << command;
  EXPECT_TRUE(contains(command, " && ")) << command;
  EXPECT_TRUE(contains(command, "-shared")) << command;
  EXPECT_TRUE(contains(command, "-Xcompiler -fPIC")) << command;
  EXPECT_TRUE(contains(command, "-gencode arch=compute_90a,code=sm_90a")) << command;
  EXPECT_TRUE(contains(artifact.metadata.at("nvcc_version"), "release"))
      << artifact.metadata.at("nvcc_version");
  EXPECT_EQ(artifact.metadata.at("arch"), "sm_90a");
}

// Templates, C++ linkage, namespaces and macro-declared kernels: the wrapper is compiled with the
// device source, so it launches each by the C++ name the launch gives (`my_sqrt<float>`
// instantiates the template). A forwarding `extern "C"` kernel calling `my_sqrt<float>(x)`
// would not compile: a __global__ function cannot be called without a launch configuration.
// A complex64 tensor travels as a void* in the wrapper.
TEST(NvccBackend, LaunchesKernelsByTheirCxxNames) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  ProgramBuilder b("cxx_names");
  b.source(R"(
template <typename T, int FACTOR>
__global__ void scale(T* x, int n) { if (threadIdx.x < n) x[threadIdx.x] *= FACTOR; }
namespace ops { __global__ void negate(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = -x[threadIdx.x]; } }
#define UNARY(name, expr) __global__ void name(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = (expr); }
UNARY(square, x[threadIdx.x] * x[threadIdx.x])
extern "C" __global__ void conjugate(float2* z, int m) { if (threadIdx.x < m) z[threadIdx.x].y *= -1; }
)")
      .tensor("x", "float32", {"n"})
      .tensor("z", "complex64", {"m"})
      .launch(Launch("scale<float, 3>").with_block({"n"}))
      .launch(Launch("ops::negate").with_block({"n"}))
      .launch(Launch("square").with_signature("float* x, int n").with_block({"n"}))
      .launch(Launch("conjugate").with_block({"m"}));
  Kernel kernel = compile(b.build(), nvcc_options("cuda -arch=sm_90a"));
  const std::string& host = kernel.artifact().host_source;
  EXPECT_TRUE(contains(host, "(const void*)scale<float, 3>")) << host;
  EXPECT_TRUE(contains(host, "(const void*)ops::negate")) << host;
  EXPECT_TRUE(contains(host, "(const void*)square")) << host;
  // Module globals are the nvrtc backend's: the library keeps its device variables private.
  try {
    kernel.get_global("anything");
    ADD_FAILURE() << "get_global on the nvcc backend returned";
  } catch (const ArgumentError& e) {
    EXPECT_TRUE(contains(e.what(), "execution_backend \"nvrtc\"")) << e.what();
  }
}

TEST(NvccBackend, ArtifactListsTheUserHeadersNvccRead) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  detail::TempDir dir("tilejit-nvcc-deps");
  std::filesystem::create_directories(dir.path() / "detail");
  detail::write_file(dir.path() / "scale.h", "#include \"detail/factor.h\"\n");
  detail::write_file(dir.path() / "detail" / "factor.h", "#define FACTOR 1.25f\n");
  detail::write_file(dir.path() / "unused.h", "#error never included\n");
  const Program program =
      ProgramBuilder("scale_nvcc_deps")
          .source(
              "#include \"scale.h\"\n"
              "extern \"C\" __global__ void scale(float* x, int n) {\n"
              "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
              "  if (i < n) x[i] *= FACTOR;\n"
              "}\n")
          .tensor("x", "float32", {"n"})
          .launch(Launch("scale").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .include_dir(dir.path().string())
          .build();
  const Kernel kernel = compile(program, nvcc_options("cuda -arch=sm_90"));
  EXPECT_EQ(kernel.artifact().dependencies,
            (std::vector<std::string>{(dir.path() / "detail" / "factor.h").string(),
                                      (dir.path() / "scale.h").string()}));
}

TEST(NvccBackend, GencodeFollowsTheTargetAndUserFlagsAndDefinesReachNvcc) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  Program program = testing::cuda_golden_cases()[0].program;
  // The define is used by the source, so a build without it would fail.
  program.source =
      "#ifndef TILEJIT_TEST_SCALE\n#error TILEJIT_TEST_SCALE is not defined\n#endif\n" +
      program.source;
  program.defines["TILEJIT_TEST_SCALE"] = "2";
  program.compile_flags = {"-lineinfo"};
  Kernel kernel = compile(program, nvcc_options("sm_80"));
  const std::string& command = kernel.artifact().metadata.at("compile_command");
  EXPECT_TRUE(contains(command, "-gencode arch=compute_80,code=sm_80")) << command;
  EXPECT_TRUE(contains(command, "-DTILEJIT_TEST_SCALE=2")) << command;
  EXPECT_TRUE(contains(command, "-lineinfo")) << command;
}

TEST(NvccBackend, CompileErrorKeepsNvccsWholeLogAndNamesTheSource) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  Program program = testing::cuda_golden_cases()[0].program;
  const std::string marker = "this_identifier_does_not_exist_42";
  program.source += "\n__global__ void broken(float* x) { x[0] = " + marker + "; }\n";
  try {
    compile(program, nvcc_options("sm_90a"));
    FAIL() << "expected CompileError";
  } catch (const CompileError& e) {
    EXPECT_TRUE(contains(e.what(), marker)) << e.what();
    EXPECT_TRUE(contains(e.what(), "nvcc failed")) << e.what();
    EXPECT_TRUE(contains(e.log(), marker)) << e.log();
    EXPECT_TRUE(contains(e.log(), "error")) << e.log();
    EXPECT_EQ(e.source_name(), "kernel.cu");
    ASSERT_FALSE(e.options().empty());
    EXPECT_TRUE(contains(e.options()[0], "nvcc")) << e.options()[0];
  }
}

TEST(NvccBackend, AProgramTheWrapperCannotExpressFailsBeforeCompiling) {
  Program program = testing::cuda_golden_cases()[0].program;
  program.launches[0].l2_windows = {L2Window{"A", Expr("n * 4")}, L2Window{"B", Expr("n * 4")}};
  try {
    compile(program, nvcc_options("sm_90a"));
    FAIL() << "expected ProgramError";
  } catch (const ProgramError& e) {
    EXPECT_TRUE(contains(e.what(), "vector_add")) << e.what();
    EXPECT_TRUE(contains(e.what(), "L2 windows")) << e.what();
  }
}

TEST(NvccBackend, RefusesNonCudaSourcesAndTargets) {
  const Program c_program = testing::cpu_golden_cases()[0].program;
  EXPECT_THROW(compile(c_program, nvcc_options("sm_90a")), ArgumentError);
  EXPECT_THROW(detail::backend_named("nvcc").resolve_target(detail::Target::parse("c")),
               ArgumentError);
  const detail::Target explicit_target =
      detail::backend_named("nvcc").resolve_target(detail::Target::parse("cuda -arch=sm_86"));
  EXPECT_EQ(explicit_target.arch, "sm_86");
}

TEST(NvccBackend, FingerprintCarriesNvccAndHostCompilerVersions) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  const detail::Backend& backend = detail::backend_named("nvcc");
  const std::string a = backend.toolchain_fingerprint(detail::Target{"cuda", "sm_90a"});
  const std::string b = backend.toolchain_fingerprint(detail::Target{"cuda", "sm_80"});
  EXPECT_TRUE(contains(a, "nvcc")) << a;
  EXPECT_TRUE(contains(a, "release")) << a;
  EXPECT_TRUE(contains(a, detail::HostCompiler::detect().version)) << a;
  EXPECT_NE(a, b);
}

TEST(NvccBackend, CallingWithoutADriverIsNotAvailableErrorAndLaunchesNothing) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  if (cuda::driver_available()) GTEST_SKIP() << "a CUDA driver is present; the GPU suite runs it";
  // Device memory is never touched: the call stops before any launch.
  float* fake = reinterpret_cast<float*>(uintptr_t{0x1000});
  TensorView A(fake, "float32", {16}, Device::cuda(0)), B(fake, "float32", {16}, Device::cuda(0));
  TensorView C(fake, "float32", {16}, Device::cuda(0));
  CompileOptions options = nvcc_options("sm_90a");
  options.out_idx = std::vector<int>{};
  Kernel no_outputs = compile(testing::cuda_golden_cases()[0].program, options);
  EXPECT_THROW(no_outputs({A, B, C}), NotAvailableError);
}

TEST(OtherBackends, MetalAndHipSayTheyAreNotAvailableHere) {
  CompileOptions metal;
  metal.execution_backend = "metal";
  metal.target = "metal";
  try {
    compile(testing::metal_golden_cases()[0].program, metal);
    FAIL() << "expected NotAvailableError";
  } catch (const NotAvailableError& e) {
    EXPECT_EQ(std::string(e.what()), "Metal is not available on this machine");
  }
  if (detail::find_program("hipcc") && std::filesystem::exists("/dev/kfd")) {
    GTEST_SKIP() << "this machine has HIP";
  }
  CompileOptions hip;
  hip.execution_backend = "hip";
  hip.target = "hip -mcpu=gfx90a";
  try {
    compile(testing::hip_golden_cases()[0].program, hip);
    FAIL() << "expected NotAvailableError";
  } catch (const NotAvailableError& e) {
    EXPECT_TRUE(contains(e.what(), "HIP is not available on this machine")) << e.what();
  }
}

}  // namespace
}  // namespace tilejit
