// The nvrtc backend without a GPU: NVRTC compiles to cubin, compile errors carry the log,
// targets resolve, and launch plans lay arguments out as the kernels expect. Anything that
// needs the driver skips with the NotAvailableError message.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backend/backend.h"
#include "backend/dependencies.h"
#include "call/binder.h"
#include "cuda/driver.h"
#include "cuda/launch.h"
#include "cuda/nvrtc.h"
#include "tilejit/tilejit.h"

namespace tilejit {
namespace {

using cuda::CudaArch;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string cuda_source(const std::string& name) {
  return read_file(std::string(TILEJIT_TEST_DATA_DIR) + "/cuda/" + name);
}

#define REQUIRE_NVRTC()                                      \
  do {                                                       \
    std::string why_;                                        \
    if (!cuda::nvrtc_available(&why_)) GTEST_SKIP() << why_; \
  } while (0)

detail::ResolvedOptions options_for(const std::string& arch) {
  detail::ResolvedOptions options;
  options.backend = "nvrtc";
  options.target = detail::Target{"cuda", arch};
  return options;
}

// Every NUL-terminated string of an ELF's string tables contains the kernel names; a plain
// search of the bytes for "\0name\0" finds a symbol name exactly.
bool elf_has_symbol(const std::string& elf, const std::string& name) {
  std::string needle = std::string(1, '\0') + name + std::string(1, '\0');
  return elf.find(needle) != std::string::npos;
}

TEST(Nvrtc, DeviceHeaderMatchesTheInstalledHeader) {
  std::string file =
      read_file(std::string(TILEJIT_TEST_DATA_DIR) + "/../../include/tilejit/cuda_device.h");
  EXPECT_EQ(file, std::string(cuda::device_header_source()));
}

TEST(Nvrtc, ParsesArchitectures) {
  EXPECT_EQ(CudaArch::parse("sm_90a"), (CudaArch{9, 0, true}));
  EXPECT_EQ(CudaArch::parse("sm_80"), (CudaArch{8, 0, false}));
  EXPECT_EQ(CudaArch::parse("compute_100a"), (CudaArch{10, 0, true}));
  EXPECT_EQ(CudaArch::parse("sm_120").sm(), "sm_120");
  for (const char* bad : {"90a", "sm_", "sm_9", "sm_x0", "gfx90a", "sm_90b", ""}) {
    try {
      CudaArch::parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("sm_XY"), std::string::npos) << e.what();
    }
  }
}

TEST(Nvrtc, ResolvesExplicitTargetsWithoutADevice) {
  const detail::Backend& backend = detail::backend_named("nvrtc");
  EXPECT_EQ(backend.resolve_target(detail::Target::parse("cuda -arch=sm_90a")).str(),
            "cuda -arch=sm_90a");
  EXPECT_EQ(backend.resolve_target(detail::Target::parse("sm_80")).str(), "cuda -arch=sm_80");
  EXPECT_THROW(backend.resolve_target(detail::Target{"cuda", "sm_9z"}), ArgumentError);
  EXPECT_THROW(backend.resolve_target(detail::Target{"c", ""}), ArgumentError);
}

TEST(Nvrtc, AutoTargetNeedsADevice) {
  const detail::Backend& backend = detail::backend_named("nvrtc");
  std::string why;
  if (cuda::driver_available(&why) && cuda::device_count() > 0) {
    const cuda::DeviceInfo& info = cuda::device_info(0);
    detail::Target plain = backend.resolve_target(detail::Target{"cuda", ""});
    EXPECT_EQ(plain.arch, fmt::format("sm_{}{}", info.cc_major, info.cc_minor));
    detail::Target specific = backend.resolve_target(detail::Target{"cuda", "auto-a"});
    EXPECT_EQ(specific.arch, fmt::format("sm_{}{}{}", info.cc_major, info.cc_minor,
                                         info.cc_major >= 9 ? "a" : ""));
    return;
  }
  try {
    backend.resolve_target(detail::Target{"cuda", ""});
    ADD_FAILURE() << "auto resolved without a driver";
  } catch (const NotAvailableError& e) {
    EXPECT_NE(std::string(e.what()).find("sm_90a"), std::string::npos) << e.what();
  }
}

TEST(Nvrtc, OptionsCarryArchIncludesDefinesAndLineinfo) {
  REQUIRE_NVRTC();
  const cuda::NvrtcApi& api = cuda::nvrtc();
  cuda::NvrtcOptions options;
  options.arch = CudaArch::parse("sm_90a");
  options.include_dirs = {"/opt/user/include"};
  options.defines = {{"TILE", "64"}, {"FAST", ""}};
  options.flags = {"--use_fast_math"};
  options.verbose = true;
  std::string target;
  std::vector<std::string> argv = cuda::nvrtc_options(api, options, &target);
  auto has = [&](const std::string& o) {
    return std::find(argv.begin(), argv.end(), o) != argv.end();
  };
  EXPECT_EQ(target, "sm_90a");
  EXPECT_TRUE(has("--gpu-architecture=sm_90a"));
  EXPECT_TRUE(has("--std=c++17"));
  EXPECT_TRUE(has("--include-path=/opt/user/include"));
  EXPECT_TRUE(has("--define-macro=TILE=64"));
  EXPECT_TRUE(has("--define-macro=FAST"));
  EXPECT_TRUE(has("-lineinfo"));
  EXPECT_EQ(argv.back(), "--use_fast_math");
  // The user's include dir comes before the toolkit's.
  auto user = std::find(argv.begin(), argv.end(), "--include-path=/opt/user/include");
  for (const auto& dir : cuda::cuda_include_dirs()) {
    auto toolkit = std::find(argv.begin(), argv.end(), "--include-path=" + dir.string());
    ASSERT_NE(toolkit, argv.end());
    EXPECT_LT(user, toolkit);
  }
  options.verbose = false;
  options.flags = {"-std=c++20"};
  argv = cuda::nvrtc_options(api, options);
  EXPECT_FALSE(has("-lineinfo"));
  EXPECT_FALSE(has("--std=c++17"));
}

TEST(Nvrtc, FallsBackToPtxForAnArchNewerThanNvrtc) {
  REQUIRE_NVRTC();
  const cuda::NvrtcApi& api = cuda::nvrtc();
  ASSERT_GT(api.max_arch(), 0);
  cuda::NvrtcOptions options;
  options.arch = CudaArch{api.max_arch() / 10 + 5, 0, true};
  std::string target;
  cuda::nvrtc_options(api, options, &target);
  EXPECT_EQ(target, fmt::format("compute_{}", api.max_arch()));
  cuda::NvrtcOutput out = cuda::compile_cuda(cuda_source("vector_add.cu"), options);
  EXPECT_EQ(out.binary_kind, "ptx");
  EXPECT_NE(out.binary.find(".entry vector_add_kernel"), std::string::npos);
}

// Every kernel the GPU tests and examples use compiles for sm_90a, and its cubin names it.
TEST(Nvrtc, CompilesEveryTestKernelToCubin) {
  REQUIRE_NVRTC();
  const std::pair<const char*, std::vector<std::string>> kernels[] = {
      {"vector_add.cu", {"vector_add_kernel"}},
      {"row_softmax.cu", {"row_stats", "row_normalize"}},
      {"shared_reverse.cu", {"shared_reverse"}},
      {"tma_tile_copy.cu", {"tma_tile_copy"}},
      {"im2col_conv.cu", {"im2col_conv"}},
      {"cluster_rank.cu", {"cluster_rank"}},
      {"grid_sync.cu", {"grid_sum"}},
      {"fault.cu", {"write_through"}},
      {"l2_scale.cu", {"scale"}},
      {"pdl_chain.cu", {"produce", "consume"}},
  };
  for (const auto& [file, names] : kernels) {
    cuda::NvrtcOptions options;
    options.arch = CudaArch::parse("sm_90a");
    options.source_name = file;
    cuda::NvrtcOutput out;
    try {
      out = cuda::compile_cuda(cuda_source(file), options);
    } catch (const CompileError& e) {
      ADD_FAILURE() << file << ": " << e.what() << "\n" << e.log();
      continue;
    }
    EXPECT_EQ(out.binary_kind, "cubin");
    ASSERT_GE(out.binary.size(), 4u);
    EXPECT_EQ(out.binary.substr(0, 4), std::string("\x7f"
                                                   "ELF"))
        << file;
    for (const std::string& name : names) {
      EXPECT_TRUE(elf_has_symbol(out.binary, name)) << file << " lacks " << name;
    }
  }
}

TEST(Nvrtc, CompileErrorCarriesTheFullLog) {
  REQUIRE_NVRTC();
  cuda::NvrtcOptions options;
  options.arch = CudaArch::parse("sm_90");
  options.source_name = "broken.cu";
  std::string source =
      "extern \"C\" __global__ void k(float* x) {\n"
      "  x[0] = undeclared_name_1;\n"
      "  x[1] = undeclared_name_2;\n"
      "}\n";
  try {
    cuda::compile_cuda(source, options);
    FAIL() << "a broken source compiled";
  } catch (const CompileError& e) {
    EXPECT_NE(e.log().find("undeclared_name_1"), std::string::npos) << e.log();
    EXPECT_NE(e.log().find("undeclared_name_2"), std::string::npos) << e.log();
    EXPECT_NE(std::string(e.what()).find("undeclared_name_1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("broken.cu"), std::string::npos) << e.what();
    EXPECT_EQ(e.source_name(), "broken.cu");
    EXPECT_NE(std::find(e.options().begin(), e.options().end(), "--gpu-architecture=sm_90"),
              e.options().end());
  }
}

Program vector_add_program() {
  return ProgramBuilder("vector_add")
      .source(cuda_source("vector_add.cu"))
      .tensor("A", "float32", {"n"})
      .tensor("B", "float32", {"n"})
      .tensor("C", "float32", {"n"})
      .launch(Launch("vector_add_kernel").with_grid({"ceildiv(n, 256)"}).with_block({256}))
      .out_idx({-1})
      .build();
}

TEST(Nvrtc, BackendBuildsACubinArtifact) {
  REQUIRE_NVRTC();
  const detail::Backend& backend = detail::backend_named("nvrtc");
  detail::ResolvedOptions options = options_for("sm_90a");
  options.out_idx = {2};
  CompiledArtifact artifact = backend.build(vector_add_program(), options);
  EXPECT_EQ(artifact.backend, "nvrtc");
  EXPECT_EQ(artifact.target, "cuda -arch=sm_90a");
  EXPECT_EQ(artifact.binary_kind, "cubin");
  EXPECT_EQ(artifact.binary.substr(0, 4), std::string("\x7f"
                                                      "ELF"));
  EXPECT_TRUE(elf_has_symbol(artifact.binary, "vector_add_kernel"));
  EXPECT_EQ(artifact.metadata.at("arch"), "sm_90a");
  EXPECT_EQ(artifact.metadata.at("nvrtc_version"), cuda::nvrtc().version_string());
  EXPECT_NE(artifact.metadata.at("options").find("--gpu-architecture=sm_90a"), std::string::npos);
  EXPECT_NE(artifact.host_source.find("grid  = (ceildiv(n, 256), 1, 1)"), std::string::npos)
      << artifact.host_source;
  EXPECT_NE(artifact.host_source.find("int n  <- symbol 'n', 4 bytes at offset 24"),
            std::string::npos)
      << artifact.host_source;
  EXPECT_EQ(artifact.device_source, artifact.program.source);
}

// Kernels as CuPy users write them: a template, one with C++ linkage, one in a namespace, one
// declared through a macro, beside an extern "C" one.
constexpr const char* kUserKernelsSource = R"(
template <typename T>
__global__ void my_sqrt(T* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = sqrt(x[i]);
}
__global__ void cxx_scale(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] *= 2.0f; }
namespace ops { __global__ void negate(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = -x[threadIdx.x]; } }
#define UNARY_KERNEL(name, expr) extern "C" __global__ void name(float* x, int n) { \
    if (threadIdx.x < n) x[threadIdx.x] = (expr); }
UNARY_KERNEL(square_by_macro, x[threadIdx.x] * x[threadIdx.x])
extern "C" __global__ void c_scale(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] *= 3.0f; }
)";

