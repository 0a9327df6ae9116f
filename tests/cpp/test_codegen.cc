// Host-wrapper generation: golden files, compile checks and behaviour of the generated code.
//
// Golden files live in tests/data/golden/ (<language>_<case>.<ext>, one per generator and
// Program of test_codegen_programs.h). After an intended change to a generator, regenerate
// them with
//
//   scripts/update-golden.sh            # runs this test with TILEJIT_UPDATE_GOLDEN=1
//
// and review the diff with `git diff tests/data/golden` before committing.
//
// Beyond the text: every CUDA wrapper is compiled with nvcc into a shared library (no GPU or
// driver needed), every CPU wrapper is compiled through the cpu backend and run on random
// data against a plain reference, the HIP wrappers pass a C++ syntax check against a small
// stand-in for the HIP headers (tests/data/hip_stub), and printed expressions are compiled
// and evaluated against Expr::eval.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codegen/emit.h"
#include "codegen/wrapper.h"
#include "private_cache.h"
#include "test_codegen_programs.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

using detail::CallParam;
using detail::HostApi;
using testing::GoldenCase;

namespace fs = std::filesystem;

const fs::path kGoldenDir = fs::path(TILEJIT_TEST_DATA_DIR) / "golden";
const fs::path kRepoInclude =
    fs::path(TILEJIT_TEST_DATA_DIR).parent_path().parent_path() / "include";

// Kernels compiled here go to a private cache directory, not the user's.
bool updating_golden() {
  const char* value = std::getenv("TILEJIT_UPDATE_GOLDEN");
  return value != nullptr && std::string(value) == "1";
}

void expect_golden(const std::string& file, const std::string& actual) {
  const fs::path path = kGoldenDir / file;
  if (updating_golden()) {
    fs::create_directories(kGoldenDir);
    detail::write_file(path, actual);
    return;
  }
  ASSERT_TRUE(fs::exists(path)) << path << " is missing: run scripts/update-golden.sh";
  EXPECT_EQ(detail::read_file(path), actual)
      << "the generated text differs from " << path
      << "; if the change is intended, run scripts/update-golden.sh and review the diff";
}

std::string run_output(const std::vector<std::string>& argv) {
  const detail::ProcessResult result = detail::run_process(argv, std::chrono::seconds(600));
  EXPECT_FALSE(result.timed_out) << argv[0];
  EXPECT_EQ(result.exit_code, 0) << fmt::format("{}", fmt::join(argv, " ")) << "\n"
                                 << result.output;
  return result.output;
}

