// The non-template parts of tilejit/jit.h: cache keys, hit reporting, eager-mode specs.
#include "tilejit/jit.h"

#include <atomic>

#include "compile/compile.h"

namespace tilejit {

std::string cache_key(const Program& program, const CompileOptions& options) {
  return detail::compile_cache_key(program, options);
}

namespace detail {

CompileReport par_compile_one(const Program& program, const CompileOptions& options) {
  CompileOutcome outcome =
      compile_with_outcome(program, options, CompilerPlacement::kWorkerProcess);
  return {std::move(outcome.kernel), outcome.source != CompileSource::kBuilt};
}

ArgSpecs arg_specs(std::span<const Arg> args) {
  ArgSpecs specs;
  specs.reserve(args.size());
  for (const Arg& arg : args) {
    ArgSpec spec;
    spec.kind = arg.kind();
    if (arg.kind() == Arg::Kind::kTensor && arg.tensor() != nullptr) {
      const dlpack::DLTensor& t = *arg.tensor();
      spec.dtype = DataType::from_dlpack(t.dtype);
      spec.shape.assign(t.shape, t.shape + t.ndim);
      spec.device = Device{t.device.device_type, t.device.device_id};
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

uint64_t next_jit_id() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

namespace {

void mix(uint64_t& hash, uint64_t value) {
  hash ^= value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
}

}  // namespace

// Runs on every eager call, so it reads the DLTensors directly: no allocation.
uint64_t hash_arg_specs(std::span<const Arg> args) {
  uint64_t hash = args.size();
  for (const Arg& arg : args) {
    mix(hash, static_cast<uint64_t>(arg.kind()));
    if (arg.kind() != Arg::Kind::kTensor || arg.tensor() == nullptr) continue;
    const dlpack::DLTensor& t = *arg.tensor();
    mix(hash, (uint64_t{t.dtype.code} << 32) | (uint64_t{t.dtype.bits} << 16) | t.dtype.lanes);
    mix(hash, (static_cast<uint64_t>(static_cast<uint32_t>(t.device.device_type)) << 32) |
                  static_cast<uint32_t>(t.device.device_id));
    mix(hash, static_cast<uint64_t>(t.ndim));
    for (int32_t d = 0; d < t.ndim; ++d) mix(hash, static_cast<uint64_t>(t.shape[d]));
  }
  return hash;
}

bool arg_specs_match(const ArgSpecs& specs, std::span<const Arg> args) {
  if (specs.size() != args.size()) return false;
  for (size_t i = 0; i < args.size(); ++i) {
    const ArgSpec& spec = specs[i];
    if (spec.kind != args[i].kind()) return false;
    if (spec.kind != Arg::Kind::kTensor || args[i].tensor() == nullptr) continue;
    const dlpack::DLTensor& t = *args[i].tensor();
    const dlpack::DLDataType dl = spec.dtype.to_dlpack();
    if (dl.code != t.dtype.code || dl.bits != t.dtype.bits || dl.lanes != t.dtype.lanes)
      return false;
    if (spec.device.type != t.device.device_type || spec.device.id != t.device.device_id)
      return false;
    if (spec.shape.size() != static_cast<size_t>(t.ndim)) return false;
    for (int32_t d = 0; d < t.ndim; ++d) {
      if (spec.shape[static_cast<size_t>(d)] != t.shape[d]) return false;
    }
  }
  return true;
}

}  // namespace detail
}  // namespace tilejit