Program user_kernels_program() {
  ProgramBuilder b("user_kernels");
  b.source(kUserKernelsSource).tensor("x", "float32", {"n"});
  for (const char* kernel : {"my_sqrt<float>", "cxx_scale", "ops::negate", "c_scale"}) {
    b.launch(Launch(kernel).with_grid({1}).with_block({"n"}));
  }
  b.launch(
      Launch("square_by_macro").with_signature("float* x, int n").with_grid({1}).with_block({"n"}));
  return b.build();
}

TEST(Nvrtc, CxxNamedKernelsGetTheirLoweredNames) {
  REQUIRE_NVRTC();
  CompiledArtifact artifact =
      detail::backend_named("nvrtc").build(user_kernels_program(), options_for("sm_90a"));
  for (const char* kernel : {"my_sqrt<float>", "cxx_scale", "ops::negate"}) {
    SCOPED_TRACE(kernel);
    auto lowered = artifact.metadata.find(std::string("lowered_name:") + kernel);
    ASSERT_NE(lowered, artifact.metadata.end());
    EXPECT_TRUE(lowered->second.starts_with("_Z")) << lowered->second;  // mangled
    EXPECT_TRUE(elf_has_symbol(artifact.binary, lowered->second)) << lowered->second;
  }
  EXPECT_EQ(artifact.metadata.at("lowered_name:my_sqrt<float>"), "_Z7my_sqrtIfEvPT_i");
  // The macro's kernel has C linkage: NVRTC reports its plain name.
  EXPECT_EQ(artifact.metadata.at("lowered_name:square_by_macro"), "square_by_macro");
  // An extern "C" kernel is looked up by its name, as before.
  EXPECT_EQ(artifact.metadata.count("lowered_name:c_scale"), 0u);
  EXPECT_TRUE(elf_has_symbol(artifact.binary, "c_scale"));
}

