// The cpu backend (execution_backend "cpu", targets "c" / "llvm"): the Program's C source and
// a generated C host wrapper compiled by the host compiler into one shared library, loaded
// from memory and called through its call_packed entry.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/shared_library.h"
#include "codegen/wrapper.h"
#include "compile/toolchain.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

constexpr auto kCompileTimeout = std::chrono::seconds(300);
constexpr int kMaxCallArgs = kMaxParams + kMaxSymbols;

// A file name made from the Program's name: generated files must not depend on what
// characters a user put there.
std::string file_stem(std::string_view name) {
  std::string stem;
  for (char c : name) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    stem += safe ? c : '_';
  }
  return stem.empty() ? "program" : stem;
}

// The lines of a compiler log that say what went wrong: those mentioning "error", else the
// first lines.
std::string first_error_lines(std::string_view log, size_t max_lines = 6) {
  std::vector<std::string_view> lines;
  std::vector<std::string_view> errors;
  while (!log.empty()) {
    const size_t end = log.find('\n');
    std::string_view line = log.substr(0, end);
    log = end == std::string_view::npos ? std::string_view() : log.substr(end + 1);
    if (line.empty()) continue;
    lines.push_back(line);
    if (line.find("error") != std::string_view::npos) errors.push_back(line);
  }
  const auto& chosen = errors.empty() ? lines : errors;
  std::string text;
  for (size_t i = 0; i < chosen.size() && i < max_lines; ++i) {
    if (i > 0) text += '\n';
    text += chosen[i];
  }
  return text;
}

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    if (!text.empty()) text += ' ';
    text += w;
  }
  return text;
}

// Runs a loaded library through call_packed. The argument array is rebuilt on the stack for
// every call from a plan made at load time: where each of call()'s values lives in the
// BoundCall and which C type it takes.
class CpuExecutor final : public Executor {
 public:
  CpuExecutor(SharedLibrary library, const Program& program, const Binder& binder)
      : library_(std::move(library)), program_name_(program.name) {
    init_ = reinterpret_cast<InitFn>(library_.symbol("init"));
    call_packed_ = reinterpret_cast<CallPackedFn>(library_.symbol("call_packed"));
    get_last_error_ = reinterpret_cast<GetLastErrorFn>(library_.symbol("get_last_error"));

    const std::vector<CallParam> call_params = wrapper_call_params(program);
    if (call_params.size() > static_cast<size_t>(kMaxCallArgs)) {
      throw ProgramError(fmt::format("program '{}': call() takes {} values; at most {} supported",
                                     program.name, call_params.size(), kMaxCallArgs));
    }
    for (const CallParam& p : call_params) entries_.push_back(plan_entry(p, program, binder));

    if (init_() != 0) {
      throw Error(fmt::format("{}: init() failed: {}", program_name_, get_last_error_()));
    }
  }

  void launch(const BoundCall& call, StreamRef stream) const override {
    void* args[kMaxCallArgs];
    // One 8-byte cell per value that is not already stored at its C type in the BoundCall.
    alignas(8) unsigned char cells[kMaxCallArgs][8];
    const size_t count = entries_.size();
    for (size_t i = 0; i < count; ++i) {
      const Entry& e = entries_[i];
      if (e.origin == Origin::kData) {
        args[i] = const_cast<void**>(&call.data[e.index]);
        continue;
      }
      const int64_t integer =
          e.origin == Origin::kSymbol ? call.symbols[e.index] : call.int_values[e.index];
      switch (e.value) {
        case Value::kInt8:
          store(cells[i], static_cast<int8_t>(integer));
          break;
        case Value::kInt16:
          store(cells[i], static_cast<int16_t>(integer));
          break;
        case Value::kInt32:
          store(cells[i], static_cast<int32_t>(integer));
          break;
        case Value::kInt64:
          store(cells[i], integer);
          break;
        case Value::kFloat32:
          store(cells[i], static_cast<float>(call.float_values[e.index]));
          break;
        case Value::kFloat64:
          store(cells[i], call.float_values[e.index]);
          break;
      }
      args[i] = cells[i];
    }
    if (call_packed_(args, stream.handle()) != 0) {
      throw Error(fmt::format("{}: {}", program_name_, get_last_error_()));
    }
  }

 private:
  using InitFn = int (*)();
  using CallPackedFn = int (*)(void* const*, void*);
  using GetLastErrorFn = const char* (*)();

  enum class Origin : uint8_t { kData, kInt, kFloat, kSymbol };
  enum class Value : uint8_t { kInt8, kInt16, kInt32, kInt64, kFloat32, kFloat64 };
  struct Entry {
    Origin origin;
    Value value;
    int index;  // param index (data, int, float) or symbol slot
  };

  template <class T>
  static void store(unsigned char* cell, T value) {
    std::memcpy(cell, &value, sizeof value);
  }

  static Value integer_value(const DataType& dtype) {
    switch (dtype.is_boolean() ? 8 : dtype.bits) {
      case 8:
        return Value::kInt8;
      case 16:
        return Value::kInt16;
      case 32:
        return Value::kInt32;
      default:
        return Value::kInt64;
    }
  }

