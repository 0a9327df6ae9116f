// Struct scalars passed by value (cuComplex, float2, a small POD described by its fields): the
// C layout of the description, the JSON form, the checks against the kernel's declaration, the
// Binder's checks and copy, and C kernels on the cpu backend that take them by value, with
// padding inside and at the tail, on random values.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <filesystem>

#include "call/binder.h"
#include "codegen/wrapper.h"
#include "cuda/nvrtc.h"
#include "ir/signature.h"
#include "private_cache.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

DataType dt(const char* name) {
  return DataType::parse(name);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// {char; double; short}: 7 bytes of padding after c, 6 at the tail.
struct Odd {
  char c;
  double d;
  short s;
};
static_assert(sizeof(Odd) == 24);

struct Params {
  int n;
  float alpha;
  double beta;
  float v[3];
};
static_assert(sizeof(Params) == 32);

std::vector<StructField> odd_fields() {
  return {{"c", dt("int8")}, {"d", dt("float64")}, {"s", dt("int16")}};
}
std::vector<StructField> params_fields() {
  return {{"n", dt("int32")},
          {"alpha", dt("float32")},
          {"beta", dt("float64")},
          {"v", dt("float32"), 3}};
}

TEST(StructScalars, LayoutFollowsTheCAbi) {
  const StructLayout odd = KernelParam::struct_param("o", odd_fields()).struct_layout();
  EXPECT_EQ(odd.size, sizeof(Odd));
  EXPECT_EQ(odd.alignment, alignof(Odd));
  EXPECT_EQ(odd.offsets,
            (std::vector<uint32_t>{offsetof(Odd, c), offsetof(Odd, d), offsetof(Odd, s)}));
  const StructLayout params = KernelParam::struct_param("p", params_fields()).struct_layout();
  EXPECT_EQ(params.size, sizeof(Params));
  EXPECT_EQ(params.offsets, (std::vector<uint32_t>{offsetof(Params, n), offsetof(Params, alpha),
                                                   offsetof(Params, beta), offsetof(Params, v)}));
  struct Tail {
    int64_t a;
    bool b;
  };
  const StructLayout tail =
      KernelParam::struct_param("t", {{"a", dt("int64")}, {"b", dt("bool")}}).struct_layout();
  EXPECT_EQ(tail.size, sizeof(Tail));
}

const char* kSource = R"(
#include <stdint.h>
struct Odd { char c; double d; short s; };
typedef struct {
  int n;
  float alpha;
  double beta;
  float v[3];
} Params;
void odd(struct Odd o, double* out) {
  out[0] = o.c;
  out[1] = o.d;
  out[2] = o.s;
}
void axpb(const Params p, const float* x, float* y, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    y[i] = p.alpha * x[i] + (float)p.beta + p.v[i % 3] + (float)p.n;
  }
}
)";

Program struct_program() {
  return ProgramBuilder("structs")
      .source(kSource, Language::kC)
      .struct_scalar("o", odd_fields())
      .tensor("out", "float64", {3})
      .struct_scalar("p", params_fields())
      .tensor("x", "float32", {"m"})
      .tensor("y", "float32", {"m"})
      .launch(Launch("odd"))
      .launch(Launch("axpb"))
      .out_idx({1, 4})
      .build();
}

