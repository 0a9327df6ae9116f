// `tilejit compile PROGRAM.json`: compile (or fetch from the cache) and describe the kernel,
// optionally printing its sources.
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli.h"
#include "tilejit/tilejit.h"

namespace {

std::string describe(const tilejit::KernelParam& p) {
  if (p.is_scalar()) return fmt::format("{}: {}", p.name, p.dtype.str());
  std::string text = fmt::format("{}: {}[", p.name, p.dtype.str());
  for (size_t d = 0; d < p.shape.size(); ++d) text += (d ? ", " : "") + p.shape[d].str();
  text += "]";
  if (p.strides) {
    text += " strides [";
    for (size_t d = 0; d < p.strides->size(); ++d) text += (d ? ", " : "") + (*p.strides)[d].str();
    text += "]";
  }
  return text;
}

struct CompileArgs {
  std::string program_path;
  tilejit::CompileOptions options;
  std::vector<int> out_idx;
  std::string show;
};

void run(const CompileArgs& args, bool out_idx_given) {
  const tilejit::Program program = tilejit::Program::load(args.program_path);
  tilejit::CompileOptions options = args.options;
  if (out_idx_given) options.out_idx = args.out_idx;
  const tilejit::Kernel kernel = tilejit::compile(program, options);

  if (args.show == "host") {
    std::cout << kernel.get_host_source();
    return;
  }
  if (args.show == "device") {
    std::cout << kernel.get_device_source();
    return;
  }
  if (args.show == "kernel") {
    std::cout << kernel.get_kernel_source();
    return;
  }
  const tilejit::CompiledArtifact& artifact = kernel.artifact();
  fmt::print("program:  {}\nbackend:  {}\ntarget:   {}\nbinary:   {} ({} bytes)\nkey:      {}\n",
             program.name, artifact.backend, artifact.target, artifact.binary_kind,
             artifact.binary.size(), kernel.cache_key());
  fmt::print("params:\n");
  for (size_t i = 0; i < kernel.params().size(); ++i) {
    const bool output = std::find(kernel.out_idx().begin(), kernel.out_idx().end(),
                                  static_cast<int>(i)) != kernel.out_idx().end();
    fmt::print("  {}{}\n", describe(kernel.params()[i]), output ? "  (output)" : "");
  }
}

const tilejit::cli::Registration kRegistration{
    "compile", [](CLI::App& app) {
      auto args = std::make_shared<CompileArgs>();
      CLI::App* cmd =
          app.add_subcommand("compile", "Compile a Program (JSON) and describe the kernel");
      cmd->add_option("program", args->program_path, "Program JSON file (tilejit.program/1)")
          ->required()
          ->check(CLI::ExistingFile);
      tilejit::cli::add_compile_options(cmd, args->options);
      CLI::Option* out_idx =
          cmd->add_option("--out-idx", args->out_idx,
                          "Output param indices (comma-separated; negative from the end)")
              ->delimiter(',')
              ->allow_extra_args(false);
      cmd->add_option("--show", args->show, "Print a source instead of the summary")
          ->check(CLI::IsMember({"host", "device", "kernel"}));
      cmd->callback([args, out_idx] { run(*args, out_idx->count() > 0); });
    }};

}  // namespace