std::optional<fs::path> nvcc_path() {
  if (auto found = detail::find_program("nvcc")) return found;
  for (const char* dir : {"/usr/local/cuda/bin/nvcc", "/usr/cuda/bin/nvcc"}) {
    if (fs::exists(dir)) return fs::path(dir);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Golden files

TEST(CodegenGolden, Cuda) {
  for (const GoldenCase& c : testing::cuda_golden_cases()) {
    SCOPED_TRACE(c.name);
    expect_golden("cuda_" + c.name + ".cu", detail::generate_cuda_wrapper(c.program, "kernel.cu"));
    expect_golden("cuda_" + c.name + ".h",
                  detail::generate_wrapper_header(c.program, HostApi::kCuda));
  }
}

TEST(CodegenGolden, Hip) {
  for (const GoldenCase& c : testing::hip_golden_cases()) {
    SCOPED_TRACE(c.name);
    expect_golden("hip_" + c.name + ".hip", detail::generate_hip_wrapper(c.program, "kernel.hip"));
    expect_golden("hip_" + c.name + ".h",
                  detail::generate_wrapper_header(c.program, HostApi::kHip));
  }
}

TEST(CodegenGolden, Cpu) {
  for (const GoldenCase& c : testing::cpu_golden_cases()) {
    SCOPED_TRACE(c.name);
    expect_golden("cpu_" + c.name + ".c", detail::generate_cpu_wrapper(c.program));
    expect_golden("cpu_" + c.name + ".h",
                  detail::generate_wrapper_header(c.program, HostApi::kCpu));
  }
}

TEST(CodegenGolden, MetalPassesTheSourceThrough) {
  for (const GoldenCase& c : testing::metal_golden_cases()) {
    SCOPED_TRACE(c.name);
    const std::string generated = detail::generate_metal_wrapper(c.program);
    EXPECT_EQ(generated, c.program.source);
    expect_golden("metal_" + c.name + ".metal", generated);
  }
}

// ---------------------------------------------------------------------------------------------
// The call() parameter list (CONVENTIONS §3)

TEST(CodegenCallParams, ParamsInOrderThenDynamicSymbolsTypedByTheirKernels) {
  const Program program = testing::cuda_golden_cases()[1].program;  // scale2d: long long M, N
  const std::vector<CallParam> params = detail::wrapper_call_params(program);
  ASSERT_EQ(params.size(), 5u);
  EXPECT_EQ(params[0].name, "X");
  EXPECT_EQ(params[0].kind, CallParam::Kind::kTensor);
  EXPECT_EQ(params[0].param_index, 0);
  EXPECT_EQ(params[0].c_type, "float*");
  EXPECT_EQ(params[2].name, "alpha");
  EXPECT_EQ(params[2].kind, CallParam::Kind::kScalar);
  EXPECT_EQ(params[2].c_type, "float");
  EXPECT_EQ(params[3].name, "M");
  EXPECT_EQ(params[3].kind, CallParam::Kind::kSymbol);
  EXPECT_EQ(params[3].param_index, -1);
  EXPECT_EQ(params[3].dtype, DataType::parse("int64"));
  EXPECT_EQ(params[3].c_type, "int64_t");
  EXPECT_EQ(params[4].name, "N");
}

TEST(CodegenCallParams, ScalarsThatAreSymbolsAreNotRepeatedAndIntKernelsGiveInt32) {
  const Program program = testing::cpu_golden_cases()[2].program;  // row_sums: int M, int N
  std::vector<std::string> names;
  for (const CallParam& p : detail::wrapper_call_params(program)) {
    names.push_back(p.name + ":" + p.c_type);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"A:int32_t*", "S:int64_t*", "T:int64_t*",
                                             "offset:int32_t", "M:int32_t", "N:int32_t"}));
}

Program one_kernel(const std::string& source, const std::string& tensor_name,
                   const std::string& kernel) {
  return ProgramBuilder("p")
      .source(source)
      .tensor(tensor_name, "float32", {"n"})
      .launch(Launch(kernel).with_grid({"ceildiv(n, 128)"}).with_block({128}))
      .build();
}

template <class Fn>
void expect_program_error_naming(Fn&& fn, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "expected ProgramError";
  } catch (const ProgramError& e) {
    for (const std::string& word : words) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos)
          << "message '" << e.what() << "' should name '" << word << "'";
    }
  }
}

TEST(CodegenCallParams, NamesThatWouldBreakGeneratedCodeAreRejected) {
  expect_program_error_naming(
      [] {
        detail::wrapper_call_params(
            one_kernel("extern \"C\" __global__ void k(float* stream, int n) {}", "stream", "k"));
      },
      {"'stream'"});
  expect_program_error_naming(
      [] {
        detail::wrapper_call_params(
            one_kernel("extern \"C\" __global__ void k(float* tj_x, int n) {}", "tj_x", "k"));
      },
      {"'tj_x'", "reserved"});
  expect_program_error_naming(
      [] {
        detail::wrapper_call_params(
            one_kernel("extern \"C\" __global__ void k(float* k, int n) {}", "k", "k"));
      },
      {"'k'", "kernel"});
  expect_program_error_naming(
      [] {
        detail::generate_cuda_wrapper(
            one_kernel("extern \"C\" __global__ void call(float* A, int n) {}", "A", "call"),
            "kernel.cu");
      },
      {"'call'", "entry point"});
}