TEST(StructScalars, CpuKernelsTakeThemByValueOnRandomValues) {
  Kernel kernel = compile(struct_program());
  EXPECT_TRUE(contains(kernel.get_host_source(), "} tj_struct_p;")) << kernel.get_host_source();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> real(-100.0, 100.0);
  std::uniform_int_distribution<int> small(-128, 127);
  std::uniform_int_distribution<int> medium(-32768, 32767);
  for (int trial = 0; trial < 5; ++trial) {
    Odd o{};
    o.c = static_cast<char>(small(rng));
    o.d = real(rng);
    o.s = static_cast<short>(medium(rng));
    Params p{};
    p.n = small(rng) * 1000;
    p.alpha = static_cast<float>(real(rng));
    p.beta = real(rng);
    for (float& v : p.v) v = static_cast<float>(real(rng));
    const int64_t m = 5 + trial * 3;
    std::vector<float> x(static_cast<size_t>(m));
    for (float& v : x) v = static_cast<float>(real(rng));
    TensorView X(x.data(), "float32", {m});
    std::vector<Tensor> outs = kernel({Arg::bytes(&o, sizeof o), Arg::bytes(&p, sizeof p), X});
    ASSERT_EQ(outs.size(), 2u);
    const double* got = outs[0].data<double>();
    EXPECT_EQ(got[0], o.c);
    EXPECT_EQ(got[1], o.d);
    EXPECT_EQ(got[2], o.s);
    const float* y = outs[1].data<float>();
    for (int64_t i = 0; i < m; ++i) {
      ASSERT_EQ(y[i],
                p.alpha * x[i] + static_cast<float>(p.beta) + p.v[i % 3] + static_cast<float>(p.n))
          << "trial " << trial << " i " << i;
    }
  }
}

TEST(StructScalars, WrongBytesAreAnArgumentErrorNamingTheParameter) {
  Kernel kernel = compile(struct_program());
  Odd o{};
  Params p{};
  std::vector<float> x(4);
  TensorView X(x.data(), "float32", {4});
  auto message = [&](std::initializer_list<Arg> args) -> std::string {
    try {
      kernel(args);
    } catch (const ArgumentError& e) {
      return e.what();
    }
    return "no error";
  };
  std::string m = message({Arg::bytes(&o, sizeof o - 8), Arg::bytes(&p, sizeof p), X});
  EXPECT_TRUE(contains(m, "argument 'o'") && contains(m, "24 bytes") && contains(m, "got 16")) << m;
  m = message({Arg::bytes(&o, sizeof o), 3, X});
  EXPECT_TRUE(contains(m, "argument 'p'") && contains(m, "32 bytes") && contains(m, "an integer"))
      << m;
  m = message({Arg::bytes(nullptr, sizeof o), Arg::bytes(&p, sizeof p), X});
  EXPECT_TRUE(contains(m, "argument 'o'") && contains(m, "null")) << m;
}

TEST(StructScalars, JsonRoundTripsTheFieldsAndReadsOldFiles) {
  const Program p = struct_program();
  const std::string json = p.to_json();
  EXPECT_TRUE(contains(json, R"("dtype": "struct")")) << json;
  EXPECT_TRUE(contains(json, R"("name": "v",)")) << json;
  EXPECT_TRUE(contains(json, R"("count": 3)")) << json;
  EXPECT_EQ(Program::from_json(json), p);
  EXPECT_EQ(Program::from_json(json).to_json(), json);
  // A file without struct params reads as before: "fields" is optional.
  const Program plain = Program::from_json(R"({"format": "tilejit.program/1", "name": "s",
      "language": "c", "source": "void k(float a) {}",
      "params": [{"name": "a", "dtype": "float32"}], "launches": [{"kernel": "k"}]})");
  EXPECT_TRUE(plain.params[0].fields.empty());
}

std::string program_error(const std::string& json) {
  try {
    Program::from_json(json);
  } catch (const ProgramError& e) {
    return e.what();
  }
  return "no error";
}