TEST(Nvrtc, RelocatableDeviceCodeIsRefusedWithTheReason) {
  REQUIRE_NVRTC();
  for (const char* flag : {"-rdc=true", "--relocatable-device-code=true", "-dc", "-lcudadevrt"}) {
    SCOPED_TRACE(flag);
    detail::ResolvedOptions options = options_for("sm_90a");
    options.compile_flags = {flag};
    for (const char* backend : {"nvrtc", "nvcc"}) {
      try {
        detail::backend_named(backend).build(vector_add_program(), options);
        ADD_FAILURE() << backend << " accepted " << flag;
      } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("dynamic parallelism"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
      }
    }
  }
  // Without the flag, a kernel that launches a kernel fails at compile time too, with NVRTC's
  // own reason in the log.
  Program parent = ProgramBuilder("parent")
                       .source(
                           "extern \"C\" __global__ void child(float* x) { x[0] = 1; }\n"
                           "extern \"C\" __global__ void parent(float* x) {\n"
                           "  child<<<1, 1>>>(x);\n"
                           "}\n")
                       .tensor("x", "float32", {1})
                       .launch(Launch("parent"))
                       .build();
  try {
    detail::backend_named("nvrtc").build(parent, options_for("sm_90a"));
    ADD_FAILURE() << "a device-side launch compiled";
  } catch (const CompileError& e) {
    EXPECT_NE(e.log().find("device-side kernel launch"), std::string::npos) << e.log();
  }
}

