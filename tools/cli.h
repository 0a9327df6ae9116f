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

namespace tilejit::cli {

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
