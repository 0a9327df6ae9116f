// The cpu backend end to end: the example programs compiled with the host compiler and run on
// random data, every output element checked against a plain C++ reference.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <complex>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include <elf.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/shared_library.h"
#include "compile/kernel_state.h"
#include "private_cache.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

// Kernels compiled here go to a private cache directory, not the user's.
Program example(const char* name) {
  return Program::load(std::filesystem::path(TILEJIT_EXAMPLES_DIR) / (std::string(name) + ".json"));
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(CpuBackend, VectorAddSymbolicNOddSizes) {
  Kernel kernel = compile(example("vector_add"));
  ASSERT_EQ(kernel.out_idx(), std::vector<int>{2});
  std::mt19937 rng(1);
  for (int64_t n : {1, 7, 255, 1000, 4099}) {
    std::vector<float> a = random_floats(n, rng), b = random_floats(n, rng);
    TensorView A(a.data(), "float32", {n}), B(b.data(), "float32", {n});
    std::vector<Tensor> outs = kernel({A, B});
    ASSERT_EQ(outs.size(), 1u);
    ASSERT_EQ(outs[0].numel(), n);
    EXPECT_EQ(outs[0].dtype(), DataType::parse("float32"));
    const float* c = outs[0].data<float>();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << "n=" << n << " i=" << i;
  }
}

// Module globals: a C global of the kernel's library is found by name with its size; what is
// written into it before a call is what the kernel reads.
TEST(CpuBackend, GetGlobalReturnsTheLibrarysVariableForWritesBeforeALaunch) {
  Program program = ProgramBuilder("poly")
                        .source(R"(
#include <stdint.h>
double coefficients[5] = {0, 0, 0, 0, 0};
int64_t calls;
static int hidden;
void poly(const double* x, double* y, int64_t n) {
  ++calls;
  for (int64_t i = 0; i < n; ++i) {
    double v = 0;
    for (int k = 4; k >= 0; --k) v = v * x[i] + coefficients[k];
    y[i] = v;
  }
}
)",
                                Language::kC)
                        .tensor("x", "float64", {"n"})
                        .tensor("y", "float64", {"n"})
                        .launch(Launch("poly"))
                        .out_idx({-1})
                        .build();
  CompileOptions options;
  options.target = "c";
  Kernel kernel = compile(program, options);
  GlobalSymbol coefficients = kernel.get_global("coefficients");
  ASSERT_NE(coefficients.ptr, nullptr);
  EXPECT_EQ(coefficients.bytes, 5 * sizeof(double));
  EXPECT_EQ(coefficients.device, Device::cpu());
  EXPECT_EQ(kernel.get_global("calls").bytes, sizeof(int64_t));

  std::mt19937 rng(11);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (int trial = 0; trial < 3; ++trial) {
    double c[5];
    for (double& v : c) v = dist(rng);
    std::memcpy(coefficients.ptr, c, sizeof(c));
    const int64_t n = 17 + trial * 5;
    std::vector<double> x(static_cast<size_t>(n));
    for (double& v : x) v = dist(rng);
    std::vector<Tensor> outs = kernel({TensorView(x.data(), "float64", {n})});
    const double* y = outs.at(0).data<double>();
    for (int64_t i = 0; i < n; ++i) {
      double want = 0;
      for (int k = 4; k >= 0; --k) want = want * x[i] + c[k];
      ASSERT_DOUBLE_EQ(y[i], want) << "trial " << trial << " i " << i;
    }
  }
  EXPECT_EQ(*static_cast<int64_t*>(kernel.get_global("calls").ptr), 3);

  for (const char* missing : {"missing", "hidden", "poly"}) {  // absent, static, a function
    try {
      kernel.get_global(missing);
      ADD_FAILURE() << missing;
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + missing + "'"), std::string::npos)
          << e.what();
    }
  }
}