// A header tree for dependency tests: scale.h includes detail/factor.h; unused.h is never
// included.
struct CudaHeaderTree {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / fmt::format("tilejit-nvrtc-deps-{}", ::getpid());
  CudaHeaderTree() {
    std::filesystem::create_directories(root / "detail");
    std::ofstream(root / "scale.h") << "#include \"detail/factor.h\"\n"
                                       "#define SCALE (FACTOR * 3.0f)\n";
    std::ofstream(root / "detail" / "factor.h") << "#define FACTOR 1.25f\n";
    std::ofstream(root / "unused.h") << "#error never included\n";
  }
  ~CudaHeaderTree() { std::filesystem::remove_all(root); }
  std::vector<std::string> expected() const {
    return {(root / "detail" / "factor.h").string(), (root / "scale.h").string()};
  }
};

constexpr const char* kScaleWithHeaders =
    "#include \"scale.h\"\n"
    "#include <cuda/std/cstdint>\n"
    "extern \"C\" __global__ void scale(float* x, int n) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < n) x[i] *= SCALE;\n"
    "}\n";

TEST(Nvrtc, ListsTheHeadersItOpenedWhenAsked) {
  REQUIRE_NVRTC();
  CudaHeaderTree tree;
  cuda::NvrtcOptions options;
  options.arch = CudaArch::parse("sm_90");
  options.include_dirs = {tree.root.string()};
  EXPECT_TRUE(cuda::compile_cuda(kScaleWithHeaders, options).dependencies.empty());
  options.list_dependencies = true;
  const cuda::NvrtcOutput out = cuda::compile_cuda(kScaleWithHeaders, options);
  EXPECT_EQ(detail::headers_under(out.dependencies, {tree.root}), tree.expected());
  // Every header NVRTC opened is listed, the toolkit's too (the backend filters them).
  EXPECT_TRUE(std::any_of(
      out.dependencies.begin(), out.dependencies.end(),
      [](const std::string& path) { return path.find("cuda/std/cstdint") != std::string::npos; }))
      << fmt::format("{}", fmt::join(out.dependencies, "\n"));
}

