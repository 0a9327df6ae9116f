#include "backend/dependencies.h"

#include <algorithm>

#include <fmt/format.h>

#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace fs = std::filesystem;

namespace {

fs::path normal_absolute(const fs::path& path) {
  return fs::absolute(path).lexically_normal();
}

bool lies_under(const fs::path& file, const fs::path& dir) {
  const fs::path relative = file.lexically_relative(dir);
  return !relative.empty() && *relative.begin() != "..";
}

}  // namespace

std::vector<std::string> parse_make_dependencies(std::string_view text) {
  // Skip the target: everything up to the first ':' that ends a word (a path may hold ':'
  // only in a drive letter, which Linux compilers do not write).
  size_t colon = std::string_view::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ':' && (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n' ||
                           text[i + 1] == '\t' || text[i + 1] == '\\')) {
      colon = i;
      break;
    }
  }
  if (colon == std::string_view::npos) {
    throw Error(fmt::format("dependency file has no rule: '{}'", text.substr(0, 80)));
  }
  std::vector<std::string> paths;
  std::string word;
  auto finish_word = [&] {
    if (!word.empty()) paths.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = colon + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      finish_word();
      ++i;  // a continued line
    } else if (c == '\\' && i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '#')) {
      word += text[++i];  // an escaped space or '#' inside a path
    } else if (c == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      word += '$';
      ++i;
    } else if (c == '\n') {
      finish_word();
      break;  // the first rule only; -MP would add empty rules after it
    } else if (c == ' ' || c == '\t' || c == '\r') {
      finish_word();
    } else {
      word += c;
    }
  }
  finish_word();
  return paths;
}

std::vector<std::string> headers_under(const std::vector<std::string>& paths,
                                       const std::vector<fs::path>& dirs) {
  std::vector<std::string> headers;
  for (const std::string& path : paths) {
    const fs::path file = normal_absolute(path);
    if (std::any_of(dirs.begin(), dirs.end(),
                    [&](const fs::path& dir) { return lies_under(file, dir); })) {
      headers.push_back(file.string());
    }
  }
  std::sort(headers.begin(), headers.end());
  headers.erase(std::unique(headers.begin(), headers.end()), headers.end());
  return headers;
}

std::vector<std::string> user_headers_from_make_file(const fs::path& dependency_file,
                                                     const Program& program,
                                                     const ResolvedOptions& options) {
  if (!fs::exists(dependency_file)) {
    throw Error(fmt::format(
        "program '{}': the compiler wrote no dependency file for -MD -MF {}; tilejit keys the "
        "cache on the headers a build reads and needs a compiler that reports them (GCC, Clang, "
        "nvcc, hipcc)",
        program.name, dependency_file.string()));
  }
  return headers_under(parse_make_dependencies(read_file(dependency_file)),
                       user_include_dirs(program, options));
}

}  // namespace tilejit::detail
