#include "options/include_dirs.h"

#include <string>
#include <string_view>

namespace tilejit::detail {
namespace fs = std::filesystem;

std::vector<fs::path> user_include_dirs(const Program& program, const ResolvedOptions& options) {
  auto normal_absolute = [](const fs::path& path) { return fs::absolute(path).lexically_normal(); };
  std::vector<fs::path> dirs;
  for (const std::string& dir : program.include_dirs) dirs.push_back(normal_absolute(dir));
  const std::vector<std::string>& flags = options.compile_flags;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& flag = flags[i];
    for (std::string_view prefix : {"--include-path=", "-isystem", "-I"}) {
      if (!flag.starts_with(prefix)) continue;
      std::string_view rest = std::string_view(flag).substr(prefix.size());
      if (!rest.empty()) {
        dirs.push_back(normal_absolute(std::string(rest)));
      } else if (i + 1 < flags.size()) {
        dirs.push_back(normal_absolute(flags[++i]));
      }
      break;
    }
  }
  return dirs;
}

}  // namespace tilejit::detail
