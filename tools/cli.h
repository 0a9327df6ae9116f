// Subcommand registration for the `tilejit` program. Each cmd_<name>.cc defines
//
//   static const tilejit::cli::Registration kRegistration{"cache", [](CLI::App& app) {
//     auto* cmd = app.add_subcommand("cache", "Inspect and maintain the kernel cache");
//     ...
//     cmd->callback([=] { ... });   // throw tilejit::Error (exit 1) on user error
//   }};
//
// main.cc runs every registration, parses, and maps exceptions to exit codes:
// 0 ok, 1 user error (a tilejit::Error or a CLI parse error) with a one-line message,
// 2 internal error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tilejit/kernel.h"

namespace tilejit::cli {

// The options of every subcommand that compiles: --target, --backend, --target-host,
// --host-compiler (the CompileOptions fields of the same names).
inline void add_compile_options(CLI::App* cmd, CompileOptions& options) {
  cmd->add_option("--target", options.target,
                  "Target: auto, cuda, sm_90a, c, llvm, ... (default: TILELANG_TARGET, else auto)");
  cmd->add_option("--backend", options.execution_backend,
                  "Execution backend: auto, nvrtc, nvcc, cpu, hip, metal, or the seed's tvm_ffi, "
                  "cython, dlpack, torch (default: TILELANG_EXECUTION_BACKEND, else auto)");
  cmd->add_option("--target-host", options.target_host,
                  "The seed's host target: llvm or c (both: this machine)");
  cmd->add_option("--host-compiler", options.host_compiler,
                  "Compiler for generated host code (default: CC/CXX, else c++)");
}

using Setup = std::function<void(CLI::App&)>;

inline std::vector<std::pair<std::string, Setup>>& registrations() {
  static std::vector<std::pair<std::string, Setup>> all;
  return all;
}

struct Registration {
  Registration(std::string name, Setup setup) {
    registrations().emplace_back(std::move(name), std::move(setup));
  }
};

}  // namespace tilejit::cli
