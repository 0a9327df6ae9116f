// The cpu backend (execution_backend "cpu", targets "c" / "llvm"): the Program's C source and
// a generated C host wrapper compiled by the host compiler into one shared library, loaded
// from memory and called through its call_packed entry.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/packed_call.h"
#include "backend/shared_library.h"
#include "backend/tensor_memory.h"
#include "codegen/wrapper.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace {

constexpr auto kCompileTimeout = std::chrono::seconds(300);

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

// Runs a loaded library through call_packed, with the argument array built on the stack for
// every call (PackedCallPlan, shared with the nvcc backend).
class CpuExecutor final : public Executor {
 public:
  CpuExecutor(SharedLibrary library, const Program& program, const Binder& binder)
      : library_(std::move(library)), program_name_(program.name), plan_(program, binder, "cpu") {
    init_ = reinterpret_cast<InitFn>(library_.symbol("init"));
    call_packed_ = reinterpret_cast<CallPackedFn>(library_.symbol("call_packed"));
    get_last_error_ = reinterpret_cast<GetLastErrorFn>(library_.symbol("get_last_error"));
    if (init_() != 0) {
      throw Error(fmt::format("{}: init() failed: {}", program_name_, get_last_error_()));
    }
  }

  void launch(const BoundCall& call, StreamRef stream) const override {
    PackedCallPlan::Storage storage;
    if (call_packed_(plan_.fill(call, storage), stream.handle()) != 0) {
      throw Error(fmt::format("{}: {}", program_name_, get_last_error_()));
    }
  }

  GlobalSymbol global(std::string_view name, Device device) const override {
    const std::string symbol(name);
    auto [address, bytes] = library_.find_variable(symbol.c_str());
    if (address == nullptr) {
      throw ArgumentError(
          fmt::format("get_global: program '{}' has no global variable '{}': expected a non-static "
                      "variable at file scope of its C source",
                      program_name_, name));
    }
    return GlobalSymbol{address, bytes, device};
  }

  Tensor allocate_output(DataType dtype, std::span<const int64_t> shape,
                         Device /*device*/) const override {
    return host_tensor(dtype, shape);
  }

 private:
  using InitFn = int (*)();
  using CallPackedFn = int (*)(void* const*, void*);
  using GetLastErrorFn = const char* (*)();

  SharedLibrary library_;
  std::string program_name_;
  PackedCallPlan plan_;
  InitFn init_ = nullptr;
  CallPackedFn call_packed_ = nullptr;
  GetLastErrorFn get_last_error_ = nullptr;
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

  // The compilers detect() picks, as found on PATH now: a new one earlier on PATH, or CC / CXX
  // set, is another selector.
  std::optional<std::string> toolchain_selector(const Target& /*target*/) const override {
    const auto [c, cxx] = HostCompiler::names();
    const std::optional<std::filesystem::path> c_path = find_program(c);
    const std::optional<std::filesystem::path> cxx_path = find_program(cxx);
    if (!c_path || !cxx_path) return std::nullopt;  // detect() says what is missing
    return fmt::format("cc {} = {}; c++ {} = {}", c, c_path->string(), cxx, cxx_path->string());
  }

  // stat() follows symlinks: a compiler replaced, upgraded or retargeted by an alternatives
  // link changes the signature of its path. A wrapper script whose output depends on anything
  // but its own bytes is not covered (docs/cache.md).
  std::vector<std::string> toolchain_files(const Target& /*target*/) const override {
    const HostCompiler& compiler = HostCompiler::detect();
    std::vector<std::string> files;
    for (const std::string& program : {compiler.c_compiler, compiler.cxx_compiler}) {
      if (std::optional<std::filesystem::path> path = find_program(program))
        files.push_back(path->string());
    }
    return files;
  }

  CompiledArtifact build(const Program& program, const ResolvedOptions& options) const override {
    if (program.language != Language::kC) {
      throw ArgumentError(
          fmt::format("program '{}' is written in {}; the cpu backend compiles language \"c\"",
                      program.name, to_string(program.language)));
    }
    const std::string host_source = generate_cpu_wrapper(program);
    const HostCompiler compiler = options.host_compiler.empty()
                                      ? HostCompiler::detect()
                                      : HostCompiler::named(options.host_compiler);

    TempDir dir("tilejit-cpu");
    const std::string stem = file_stem(program.name);
    const std::string source_name = stem + ".c";
    const auto source_path = dir.path() / source_name;
    const auto host_path = dir.path() / (stem + "_host.c");
    const auto library_path = dir.path() / ("lib" + stem + ".so");
    write_file(source_path, program.source);
    write_file(host_path, host_source);

    std::vector<std::string> argv = {compiler.c_compiler, "-O2", "-fPIC", "-shared"};
    argv.insert(argv.end(), kCpuLibraryLayoutFlags.begin(), kCpuLibraryLayoutFlags.end());
    append_program_flags(argv, program, options);
    // -MF holds the dependencies of the last source on the command line only (GCC and Clang
    // alike), so the Program's own source goes last.
    const auto dependency_path = dir.path() / "dependencies.d";
    argv.insert(argv.end(), {"-MD", "-MF", dependency_path.string(), "-o", library_path.string(),
                             host_path.string(), source_path.string(), "-lm"});

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

    CompiledArtifact artifact =
        library_artifact("cpu", Target{"c", ""}, program, options,
                         {library_path, dependency_path, host_source, argv, result.output});
    artifact.metadata["host_compiler"] = compiler.c_compiler;
    artifact.metadata["host_compiler_version"] = compiler.version;
    return artifact;
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                 const Binder& binder) const override {
    return std::make_unique<CpuExecutor>(load_artifact_library(artifact, "cpu"), artifact.program,
                                         binder);
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace tilejit::detail
