// The `tilejit` command-line program: runs every subcommand's registration (tools/cli.h),
// parses, and maps failures to exit codes: 0 ok, 1 user error, 2 internal error. A user error
// is one line, except a compile error, which adds the compiler's first error lines.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace {

// How many lines of a compiler's log the error shows; the rest is in the saved log.
constexpr int kLogLinesShown = 10;

// Writes `log` to a new file in the temporary directory and returns its path, or "" when that
// fails (the message then says so instead of naming a file).
std::string save_log(const std::string& log) {
  std::string path =
      (std::filesystem::temp_directory_path() / "tilejit-compile-XXXXXX.log").string();
  const int fd = ::mkstemps(path.data(), 4);
  if (fd < 0) return "";
  size_t written = 0;
  while (written < log.size()) {
    const ssize_t n = ::write(fd, log.data() + written, log.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  return written == log.size() ? path : "";
}

// The compiler's diagnostic under the one-line summary: the log from its first line that
// mentions an error (the lines before are usually "In function ..." context), at most
// kLogLinesShown lines, then where the whole log was saved.
void print_compile_error(const tilejit::CompileError& e) {
  const std::string message = e.what();
  std::cerr << "tilejit: error: " << message.substr(0, message.find('\n')) << "\n";
  const std::string& log = e.log();
  if (log.find_first_not_of(" \t\r\n") == std::string::npos) {
    std::cerr << "tilejit: the compiler printed no diagnostic\n";
    return;
  }
  size_t start = log.find("error");
  start = start == std::string::npos ? 0 : log.rfind('\n', start) + 1;  // npos + 1 == 0
  size_t pos = start;
  for (int shown = 0; shown < kLogLinesShown && pos < log.size(); ++shown) {
    const size_t end = std::min(log.find('\n', pos), log.size());
    std::cerr << "  " << std::string_view(log).substr(pos, end - pos) << "\n";
    pos = end + 1;
  }
  const std::string path = save_log(log);
  if (path.empty()) {
    std::cerr << "tilejit: (the full compiler log could not be saved)\n";
  } else {
    std::cerr << "tilejit: full compiler log: " << path << "\n";
  }
}

}  // namespace

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
  } catch (const tilejit::CompileError& e) {
    print_compile_error(e);
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
