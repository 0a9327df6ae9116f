// Kernel::export_to and `tilejit export`: the exported library, header and sources let a plain
// C program call the kernel with no tilejit at run time. The example in examples/export_c/ is
// built with its own Makefile and run here, exactly as its README describes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "private_cache.h"
#include "test_codegen_programs.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;

// Kernels compiled here go to a private cache directory, not the user's.
const fs::path kExampleDir = fs::path(TILEJIT_EXAMPLES_DIR) / "export_c";

detail::ProcessResult run(const std::vector<std::string>& argv) {
  return detail::run_process(argv, std::chrono::seconds(600));
}

std::string describe(const std::vector<std::string>& argv, const detail::ProcessResult& r) {
  std::string text;
  for (const std::string& word : argv) text += word + " ";
  return text + "\n" + r.output;
}

bool have_nvcc() {
  return detail::find_program("nvcc").has_value() || fs::exists("/usr/local/cuda/bin/nvcc");
}

std::string nvcc() {
  if (auto found = detail::find_program("nvcc")) return found->string();
  return "/usr/local/cuda/bin/nvcc";
}

CompileOptions options_for(const std::string& backend, const std::string& target) {
  CompileOptions options;
  options.execution_backend = backend;
  options.target = target;
  return options;
}

TEST(Export, CpuKernelRunsFromAPlainCProgramBuiltWithTheExamplesMakefile) {
  detail::TempDir dir("tilejit-test-export");
  const fs::path out = dir.path() / "exported";
  Kernel kernel = compile(Program::load(kExampleDir / "saxpy.json"), options_for("cpu", "c"));
  kernel.export_to(out);
  for (const char* file : {"libsaxpy.so", "saxpy.h", "saxpy.c", "saxpy_host.c", "README.txt"}) {
    EXPECT_TRUE(fs::exists(out / file)) << file;
  }
  const std::string header = detail::read_file(out / "saxpy.h");
  EXPECT_NE(header.find("int call(float* X, float* Y, float alpha, int32_t n);"), std::string::npos)
      << header;

  const std::string demo = (dir.path() / "saxpy_demo").string();
  const std::vector<std::string> make = {"make", "-C", kExampleDir.string(),
                                         "EXPORT_DIR=" + out.string(), "OUT=" + demo};
  const detail::ProcessResult built = run(make);
  ASSERT_EQ(built.exit_code, 0) << describe(make, built);
  const detail::ProcessResult ran = run({demo});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("PASS: 1001 of 1001 elements match"), std::string::npos) << ran.output;
}

TEST(Export, ExportedSourcesRebuildTheLibraryWithTheReadmesCommand) {
  detail::TempDir dir("tilejit-test-export");
  Kernel kernel = compile(testing::cpu_golden_cases()[1].program, options_for("cpu", "c"));
  kernel.export_to(dir.path());
  const std::string readme = detail::read_file(dir.path() / "README.txt");
  const std::string marker = "Rebuild from the sources\n  ";
  const size_t at = readme.find(marker);
  ASSERT_NE(at, std::string::npos) << readme;
  const std::string command =
      readme.substr(at + marker.size(), readme.find('\n', at + marker.size()) - at - marker.size());
  fs::remove(dir.path() / "libsaxpy_then_scale.so");
  const std::vector<std::string> shell = {"sh", "-c",
                                          "cd '" + dir.path().string() + "' && " + command};
  const detail::ProcessResult rebuilt = run(shell);
  EXPECT_EQ(rebuilt.exit_code, 0) << describe(shell, rebuilt);
  EXPECT_TRUE(fs::exists(dir.path() / "libsaxpy_then_scale.so"));
  // Every parameter of call() is documented, in order.
  const size_t x = readme.find("float* X: float32 tensor [rows, cols]");
  const size_t factor = readme.find("double factor: scalar float64");
  const size_t cols = readme.find("int64_t cols:");
  EXPECT_TRUE(x != std::string::npos && factor != std::string::npos && cols != std::string::npos &&
              x < factor && factor < cols)
      << readme;
}