// complex128 tensors (DLPack kDLComplex) reach a C kernel as `double complex*`; a complex
// scalar is refused with the two ways to pass one.
TEST(CpuBackend, ComplexTensorsRunAndComplexScalarsAreRefused) {
  Program program = ProgramBuilder("rotate")
                        .source(R"(
#include <complex.h>
#include <stdint.h>
void rotate(const double complex* z, double complex* w, double re, double im, int64_t n) {
  for (int64_t i = 0; i < n; ++i) w[i] = z[i] * (re + im * I);
}
)",
                                Language::kC)
                        .tensor("z", "complex128", {"n"})
                        .tensor("w", "complex128", {"n"})
                        .scalar("re", "float64")
                        .scalar("im", "float64")
                        .launch(Launch("rotate"))
                        .out_idx({1})
                        .build();
  CompileOptions options;
  options.target = "c";
  Kernel kernel = compile(program, options);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> dist(-3.0, 3.0);
  for (int64_t n : {1, 9, 300}) {
    std::vector<std::complex<double>> z(static_cast<size_t>(n));
    for (auto& v : z) v = {dist(rng), dist(rng)};
    const std::complex<double> factor(dist(rng), dist(rng));
    std::vector<Tensor> outs =
        kernel({TensorView(z.data(), "complex128", {n}), factor.real(), factor.imag()});
    ASSERT_EQ(outs.at(0).dtype(), DataType::parse("complex128"));
    const auto* w = outs[0].data<std::complex<double>>();
    for (int64_t i = 0; i < n; ++i) {
      const std::complex<double> want = z[i] * factor;
      ASSERT_NEAR(w[i].real(), want.real(), 1e-12) << "n=" << n << " i=" << i;
      ASSERT_NEAR(w[i].imag(), want.imag(), 1e-12) << "n=" << n << " i=" << i;
    }
  }
  // A float64 tensor is not a complex128 one, even with the same bytes.
  std::vector<double> pairs(8, 1.0);
  EXPECT_THROW(kernel({TensorView(pairs.data(), "float64", {4}), 1.0, 0.0}), ArgumentError);
  try {
    ProgramBuilder("s")
        .source("void f(void) {}", Language::kC)
        .scalar("c", "complex64")
        .launch(Launch("f").with_args({}))
        .build();
    ADD_FAILURE() << "a complex scalar was accepted";
  } catch (const ProgramError& e) {
    EXPECT_NE(std::string(e.what()).find("a struct scalar of two float32 fields"),
              std::string::npos)
        << e.what();
  }
}

TEST(CpuBackend, VectorAddWithoutOutIdxWritesCallersBuffer) {
  CompileOptions options;
  options.out_idx = std::vector<int>{};
  Kernel kernel = compile(example("vector_add"), options);
  std::mt19937 rng(2);
  const int64_t n = 333;
  std::vector<float> a = random_floats(n, rng), b = random_floats(n, rng), c(n, -1.0f);
  TensorView A(a.data(), "float32", {n}), B(b.data(), "float32", {n}), C(c.data(), "float32", {n});
  EXPECT_TRUE(kernel({A, B, C}).empty());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << i;
}

TEST(CpuBackend, MatmulSymbolicMConstantNK) {
  Kernel kernel = compile(example("matmul"));
  constexpr int64_t N = 40, K = 48;
  std::mt19937 rng(3);
  std::vector<float> b = random_floats(K * N, rng);
  TensorView B(b.data(), "float32", {K, N});
  for (int64_t M : {1, 33, 130}) {
    std::vector<float> a = random_floats(M * K, rng);
    TensorView A(a.data(), "float32", {M, K});
    std::vector<Tensor> outs = kernel({A, B});
    ASSERT_EQ(outs.size(), 1u);
    ASSERT_EQ(std::vector<int64_t>(outs[0].shape().begin(), outs[0].shape().end()),
              (std::vector<int64_t>{M, N}));
    const float* c = outs[0].data<float>();
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        double ref = 0;
        for (int64_t k = 0; k < K; ++k) ref += double(a[i * K + k]) * double(b[k * N + j]);
        ASSERT_NEAR(c[i * N + j], ref, 1e-4 * (1 + std::abs(ref)))
            << "M=" << M << " " << i << "," << j;
      }
    }
  }
}

TEST(CpuBackend, DeclaredStrideVariableAcceptsNonCompactView) {
  Kernel kernel = compile(example("strided_scale"));
  std::mt19937 rng(4);
  for (auto [M, N, pad] :
       {std::tuple<int64_t, int64_t, int64_t>{5, 7, 3}, {17, 31, 0}, {1, 9, 11}}) {
    const int64_t ldx = N + pad;
    std::vector<float> storage = random_floats(M * ldx, rng);
    const float alpha = std::uniform_real_distribution<float>(-3, 3)(rng);
    // A view of the first N columns of an M x ldx matrix.
    TensorView X(storage.data(), DataType::parse("float32"), {M, N}, Device::cpu(), {ldx, 1});
    std::vector<Tensor> outs = kernel({X, alpha});
    ASSERT_EQ(outs.size(), 1u);
    const float* y = outs[0].data<float>();
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        ASSERT_EQ(y[i * N + j], alpha * storage[i * ldx + j]) << i << "," << j;
      }
    }
  }
}