TEST(StructScalars, BadDescriptionsAreProgramErrorsNamingTheField) {
  auto with_param = [](const std::string& param) {
    return R"({"format": "tilejit.program/1", "name": "s", "language": "c",
      "source": "struct S { int a; }; void k(struct S s) {}",
      "params": [)" +
           param + R"(], "launches": [{"kernel": "k"}]})";
  };
  std::string m = program_error(with_param(
      R"({"name": "s", "dtype": "struct", "fields": [{"name": "a", "dtype": "float16"}]})"));
  EXPECT_TRUE(contains(m, "fields[0] ('a') has dtype float16")) << m;
  m = program_error(with_param(R"({"name": "s", "dtype": "struct"})"));
  EXPECT_TRUE(contains(m, "struct parameter 's'") && contains(m, "no fields")) << m;
  m = program_error(with_param(
      R"({"name": "s", "dtype": "struct", "fields": [{"name": "a", "dtype": "int32"},
          {"name": "a", "dtype": "int32"}]})"));
  EXPECT_TRUE(contains(m, "'a' is used twice")) << m;
  m = program_error(with_param(
      R"({"name": "s", "dtype": "int32", "fields": [{"name": "a", "dtype": "int32"}]})"));
  EXPECT_TRUE(contains(m, "not a struct scalar")) << m;
  m = program_error(with_param(
      R"({"name": "s", "dtype": "struct", "shape": [2], "fields": [{"name": "a", "dtype": "int32"}]})"));
  EXPECT_TRUE(contains(m, "params[0].fields") && contains(m, "has no fields")) << m;
  m = program_error(with_param(
      R"({"name": "s", "dtype": "struct", "fields": [{"name": "a", "dtype": "int32", "count": 0}]})"));
  EXPECT_TRUE(contains(m, "params[0].fields[0].count")) << m;
  m = program_error(with_param(
      R"({"name": "s", "dtype": "struct", "fields": [{"name": "a", "dtype": "int8", "count": 5000}]})"));
  EXPECT_TRUE(contains(m, "5000 bytes") && contains(m, "at most 4096")) << m;
}

std::string args_error(const std::string& source, const Program& base) {
  Program program = base;
  program.source = source;
  try {
    detail::resolve_kernel_args(program, program.launches[0]);
  } catch (const ProgramError& e) {
    return e.what();
  }
  return "no error";
}

TEST(StructScalars, TheKernelDeclarationIsCheckedWhereTheSourceShowsTheStruct) {
  const Program base = ProgramBuilder("s")
                           .source("", Language::kCuda)
                           .struct_scalar("z", {{"re", dt("float32")}, {"im", dt("float32")}})
                           .launch(Launch("k"))
                           .build();
  // Accepted: CUDA's 8-byte vector and complex types, and a source struct of the same fields.
  for (const char* decl : {"cuComplex z", "const float2 z", "cuFloatComplex z"}) {
    const std::string source = std::string("__global__ void k(") + decl + ") {}";
    EXPECT_EQ(args_error(source, base), "no error") << decl;
  }
  std::vector<detail::KernelArg> args = detail::resolve_kernel_args(
      [&] {
        Program p = base;
        p.source = "struct C { float re, im; };\n__global__ void k(C z) {}";
        return p;
      }(),
      base.launches[0]);
  ASSERT_EQ(args.size(), 1u);
  EXPECT_EQ(args[0].kind, detail::KernelArg::Kind::kStruct);
  EXPECT_EQ(args[0].bytes, 8u);
  // Refused, each naming the kernel parameter and why.
  std::string m = args_error("__global__ void k(float2* z) {}", base);
  EXPECT_TRUE(contains(m, "parameter 'z' is declared 'float2*'") && contains(m, "by value")) << m;
  m = args_error("__global__ void k(double z) {}", base);
  EXPECT_TRUE(contains(m, "a floating-point value") && contains(m, "struct (8 bytes)")) << m;
  m = args_error("__global__ void k(double2 z) {}", base);
  EXPECT_TRUE(contains(m, "double2 is 16 bytes") && contains(m, "lay out 8 bytes")) << m;
  m = args_error("struct C { float re; int im; };\n__global__ void k(struct C z) {}", base);
  EXPECT_TRUE(contains(m, "field 1 ('im') is int32 in the source") &&
              contains(m, "field 'im' of the param is float32"))
      << m;
  m = args_error("typedef struct { float re, im, extra; } C;\n__global__ void k(C z) {}", base);
  EXPECT_TRUE(contains(m, "C has 3 fields") && contains(m, "describes 2")) << m;
  // A struct the source does not define (a header's) is trusted.
  EXPECT_EQ(args_error("#include \"types.h\"\n__global__ void k(Mine z) {}", base), "no error");
}

