// The nvcc backend without a GPU: building needs only nvcc (the driver is not needed to
// compile or to load the library), so CI checks the artifact, the compile command, the errors
// and the backends that are not available here. Running kernels is the GPU suite's job
// (tests/cpp/gpu/test_nvcc_parity.cc).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "codegen/wrapper.h"
#include "compile/kernel_state.h"
#include "cuda/cubin_symbols.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "private_cache.h"
#include "test_codegen_programs.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

// Kernels compiled here go to a private cache directory, not the user's.
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
  // The header list comes from the host compiler's device-side preprocessing, not from nvcc's
  // own -MD (a second preprocessing pass).
  EXPECT_TRUE(contains(command, "-Xcompiler -MD,-MF,")) << command;
  EXPECT_FALSE(contains(command, " -MD ")) << command;
  EXPECT_TRUE(contains(command, " && ")) << command;
  EXPECT_TRUE(contains(command, "-shared")) << command;
  EXPECT_TRUE(contains(command, "-Xcompiler -fPIC")) << command;
  EXPECT_TRUE(contains(command, "-gencode arch=compute_90a,code=sm_90a")) << command;
  EXPECT_TRUE(contains(artifact.metadata.at("nvcc_version"), "release"))
      << artifact.metadata.at("nvcc_version");
  EXPECT_EQ(artifact.metadata.at("arch"), "sm_90a");
}

// The strings of the host source's tj_kernel_names table, in order.
std::vector<std::string> kernel_names_in(const std::string& host) {
  const size_t begin = host.find("tj_kernel_names[");
  const size_t end = host.find("};", begin);
  std::vector<std::string> names;
  for (size_t quote = host.find('"', begin); quote < end; quote = host.find('"', quote + 1)) {
    const size_t close = host.find('"', quote + 1);
    names.push_back(host.substr(quote + 1, close - quote - 1));
    quote = close;
  }
  return names;
}

// The kernel symbols of the cubin embedded at the end of a host source.
std::vector<std::string> cubin_symbols_in(const std::string& host) {
  std::string image;
  size_t at = host.find("tj_device_image[] = {");
  for (at = host.find("0x", at); at != std::string::npos; at = host.find("0x", at + 4)) {
    image += static_cast<char>(std::stoi(host.substr(at + 2, 2), nullptr, 16));
  }
  std::vector<std::string> symbols;
  for (const cuda::CubinFunction& f : cuda::cubin_functions(image)) symbols.push_back(f.symbol);
  return symbols;
}

// Templates (instantiated by the launch alone), C++ linkage, namespaces and macro-declared
// kernels: the cubin gives them mangled names, which the build reads from its symbol table and
// hands to the host wrapper's lookup table; extern "C" kernels keep their names. A complex64
// tensor travels as a void* in the wrapper.
TEST(NvccBackend, LaunchesKernelsByTheirCxxNames) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  ProgramBuilder b("cxx_names");
  b.source(R"(
#include <cuda_fp16.h>
template <typename T, int FACTOR>
__global__ void scale(T* x, int n) { if (threadIdx.x < n) x[threadIdx.x] *= FACTOR; }
namespace ops {
__global__ void negate(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = -x[threadIdx.x]; }
template <class T, int N> __global__ void fill(T* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = T(N); }
}
__global__ void cxx_double(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] *= 2; }
#define UNARY(name, expr) __global__ void name(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = (expr); }
UNARY(square, x[threadIdx.x] * x[threadIdx.x])
extern "C" __global__ void conjugate(float2* z, int m) { if (threadIdx.x < m) z[threadIdx.x].y *= -1; }
)")
      .tensor("x", "float32", {"n"})
      .tensor("h", "float16", {"n"})
      .tensor("z", "complex64", {"m"})
      .launch(Launch("scale<float, 3>").with_args({"x", "n"}).with_block({"n"}))
      .launch(Launch("ops::negate").with_args({"x", "n"}).with_block({"n"}))
      .launch(Launch("ops::fill<__half, 7>").with_args({"h", "n"}).with_block({"n"}))
      .launch(Launch("cxx_double").with_args({"x", "n"}).with_block({"n"}))
      .launch(Launch("square").with_signature("float* x, int n").with_block({"n"}))
      .launch(Launch("conjugate").with_block({"m"}));
  Kernel kernel = compile(b.build(), nvcc_options("cuda -arch=sm_90a"));
  const CompiledArtifact& artifact = kernel.artifact();
  const std::vector<std::string> expected = {
      "_Z5scaleIfLi3EEvPT_i", "_ZN3ops6negateEPfi", "_ZN3ops4fillI6__halfLi7EEEvPT_i",
      "_Z10cxx_doublePfi",    "_Z6squarePfi",       "conjugate"};
  const std::vector<std::string> names = kernel_names_in(artifact.host_source);
  EXPECT_EQ(names, expected) << artifact.host_source.substr(0, 4000);
  const std::vector<std::string> symbols = cubin_symbols_in(artifact.host_source);
  for (const std::string& name : names) {
    EXPECT_NE(std::find(symbols.begin(), symbols.end(), name), symbols.end())
        << name << " is not a kernel of the embedded cubin";
  }
  EXPECT_EQ(artifact.metadata.at("lowered_name:scale<float, 3>"), "_Z5scaleIfLi3EEvPT_i");
  EXPECT_EQ(artifact.metadata.at("lowered_name:ops::negate"), "_ZN3ops6negateEPfi");
  EXPECT_EQ(artifact.metadata.count("lowered_name:conjugate"), 0u);
  // The device source that built the cubin instantiates the launched templates.
  EXPECT_TRUE(contains(artifact.device_source,
                       "tj_instantiated_kernels[] = {(const void*)&scale<float, 3>, "
                       "(const void*)&ops::fill<__half, 7>};"))
      << artifact.device_source;
  // Module globals: the library exports get_global, which the GPU suite writes through
  // (tests/cpp/gpu/test_user_kernels.cc).
  EXPECT_TRUE(contains(kernel.get_host_source(),
                       "extern \"C\" int get_global(const char* name, void** address, size_t* "
                       "bytes) {"))
      << kernel.get_host_source();
}

