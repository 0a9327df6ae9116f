// libFuzzer target: the Binder, with argument lists decoded from the input, against one fixed
// Program that has every kind of check (constant, bound, derived and strided dims, scalars
// sharing a symbol, a handle, a read-only-capable input and a writable one, an output).
// A call binds or throws a tilejit error; it never reads outside what the arguments describe,
// and a bound call satisfies the Program's shapes.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "call/binder.h"
#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace {

using namespace tilejit;

Program make_program() {
  Program p;
  p.name = "fuzzed";
  p.language = Language::kC;
  p.source =
      "void k(const float* A, const void* B, float* C, int s, float alpha, void* h, float* O,\n"
      "       int K, int M, int N, long long sb) {}\n";
  p.params = {
      KernelParam::tensor("A", DataType::parse("float32"), {"M", "K"}),
      KernelParam::tensor("B", DataType::parse("float16"), {"K", "N", 4},
                          std::vector<Expr>{"sb", 4, 1}),
      KernelParam::tensor("C", DataType::parse("float32"), {"M", "ceildiv(N, 2)"}),
      KernelParam::scalar_param("s", DataType::parse("int8")),
      KernelParam::scalar_param("alpha", DataType::parse("float32")),
      KernelParam::scalar_param("h", DataType::parse("handle")),
      KernelParam::tensor("O", DataType::parse("float32"), {"M * N"}),
      KernelParam::scalar_param("K", DataType::parse("int32")),
  };
  Launch launch;
  launch.kernel = "k";
  p.launches = {launch};
  p.out_idx = {6};
  p.validate();
  return p;
}

// Stands in for a framework's allocator: it refuses what a fuzzer should not allocate.
class BoundedAllocator final : public OutputAllocator {
 public:
  Tensor allocate(DataType dtype, std::span<const int64_t> shape, Device device) const override {
    int64_t elements = 1;
    for (int64_t d : shape) {
      if (d < 0) std::abort();  // the Binder promises non-negative output dims
      if (__builtin_mul_overflow(elements, d, &elements) || elements > (1 << 16)) {
        throw ArgumentError("the fuzzer's allocator refuses large outputs");
      }
    }
    return Tensor::empty(dtype, shape, device);
  }
};

// One decoded argument with the storage its DLTensor points into.
struct FuzzedArg {
  std::array<int64_t, 16> shape{};
  std::array<int64_t, 16> strides{};
  dlpack::DLTensor tensor{};
};

int64_t fuzzed_extent(FuzzedDataProvider& in) {
  // Mostly small extents, so that shapes agree often enough to reach the later checks.
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(-2, 9)
                          : in.ConsumeIntegral<int64_t>();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Program program = make_program();
  static const detail::Binder binder(program, program.out_idx, dlpack::kDLCPU);
  static std::array<char, 4096> memory;  // what non-null data pointers point into

  FuzzedDataProvider in(data, size);
  const size_t count = in.ConsumeIntegralInRange<size_t>(0, 9);
  std::vector<FuzzedArg> storage(count);
  std::vector<Arg> args;
  for (size_t i = 0; i < count; ++i) {
    FuzzedArg& a = storage[i];
    dlpack::DLTensor& t = a.tensor;
    switch (in.ConsumeIntegralInRange(0, 5)) {
      case 0:
        args.emplace_back(in.ConsumeIntegral<int64_t>());
        continue;
      case 1:
        args.emplace_back(in.ConsumeFloatingPoint<double>());
        continue;
      case 2:
        args.push_back(Arg::pointer(in.ConsumeBool() ? memory.data() : nullptr));
        continue;
      case 3:
        args.emplace_back(static_cast<const dlpack::DLTensor*>(nullptr));
        continue;
      default:
        break;
    }
    t.ndim = in.ConsumeIntegralInRange<int32_t>(-1, 12);
    for (int32_t d = 0; d < t.ndim; ++d) a.shape[d] = fuzzed_extent(in);
    t.shape = a.shape.data();
    if (in.ConsumeBool()) {
      for (int32_t d = 0; d < t.ndim; ++d) a.strides[d] = fuzzed_extent(in);
      t.strides = a.strides.data();
    }
    const uint8_t codes[] = {dlpack::kDLInt,    dlpack::kDLUInt, dlpack::kDLFloat,
                             dlpack::kDLBfloat, dlpack::kDLBool, in.ConsumeIntegral<uint8_t>()};
    t.dtype.code = codes[in.ConsumeIntegralInRange<size_t>(0, std::size(codes) - 1)];
    const uint8_t bits[] = {8, 16, 32, 64, in.ConsumeIntegral<uint8_t>()};
    t.dtype.bits = bits[in.ConsumeIntegralInRange<size_t>(0, std::size(bits) - 1)];
    t.dtype.lanes = in.ConsumeBool() ? 1 : in.ConsumeIntegral<uint16_t>();
    const int32_t devices[] = {dlpack::kDLCPU, dlpack::kDLCUDA, dlpack::kDLCUDAManaged,
                               in.ConsumeIntegral<int32_t>()};
    t.device.device_type = devices[in.ConsumeIntegralInRange<size_t>(0, std::size(devices) - 1)];
    t.device.device_id = in.ConsumeBool() ? 0 : in.ConsumeIntegral<int32_t>();
    t.data = in.ConsumeBool() ? memory.data() : nullptr;
    t.byte_offset = in.ConsumeBool() ? 0 : in.ConsumeIntegral<uint64_t>();
    args.push_back(in.ConsumeBool() ? Arg::read_only(&t) : Arg(&t));
  }

  detail::BoundCall bound{};
  std::vector<Tensor> outputs;
  const BoundedAllocator allocator;
  try {
    binder.bind(args, bound, allocator, outputs);
  } catch (const Error&) {
    return 0;
  }
  // Bound: the symbols satisfy every tensor's shape, and the output has its shape.
  const int64_t M = bound.symbols[binder.symbol_slot("M")];
  const int64_t N = bound.symbols[binder.symbol_slot("N")];
  const int64_t K = bound.symbols[binder.symbol_slot("K")];
  const dlpack::DLTensor* A = bound.tensors[0];
  const dlpack::DLTensor* C = bound.tensors[2];
  if (A->shape[0] != M || A->shape[1] != K || C->shape[0] != M) std::abort();
  if (outputs.size() != 1 || outputs[0].as_dlpack().shape[0] != M * N) std::abort();
  if (args[2].read_only()) std::abort();  // C is `float* C`: a read-only C must not bind
  return 0;
}
