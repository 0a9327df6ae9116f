// `tilejit export PROGRAM.json DIR`: compile a Program and write what a C or C++ program needs to
// call it with no tilejit at run time: the shared library, its header, the sources, a README.
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli.h"
#include "tilejit/tilejit.h"

namespace {

struct ExportArgs {
  std::string program_path;
  std::string dir;
  tilejit::CompileOptions options;
};

void run(const ExportArgs& args) {
  const tilejit::Program program = tilejit::Program::load(args.program_path);
  const tilejit::Kernel kernel = tilejit::compile(program, args.options);
  kernel.export_to(args.dir);
  fmt::print("exported '{}' ({} backend, target {}) to {}:\n", program.name,
             kernel.artifact().backend, kernel.artifact().target, args.dir);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(args.dir)) {
    if (entry.is_regular_file()) {
      fmt::print("  {}\n", std::filesystem::relative(entry.path(), args.dir).string());
    }
  }
}

const tilejit::cli::Registration kRegistration{
    "export", [](CLI::App& app) {
      auto args = std::make_shared<ExportArgs>();
      CLI::App* cmd = app.add_subcommand(
          "export", "Compile a Program (JSON) into a shared library, C header and sources in DIR");
      cmd->add_option("program", args->program_path, "Program JSON file (tilejit.program/1)")
          ->required()
          ->check(CLI::ExistingFile);
      cmd->add_option("dir", args->dir, "Directory to write (created if missing)")->required();
      // An nvrtc kernel is rebuilt with nvcc: an export is a host-wrapper library.
      tilejit::cli::add_compile_options(cmd, args->options);
      cmd->callback([args] { run(*args); });
    }};

}  // namespace