TEST(StructScalars, GeneratedWrappersDeclareTheStructAndPassItByValue) {
  const Program cuda = ProgramBuilder("s")
                           .source("__global__ void k(cuComplex z, float* y) {}")
                           .struct_scalar("z", {{"re", dt("float32")}, {"im", dt("float32")}})
                           .tensor("y", "float32", {4})
                           .launch(Launch("k"))
                           .build();
  const std::string host = detail::generate_cuda_wrapper(cuda, "kernel.cu");
  EXPECT_TRUE(contains(host, "typedef struct {\n  float re;\n  float im;\n} tj_struct_z;")) << host;
  EXPECT_TRUE(contains(host, "int call(tj_struct_z z, float* y")) << host;
  EXPECT_TRUE(contains(host, "&z")) << host;
  const std::string header = detail::generate_wrapper_header(cuda, detail::HostApi::kCuda);
  EXPECT_TRUE(contains(header, "} tj_struct_z;")) << header;
  // A field name the generated C++ cannot use is refused at compile time.
  Program bad = cuda;
  bad.params[0].fields[0].name = "class";
  EXPECT_THROW(detail::generate_cuda_wrapper(bad, "kernel.cu"), ProgramError);
}

// The GPU suite's struct kernel (tests/cpp/gpu/test_user_kernels.cc) builds and loads on both
// CUDA backends without a GPU: the nvrtc launch plan takes the structs in place, the nvcc
// wrapper declares them and compiles.
TEST(StructScalars, CudaProgramsWithStructsBuildOnBothBackends) {
  const DataType f32 = dt("float32");
  const Program program =
      ProgramBuilder("structs")
          .source(R"(
struct Odd { char c; double d; short s; float v[3]; };
extern "C" __global__ void mix(float2 z, const Odd o, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = z.x * x[i] + z.y + (float)o.c + (float)o.d + (float)o.s + o.v[i % 3];
}
)")
          .struct_scalar("z", {{"re", f32}, {"im", f32}})
          .struct_scalar(
              "o", {{"c", dt("int8")}, {"d", dt("float64")}, {"s", dt("int16")}, {"v", f32, 3}})
          .tensor("x", "float32", {"n"})
          .tensor("y", "float32", {"n"})
          .launch(Launch("mix").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .out_idx({-1})
          .build();
  int built = 0;
  std::string why;
  if (cuda::nvrtc_available(&why)) {
    CompileOptions options;
    options.execution_backend = "nvrtc";
    options.target = "cuda -arch=sm_90";
    Kernel kernel = compile(program, options);
    EXPECT_TRUE(contains(kernel.get_host_source(), "struct 'z', 8 bytes in place"))
        << kernel.get_host_source();
    EXPECT_TRUE(contains(kernel.get_host_source(), "struct 'o', 32 bytes in place"))
        << kernel.get_host_source();
    ++built;
  }
  if (detail::find_program("nvcc") || std::filesystem::exists("/usr/local/cuda/bin/nvcc")) {
    CompileOptions options;
    options.execution_backend = "nvcc";
    options.target = "cuda -arch=sm_90";
    Kernel kernel = compile(program, options);
    EXPECT_TRUE(contains(kernel.get_host_source(), "tj_struct_z z, tj_struct_o o, float* x"))
        << kernel.get_host_source();
    ++built;
  }
  if (built == 0) GTEST_SKIP() << "neither NVRTC nor nvcc is installed: " << why;
}

}  // namespace
}  // namespace tilejit