TEST(CpuBackend, TwoFunctionsRunInOrderSharingABuffer) {
  Kernel kernel = compile(example("two_pass"));
  ASSERT_EQ(kernel.program().launches.size(), 2u);
  std::mt19937 rng(5);
  const int64_t n = 517;
  std::vector<float> x = random_floats(n, rng);
  TensorView X(x.data(), "float32", {n});
  std::vector<Tensor> outs = kernel({X});
  ASSERT_EQ(outs.size(), 2u);
  const float* t = outs[0].data<float>();
  const float* y = outs[1].data<float>();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(t[i], x[i] * x[i]) << i;
    ASSERT_EQ(y[i], x[i] * x[i] + x[i]) << i;  // the second function read the first's result
  }
}

TEST(CpuBackend, OutIdxNegativeIndicesAndShapesFromSymbols) {
  // Halves: out[i] = in[2i] + in[2i+1]; the output's shape is an expression of n.
  Program program =
      ProgramBuilder("pair_sum")
          .source(
              "void pair_sum(const int* in, int* out, long long n) {\n"
              "  for (long long i = 0; i < n / 2; ++i) out[i] = in[2*i] + in[2*i+1];\n"
              "}\n",
              Language::kC)
          .tensor("in", "int32", {"n"})
          .tensor("out", "int32", {"n / 2"})
          .launch(Launch("pair_sum"))
          .out_idx({-1})
          .build();
  Kernel kernel = compile(program);
  EXPECT_EQ(kernel.out_idx(), std::vector<int>{1});
  std::mt19937 rng(6);
  for (int64_t n : {2, 9, 64}) {
    std::vector<int32_t> in(n);
    for (auto& v : in) v = static_cast<int32_t>(rng() % 1000) - 500;
    std::vector<Tensor> outs = kernel({TensorView(in.data(), "int32", {n})});
    ASSERT_EQ(outs.size(), 1u);
    ASSERT_EQ(outs[0].numel(), n / 2);
    for (int64_t i = 0; i < n / 2; ++i)
      ASSERT_EQ(outs[0].data<int32_t>()[i], in[2 * i] + in[2 * i + 1]);
  }
}

// What compile() resolves for examples/vector_add.json on the cpu backend.
detail::ResolvedOptions vector_add_build_options() {
  detail::ResolvedOptions options;
  options.backend = "cpu";
  options.target = detail::Target{"c", ""};
  options.out_idx = {2};
  return options;
}

// A library with an STB_GNU_UNIQUE symbol (a static in an inline C++ function) stays loaded
// after dlclose, under its /proc/self/fd/N name; the next library, whose memfd gets the same
// number, must still be loaded itself and not be answered with the first (shared_library.cc).
TEST(SharedLibrary, ALibraryLeftLoadedUnderADescriptorNameIsNotHandedOutAgain) {
  const detail::HostCompiler& cc = detail::HostCompiler::detect();
  detail::TempDir dir("unique-symbol");
  const auto build = [&](const std::string& name) {
    const std::filesystem::path source = dir.path() / (name + ".cc");
    const std::filesystem::path library = dir.path() / (name + ".so");
    detail::write_file(source,
                       fmt::format("inline int& counter() {{ static int c = 0; return c; }}\n"
                                   "extern \"C\" int {}() {{ return ++counter(); }}\n",
                                   name));
    const detail::ProcessResult r = detail::run_process(
        {cc.cxx_compiler, "-shared", "-fPIC", "-O1", "-o", library.string(), source.string()},
        std::chrono::seconds(120));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return detail::read_file(library);
  };
  const std::string first = build("first"), second = build("second");
  { EXPECT_NE(detail::SharedLibrary::from_bytes(first, "first").find_symbol("first"), nullptr); }
  for (int round = 0; round < 3; ++round) {
    const detail::SharedLibrary library = detail::SharedLibrary::from_bytes(second, "second");
    EXPECT_NE(library.find_symbol("second"), nullptr) << "round " << round;
    EXPECT_EQ(library.find_symbol("first"), nullptr) << "round " << round;
  }
}

