// The bad-input matrix through the public API: each case asserts the exception type and that
// the message names the parameter (or the program / source for whole-program errors), and
// that nothing ran.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "private_cache.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

Program example(const char* name) {
  return Program::load(std::filesystem::path(TILEJIT_EXAMPLES_DIR) / (std::string(name) + ".json"));
}

void expect_contains(std::string_view message, std::string_view fragment) {
  EXPECT_NE(message.find(fragment), std::string_view::npos)
      << "message: " << message << "\nlacks: " << fragment;
}

// Runs `body`; expects exactly exception type E with every fragment in its message.
template <class E, class F>
void expect_error(F&& body, std::initializer_list<std::string_view> fragments) {
  try {
    body();
    ADD_FAILURE() << "nothing thrown";
  } catch (const E& e) {
    for (std::string_view f : fragments) expect_contains(e.what(), f);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// vector_add with the output passed by the caller, so a test can see that nothing was written.
class VectorAdd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CompileOptions options;
    options.out_idx = std::vector<int>{};
    kernel_ = new Kernel(compile(example("vector_add"), options));
  }
  static void TearDownTestSuite() {
    delete kernel_;
    kernel_ = nullptr;
  }
  void TearDown() override {
    for (float v : c) ASSERT_EQ(v, -7.0f) << "the kernel ran after a failed check";
  }

  static Kernel* kernel_;
  std::vector<float> a = std::vector<float>(64, 1.0f), b = std::vector<float>(64, 2.0f),
                     c = std::vector<float>(64, -7.0f);
};
Kernel* VectorAdd::kernel_ = nullptr;

TEST_F(VectorAdd, WrongDtype) {
  std::vector<double> d(8);
  TensorView A(a.data(), "float32", {8}), Bd(d.data(), "float64", {8}), C(c.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, Bd, C}); }, {"'B'", "float32", "float64"});
}

TEST_F(VectorAdd, WrongNdim) {
  TensorView A(a.data(), "float32", {8}), B2(b.data(), "float32", {2, 4}),
      C(c.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, B2, C}); }, {"'B'", "1 dimensions", "got 2"});
}

TEST_F(VectorAdd, ConflictingSymbolValues) {
  TensorView A(a.data(), "float32", {8}), B(b.data(), "float32", {9}), C(c.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, B, C}); }, {"'B'", "n = 8", "got 9"});
}

TEST_F(VectorAdd, NonCompactWhereCompactIsDeclared) {
  TensorView A(a.data(), "float32", {8}), C(c.data(), "float32", {8});
  TensorView every_other(b.data(), DataType::parse("float32"), {8}, Device::cpu(), {2});
  expect_error<ArgumentError>(
      [&] {
        (*kernel_)({A, every_other, C});
      },
      {"'B'", "compact", "stride 2"});
}

TEST_F(VectorAdd, WrongArgumentCount) {
  TensorView A(a.data(), "float32", {8}), B(b.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, B}); }, {"A, B, C", "got 2"});
}

TEST_F(VectorAdd, NullDataPointer) {
  TensorView A(a.data(), "float32", {8}), B(nullptr, "float32", {8}), C(c.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, B, C}); }, {"'B'", "null"});
}

TEST_F(VectorAdd, WrongDevice) {
  TensorView A(a.data(), "float32", {8}), C(c.data(), "float32", {8});
  TensorView B(b.data(), DataType::parse("float32"), {8}, Device::cuda(0));
  expect_error<ArgumentError>([&] { (*kernel_)({A, B, C}); }, {"'B'", "cpu", "cuda"});
}

TEST_F(VectorAdd, ScalarWhereATensorBelongs) {
  TensorView A(a.data(), "float32", {8}), C(c.data(), "float32", {8});
  expect_error<ArgumentError>([&] { (*kernel_)({A, 3, C}); }, {"'B'", "tensor"});
}

TEST(BadInput, WrongConstantDim) {
  Kernel kernel = compile(example("matmul"));
  std::vector<float> a(4 * 48), b(48 * 41);
  TensorView A(a.data(), "float32", {4, 48}), B(b.data(), "float32", {48, 41});
  expect_error<ArgumentError>([&] { kernel({A, B}); }, {"'B'", "dim 1", "expected 40", "got 41"});
}

TEST(BadInput, ScalarOutOfRangeForItsDtype) {
  Kernel kernel = compile(example("strided_scale"));
  std::vector<float> x(12);
  TensorView X(x.data(), "float32", {3, 4});
  expect_error<ArgumentError>([&] { kernel({X, 1e39}); }, {"'alpha'", "out of range", "float32"});
  Program program = ProgramBuilder("fill")
                        .source(
                            "void fill(signed char* out, signed char value, int n) {\n"
                            "  for (int i = 0; i < n; ++i) out[i] = value;\n}\n",
                            Language::kC)
                        .tensor("out", "int8", {"n"})
                        .scalar("value", "int8")
                        .launch(Launch("fill"))
                        .build();
  Kernel fill = compile(program);
  std::vector<int8_t> out(5, 0);
  TensorView Out(out.data(), "int8", {5});
  expect_error<ArgumentError>([&] { fill({Out, 200}); }, {"'value'", "200", "int8"});
  expect_error<ArgumentError>([&] { fill({Out, 2.5}); }, {"'value'", "integer"});
  fill({Out, -100});
  for (int8_t v : out) EXPECT_EQ(v, -100);
}

TEST(BadInput, CompileErrorCarriesTheLog) {
  Program program = ProgramBuilder("broken")
                        .source(
                            "void broken(float* X, int n) {\n"
                            "  for (int i = 0; i < n; ++i) X[i] = undeclared_name;\n}\n",
                            Language::kC)
                        .tensor("X", "float32", {"n"})
                        .launch(Launch("broken"))
                        .build();
  try {
    compile(program);
    ADD_FAILURE() << "no CompileError";
  } catch (const CompileError& e) {
    expect_contains(e.what(), "broken");
    expect_contains(e.what(), "undeclared_name");
    expect_contains(e.log(), "undeclared_name");
    expect_contains(e.log(), "error");
    EXPECT_EQ(e.source_name(), "broken.c");
    EXPECT_FALSE(e.options().empty());
  }
}

TEST(BadInput, CompileFlagsReachTheCompiler) {
  // -Werror turns an unused variable into an error: proof that the Program's flags are used.
  Program program =
      ProgramBuilder("warned")
          .source("void warned(float* X, int n) { int unused = 0; (void)X; (void)n; }\n",
                  Language::kC)
          .tensor("X", "float32", {"n"})
          .launch(Launch("warned"))
          .compile_flag("-Wall")
          .compile_flag("-Werror")
          .build();
  EXPECT_THROW(compile(program), CompileError);
}

TEST(BadInput, MalformedProgramsAreProgramErrors) {
  expect_error<ProgramError>([] { Program::from_json("{\"format\": \"tilejit.program/1\", "); },
                             {});
  expect_error<ProgramError>([] { Expr::parse("ceildiv(M, "); }, {});
  expect_error<ProgramError>(
      [] {
        compile(ProgramBuilder("absent")
                    .source("void present(float* X, int n) { (void)X; (void)n; }\n", Language::kC)
                    .tensor("X", "float32", {"n"})
                    .launch(Launch("absent"))
                    .build());
      },
      {"absent"});
}

}  // namespace
}  // namespace tilejit
