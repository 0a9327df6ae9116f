// The Binder on its own: every check, symbol binding and conflicts, strides, scalars and
// out_idx outputs. No compiler involved.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "call/binder.h"
#include "tilejit/tilejit.h"

namespace tilejit::detail {
namespace {

void expect_contains(std::string_view message, std::string_view fragment) {
  EXPECT_NE(message.find(fragment), std::string_view::npos)
      << "message: " << message << "\nlacks: " << fragment;
}

KernelParam tensor(std::string name, std::string_view dtype, std::vector<Expr> shape,
                   std::optional<std::vector<Expr>> strides = std::nullopt) {
  return KernelParam::tensor(std::move(name), DataType::parse(dtype), std::move(shape),
                             std::move(strides));
}
KernelParam scalar(std::string name, std::string_view dtype) {
  return KernelParam::scalar_param(std::move(name), DataType::parse(dtype));
}

class CountingAllocator final : public OutputAllocator {
 public:
  Tensor allocate(DataType dtype, std::span<const int64_t> shape, Device device) const override {
    ++calls;
    return Tensor::empty(dtype, shape, device);
  }
  mutable int calls = 0;
};

// A program, its binder and one call's results. The binder refers to the program, so both
// live here.
struct Bound {
  explicit Bound(std::vector<KernelParam> params, std::vector<int> out_idx = {},
                 int32_t device_type = dlpack::kDLCPU) {
    program.name = "prog";
    program.language = Language::kC;
    program.params = std::move(params);
    binder = std::make_unique<Binder>(program, std::move(out_idx), device_type);
  }
  void bind(std::initializer_list<Arg> args) {
    binder->bind(std::span<const Arg>(args.begin(), args.size()), call, allocator, outputs);
  }
  int64_t symbol(std::string_view name) const {
    const int slot = binder->symbol_slot(name);
    EXPECT_GE(slot, 0) << name;
    return slot < 0 ? -1 : call.symbols[slot];
  }

