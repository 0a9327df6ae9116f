// `tilejit run PROGRAM.json --set M=128 ...`: compile, feed random inputs shaped by the
// params and the --set values, print each output's checksum and the median call time.
// --check poisons the outputs first and fails unless every element was written (and no float
// output is NaN).
#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "cli.h"
#include "compile/kernel_state.h"
#include "cuda/driver.h"
#include "tilejit/tilejit.h"

namespace {

using tilejit::DataType;
using tilejit::Error;
using tilejit::TypeCode;

struct RunArgs {
  std::string program_path;
  std::vector<std::string> sets;
  tilejit::CompileOptions options;
  std::vector<int> out_idx;
  std::optional<int64_t> default_size;
  uint64_t seed = 0;
  bool check = false;
  int repeat = 5;
};

// IEEE binary16 from a float, round to nearest even; values run generates are small, so
// overflow saturates to infinity and tiny values flush to zero.
uint16_t float_to_half(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t float_to_bfloat(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

float bfloat_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

bool decodable(const DataType& t) {
  if (t.lanes != 1) return false;
  if (t.is_integer() || t.is_boolean()) return true;
  if (t.code == TypeCode::kFloat) return t.bits == 16 || t.bits == 32 || t.bits == 64;
  return t.is_bfloat16();
}

// Element `i` of a compact buffer as a double (decodable types only).
double element(const void* data, const DataType& t, int64_t i) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  auto load = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, bytes + i * static_cast<int64_t>(sizeof v), sizeof v);
    return v;
  };
  if (t.is_boolean()) return load(uint8_t{}) != 0;
  if (t.is_int()) {
    switch (t.bits) {
      case 8:
        return load(int8_t{});
      case 16:
        return load(int16_t{});
      case 32:
        return load(int32_t{});
      default:
        return static_cast<double>(load(int64_t{}));
    }
  }
  if (t.is_unsigned()) {
    switch (t.bits) {
      case 8:
        return load(uint8_t{});
      case 16:
        return load(uint16_t{});
      case 32:
        return load(uint32_t{});
      default:
        return static_cast<double>(load(uint64_t{}));
    }
  }
  if (t.is_bfloat16()) return bfloat_to_float(load(uint16_t{}));
  switch (t.bits) {
    case 16:
      return half_to_float(load(uint16_t{}));
    case 32:
      return load(float{});
    default:
      return load(double{});
  }
}

// Fills `count` elements with random values: floats in [-1, 1], integers in a small range.
void fill_random(void* data, const DataType& t, int64_t count, std::mt19937_64& rng) {
  auto* bytes = static_cast<unsigned char*>(data);
  auto store = [&](int64_t i, auto v) {
    std::memcpy(bytes + i * static_cast<int64_t>(sizeof v), &v, sizeof v);
  };
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-8, 8);
  if (!decodable(t)) {  // fp8, fp4, vectors: random bytes with the sign/exponent kept small
    const int64_t n = t.storage_bytes(count);
    for (int64_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(rng() & 0x33u);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    if (t.is_boolean()) {
      store(i, static_cast<uint8_t>(rng() & 1u));
    } else if (t.is_integer()) {
      const int v = t.is_unsigned() ? std::abs(small(rng)) : small(rng);
      switch (t.bits) {
        case 8:
          store(i, static_cast<int8_t>(v));
          break;
        case 16:
          store(i, static_cast<int16_t>(v));
          break;
        case 32:
          store(i, static_cast<int32_t>(v));
          break;
        default:
          store(i, static_cast<int64_t>(v));
          break;
      }
    } else if (t.is_bfloat16()) {
      store(i, float_to_bfloat(real(rng)));
    } else if (t.bits == 16) {
      store(i, float_to_half(real(rng)));
    } else if (t.bits == 32) {
      store(i, real(rng));
    } else {
      store(i, static_cast<double>(real(rng)));
    }
  }
}