TEST(Nvrtc, ArtifactListsTheUserHeadersOnly) {
  REQUIRE_NVRTC();
  CudaHeaderTree tree;
  const Program program =
      ProgramBuilder("scale")
          .source(kScaleWithHeaders)
          .tensor("x", "float32", {"n"})
          .launch(Launch("scale").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .include_dir(tree.root.string())
          .build();
  const CompiledArtifact artifact =
      detail::backend_named("nvrtc").build(program, options_for("sm_90"));
  EXPECT_EQ(artifact.dependencies, tree.expected());
}

// Building and loading need no driver (so a CUDA Program compiles, caches and exports on a
// machine without one); the first call says the driver is missing.
TEST(Nvrtc, CallWithoutADriverIsNotAvailable) {
  REQUIRE_NVRTC();
  std::string why;
  if (cuda::driver_available(&why)) GTEST_SKIP() << "a driver is present; covered by the GPU tests";
  const detail::Backend& backend = detail::backend_named("nvrtc");
  detail::ResolvedOptions options = options_for("sm_90");
  options.out_idx = {2};
  CompiledArtifact artifact = backend.build(vector_add_program(), options);
  detail::Binder binder(artifact.program, {2}, dlpack::kDLCUDA);
  std::unique_ptr<detail::Executor> executor = backend.load(artifact, binder);
  detail::BoundCall call{};
  call.device = Device::cuda(0);
  try {
    executor->launch(call, StreamRef());
    FAIL() << "launched without a driver";
  } catch (const NotAvailableError& e) {
    EXPECT_NE(std::string(e.what()).find("libcuda.so.1"), std::string::npos) << e.what();
  }
}

TEST(Nvrtc, CudaTensorWithoutADriverIsNotAvailable) {
  std::string why;
  if (cuda::driver_available(&why)) GTEST_SKIP() << "a driver is present; covered by the GPU tests";
  try {
    Tensor::empty(DataType::parse("float32"), std::vector<int64_t>{16}, Device::cuda(0));
    FAIL() << "allocated device memory without a driver";
  } catch (const NotAvailableError& e) {
    EXPECT_NE(std::string(e.what()).find("libcuda.so.1"), std::string::npos) << e.what();
  }
}

// A program whose one launch passes every kind of argument.
Program mixed_program() {
  TmaDescriptor tma;
  tma.name = "x_desc";
  tma.buffer = "X";
  tma.rank = 2;
  tma.box_dims = {32, 16};
  std::string source = R"(
#include <tilejit/cuda_device.h>
extern "C" __global__ void mixed(const float* X, const __grid_constant__ CUtensorMap x_desc,
                                 char flag, double alpha, float* Y, long long M, int N,
                                 short tag, float beta) {}
)";
  return ProgramBuilder("mixed")
      .source(source)
      .tensor("X", "float32", {"M", "N"})
      .scalar("flag", "int8")
      .scalar("alpha", "float64")
      .tensor("Y", "float32", {"M", "N"})
      .scalar("tag", "int16")
      .scalar("beta", "float32")
      .tma(tma)
      .launch(Launch("mixed")
                  .with_grid({"ceildiv(N, 32)", "M"})
                  .with_block({128})
                  .with_dynamic_smem("N * 4")
                  .with_cluster({2, 1, 1}))
      .build();
}