  Program program;
  std::unique_ptr<Binder> binder;
  BoundCall call{};
  CountingAllocator allocator;
  std::vector<Tensor> outputs;
};

// Runs `body`, expects an ArgumentError whose message contains every fragment.
template <class F>
void expect_argument_error(F&& body, std::initializer_list<std::string_view> fragments) {
  try {
    body();
    ADD_FAILURE() << "no ArgumentError thrown";
  } catch (const ArgumentError& e) {
    for (std::string_view f : fragments) expect_contains(e.what(), f);
  }
}

std::vector<float> buffer(size_t n) {
  return std::vector<float>(n, 0.0f);
}

TEST(Binder, BindsSymbolsAndDataPointers) {
  Bound b({tensor("A", "float32", {"M", "K"}), tensor("B", "float32", {"K", "N"}),
           tensor("C", "float32", {"M", "N"})});
  auto a = buffer(6), bb = buffer(12), c = buffer(8);
  TensorView A(a.data(), "float32", {2, 3}), B(bb.data(), "float32", {3, 4}),
      C(c.data(), "float32", {2, 4});
  b.bind({A, B, C});
  EXPECT_EQ(b.symbol("M"), 2);
  EXPECT_EQ(b.symbol("K"), 3);
  EXPECT_EQ(b.symbol("N"), 4);
  EXPECT_EQ(b.call.data[0], a.data());
  EXPECT_EQ(b.call.data[2], c.data());
  EXPECT_EQ(b.call.tensors[1], &B.as_dlpack());
  EXPECT_EQ(b.call.device, Device::cpu());
  EXPECT_TRUE(b.outputs.empty());
  EXPECT_EQ(b.allocator.calls, 0);
}

TEST(Binder, ByteOffsetIsAddedToTheDataPointer) {
  Bound b({tensor("A", "float32", {4})});
  auto a = buffer(8);
  TensorView view(a.data(), "float32", {4});
  dlpack::DLTensor dl = view.as_dlpack();
  dl.byte_offset = 8;
  b.bind({&dl});
  EXPECT_EQ(b.call.data[0], a.data() + 2);
}

TEST(Binder, ArgumentCountNamesTheExpectedInputs) {
  Bound b(
      {tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"}), scalar("alpha", "float32")});
  auto a = buffer(3);
  TensorView A(a.data(), "float32", {3});
  expect_argument_error([&] { b.bind({A, A}); }, {"expected 3 arguments", "A, B, alpha", "got 2"});
  expect_argument_error([&] { b.bind({A, A, 1.0, 2}); }, {"expected 3 arguments", "got 4"});
}

TEST(Binder, KindTensorVersusScalar) {
  Bound b({tensor("A", "float32", {"n"}), scalar("n", "int32"), scalar("alpha", "float32"),
           scalar("p", "handle")});
  auto a = buffer(3);
  TensorView A(a.data(), "float32", {3});
  expect_argument_error(
      [&] {
        b.bind({5, 3, 1.0, Arg::pointer(nullptr)});
      },
      {"'A'", "expected a float32 tensor", "got an integer"});
  expect_argument_error(
      [&] {
        b.bind({A, A, 1.0, Arg::pointer(nullptr)});
      },
      {"'n'", "expected an integer (int32) scalar", "got a tensor"});
  expect_argument_error(
      [&] {
        b.bind({A, 2.5, 1.0, Arg::pointer(nullptr)});
      },
      {"'n'", "got a float"});
  expect_argument_error(
      [&] {
        b.bind({A, 3, A, Arg::pointer(nullptr)});
      },
      {"'alpha'", "got a tensor"});
  expect_argument_error([&] { b.bind({A, 3, 1.0, 7}); }, {"'p'", "expected a pointer"});
  expect_argument_error(
      [&] {
        b.bind({static_cast<const dlpack::DLTensor*>(nullptr), 3, 1.0, Arg::pointer(nullptr)});
      },
      {"'A'", "null DLTensor"});
  int marker = 0;
  b.bind({A, 3, 2, Arg::pointer(&marker)});  // a float param accepts an integer
  EXPECT_EQ(b.call.float_values[2], 2.0);
  EXPECT_EQ(b.call.data[3], &marker);
  EXPECT_EQ(b.call.int_values[1], 3);
}

TEST(Binder, NullDataPointer) {
  Bound b({tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"})});
  auto a = buffer(4);
  TensorView A(a.data(), "float32", {4}), B(nullptr, "float32", {4});
  expect_argument_error([&] { b.bind({A, B}); }, {"'B'", "null", "[4]"});
  // An empty tensor may have no storage at all.
  TensorView E1(nullptr, "float32", {0}), E2(nullptr, "float32", {0});
  b.bind({E1, E2});
  EXPECT_EQ(b.symbol("n"), 0);
}

TEST(Binder, DeviceTypeAndIndex) {
  auto a = buffer(4);
  {
    Bound b({tensor("A", "float32", {4})});
    TensorView A(a.data(), DataType::parse("float32"), {4}, Device::cuda(0));
    expect_argument_error([&] { b.bind({A}); }, {"'A'", "expected a cpu tensor", "cuda:0"});
  }
  Bound b({tensor("A", "float32", {4}), tensor("B", "float32", {4})}, {}, dlpack::kDLCUDA);
  TensorView A0(a.data(), DataType::parse("float32"), {4}, Device::cuda(0));
  TensorView B1(a.data(), DataType::parse("float32"), {4}, Device::cuda(1));
  TensorView host(a.data(), "float32", {4});
  TensorView managed(a.data(), DataType::parse("float32"), {4}, Device{dlpack::kDLCUDAManaged, 0});
  expect_argument_error([&] { b.bind({A0, B1}); }, {"'B'", "cuda:0", "where 'A' is", "cuda:1"});
  expect_argument_error([&] { b.bind({A0, host}); }, {"'B'", "expected a cuda tensor", "cpu:0"});
  b.bind({A0, managed});
  EXPECT_EQ(b.call.device, Device::cuda(0));
  TensorView A1(a.data(), DataType::parse("float32"), {4}, Device::cuda(1));
  b.bind({A1, B1});
  EXPECT_EQ(b.call.device, Device::cuda(1));
}

TEST(Binder, Dtype) {
  Bound b({tensor("A", "float16", {"n"}), tensor("B", "int8", {"n"})});
  std::vector<uint16_t> a(4);
  std::vector<int8_t> bb(4);
  TensorView A(a.data(), "float16", {4}), Abad(a.data(), "bfloat16", {4}),
      B(bb.data(), "int8", {4}), Bbad(bb.data(), "uint8", {4});
  expect_argument_error(
      [&] {
        b.bind({Abad, B});
      },
      {"'A'", "expected dtype float16", "got bfloat16"});
  expect_argument_error([&] { b.bind({A, Bbad}); }, {"'B'", "expected dtype int8", "got uint8"});
  b.bind({A, B});
}

TEST(Binder, NdimAndConstantDims) {
  Bound b({tensor("A", "float32", {"M", 8})});
  auto a = buffer(64);
  TensorView A1(a.data(), "float32", {64}), A3(a.data(), "float32", {2, 4, 8}),
      Awrong(a.data(), "float32", {8, 7}), A(a.data(), "float32", {5, 8});
  expect_argument_error([&] { b.bind({A1}); }, {"'A'", "expected 2 dimensions", "got 1"});
  expect_argument_error([&] { b.bind({A3}); }, {"'A'", "expected 2 dimensions", "got 3"});
  expect_argument_error([&] { b.bind({Awrong}); }, {"'A'", "dim 1", "expected 8", "got 7"});
  b.bind({A});
  EXPECT_EQ(b.symbol("M"), 5);
}

TEST(Binder, SymbolConflictNamesWhereItWasBound) {
  Bound b({tensor("A", "float32", {"M", "K"}), tensor("B", "float32", {"K", "N"})});
  auto a = buffer(64);
  TensorView A(a.data(), "float32", {2, 3}), B(a.data(), "float32", {4, 5});
  expect_argument_error(
      [&] {
        b.bind({A, B});
      },
      {"'B'", "dim 0", "expected K = 3", "'A' dim 1", "got 4"});
}

TEST(Binder, DerivedShapesAreCheckedAfterBinding) {
  Bound b({tensor("X", "float32", {"n"}), tensor("H", "float32", {"ceildiv(n, 2)"}),
           tensor("P", "float32", {"n + 1", 3})});
  auto a = buffer(64);
  TensorView X(a.data(), "float32", {7}), H(a.data(), "float32", {4}),
      Hbad(a.data(), "float32", {3}), P(a.data(), "float32", {8, 3}),
      Pbad(a.data(), "float32", {7, 3});
  b.bind({X, H, P});
  expect_argument_error(
      [&] {
        b.bind({X, Hbad, P});
      },
      {"'H'", "dim 0", "ceildiv(n, 2)", "= 4", "got 3"});
  expect_argument_error([&] { b.bind({X, H, Pbad}); }, {"'P'", "dim 0", "n + 1", "= 8", "got 7"});
}

TEST(Binder, CompactIsRequiredUnlessStridesAreDeclared) {
  Bound b({tensor("A", "float32", {"M", "N"})});
  auto a = buffer(64);
  TensorView implicit(a.data(), "float32", {3, 4});
  TensorView explicit_compact(a.data(), DataType::parse("float32"), {3, 4}, Device::cpu(), {4, 1});
  TensorView padded(a.data(), DataType::parse("float32"), {3, 4}, Device::cpu(), {5, 1});
  TensorView transposed(a.data(), DataType::parse("float32"), {3, 4}, Device::cpu(), {1, 3});
  b.bind({implicit});
  b.bind({explicit_compact});
  expect_argument_error([&] { b.bind({padded}); },
                        {"'A'", "compact", "dim 0 has stride 5, expected 4"});
  expect_argument_error([&] { b.bind({transposed}); }, {"'A'", "compact", "dim 1 has stride 3"});
}

TEST(Binder, SizeOneDimsMayHaveAnyStride) {
  Bound b({tensor("A", "float32", {"M", "N", "K"}),
           tensor("S", "float32", {"M", "N", "K"}, std::vector<Expr>{"sm", "sn", 1})});
  auto a = buffer(64);
  // torch gives size-1 dims arbitrary strides (e.g. after unsqueeze or slicing).
  TensorView A(a.data(), DataType::parse("float32"), {4, 1, 5}, Device::cpu(), {5, 99, 1});
  TensorView S(a.data(), DataType::parse("float32"), {4, 1, 5}, Device::cpu(), {7, 1234, 1});
  TensorView Sbad_inner(a.data(), DataType::parse("float32"), {4, 1, 5}, Device::cpu(),
                        {7, 1234, 2});
  b.bind({A, S});
  EXPECT_EQ(b.symbol("sm"), 7);
  expect_argument_error(
      [&] {
        b.bind({A, Sbad_inner});
      },
      {"'S'", "stride 2", "expected 1", "got 2"});
}

TEST(Binder, DeclaredStrideVariablesBindAndAgree) {
  Bound b({tensor("X", "float32", {"M", "N"}, std::vector<Expr>{"ldx", 1}),
           tensor("Y", "float32", {"M", "N"}, std::vector<Expr>{"ldx", 1}),
           tensor("Z", "float32", {"M", "N"}, std::vector<Expr>{"2 * ldx", 1})});
  auto a = buffer(256);
  auto view = [&](int64_t row_stride, int64_t col_stride) {
    return TensorView(a.data(), DataType::parse("float32"), {3, 4}, Device::cpu(),
                      {row_stride, col_stride});
  };
  TensorView X = view(10, 1), Y = view(10, 1), Z = view(20, 1);
  b.bind({X, Y, Z});
  EXPECT_EQ(b.symbol("ldx"), 10);
  EXPECT_EQ(b.symbol("M"), 3);
  TensorView Ybad = view(11, 1), Zbad = view(21, 1), Xcol = view(10, 2);
  expect_argument_error(
      [&] {
        b.bind({X, Ybad, Z});
      },
      {"'Y'", "stride 0", "expected ldx = 10", "'X' stride 0", "got 11"});
  expect_argument_error(
      [&] {
        b.bind({X, Y, Zbad});
      },
      {"'Z'", "stride 0", "2 * ldx", "= 20", "got 21"});
  expect_argument_error([&] { b.bind({Xcol, Y, Z}); }, {"'X'", "stride 1", "expected 1", "got 2"});
  // A compact tensor (null strides) has ldx = N.
  TensorView compact(a.data(), "float32", {3, 4});
  TensorView Z8 = view(8, 1);
  b.bind({compact, compact, Z8});
  EXPECT_EQ(b.symbol("ldx"), 4);
}

TEST(Binder, ScalarRangesFollowTheDtype) {
  Bound b({scalar("i8", "int8"), scalar("u8", "uint8"), scalar("u32", "uint32"),
           scalar("flag", "bool"), scalar("f32", "float32"), scalar("f16", "float16"),
           scalar("i64", "int64")});
  b.bind({-128, 255, 4294967295LL, true, 3.0e38, 65504.0, -9223372036854775807LL});
  EXPECT_EQ(b.call.int_values[0], -128);
  EXPECT_EQ(b.call.int_values[2], 4294967295LL);
  EXPECT_EQ(b.call.int_values[3], 1);
  expect_argument_error(
      [&] {
        b.bind({128, 0, 0, 0, 0.0, 0.0, 0});
      },
      {"'i8'", "128", "out of range", "int8", "[-128, 127]"});
  expect_argument_error([&] { b.bind({0, -1, 0, 0, 0.0, 0.0, 0}); }, {"'u8'", "-1", "uint8"});
  expect_argument_error([&] { b.bind({0, 0, 4294967296LL, 0, 0.0, 0.0, 0}); }, {"'u32'", "uint32"});
  expect_argument_error([&] { b.bind({0, 0, 0, 2, 0.0, 0.0, 0}); }, {"'flag'", "bool", "[0, 1]"});
  expect_argument_error(
      [&] {
        b.bind({0, 0, 0, 0, 1e39, 0.0, 0});
      },
      {"'f32'", "out of range", "float32"});
  expect_argument_error([&] { b.bind({0, 0, 0, 0, 0.0, 70000.0, 0}); }, {"'f16'", "float16"});
  // Infinities and NaN are representable in every float type.
  b.bind({0, 0, 0, 0, std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::quiet_NaN(), 0});
}

TEST(Binder, IntegerScalarsBindTheirSymbol) {
  // `n` comes from the tensor and the scalar must agree; `k` comes from the scalar alone and
  // sizes the derived dim of B.
  Bound b({tensor("A", "float32", {"n"}), scalar("n", "int32"), scalar("k", "int64"),
           tensor("B", "float32", {"k * 2"})});
  auto a = buffer(64);
  TensorView A(a.data(), "float32", {5}), B(a.data(), "float32", {6}),
      Bbad(a.data(), "float32", {7});
  b.bind({A, 5, 3, B});
  EXPECT_EQ(b.symbol("n"), 5);
  EXPECT_EQ(b.symbol("k"), 3);
  expect_argument_error(
      [&] {
        b.bind({A, 6, 3, B});
      },
      {"'n'", "value 6 conflicts with n = 5", "'A' dim 0"});
  expect_argument_error([&] { b.bind({A, 5, 3, Bbad}); }, {"'B'", "k * 2", "= 6", "got 7"});
}

TEST(Binder, OutputsAreAllocatedWithShapesFromSymbols) {
  Bound b({tensor("A", "float32", {"M", "K"}), tensor("C", "int16", {"M", "ceildiv(K, 4)"}),
           scalar("alpha", "float64"), tensor("D", "float32", {"K"})},
          {1, 3});
  EXPECT_EQ(b.binder->num_inputs(), 2);
  auto a = buffer(64);
  TensorView A(a.data(), "float32", {3, 10});
  b.bind({A, 0.5});
  ASSERT_EQ(b.outputs.size(), 2u);
  EXPECT_EQ(b.allocator.calls, 2);
  EXPECT_EQ(std::vector<int64_t>(b.outputs[0].shape().begin(), b.outputs[0].shape().end()),
            (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(b.outputs[0].dtype(), DataType::parse("int16"));
  EXPECT_EQ(std::vector<int64_t>(b.outputs[1].shape().begin(), b.outputs[1].shape().end()),
            (std::vector<int64_t>{10}));
  EXPECT_EQ(b.call.data[1], b.outputs[0].data());
  EXPECT_EQ(b.call.data[3], b.outputs[1].data());
  EXPECT_EQ(b.call.tensors[3], &b.outputs[1].as_dlpack());
  EXPECT_EQ(b.call.float_values[2], 0.5);
  // A second call replaces the outputs.
  TensorView A2(a.data(), "float32", {1, 1});
  b.bind({A2, 1.0});
  ASSERT_EQ(b.outputs.size(), 2u);
  EXPECT_EQ(b.outputs[0].numel(), 1);
  // An argument count error counts only the inputs.
  expect_argument_error([&] { b.bind({A}); }, {"expected 2 arguments", "A, alpha", "got 1"});
}

TEST(Binder, OutputSymbolsMustBeBoundByInputs) {
  Program program;
  program.name = "prog";
  program.params = {tensor("A", "float32", {"n"}), tensor("B", "float32", {"m"})};
  EXPECT_THROW(Binder(program, {1}, dlpack::kDLCPU), ProgramError);
  try {
    Binder binder(program, {1}, dlpack::kDLCPU);
  } catch (const ProgramError& e) {
    expect_contains(e.what(), "'m'");
  }
  // Scalars cannot be outputs.
  program.params = {tensor("A", "float32", {"n"}), scalar("s", "int32")};
  EXPECT_THROW(Binder(program, {1}, dlpack::kDLCPU), ArgumentError);
}

TEST(Binder, AllocatorThatReturnsTheWrongShapeIsRejected) {
  class WrongAllocator final : public OutputAllocator {
   public:
    Tensor allocate(DataType dtype, std::span<const int64_t>, Device device) const override {
      const int64_t shape[] = {1};
      return Tensor::empty(dtype, shape, device);
    }
  };
  Program program;
  program.name = "prog";
  program.params = {tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"})};
  Binder binder(program, {1}, dlpack::kDLCPU);
  auto a = buffer(8);
  TensorView A(a.data(), "float32", {8});
  const Arg args[] = {A};
  BoundCall call{};
  std::vector<Tensor> outputs;
  WrongAllocator wrong;
  try {
    binder.bind(args, call, wrong, outputs);
    ADD_FAILURE() << "no Error thrown";
  } catch (const Error& e) {
    expect_contains(e.what(), "'B'");
  }
}

// Read-only tensors (DLPack's READ_ONLY flag) are refused where a kernel may write, named by
// the argument and the kernel parameter that writes. A read-only numpy array used to be
// written silently.
TEST(Binder, ReadOnlyTensorIsRefusedWhereTheKernelWrites) {
  Bound b({tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"}),
           tensor("C", "float32", {"n"}), tensor("D", "float32", {"n"}),
           tensor("E", "float32", {"n"})});
  b.program.source =
      "void k(const float* A, float const* __restrict__ B, float* const C, float* D,\n"
      "       const float* E, int n) {}\n"
      "void other(float* E) {}\n";
  Launch k, other;
  k.kernel = "k";
  other.kernel = "other";
  b.program.launches = {k, other};
  b.binder = std::make_unique<Binder>(b.program, std::vector<int>{}, dlpack::kDLCPU);

  std::mt19937 rng(11);
  const int64_t n = std::uniform_int_distribution<int64_t>(1, 40)(rng);
  std::vector<std::vector<float>> data(5, buffer(static_cast<size_t>(n)));
  std::vector<TensorView> views;
  for (auto& d : data) views.emplace_back(d.data(), "float32", std::initializer_list<int64_t>{n});
  auto arg = [&](int i, bool read_only) {
    return read_only ? Arg::read_only(&views[i].as_dlpack()) : Arg(views[i]);
  };
  // Every parameter read-only in turn; only A and B (pointers to const) accept it.
  for (int ro = 0; ro < 5; ++ro) {
    auto call = [&] {
      b.bind({arg(0, ro == 0), arg(1, ro == 1), arg(2, ro == 2), arg(3, ro == 3), arg(4, ro == 4)});
    };
    if (ro <= 1) {
      call();
      EXPECT_EQ(b.symbol("n"), n);
      continue;
    }
    const std::string name = std::string(1, static_cast<char>('A' + ro));
    const std::string why = ro == 2   ? "kernel 'k' takes it as 'float* const'"
                            : ro == 3 ? "kernel 'k' takes it as 'float*'"
                                      : "kernel 'other' takes it as 'float*'";
    expect_argument_error(call, {"argument '" + name + "'", "read-only", why});
  }
  // All writable: binds.
  b.bind({arg(0, false), arg(1, false), arg(2, false), arg(3, false), arg(4, false)});
}

TEST(Binder, ReadOnlyTensorIsRefusedUnderATmaDescriptorOrWithoutLaunches) {
  // No launches (a metal library): every tensor may be written.
  Bound b({tensor("A", "float32", {4})});
  auto a = buffer(4);
  TensorView A(a.data(), "float32", {4});
  expect_argument_error([&] { b.bind({Arg::read_only(&A.as_dlpack())}); },
                        {"argument 'A'", "read-only", "no launches"});

  // A TMA descriptor can store through its buffer, whatever the kernel's pointer says.
  b.program.source = "void k(const float* A) {}\n";
  Launch k;
  k.kernel = "k";
  b.program.launches = {k};
  b.binder = std::make_unique<Binder>(b.program, std::vector<int>{}, dlpack::kDLCPU);
  b.bind({Arg::read_only(&A.as_dlpack())});
  TmaDescriptor d;
  d.name = "desc";
  d.buffer = "A";
  b.program.tma_descriptors = {d};
  b.binder = std::make_unique<Binder>(b.program, std::vector<int>{}, dlpack::kDLCPU);
  expect_argument_error([&] { b.bind({Arg::read_only(&A.as_dlpack())}); },
                        {"argument 'A'", "read-only", "TMA descriptor 'desc'"});
}

// Arg::from_managed reads the flag of a versioned DLPack tensor.
TEST(Binder, ManagedTensorFlagsDecideReadOnly) {
  auto a = buffer(3);
  TensorView A(a.data(), "float32", {3});
  dlpack::DLManagedTensorVersioned managed{};
  managed.dl_tensor = A.as_dlpack();
  EXPECT_FALSE(Arg::from_managed(managed).read_only());
  managed.flags = dlpack::kDLPackFlagBitmaskIsCopied;
  EXPECT_FALSE(Arg::from_managed(managed).read_only());
  managed.flags |= dlpack::kDLPackFlagBitmaskReadOnly;
  EXPECT_TRUE(Arg::from_managed(managed).read_only());
  EXPECT_EQ(Arg::from_managed(managed).tensor(), &managed.dl_tensor);
}

// Found by fuzz_binder: the element count was the product of the dims, which overflows for
// dims the caller sent. 2^32 x 2^32 wrapped to 0, so a null data pointer passed as "empty".
TEST(Binder, NullDataWithDimsWhoseProductOverflowsIsRefused) {
  Bound b({tensor("A", "float32", {"M", "K"})});
  int64_t shape[] = {int64_t{1} << 32, int64_t{1} << 32};
  dlpack::DLTensor t{};
  t.device = {dlpack::kDLCPU, 0};
  t.ndim = 2;
  t.dtype = DataType::parse("float32").to_dlpack();
  t.shape = shape;
  expect_argument_error([&] { b.bind({&t}); }, {"argument 'A'", "data pointer is null"});
  shape[0] = -18;  // an overflowing product of a negative and a positive dim
  shape[1] = 2495735822753361663;
  expect_argument_error([&] { b.bind({&t}); }, {"argument 'A'", "data pointer is null"});
}

// Dims 3 x 2^62 x 4 have more elements than int64 counts; their compact stride used to wrap
// to 0, which accepted stride 0 as compact.
TEST(Binder, CompactCheckDoesNotWrapAround) {
  Bound b({tensor("A", "float32", {"a", "b", "c"})});
  auto a = buffer(4);
  int64_t shape[] = {3, int64_t{1} << 62, 4};
  int64_t strides[] = {0, 4, 1};
  dlpack::DLTensor t{};
  t.data = a.data();
  t.device = {dlpack::kDLCPU, 0};
  t.ndim = 3;
  t.dtype = DataType::parse("float32").to_dlpack();
  t.shape = shape;
  t.strides = strides;
  expect_argument_error([&] { b.bind({&t}); }, {"argument 'A'", "more elements than int64"});
  // Within int64 the same wrap-around cannot happen, and the check names the dimension.
  shape[1] = int64_t{1} << 40;
  expect_argument_error([&] { b.bind({&t}); }, {"argument 'A'", "compact"});
}

TEST(Binder, NegativeDimsAreRefused) {
  Bound b({tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"})});
  auto a = buffer(4);
  int64_t shape[] = {-3};
  dlpack::DLTensor t{};
  t.data = a.data();
  t.device = {dlpack::kDLCPU, 0};
  t.ndim = 1;
  t.dtype = DataType::parse("float32").to_dlpack();
  t.shape = shape;
  expect_argument_error([&] { b.bind({&t, &t}); }, {"argument 'A'", "dim 0 is -3", ">= 0"});
}

// Found by fuzz_binder: data + byte_offset was pointer arithmetic that could overflow.
TEST(Binder, ByteOffsetPastTheAddressSpaceIsRefused) {
  Bound b({tensor("A", "float32", {4})});
  auto a = buffer(4);
  TensorView view(a.data(), "float32", {4});
  dlpack::DLTensor dl = view.as_dlpack();
  dl.byte_offset = UINT64_MAX - 2;
  expect_argument_error([&] { b.bind({&dl}); }, {"argument 'A'", "byte_offset"});
}

// With several bad arguments the first error is the first in the planned phases (kinds, then
// dtypes of every tensor, then ndims, ..., scalar ranges, then agreement of scalars with their
// symbols), not the first argument: the Binder runs its checks in stretches of one kind.
TEST(Binder, SeveralBadArgumentsReportTheFirstErrorInPhaseOrder) {
  Bound b({tensor("A", "float32", {"n"}), tensor("B", "float32", {"n"}), scalar("n", "int32"),
           scalar("t", "int8")});
  auto a = buffer(64);
  TensorView A(a.data(), "float32", {5}), B(a.data(), "float32", {5});
  TensorView A64(a.data(), "float64", {5}), B64(a.data(), "float64", {5});
  TensorView A2d(a.data(), "float32", {5, 1});
  // A kind error anywhere comes before a dtype error of an earlier argument.
  expect_argument_error([&] { b.bind({A64, B, 2.5, 1}); }, {"'n'", "expected an integer"});
  // Then each tensor in argument order, its null data, device, dtype and ndim in one pass:
  // A's two dims before B's dtype, and B's dtype once A is right.
  expect_argument_error([&] { b.bind({A2d, B64, 5, 1}); }, {"'A'", "expected 1 dimensions"});
  expect_argument_error([&] { b.bind({A, B64, 5, 1}); }, {"'B'", "expected dtype float32"});
  // A scalar's range before another scalar's agreement with its symbol.
  expect_argument_error([&] { b.bind({A, B, 6, 1000}); }, {"'t'", "value 1000 is out of range"});
  expect_argument_error([&] { b.bind({A, B, 6, 100}); }, {"'n'", "value 6 conflicts with n = 5"});
  // And every value lands in its symbol, for random values.
  std::mt19937 rng(1302);
  for (int round = 0; round < 50; ++round) {
    const int t = static_cast<int>(rng() % 256) - 128;
    b.bind({A, B, 5, t});
    EXPECT_EQ(b.symbol("n"), 5);
    EXPECT_EQ(b.symbol("t"), t);
    EXPECT_EQ(b.call.int_values[3], t);
  }
}

}  // namespace
}  // namespace tilejit::detail