// Moves bytes between the host and where the kernel's tensors live: inputs are made on the
// host and uploaded, outputs are downloaded to be checked.
class Memory {
 public:
  explicit Memory(tilejit::Device device) : device_(device) {
    if (device_.type == tilejit::dlpack::kDLCUDA) {
      api_ = &tilejit::cuda::driver();
      tilejit::cuda::make_current(*api_, tilejit::cuda::device_info(device_.id));
    }
  }
  tilejit::Device device() const { return device_; }
  void upload(void* device_ptr, const void* host, size_t bytes) const {
    if (api_ == nullptr) {
      std::memcpy(device_ptr, host, bytes);
      return;
    }
    tilejit::cuda::check(api_->cuMemcpyHtoD(address(device_ptr), host, bytes), "cuMemcpyHtoD");
  }
  std::vector<unsigned char> download(const tilejit::Tensor& t) const {
    std::vector<unsigned char> host(static_cast<size_t>(t.dtype().storage_bytes(t.numel())));
    if (api_ == nullptr) {
      std::memcpy(host.data(), t.data(), host.size());
    } else {
      tilejit::cuda::check(api_->cuMemcpyDtoH(host.data(), address(t.data()), host.size()),
                           "cuMemcpyDtoH");
    }
    return host;
  }
  void fill(void* device_ptr, unsigned char value, size_t bytes) const {
    if (api_ == nullptr) {
      std::memset(device_ptr, value, bytes);
      return;
    }
    tilejit::cuda::check(api_->cuMemsetD8(address(device_ptr), value, bytes), "cuMemsetD8");
  }
  // Kernels on CUDA run asynchronously; a timed call ends when its work has.
  void synchronize() const {
    if (api_ != nullptr) tilejit::cuda::synchronize(device_.id, nullptr, "tilejit run");
  }

 private:
  static tilejit::cuda::CUdeviceptr address(const void* p) {
    return static_cast<tilejit::cuda::CUdeviceptr>(reinterpret_cast<uintptr_t>(p));
  }
  tilejit::Device device_;
  const tilejit::cuda::DriverApi* api_ = nullptr;
};

// Allocates outputs filled with a byte pattern, so that unwritten elements can be found.
class PoisoningAllocator final : public tilejit::OutputAllocator {
 public:
  PoisoningAllocator(const Memory& memory, unsigned char pattern)
      : memory_(memory), pattern_(pattern) {}
  tilejit::Tensor allocate(DataType dtype, std::span<const int64_t> shape,
                           tilejit::Device device) const override {
    tilejit::Tensor t = tilejit::Tensor::empty(dtype, shape, device);
    memory_.fill(t.data(), pattern_, static_cast<size_t>(dtype.storage_bytes(t.numel())));
    return t;
  }

 private:
  const Memory& memory_;
  unsigned char pattern_;
};

std::string shape_text(std::span<const int64_t> shape) {
  std::string text = "[";
  for (size_t d = 0; d < shape.size(); ++d) text += fmt::format("{}{}", d ? ", " : "", shape[d]);
  return text + "]";
}

// Elements equal to the pattern in both runs (each run poisoned with its own pattern) were
// never written. Returns the count and the first such index.
std::pair<int64_t, int64_t> unwritten(const DataType& t, const std::vector<unsigned char>& a,
                                      unsigned char p1, const std::vector<unsigned char>& b,
                                      unsigned char p2) {
  // Sub-byte types are compared a byte at a time.
  const int64_t element_bytes = std::max<int64_t>(1, t.storage_bytes(1));
  const int64_t elements = static_cast<int64_t>(a.size()) / element_bytes;
  int64_t count = 0, first_index = -1;
  for (int64_t e = 0; e < elements; ++e) {
    bool poisoned = true;
    for (int64_t k = 0; k < element_bytes && poisoned; ++k) {
      poisoned = a[e * element_bytes + k] == p1 && b[e * element_bytes + k] == p2;
    }
    if (poisoned) {
      if (first_index < 0) first_index = e;
      ++count;
    }
  }
  return {count, first_index};
}