TEST(Nvrtc, LaunchPlanLaysOutEveryArgumentKind) {
  Program program = mixed_program();
  detail::Binder binder(program, {}, dlpack::kDLCUDA);
  cuda::ProgramPlan plan = cuda::build_program_plan(program, binder);
  ASSERT_EQ(plan.launches.size(), 1u);
  ASSERT_EQ(plan.tma_descriptors, std::vector<int>{0});
  const cuda::LaunchPlan& launch = plan.launches[0];
  EXPECT_EQ(launch.kernel, "mixed");
  EXPECT_EQ(launch.cluster, (std::array<uint32_t, 3>{2, 1, 1}));
  EXPECT_EQ(launch.tma_slots, std::vector<int>{0});
  const auto& slots = launch.layout.slots;
  ASSERT_EQ(slots.size(), 9u);
  using Source = detail::KernelArg::Source;
  struct Expected {
    Source source;
    uint32_t bytes;
    uint32_t offset;
  };
  // X ptr @0, desc (in place), flag i8 @8, alpha f64 @16, Y ptr @24, M i64 @32, N i32 @40,
  // tag i16 @44, beta f32 @48.
  const Expected expected[] = {
      {Source::kParam, 8, 0},   {Source::kTmaDescriptor, 0, 0}, {Source::kParam, 1, 8},
      {Source::kParam, 8, 16},  {Source::kParam, 8, 24},        {Source::kSymbol, 8, 32},
      {Source::kSymbol, 4, 40}, {Source::kParam, 2, 44},        {Source::kParam, 4, 48}};
  for (size_t i = 0; i < slots.size(); ++i) {
    EXPECT_EQ(slots[i].source, expected[i].source) << i;
    EXPECT_EQ(slots[i].bytes, expected[i].bytes) << i;
    if (expected[i].bytes != 0) {
      EXPECT_EQ(slots[i].offset, expected[i].offset) << i;
    }
  }
  EXPECT_EQ(launch.layout.total_bytes, 52u);

  // Pack a hand-made call and read every value back from where the kernel will find it.
  detail::BoundCall call{};
  float x_storage[4];
  float y_storage[4];
  call.data[0] = x_storage;
  call.data[3] = y_storage;
  call.int_values[1] = -7;
  call.float_values[2] = 2.5;
  call.int_values[4] = -12345;
  call.float_values[5] = 0.25;
  call.symbols[static_cast<size_t>(binder.symbol_slot("M"))] = (int64_t{1} << 40) + 3;
  call.symbols[static_cast<size_t>(binder.symbol_slot("N"))] = 1000;
  cuda::CUtensorMap maps[1];
  alignas(16) std::byte buffer[cuda::kMaxArgBytes];
  void* pointers[cuda::kMaxKernelArgs];
  cuda::pack_args(launch.layout, call, maps, buffer, pointers);
  EXPECT_EQ(*static_cast<void**>(pointers[0]), x_storage);
  EXPECT_EQ(pointers[1], &maps[0]);
  EXPECT_EQ(*static_cast<int8_t*>(pointers[2]), -7);
  EXPECT_EQ(*static_cast<double*>(pointers[3]), 2.5);
  EXPECT_EQ(*static_cast<void**>(pointers[4]), y_storage);
  EXPECT_EQ(*static_cast<int64_t*>(pointers[5]), (int64_t{1} << 40) + 3);
  EXPECT_EQ(*static_cast<int32_t*>(pointers[6]), 1000);
  EXPECT_EQ(*static_cast<int16_t*>(pointers[7]), -12345);
  EXPECT_EQ(*static_cast<float*>(pointers[8]), 0.25f);

  // Grid, block and shared memory evaluate over the bound symbols.
  EXPECT_EQ(launch.grid[0].eval(call.symbols.data()), 32);
  EXPECT_EQ(launch.grid[1].eval(call.symbols.data()), (int64_t{1} << 40) + 3);
  EXPECT_EQ(launch.dynamic_smem.eval(call.symbols.data()), 4000);
}