TEST(CpuBackend, BuildAndLoadThroughTheBackendDirectly) {
  const Program program = example("vector_add");
  const detail::ResolvedOptions options = vector_add_build_options();
  const detail::Backend& backend = detail::backend_named("cpu");
  CompiledArtifact artifact = backend.build(program, options);
  EXPECT_EQ(artifact.binary_kind, "shared_library");
  EXPECT_NE(artifact.host_source.find("call_packed"), std::string::npos);
  Kernel kernel = detail::make_kernel(std::move(artifact), "direct");
  EXPECT_EQ(kernel.cache_key(), "direct");
  EXPECT_EQ(kernel.get_device_source(), program.source);
  EXPECT_EQ(kernel.get_kernel_source(true), program.source);
  EXPECT_NE(kernel.get_kernel_source().find(kernel.get_host_source()), std::string::npos);
  std::vector<float> a{1, 2, 3}, b{10, 20, 30};
  std::vector<Tensor> outs =
      kernel({TensorView(a.data(), "float32", {3}), TensorView(b.data(), "float32", {3})});
  EXPECT_EQ(std::vector<float>(outs[0].data<float>(), outs[0].data<float>() + 3),
            (std::vector<float>{11, 22, 33}));
}

// The program headers of an ELF shared library, read from its bytes; none (and a failure) when
// the bytes are not a 64-bit ELF file with whole program headers.
std::vector<Elf64_Phdr> program_headers(const std::string& library) {
  Elf64_Ehdr header;
  if (library.size() < sizeof header) {
    ADD_FAILURE() << "a library of " << library.size() << " bytes has no ELF header";
    return {};
  }
  std::memcpy(&header, library.data(), sizeof header);
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_phentsize != sizeof(Elf64_Phdr) ||
      header.e_phoff + header.e_phnum * sizeof(Elf64_Phdr) > library.size()) {
    ADD_FAILURE() << "the library is not a 64-bit ELF file with whole program headers";
    return {};
  }
  std::vector<Elf64_Phdr> headers(header.e_phnum);
  std::memcpy(headers.data(), library.data() + header.e_phoff, headers.size() * sizeof(Elf64_Phdr));
  return headers;
}

size_t count_segments(const std::vector<Elf64_Phdr>& headers, uint32_t type) {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(),
                                           [&](const Elf64_Phdr& h) { return h.p_type == type; }));
}

// A disk hit's dlopen maps each loadable segment and mprotects the RELRO one: the cpu backend
// links with two (code with read-only data, then data) and no RELRO, and never a segment that
// is writable and executable. The Program's compile flags can ask for the hardened layout back.
TEST(CpuBackend, TheLibraryHasTwoLoadableSegmentsAndNoRelroUnlessTheFlagsAskForIt) {
  const Program program = example("vector_add");
  detail::ResolvedOptions options = vector_add_build_options();
  const detail::Backend& backend = detail::backend_named("cpu");
  const std::vector<Elf64_Phdr> fast = program_headers(backend.build(program, options).binary);
  EXPECT_EQ(count_segments(fast, PT_LOAD), 2u);
  EXPECT_EQ(count_segments(fast, PT_GNU_RELRO), 0u);
  for (const Elf64_Phdr& segment : fast) {
    EXPECT_NE(segment.p_flags & (PF_W | PF_X), PF_W | PF_X) << "segment of type " << segment.p_type;
  }

  options.compile_flags = {"-Wl,-z,relro", "-Wl,-z,separate-code"};
  const std::vector<Elf64_Phdr> hardened = program_headers(backend.build(program, options).binary);
  EXPECT_EQ(count_segments(hardened, PT_GNU_RELRO), 1u);
  EXPECT_GT(count_segments(hardened, PT_LOAD), 2u);
}

TEST(CpuBackend, AnArtifactOfAnotherKindIsRefusedAtLoad) {
  const Program program = example("vector_add");
  const detail::ResolvedOptions options = vector_add_build_options();
  CompiledArtifact artifact = detail::backend_named("cpu").build(program, options);
  artifact.binary_kind = "cubin";
  try {
    detail::make_kernel(std::move(artifact), "wrong-kind");
    FAIL() << "a cubin artifact was loaded by the cpu backend";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("vector_add"), std::string::npos) << message;
    EXPECT_NE(message.find("cpu backend loads shared libraries"), std::string::npos) << message;
    EXPECT_NE(message.find("'cubin'"), std::string::npos) << message;
  }
}