// ---------------------------------------------------------------------------------------------
// Kernel arguments in the CUDA wrapper

TEST(CodegenCuda, NarrowerScalarIsWidenedIntoALocalOfTheKernelsType) {
  const Program program =
      ProgramBuilder("widen")
          .source("extern \"C\" __global__ void k(float* A, long long count, int n) {}")
          .tensor("A", "float32", {"n"})
          .scalar("count", "int32")
          .launch(Launch("k").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .build();
  const std::string wrapper = detail::generate_cuda_wrapper(program, "kernel.cu");
  EXPECT_NE(wrapper.find("int64_t tj_k_count = (int64_t)count;"), std::string::npos) << wrapper;
  EXPECT_NE(wrapper.find("void* tj_args[] = {&A, &tj_k_count, &n};"), std::string::npos) << wrapper;
}

TEST(CodegenCuda, ScalarWiderThanTheKernelParameterIsAProgramError) {
  const Program program =
      ProgramBuilder("narrow")
          .source("extern \"C\" __global__ void k(float* A, int count, int n) {}")
          .tensor("A", "float32", {"n"})
          .scalar("count", "int64")
          .launch(Launch("k").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .build();
  expect_program_error_naming([&] { detail::generate_cuda_wrapper(program, "kernel.cu"); },
                              {"'k'", "'count'"});
}

// The default dynamic limit is 48 KB minus the kernel's static shared memory, which the
// generator cannot see: every constant size above 0 opts in (the largest of a kernel's
// launches), a symbolic one opts in to the device's limit, and no dynamic memory sets nothing.
TEST(CodegenCuda, InitOptsInToEveryDynamicSharedMemorySizeUnder48KBToo) {
  const std::string source =
      "extern \"C\" __global__ void a(float* A, int n) {}\n"
      "extern \"C\" __global__ void b(float* A, int n) {}\n"
      "extern \"C\" __global__ void c(float* A, int n) {}\n";
  const Program program =
      ProgramBuilder("smem_optin")
          .source(source)
          .tensor("A", "float32", {"n"})
          .launch(Launch("a").with_grid({1}).with_block({32}).with_dynamic_smem(40960))
          .launch(Launch("a").with_grid({1}).with_block({32}).with_dynamic_smem(45056))
          .launch(Launch("a").with_grid({1}).with_block({32}).with_dynamic_smem(1024))
          .launch(Launch("b").with_grid({1}).with_block({32}))
          .launch(Launch("c").with_grid({1}).with_block({32}).with_dynamic_smem("n * 4"))
          .build();
  const std::string wrapper = detail::generate_cuda_wrapper(program, "kernel.cu");
  const size_t init = wrapper.find("extern \"C\" int init(void)");
  ASSERT_NE(init, std::string::npos) << wrapper;
  const std::string body = wrapper.substr(init, wrapper.find("\n}\n", init) - init);
  // Kernel handles are numbered in launch order: a, b, c.
  EXPECT_NE(body.find("(const void*)tj_kernels[0], cudaFuncAttributeMaxDynamicSharedMemorySize,\n"
                      "      45056)"),
            std::string::npos)
      << body;
  EXPECT_EQ(body.find("40960"), std::string::npos) << body;
  EXPECT_EQ(body.find("(const void*)tj_kernels[1]"), std::string::npos) << body;
  EXPECT_NE(body.find("tj_allow_max_dynamic_smem((const void*)tj_kernels[2], \"c\")"),
            std::string::npos)
      << body;
  size_t count = 0;
  for (size_t at = body.find("MaxDynamicSharedMemorySize"); at != std::string::npos;
       at = body.find("MaxDynamicSharedMemorySize", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << body;  // one set for a; c's goes through tj_allow_max_dynamic_smem
}

// A launch costs one driver call per call: call() launches every kernel through tj_launch
// (cuLaunchKernelEx) and calls no CUDA runtime function, neither a runtime launch nor
// cudaGetLastError. An L2 window's set and reset are runtime calls around its launch, so those
// Programs are left out.
TEST(CodegenCuda, CallLaunchesThroughTheDriverAndCallsNoRuntimeFunction) {
  const std::regex runtime_call(R"(\bcuda[A-Z]\w*\s*\()");
  int checked = 0;
  for (const GoldenCase& c : testing::cuda_golden_cases()) {
    SCOPED_TRACE(c.name);
    bool l2_window = false;
    for (const Launch& launch : c.program.launches) l2_window |= !launch.l2_windows.empty();
    if (l2_window) continue;
    const std::string wrapper = detail::generate_cuda_wrapper(c.program, "kernel.cu");
    const size_t start = wrapper.find("extern \"C\" int call(");
    ASSERT_NE(start, std::string::npos) << wrapper;
    const std::string body = wrapper.substr(start, wrapper.find("\n}\n", start) - start);
    std::smatch match;
    EXPECT_FALSE(std::regex_search(body, match, runtime_call)) << match.str(0) << "\n" << body;
    size_t launches = 0;
    for (size_t at = body.find("tj_launch("); at != std::string::npos;
         at = body.find("tj_launch(", at + 1)) {
      ++launches;
    }
    EXPECT_EQ(launches, c.program.launches.size()) << body;
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST(CodegenCuda, TwoL2WindowsOnOneLaunchAreAProgramError) {
  L2Window a;
  a.param = "A";
  a.num_bytes = Expr("n * 4");
  L2Window b = a;
  b.hit_ratio = 0.5;
  const Program program =
      ProgramBuilder("two_windows")
          .source("extern \"C\" __global__ void k(float* A, int n) {}")
          .tensor("A", "float32", {"n"})
          .launch(Launch("k").with_grid({1}).with_block({32}).with_l2_window(a).with_l2_window(b))
          .build();
  expect_program_error_naming([&] { detail::generate_cuda_wrapper(program, "kernel.cu"); },
                              {"'k'", "2 L2 windows"});
}

TEST(CodegenHip, CudaOnlyFeaturesAreAProgramError) {
  const Program program =
      ProgramBuilder("clustered")
          .source("extern \"C\" __global__ void k(float* A, int n) {}", Language::kHip)
          .tensor("A", "float32", {"n"})
          .launch(Launch("k").with_grid({2}).with_block({32}).with_cluster({2, 1, 1}))
          .build();
  expect_program_error_naming([&] { detail::generate_hip_wrapper(program, "kernel.hip"); },
                              {"'k'", "clusters"});
}

// ---------------------------------------------------------------------------------------------
// Expressions printed as C

std::string print_int64(const Expr& e) {
  return detail::emit_c_expr(e, [](std::string_view name) { return std::string(name); });
}

TEST(CodegenEmit, ParenthesesOnlyWherePrecedenceNeedsThem) {
  EXPECT_EQ(print_int64(Expr::parse("a - (b - c)")), "a - (b - c)");
  EXPECT_EQ(print_int64(Expr::parse("(a - b) - c")), "a - b - c");
  EXPECT_EQ(print_int64(Expr::parse("(a + b) * c")), "(a + b) * c");
  EXPECT_EQ(print_int64(Expr::parse("a / (b * c)")), "a / (b * c)");
  EXPECT_EQ(print_int64(Expr::parse("a * b % c")), "a * b % c");
  EXPECT_EQ(print_int64(Expr::parse("ceildiv(a + 1, b)")), "(a + 1 + b - 1) / b");
  EXPECT_EQ(print_int64(Expr::parse("ceildiv(a, b * 2)")), "(a + b * 2 - 1) / (b * 2)");
  EXPECT_EQ(print_int64(Expr::parse("min(a, b + 1) * 2")), "(a < b + 1 ? a : b + 1) * 2");
  EXPECT_EQ(print_int64(Expr::parse("max(a, 3)")), "(a > 3 ? a : 3)");
}

TEST(CodegenEmit, ConstantSubtreesAreFoldedSoNoIntArithmeticCanOverflow) {
  EXPECT_EQ(print_int64(Expr::binary(Expr::Op::kAdd, Expr::var("a"),
                                     Expr::binary(Expr::Op::kMul, Expr(1000000), Expr(1000000)))),
            "a + 1000000000000");
  EXPECT_EQ(print_int64(Expr::binary(Expr::Op::kMul, Expr::var("a"), Expr(-3))), "a * (-3)");
  EXPECT_EQ(print_int64(Expr::binary(Expr::Op::kAdd, Expr::var("a"),
                                     Expr(std::numeric_limits<int64_t>::min()))),
            "a + (-9223372036854775807 - 1)");
}

// A random expression over a, b, c whose every subexpression is non-negative for
// non-negative inputs, with divisors that cannot be zero.
Expr random_expr(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> pick(0, 9);
  if (depth == 0 || pick(rng) < 2) {
    const int leaf = std::uniform_int_distribution<int>(0, 3)(rng);
    if (leaf == 3) return Expr(std::uniform_int_distribution<int64_t>(0, 300)(rng));
    return Expr::var(std::string(1, static_cast<char>('a' + leaf)));
  }
  Expr lhs = random_expr(rng, depth - 1);
  Expr rhs = random_expr(rng, depth - 1);
  Expr divisor = rhs + Expr(1);
  switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
    case 0:
      return lhs + rhs;
    case 1:
      return lhs * rhs;
    case 2:
      return Expr::binary(Expr::Op::kFloorDiv, lhs, divisor);
    case 3:
      return Expr::binary(Expr::Op::kFloorMod, lhs, divisor);
    case 4:
      return Expr::binary(Expr::Op::kCeilDiv, lhs, divisor);
    case 5:
      return Expr::binary(Expr::Op::kMin, lhs, rhs);
    default:
      return Expr::binary(Expr::Op::kMax, lhs, rhs);
  }
}

TEST(CodegenEmit, PrintedExpressionsEvaluateLikeExprEvalWhenCompiled) {
  std::mt19937 rng(42);
  std::vector<Expr> exprs;
  for (int i = 0; i < 200; ++i) exprs.push_back(random_expr(rng, 4));
  std::vector<std::map<std::string, int64_t, std::less<>>> envs;
  for (int i = 0; i < 8; ++i) {
    std::uniform_int_distribution<int64_t> value(0, 1000);
    envs.push_back({{"a", value(rng)}, {"b", value(rng)}, {"c", value(rng)}});
  }
  // Expressions whose values exceed int64 for some inputs are left out: their C evaluation
  // would be undefined, and Expr::eval refuses them.
  std::vector<size_t> kept;
  for (size_t i = 0; i < exprs.size(); ++i) {
    try {
      for (const auto& env : envs) exprs[i].eval(env);
      kept.push_back(i);
    } catch (const Error&) {
    }
  }
  ASSERT_GT(kept.size(), 150u);

  // The C program takes a, b, c as int32_t, as call() would for int symbols, so the printed
  // casts to int64_t are exercised.
  std::string program = "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n";
  program += "int main(int argc, char** argv) {\n  (void)argc;\n";
  program += "  const int32_t a = atoi(argv[1]), b = atoi(argv[2]), c = atoi(argv[3]);\n";
  for (size_t i : kept) {
    const std::string text = detail::emit_c_expr(
        exprs[i], [](std::string_view name) { return "(int64_t)" + std::string(name); });
    program += fmt::format("  printf(\"%lld\\n\", (long long)({}));\n", text);
  }
  program += "  return 0;\n}\n";

  detail::TempDir dir("tilejit-test-emit");
  detail::write_file(dir.path() / "eval.c", program);
  const std::string binary = (dir.path() / "eval").string();
  run_output({detail::HostCompiler::detect().c_compiler, "-std=c11", "-Wall", "-Werror",
              "-Wno-parentheses", "-o", binary, (dir.path() / "eval.c").string()});
  for (const auto& env : envs) {
    const std::string output =
        run_output({binary, std::to_string(env.find("a")->second),
                    std::to_string(env.find("b")->second), std::to_string(env.find("c")->second)});
    std::istringstream lines(output);
    for (size_t i : kept) {
      long long value = 0;
      ASSERT_TRUE(lines >> value);
      ASSERT_EQ(value, exprs[i].eval(env)) << exprs[i].str();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Generated CUDA compiles with nvcc (no GPU needed); generated HIP parses as C++

TEST(CodegenCompile, EveryCudaWrapperBuildsASharedLibraryWithNvcc) {
  const auto nvcc = nvcc_path();
  if (!nvcc) GTEST_SKIP() << "nvcc is not installed";
  for (const GoldenCase& c : testing::cuda_golden_cases()) {
    SCOPED_TRACE(c.name);
    detail::TempDir dir("tilejit-test-nvcc");
    // As the nvcc backend builds: the device source alone to a cubin, embedded in the wrapper.
    detail::write_file(dir.path() / "kernel.cu", c.program.source);
    const fs::path cubin = dir.path() / "kernel.cubin";
    run_output({nvcc->string(), "--cubin", "-std=c++17", "-gencode", "arch=compute_90a,code=sm_90a",
                "-Werror", "all-warnings", "-I" + kRepoInclude.string(), "-o", cubin.string(),
                (dir.path() / "kernel.cu").string()});
    detail::write_file(dir.path() / "host.cu",
                       detail::generate_cuda_wrapper(c.program, "kernel.cu") +
                           detail::embed_cuda_device_image(detail::read_file(cubin), "kernel.cu"));
    detail::write_file(dir.path() / "lib.h",
                       detail::generate_wrapper_header(c.program, HostApi::kCuda));
    // The header must agree with the definitions: include it into the same translation unit.
    detail::write_file(dir.path() / "check.cu", "#include \"lib.h\"\n#include \"host.cu\"\n");
    const fs::path library = dir.path() / "lib.so";
    run_output({nvcc->string(), "-shared", "-Xcompiler", "-fPIC", "-std=c++17", "-Werror",
                "all-warnings", "-o", library.string(), "-x", "c++",
                (dir.path() / "check.cu").string()});
    ASSERT_TRUE(fs::exists(library));
    // init() looks each launched kernel up in the cubin by name (cudaLibraryGetKernel): the
    // cubin's string table has it.
    const std::string image = detail::read_file(cubin);
    for (const Launch& launch : c.program.launches) {
      EXPECT_NE(image.find('\0' + launch.kernel + '\0'), std::string::npos) << launch.kernel;
    }
    // The entry points are exported with C linkage.
    void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    for (const char* symbol : {"init", "call", "call_packed", "get_last_error"}) {
      EXPECT_NE(dlsym(handle, symbol), nullptr) << symbol;
    }
    dlclose(handle);
  }
}

TEST(CodegenCompile, EveryHipWrapperPassesACxxSyntaxCheck) {
  const fs::path stub = fs::path(TILEJIT_TEST_DATA_DIR) / "hip_stub";
  for (const GoldenCase& c : testing::hip_golden_cases()) {
    SCOPED_TRACE(c.name);
    detail::TempDir dir("tilejit-test-hip");
    detail::write_file(dir.path() / "kernel.hip", c.program.source);
    detail::write_file(dir.path() / "host.hip",
                       detail::generate_hip_wrapper(c.program, "kernel.hip"));
    detail::write_file(dir.path() / "lib.h",
                       detail::generate_wrapper_header(c.program, HostApi::kHip));
    detail::write_file(dir.path() / "check.cpp", "#include \"lib.h\"\n#include \"host.hip\"\n");
    run_output({detail::HostCompiler::detect().cxx_compiler, "-fsyntax-only", "-std=c++17", "-Wall",
                "-Wextra", "-Werror", "-I" + stub.string(), (dir.path() / "check.cpp").string()});
  }
}

// ---------------------------------------------------------------------------------------------
// Generated CPU code compiles and computes the right thing (through the cpu backend)

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

CompileOptions cpu_options() {
  CompileOptions options;
  options.execution_backend = "cpu";
  options.target = "c";
  return options;
}

TEST(CodegenCpu, HeaderAndWrapperCompileAsStrictC11) {
  for (const GoldenCase& c : testing::cpu_golden_cases()) {
    SCOPED_TRACE(c.name);
    detail::TempDir dir("tilejit-test-cpu-c11");
    detail::write_file(dir.path() / "lib.h",
                       detail::generate_wrapper_header(c.program, HostApi::kCpu));
    detail::write_file(dir.path() / "host.c",
                       "#include \"lib.h\"\n" + detail::generate_cpu_wrapper(c.program));
    run_output({detail::HostCompiler::detect().c_compiler, "-std=c11", "-Wall", "-Wextra",
                "-Wpedantic", "-Werror", "-c", "-o", (dir.path() / "host.o").string(),
                (dir.path() / "host.c").string()});
  }
}

TEST(CodegenCpu, VectorAddRunsOnOddSizes) {
  Kernel kernel = compile(testing::cpu_golden_cases()[0].program, cpu_options());
  std::mt19937 rng(7);
  for (int64_t n : {1, 13, 1001}) {
    std::vector<float> a = random_floats(static_cast<size_t>(n), rng);
    std::vector<float> b = random_floats(static_cast<size_t>(n), rng);
    TensorView A(a.data(), "float32", {n}), B(b.data(), "float32", {n});
    std::vector<Tensor> outs = kernel({A, B});
    ASSERT_EQ(outs.size(), 1u);
    const float* c = outs[0].data<float>();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << "n=" << n << " i=" << i;
  }
}

TEST(CodegenCpu, TwoLaunchesWithFloatAndDoubleScalarsRunInOrder) {
  Kernel kernel = compile(testing::cpu_golden_cases()[1].program, cpu_options());
  std::mt19937 rng(8);
  const int64_t rows = 7, cols = 19;
  std::vector<float> x = random_floats(rows * cols, rng);
  std::vector<float> y = random_floats(rows * cols, rng);
  std::vector<float> expected(y.size());
  const float alpha = 1.25f;
  const double factor = -0.375;
  for (size_t i = 0; i < y.size(); ++i) {
    expected[i] = static_cast<float>((alpha * x[i] + y[i]) * factor);
  }
  TensorView X(x.data(), "float32", {rows, cols}), Y(y.data(), "float32", {rows, cols});
  kernel({X, Y, alpha, factor});
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], expected[i]) << "i=" << i;
}

TEST(CodegenCpu, IntegerSymbolsAndAnIntScalarReachBothFunctions) {
  Kernel kernel = compile(testing::cpu_golden_cases()[2].program, cpu_options());
  std::mt19937 rng(9);
  std::uniform_int_distribution<int32_t> value(-100000, 100000);
  const int64_t m = 11, n = 23;
  std::vector<int32_t> a(static_cast<size_t>(m * n));
  for (int32_t& v : a) v = value(rng);
  const int32_t offset = -77;
  TensorView A(a.data(), "int32", {m, n});
  std::vector<Tensor> outs = kernel({A, offset});
  ASSERT_EQ(outs.size(), 2u);
  for (int64_t r = 0; r < m; ++r) {
    int64_t sum = 0;
    for (int64_t c = 0; c < n; ++c) sum += a[static_cast<size_t>(r * n + c)];
    EXPECT_EQ(outs[0].data<int64_t>()[r], sum) << "row " << r;
    EXPECT_EQ(outs[1].data<int64_t>()[r], sum + offset) << "row " << r;
  }
}

}  // namespace
}  // namespace tilejit