TEST(Export, CommandLineExportWritesTheSameFiles) {
  const std::string tool = TILEJIT_TOOL_PATH;
  if (tool.empty()) GTEST_SKIP() << "the tilejit CLI is not part of this build";
  detail::TempDir dir("tilejit-test-export");
  const std::vector<std::string> argv = {
      tool,        "export", (kExampleDir / "saxpy.json").string(), (dir.path() / "out").string(),
      "--backend", "cpu"};
  const detail::ProcessResult result = run(argv);
  ASSERT_EQ(result.exit_code, 0) << describe(argv, result);
  EXPECT_NE(result.output.find("libsaxpy.so"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "libsaxpy.so"));
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "saxpy.h"));
}

TEST(Export, IntoAPathThatIsAFileIsAnErrorNamingIt) {
  detail::TempDir dir("tilejit-test-export");
  const fs::path file = dir.path() / "not_a_dir";
  detail::write_file(file, "x");
  Kernel kernel = compile(Program::load(kExampleDir / "saxpy.json"), options_for("cpu", "c"));
  try {
    kernel.export_to(file);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
}

// CUDA: the exported host.cu (which embeds the device code) builds with nvcc alone, and the
// header compiles as C against the CUDA runtime headers. No GPU is needed for either.
void expect_cuda_export_builds(const Kernel& kernel) {
  detail::TempDir dir("tilejit-test-export");
  kernel.export_to(dir.path());
  for (const char* file : {"libvector_add.so", "vector_add.h", "kernel.cu", "host.cu",
                           "include/tilejit/cuda_device.h", "README.txt"}) {
    EXPECT_TRUE(fs::exists(dir.path() / file)) << file;
  }
  const std::string readme = detail::read_file(dir.path() / "README.txt");
  EXPECT_NE(readme.find("backend nvcc"), std::string::npos) << readme;
  EXPECT_NE(readme.find("cudaStream_t stream"), std::string::npos) << readme;

  detail::write_file(dir.path() / "use.c",
                     "#include \"vector_add.h\"\n"
                     "int run(float* a, float* b, float* c, int32_t n) {\n"
                     "  return init() != 0 ? -1 : call(a, b, c, n, (cudaStream_t)0);\n}\n");
  const fs::path cuda_include = fs::path(nvcc()).parent_path().parent_path() / "include";
  const std::vector<std::string> cc = {detail::HostCompiler::detect().c_compiler,
                                       "-std=c11",
                                       "-Wall",
                                       "-Werror",
                                       "-I" + cuda_include.string(),
                                       "-c",
                                       "-o",
                                       (dir.path() / "use.o").string(),
                                       (dir.path() / "use.c").string()};
  const detail::ProcessResult compiled = run(cc);
  EXPECT_EQ(compiled.exit_code, 0) << describe(cc, compiled);

  const std::vector<std::string> rebuild = {nvcc(),
                                            "-shared",
                                            "-Xcompiler",
                                            "-fPIC",
                                            "-std=c++17",
                                            "-o",
                                            (dir.path() / "rebuilt.so").string(),
                                            "-x",
                                            "c++",
                                            (dir.path() / "host.cu").string()};
  const detail::ProcessResult rebuilt = run(rebuild);
  EXPECT_EQ(rebuilt.exit_code, 0) << describe(rebuild, rebuilt);
}

TEST(Export, NvccKernelExportsItsLibraryHeaderAndSelfContainedSources) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  expect_cuda_export_builds(
      compile(testing::cuda_golden_cases()[0].program, options_for("nvcc", "sm_90a")));
}

TEST(Export, NvrtcKernelIsRebuiltWithNvccForItsHostLibrary) {
  if (!have_nvcc()) GTEST_SKIP() << "nvcc is not installed";
  Kernel kernel;
  try {
    kernel = compile(testing::cuda_golden_cases()[0].program, options_for("nvrtc", "sm_90a"));
  } catch (const NotAvailableError& e) {
    GTEST_SKIP() << "NVRTC is not available: " << e.what();
  }
  ASSERT_EQ(kernel.artifact().backend, "nvrtc");
  expect_cuda_export_builds(kernel);
}

}  // namespace
}  // namespace tilejit
