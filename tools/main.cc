// The `tilejit` command-line program: runs every subcommand's registration (tools/cli.h),
// parses, and maps failures to exit codes: 0 ok, 1 user error, 2 internal error.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

int main(int argc, char** argv) {
  CLI::App app{"tilejit: compile, cache and run GPU/CPU kernels from Program descriptions"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tilejit " + std::string(tilejit::detail::tilejit_version()));
  try {
    for (auto& [name, setup] : tilejit::cli::registrations()) setup(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with exit code 0.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "tilejit: error: " << e.what() << " (see tilejit --help)\n";
    return 1;
  } catch (const tilejit::Error& e) {
    // A user error: one line, no stack of context.
    std::string message = e.what();
    const size_t newline = message.find('\n');
    std::cerr << "tilejit: error: " << message.substr(0, newline) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tilejit: internal error: " << e.what() << "\n";
    return 2;
  } catch (...) {
    std::cerr << "tilejit: internal error: unknown exception\n";
    return 2;
  }
  return 0;
}