void run(const RunArgs& args, bool out_idx_given) {
  const tilejit::Program program = tilejit::Program::load(args.program_path);
  tilejit::CompileOptions options = args.options;
  if (out_idx_given) options.out_idx = args.out_idx;
  if (args.repeat < 1) throw Error("--repeat must be at least 1");

  // --set values: symbols and integer scalar params (exact integers), other scalar params
  // (numbers).
  std::map<std::string, int64_t, std::less<>> symbols;
  std::map<std::string, double> scalar_values;
  const std::vector<std::string> known = program.shape_variables();
  for (const std::string& assignment : args.sets) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error(fmt::format("--set '{}': expected NAME=VALUE", assignment));
    }
    const std::string name = assignment.substr(0, eq);
    const std::string text = assignment.substr(eq + 1);
    const tilejit::KernelParam* param = program.find_param(name);
    const bool is_symbol = std::find(known.begin(), known.end(), name) != known.end();
    if (!is_symbol && (param == nullptr || !param->is_scalar())) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      for (const auto& p : program.params) {
        if (p.is_scalar()) names += (names.empty() ? "" : ", ") + p.name;
      }
      throw Error(
          fmt::format("--set {}: '{}' is neither a shape variable nor a scalar param of "
                      "'{}' (available: {})",
                      assignment, name, program.name, names.empty() ? "none" : names));
    }
    if (is_symbol || param->dtype.is_integer()) {
      // Exactly, never through a double: above 2^53 a double loses the low digits.
      int64_t value = 0;
      const char* end = text.data() + text.size();
      const auto [ptr, ec] = std::from_chars(text.data(), end, value);
      if (ec == std::errc::result_out_of_range && ptr == end) {
        throw Error(fmt::format("--set {}: '{}' does not fit in a 64-bit signed integer",
                                assignment, text));
      }
      if (ec != std::errc() || ptr != end) {
        throw Error(fmt::format(
            "--set {}: '{}' takes an integer in decimal digits (an optional '-' before them), "
            "not '{}'",
            assignment, name, text));
      }
      symbols[name] = value;
      continue;
    }
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || text.empty()) {
      throw Error(fmt::format("--set {}: '{}' is not a number", assignment, text));
    }
    scalar_values[name] = value;
  }

  const tilejit::Kernel kernel = tilejit::compile(program, options);
  const std::vector<int>& outputs = kernel.out_idx();
  std::mt19937_64 rng(args.seed);

  // Inputs: storage for every tensor, values for every scalar, in param order.
  const Memory memory(
      tilejit::Device{tilejit::detail::kernel_state(kernel).backend->device_type(), 0});
  std::vector<tilejit::Tensor> buffers;  // inputs' memory, on the kernel's device
  std::vector<tilejit::TensorView> views;
  // The Args point into `views`: no reallocation may move them.
  views.reserve(program.params.size());
  std::vector<tilejit::Arg> call_args;
  auto eval = [&](const tilejit::Expr& e, const tilejit::KernelParam& p, std::string_view what) {
    for (const std::string& v : e.variables()) {
      if (symbols.count(v) == 0 && args.default_size) symbols[v] = *args.default_size;
      if (symbols.count(v) == 0) {
        throw Error(fmt::format(
            "param '{}': {} '{}' needs '{}'; give it with --set {}=VALUE (or --default-size)",
            p.name, what, e.str(), v, v));
      }
    }
    return e.eval(symbols);
  };
  for (size_t i = 0; i < program.params.size(); ++i) {
    if (std::find(outputs.begin(), outputs.end(), static_cast<int>(i)) != outputs.end()) continue;
    const tilejit::KernelParam& p = program.params[i];
    if (p.is_scalar()) {
      if (p.dtype.is_handle() || p.is_struct()) {
        throw Error(fmt::format("param '{}' is a {}; `tilejit run` cannot make one up", p.name,
                                p.is_struct() ? "struct" : "handle"));
      }
      const auto set = scalar_values.find(p.name);
      if (p.dtype.is_boolean()) {
        call_args.emplace_back(set != scalar_values.end() ? set->second != 0 : (rng() & 1u) != 0);
      } else if (p.dtype.is_integer()) {
        if (symbols.count(p.name) == 0 && args.default_size) symbols[p.name] = *args.default_size;
        const auto symbol = symbols.find(p.name);
        if (symbol == symbols.end()) {
          throw Error(fmt::format("scalar '{}' ({}) has no value; give it with --set {}=VALUE",
                                  p.name, p.dtype.str(), p.name));
        }
        call_args.emplace_back(static_cast<long long>(symbol->second));
      } else {
        call_args.emplace_back(
            set != scalar_values.end()
                ? set->second
                : static_cast<double>(std::uniform_real_distribution<float>(-1, 1)(rng)));
      }
      continue;
    }
    std::vector<int64_t> shape, strides;
    for (const tilejit::Expr& e : p.shape) shape.push_back(eval(e, p, "dimension"));
    if (p.strides) {
      // An unset stride variable defaults to the compact stride of its dimension.
      int64_t compact = 1;
      strides.assign(shape.size(), 0);
      for (size_t d = shape.size(); d-- > 0;) {
        const tilejit::Expr& s = (*p.strides)[d];
        if (s.is_var() && symbols.count(s.var_name()) == 0) symbols[s.var_name()] = compact;
        strides[d] = eval(s, p, "stride");
        compact *= shape[d];
      }
    }
    int64_t numel = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] < 0)
        throw Error(fmt::format("param '{}': dimension {} is {}", p.name, d, shape[d]));
      if (p.strides && strides[d] < 0) {
        throw Error(fmt::format("param '{}': stride {} is {}; run makes non-negative strides only",
                                p.name, d, strides[d]));
      }
      numel *= shape[d];
    }
    // Elements from the first addressed to one past the last (a strided view spans more).
    int64_t elements = numel;
    if (p.strides && numel > 0) {
      elements = 1;
      for (size_t d = 0; d < shape.size(); ++d) elements += (shape[d] - 1) * strides[d];
    }
    std::vector<unsigned char> host(static_cast<size_t>(p.dtype.storage_bytes(elements)));
    fill_random(host.data(), p.dtype, elements, rng);
    const int64_t flat_shape[] = {elements};
    buffers.push_back(tilejit::Tensor::empty(p.dtype, flat_shape, memory.device()));
    memory.upload(buffers.back().data(), host.data(), host.size());
    views.emplace_back(buffers.back().data(), p.dtype, std::span<const int64_t>(shape),
                       memory.device(), std::span<const int64_t>(strides));
    call_args.emplace_back(views.back());
  }

  constexpr unsigned char kPattern1 = 0xA5, kPattern2 = 0x5A;
  const PoisoningAllocator poison1(memory, kPattern1), poison2(memory, kPattern2);
  std::vector<tilejit::Tensor> result = kernel(call_args, {}, &poison1);
  memory.synchronize();
  std::vector<std::vector<unsigned char>> first;
  for (const tilejit::Tensor& t : result) first.push_back(memory.download(t));

  // The check comes first: checksums of unwritten memory would mean nothing.
  if (args.check) {
    if (result.empty()) {
      throw Error(fmt::format("--check: '{}' has no out_idx outputs to check (give --out-idx)",
                              program.name));
    }
    std::vector<tilejit::Tensor> again = kernel(call_args, {}, &poison2);
    memory.synchronize();
    for (size_t k = 0; k < result.size(); ++k) {
      const std::string& name = program.params[outputs[k]].name;
      const DataType t = result[k].dtype();
      const auto [count, first_index] =
          unwritten(t, first[k], kPattern1, memory.download(again[k]), kPattern2);
      if (count > 0) {
        throw Error(
            fmt::format("--check failed: output '{}' has {} unwritten element(s), the first at "
                        "flat index {}",
                        name, count, first_index));
      }
      if (decodable(t) && !t.is_integer() && !t.is_boolean()) {
        for (int64_t i = 0; i < result[k].numel(); ++i) {
          if (std::isnan(element(first[k].data(), t, i))) {
            throw Error(
                fmt::format("--check failed: output '{}' has NaN at flat index {}", name, i));
          }
        }
      }
    }
    fmt::print("check: every output element written, no NaN\n");
  }

  for (size_t k = 0; k < result.size(); ++k) {
    const tilejit::KernelParam& p = program.params[outputs[k]];
    const DataType t = result[k].dtype();
    if (!decodable(t)) {
      fmt::print("{}: {}{} checksum n/a for this dtype\n", p.name, t.str(),
                 shape_text(result[k].shape()));
      continue;
    }
    double sum = 0, sum_squares = 0;
    for (int64_t i = 0; i < result[k].numel(); ++i) {
      const double v = element(first[k].data(), t, i);
      sum += v;
      sum_squares += v * v;
    }
    fmt::print("{}: {}{} sum={:.9g} sumsq={:.9g}\n", p.name, t.str(), shape_text(result[k].shape()),
               sum, sum_squares);
  }

  std::vector<double> micros;
  for (int r = 0; r < args.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<tilejit::Tensor> timed = kernel(call_args);
    memory.synchronize();
    const auto stop = std::chrono::steady_clock::now();
    micros.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  std::sort(micros.begin(), micros.end());
  fmt::print("time: median {:.2f} us per call over {} call(s)\n", micros[micros.size() / 2],
             micros.size());
}

const tilejit::cli::Registration kRegistration{
    "run", [](CLI::App& app) {
      auto args = std::make_shared<RunArgs>();
      CLI::App* cmd =
          app.add_subcommand("run", "Compile a Program (JSON) and run it on random inputs");
      cmd->add_option("program", args->program_path, "Program JSON file (tilejit.program/1)")
          ->required()
          ->check(CLI::ExistingFile);
      cmd->add_option("--set", args->sets,
                      "NAME=VALUE for a shape variable or scalar param (repeatable)");
      tilejit::cli::add_compile_options(cmd, args->options);
      CLI::Option* out_idx =
          cmd->add_option("--out-idx", args->out_idx,
                          "Output param indices (comma-separated; negative from the end)")
              ->delimiter(',');
      cmd->add_option("--default-size", args->default_size,
                      "Value of every shape variable and integer scalar not given with --set");
      cmd->add_option("--seed", args->seed, "Random seed for the inputs");
      cmd->add_flag("--check", args->check,
                    "Fail unless every output element is written and no float output is NaN");
      cmd->add_option("--repeat", args->repeat, "Timed calls (the median is printed)");
      cmd->callback([args, out_idx] { run(*args, out_idx->count() > 0); });
    }};

}  // namespace