// A C++ name the cubin does not have is an error at compile time that shows the names it has:
// `half` for a kernel the demangler spells with `__half`.
TEST(NvccBackend, AKernelNameMatchingNoCubinKernelFailsAtCompileTimeListingTheCandidates) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  const std::string source = R"(
#include <cuda_fp16.h>
namespace ns { template <class T, int N> __global__ void k(T* x) { x[0] = x[N]; } }
__global__ void other(float* x) { x[0] = 1; }
)";
  const Program program = ProgramBuilder("unmatched")
                              .source(source)
                              .tensor("x", "float16", {256})
                              .launch(Launch("ns::k<half, 128>").with_block({1}))
                              .build();
  try {
    compile(program, nvcc_options("cuda -arch=sm_90a"));
    ADD_FAILURE() << "compiled a launch whose kernel the cubin does not name that way";
  } catch (const ProgramError& e) {
    EXPECT_TRUE(contains(e.what(), "'ns::k<half, 128>' matches none")) << e.what();
    EXPECT_TRUE(contains(e.what(), "'void ns::k<__half, 128>(__half*)'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "'other(float*)'")) << e.what();
  }
}

// Overloads share a C++ name, so a launch cannot say which one it means.
TEST(NvccBackend, AKernelNameMatchingOverloadsFailsAtCompileTimeListingThem) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  const Program program = ProgramBuilder("overloaded")
                              .source(R"(
__global__ void twice(float* x) { x[0] *= 2; }
__global__ void twice(int* x) { x[0] *= 2; }
)")
                              .tensor("x", "float32", {4})
                              .launch(Launch("twice").with_signature("float* x").with_block({1}))
                              .build();
  try {
    compile(program, nvcc_options("cuda -arch=sm_90a"));
    ADD_FAILURE() << "compiled a launch of an overloaded kernel";
  } catch (const ProgramError& e) {
    EXPECT_TRUE(contains(e.what(), "'twice' matches 2")) << e.what();
    EXPECT_TRUE(contains(e.what(), "'twice(float*)'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "'twice(int*)'")) << e.what();
  }
}

// Demangled names match a launch's C++ name without their return type, their parameter list and
// whitespace; nothing else is loosened.
TEST(CubinSymbols, KernelNamesMatchDemangledNamesUpToReturnTypeParametersAndSpaces) {
  EXPECT_TRUE(cuda::same_kernel_name("void my_sqrt<float>(float*, int)", "my_sqrt<float>"));
  EXPECT_TRUE(cuda::same_kernel_name("void ns::k<__half, 128>(__half*)", "ns::k<__half,128>"));
  EXPECT_TRUE(cuda::same_kernel_name("ops::negate(float*, int)", "ops::negate"));
  EXPECT_TRUE(cuda::same_kernel_name("f(void (*)(int))", "f"));
  EXPECT_TRUE(cuda::same_kernel_name("c_kernel", "c_kernel"));
  EXPECT_FALSE(cuda::same_kernel_name("void ns::k<__half, 128>(__half*)", "ns::k<half, 128>"));
  EXPECT_FALSE(cuda::same_kernel_name("void ns::k<__half, 128>(__half*)", "k<__half, 128>"));
  EXPECT_FALSE(cuda::same_kernel_name("ops::negate(float*, int)", "negate"));
  EXPECT_FALSE(cuda::same_kernel_name("my_sqrt<double>(double*, int)", "my_sqrt<float>"));
}

TEST(CubinSymbols, AnImageThatIsNotA64BitElfFileIsAnArgumentError) {
  EXPECT_THROW(cuda::cubin_functions(""), ArgumentError);
  EXPECT_THROW(cuda::cubin_functions(std::string(64, 'x')), ArgumentError);
  std::string elf32(64, '\0');
  elf32.replace(0, 5,
                "\x7f"
                "ELF\x01");
  EXPECT_THROW(cuda::cubin_functions(elf32), ArgumentError);
  // A 64-bit header whose section table lies past the end of the image.
  std::string truncated(64, '\0');
  truncated.replace(0, 5,
                    "\x7f"
                    "ELF\x02");
  truncated[0x28] = 0x40;  // e_shoff = 64: the first section header is missing
  truncated[0x3a] = 64;    // e_shentsize
  truncated[0x3c] = 1;     // e_shnum
  EXPECT_THROW(cuda::cubin_functions(truncated), ArgumentError);
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

// The list comes from the preprocessing of the device side, the one the cubin is built from:
// a header that only host code includes is not in it, one that only device code includes is.
TEST(NvccBackend, DependenciesAreTheHeadersOfTheDeviceSide) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  detail::TempDir dir("tilejit-nvcc-device-deps");
  detail::write_file(dir.path() / "device_only.h", "#define STEP 3\n");
  detail::write_file(dir.path() / "host_only.h", "#define STEP 7\n");
  const Program program = ProgramBuilder("step_nvcc_deps")
                              .source(
                                  "#ifdef __CUDA_ARCH__\n#include \"device_only.h\"\n#else\n"
                                  "#include \"host_only.h\"\n#endif\n"
                                  "extern \"C\" __global__ void step(int* x, int n) {\n"
                                  "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                                  "  if (i < n) x[i] += STEP;\n"
                                  "}\n")
                              .tensor("x", "int32", {"n"})
                              .launch(Launch("step").with_grid({"ceildiv(n, 64)"}).with_block({64}))
                              .include_dir(dir.path().string())
                              .build();
  const Kernel kernel = compile(program, nvcc_options("sm_80"));
  EXPECT_EQ(kernel.artifact().dependencies,
            (std::vector<std::string>{(dir.path() / "device_only.h").string()}));
}

// The device header's digest in the fingerprint is FNV-1a (stable across processes and
// machines, unlike std::hash), the same for both CUDA backends.
TEST(NvccBackend, FingerprintCarriesTheDeviceHeadersStableDigest) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : cuda::device_header_source()) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  char expected[17];
  std::snprintf(expected, sizeof(expected), "%016llx", static_cast<unsigned long long>(hash));
  EXPECT_EQ(cuda::device_header_digest(), expected);
  const detail::Target target{"cuda", "sm_90a"};
  for (const char* name : {"nvcc", "nvrtc"}) {
    const std::string fingerprint = detail::backend_named(name).toolchain_fingerprint(target);
    EXPECT_TRUE(contains(fingerprint, std::string("device_header ") + expected)) << fingerprint;
  }
}