// The cache key needs the headers a build read; a compiler that ignores -MD -MF must not pass
// for one that read none.
TEST(CpuBackend, ACompilerThatWritesNoDependencyFileIsAnErrorSayingWhy) {
  detail::TempDir dir("tilejit-test-cc");
  const std::filesystem::path wrapper = dir.path() / "cc-without-md";
  detail::write_file(wrapper,
                     "#!/bin/bash\n"
                     "args=(); skip=0\n"
                     "for a in \"$@\"; do\n"
                     "  if [ $skip = 1 ]; then skip=0; continue; fi\n"
                     "  case \"$a\" in -MD) ;; -MF) skip=1 ;; *) args+=(\"$a\") ;; esac\n"
                     "done\n"
                     "exec cc \"${args[@]}\"\n");
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  detail::ResolvedOptions options = vector_add_build_options();
  options.host_compiler = wrapper.string();
  try {
    (void)detail::backend_named("cpu").build(example("vector_add"), options);
    FAIL() << "a build without a dependency list was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("vector_add"), std::string::npos) << message;
    EXPECT_NE(message.find("wrote no dependency file"), std::string::npos) << message;
  }
}

TEST(CpuBackend, ConcurrentCallsFromSeveralThreads) {
  Kernel kernel = compile(example("vector_add"));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int iter = 0; iter < 50; ++iter) {
        const int64_t n = 1 + static_cast<int64_t>(rng() % 300);
        std::vector<float> a = random_floats(n, rng), b = random_floats(n, rng);
        auto outs =
            kernel({TensorView(a.data(), "float32", {n}), TensorView(b.data(), "float32", {n})});
        for (int64_t i = 0; i < n; ++i) failures[t] += outs[0].data<float>()[i] != a[i] + b[i];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(Toolchain, RunProcessCapturesOutputAndStatus) {
  const detail::ProcessResult r = detail::run_process(
      {"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.output.find("to-stdout"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("to-stderr"), std::string::npos) << r.output;
}

TEST(Toolchain, RunProcessKillsOnTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const detail::ProcessResult r = detail::run_process({"sleep", "30"}, std::chrono::seconds(1));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(Toolchain, RunProcessReportsAMissingProgram) {
  EXPECT_THROW(detail::run_process({"/nonexistent/tilejit-no-such-tool"}, std::chrono::seconds(5)),
               Error);
}

TEST(Toolchain, TempDirIsPrivateAndRemoved) {
  std::filesystem::path path;
  {
    detail::TempDir dir("tilejit-test");
    path = dir.path();
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0700u);
    detail::write_file(path / "file.txt", "contents");
    EXPECT_EQ(detail::read_file(path / "file.txt"), "contents");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SharedLibrary, EachLoadIsItsOwnCopyAndNamesAreNeverReused) {
  const CompiledArtifact vector_add = compile(example("vector_add")).artifact();
  const CompiledArtifact matmul = compile(example("matmul")).artifact();
  {
    auto first = detail::SharedLibrary::from_bytes(vector_add.binary, "first");
    auto second = detail::SharedLibrary::from_bytes(vector_add.binary, "second");
    EXPECT_NE(first.symbol("vector_add"), second.symbol("vector_add"));
  }
  // A library loaded after another was closed gets its own code, whatever descriptor number
  // its memfd receives.
  for (int i = 0; i < 3; ++i) {
    auto a = detail::SharedLibrary::from_bytes(vector_add.binary, "a");
    EXPECT_NE(a.find_symbol("vector_add"), nullptr);
    EXPECT_EQ(a.find_symbol("matmul"), nullptr);
    a = detail::SharedLibrary();
    auto b = detail::SharedLibrary::from_bytes(matmul.binary, "b");
    EXPECT_NE(b.find_symbol("matmul"), nullptr);
    EXPECT_EQ(b.find_symbol("vector_add"), nullptr);
  }
  EXPECT_THROW(detail::SharedLibrary::from_bytes("not an ELF file", "garbage"), Error);
  auto lib = detail::SharedLibrary::from_bytes(vector_add.binary, "lib");
  EXPECT_THROW(lib.symbol("no_such_symbol"), Error);
}

}  // namespace
}  // namespace tilejit