TEST(Nvrtc, SharedTmaDescriptorIsPlannedOnce) {
  TmaDescriptor a;
  a.name = "a_desc";
  a.buffer = "A";
  a.rank = 1;
  a.box_dims = {64};
  TmaDescriptor b = a;
  b.name = "b_desc";
  b.buffer = "B";
  std::string source = R"(
#include <tilejit/cuda_device.h>
extern "C" __global__ void first(const __grid_constant__ CUtensorMap b_desc, int n) {}
extern "C" __global__ void second(const __grid_constant__ CUtensorMap a_desc,
                                  const __grid_constant__ CUtensorMap b_desc) {}
)";
  Program program = ProgramBuilder("two")
                        .source(source)
                        .tensor("A", "float32", {"n"})
                        .tensor("B", "float32", {"n"})
                        .tma(a)
                        .tma(b)
                        .launch(Launch("first"))
                        .launch(Launch("second"))
                        .build();
  detail::Binder binder(program, {}, dlpack::kDLCUDA);
  cuda::ProgramPlan plan = cuda::build_program_plan(program, binder);
  // b_desc is first used by launch 0, a_desc by launch 1: slots in order of first use.
  EXPECT_EQ(plan.tma_descriptors, (std::vector<int>{1, 0}));
  EXPECT_EQ(plan.launches[0].tma_slots, std::vector<int>{0});
  EXPECT_EQ(plan.launches[1].tma_slots, (std::vector<int>{1, 0}));
  std::string rendered = cuda::render_program_plan(program);
  EXPECT_NE(rendered.find("tma[0] b_desc = cuTensorMapEncodeTiled(buffer=B"), std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("tma[1] a_desc"), std::string::npos) << rendered;
  EXPECT_EQ(rendered.find("tma[2]"), std::string::npos) << rendered;
}

TEST(Nvrtc, BadLaunchPropertiesAreProgramErrors) {
  Program program = vector_add_program();
  L2Window window;
  window.param = "A";
  window.num_bytes = Expr("n * 4");
  window.hit_property = "sticky";
  program.launches[0].l2_windows = {window};
  detail::Binder binder(program, {2}, dlpack::kDLCUDA);
  try {
    cuda::build_program_plan(program, binder);
    FAIL() << "accepted hit_property 'sticky'";
  } catch (const ProgramError& e) {
    EXPECT_NE(std::string(e.what()).find("sticky"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vector_add_kernel"), std::string::npos) << e.what();
  }
  program.launches[0].l2_windows[0].hit_property = "persisting";
  program.launches[0].l2_windows[0].hit_ratio = 1.5;
  EXPECT_THROW(cuda::build_program_plan(program, detail::Binder(program, {2}, dlpack::kDLCUDA)),
               ProgramError);
  program.launches[0].l2_windows[0].hit_ratio = 0.5;
  program.launches[0].l2_windows.push_back(program.launches[0].l2_windows[0]);
  EXPECT_THROW(cuda::build_program_plan(program, detail::Binder(program, {2}, dlpack::kDLCUDA)),
               ProgramError);
}

}  // namespace
}  // namespace tilejit