TEST(NvccBackend, GencodeFollowsTheTargetAndUserFlagsAndDefinesReachNvcc) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  Program program = testing::cuda_golden_cases()[0].program;
  // The define is used by the source, so a build without it would fail.
  program.source =
      "#ifndef TILEJIT_TEST_SCALE\n#error TILEJIT_TEST_SCALE is not defined\n#endif\n" +
      program.source;
  program.defines["TILEJIT_TEST_SCALE"] = "2";
  program.compile_flags = {"-lineinfo", "-std=c++20"};
  Kernel kernel = compile(program, nvcc_options("sm_80"));
  const std::string& command = kernel.artifact().metadata.at("compile_command");
  EXPECT_TRUE(contains(command, "-gencode arch=compute_80,code=sm_80")) << command;
  EXPECT_TRUE(contains(command, "-DTILEJIT_TEST_SCALE=2")) << command;
  EXPECT_TRUE(contains(command, "-lineinfo")) << command;
  // The Program's standard replaces the device build's default (the host step keeps its own).
  const std::string device_command = command.substr(0, command.find(" && "));
  EXPECT_TRUE(contains(device_command, "-std=c++20")) << command;
  EXPECT_FALSE(contains(device_command, "-std=c++17")) << command;
  EXPECT_FALSE(contains(kernel.artifact().metadata.at("compile_log"), "redefinition"))
      << kernel.artifact().metadata.at("compile_log");
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