  static Entry plan_entry(const CallParam& p, const Program& program, const Binder& binder) {
    switch (p.kind) {
      case CallParam::Kind::kTensor:
        return {Origin::kData, Value::kInt64, p.param_index};
      case CallParam::Kind::kSymbol: {
        const int slot = binder.symbol_slot(p.name);
        if (slot < 0) {
          throw ProgramError(
              fmt::format("program '{}': call() takes symbol '{}', which no param binds",
                          program.name, p.name));
        }
        return {Origin::kSymbol, integer_value(p.dtype), slot};
      }
      case CallParam::Kind::kScalar:
        break;
    }
    const DataType& dtype = p.dtype;
    if (dtype.is_handle()) return {Origin::kData, Value::kInt64, p.param_index};
    if (dtype.is_integer() || dtype.is_boolean()) {
      return {Origin::kInt, integer_value(dtype), p.param_index};
    }
    if (dtype.code == TypeCode::kFloat && dtype.bits == 32 && dtype.lanes == 1) {
      return {Origin::kFloat, Value::kFloat32, p.param_index};
    }
    if (dtype.code == TypeCode::kFloat && dtype.bits == 64 && dtype.lanes == 1) {
      return {Origin::kFloat, Value::kFloat64, p.param_index};
    }
    throw ProgramError(fmt::format(
        "program '{}': scalar param '{}' has dtype {}; the cpu backend passes float32 and "
        "float64 scalars only",
        program.name, p.name, dtype.str()));
  }

  SharedLibrary library_;
  std::string program_name_;
  InitFn init_ = nullptr;
  CallPackedFn call_packed_ = nullptr;
  GetLastErrorFn get_last_error_ = nullptr;
  std::vector<Entry> entries_;
};

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  int32_t device_type() const override { return dlpack::kDLCPU; }

  Target resolve_target(const Target& requested) const override {
    if (requested.kind == "c" || requested.kind == "auto") return Target{"c", ""};
    throw ArgumentError(fmt::format(
        "the cpu backend builds for target \"c\" (alias \"llvm\"), not \"{}\"", requested.str()));
  }

  std::string toolchain_fingerprint(const Target& /*target*/) const override {
    const HostCompiler& compiler = HostCompiler::detect();
    return fmt::format("cc={} ({})", compiler.c_compiler, compiler.version);
  }

  CompiledArtifact build(const Program& program, const ResolvedOptions& options) const override {
    if (program.language != Language::kC) {
      throw ArgumentError(
          fmt::format("program '{}' is written in {}; the cpu backend compiles language \"c\"",
                      program.name, to_string(program.language)));
    }
    const std::string host_source = generate_cpu_wrapper(program);
    const HostCompiler compiler = options.target_host.empty()
                                      ? HostCompiler::detect()
                                      : HostCompiler::named(options.target_host);

    TempDir dir("tilejit-cpu");
    const std::string stem = file_stem(program.name);
    const std::string source_name = stem + ".c";
    const auto source_path = dir.path() / source_name;
    const auto host_path = dir.path() / (stem + "_host.c");
    const auto library_path = dir.path() / ("lib" + stem + ".so");
    write_file(source_path, program.source);
    write_file(host_path, host_source);

    std::vector<std::string> argv = {compiler.c_compiler, "-O2", "-fPIC", "-shared"};
    for (const std::string& include_dir : program.include_dirs) argv.push_back("-I" + include_dir);
    for (const auto& [define, value] : program.defines) {
      argv.push_back(value.empty() ? "-D" + define : fmt::format("-D{}={}", define, value));
    }
    // The resolved flags already hold the Program's own flags followed by the options'.
    for (const std::string& flag : options.compile_flags) argv.push_back(flag);
    argv.insert(argv.end(),
                {"-o", library_path.string(), source_path.string(), host_path.string(), "-lm"});

    if (options.verbose) fmt::print(stderr, "tilejit: {}\n", join(argv));
    const ProcessResult result = run_process(argv, kCompileTimeout);
    if (result.timed_out || result.exit_code != 0) {
      const std::string what = result.timed_out
                                   ? fmt::format("timed out after {} s", kCompileTimeout.count())
                                   : first_error_lines(result.output);
      throw CompileError(fmt::format("{}: the host compiler ({}) failed on {}:\n{}", program.name,
                                     compiler.c_compiler, source_name, what),
                         result.output, argv, source_name);
    }

    CompiledArtifact artifact;
    artifact.backend = "cpu";
    artifact.target = Target{"c", ""}.str();
    artifact.program = program;
    artifact.program.out_idx = options.out_idx;
    artifact.binary_kind = "shared_library";
    artifact.binary = read_file(library_path);
    artifact.host_source = host_source;
    artifact.device_source = program.source;
    artifact.metadata["host_compiler"] = compiler.c_compiler;
    artifact.metadata["host_compiler_version"] = compiler.version;
    artifact.metadata["compile_command"] = join(argv);
    artifact.metadata["compile_log"] = result.output;
    return artifact;
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                 const Binder& binder) const override {
    if (artifact.binary_kind != "shared_library") {
      throw Error(
          fmt::format("program '{}': the cpu backend loads shared libraries, got a '{}' artifact",
                      artifact.program.name, artifact.binary_kind));
    }
    SharedLibrary library = SharedLibrary::from_bytes(artifact.binary, artifact.program.name);
    return std::make_unique<CpuExecutor>(std::move(library), artifact.program, binder);
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace tilejit::detail
