// Target text: parsing and the canonical form used in cache keys and artifacts.
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "options/options.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// sm_90, sm_90a, sm_100f, compute_80: what NVRTC and nvcc accept for -arch.
bool is_cuda_arch(std::string_view arch) {
  for (std::string_view prefix : {"sm_", "compute_"}) {
    if (arch.starts_with(prefix)) {
      std::string_view rest = arch.substr(prefix.size());
      if (!rest.empty() && (rest.back() == 'a' || rest.back() == 'f')) rest.remove_suffix(1);
      return rest.size() >= 2 && all_digits(rest);
    }
  }
  return false;
}

bool is_hip_arch(std::string_view arch) {
  if (!arch.starts_with("gfx") || arch.size() < 6) return false;
  for (char c : arch.substr(3)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != ':' && c != '-' && c != '+')
      return false;
  }
  return true;
}

[[noreturn]] void bad_target(std::string_view text, std::string_view why) {
  throw ArgumentError(
      fmt::format("target '{}': {}; expected \"auto\", \"cuda\", \"cuda -arch=sm_90a\", "
                  "\"sm_90a\", \"c\" (alias "
                  "\"llvm\"), \"hip\", \"hip -mcpu=gfx90a\" or \"metal\"",
                  text, why));
}

}  // namespace

Target Target::parse(std::string_view text) {
  std::vector<std::string_view> words = split_words(text);
  if (words.empty()) bad_target(text, "empty");
  std::string_view kind = words[0];
  Target target;
  if (is_cuda_arch(kind)) {  // the bare-arch shorthand: "sm_90a"
    if (words.size() > 1) bad_target(text, "nothing may follow a bare architecture");
    return Target{"cuda", std::string(kind)};
  }
  if (kind == "auto" || kind == "c" || kind == "llvm" || kind == "metal") {
    if (words.size() > 1) bad_target(text, fmt::format("'{}' takes no options", kind));
    return Target{kind == "llvm" ? "c" : std::string(kind), ""};
  }
  if (kind != "cuda" && kind != "hip") bad_target(text, fmt::format("unknown kind '{}'", kind));
  target.kind = std::string(kind);
  const std::string_view flag = kind == "cuda" ? "-arch" : "-mcpu";
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view word = words[i];
    std::string_view value;
    if (word.starts_with(flag) && word.size() > flag.size() && word[flag.size()] == '=') {
      value = word.substr(flag.size() + 1);
    } else if (word == flag && i + 1 < words.size()) {
      value = words[++i];
    } else {
      bad_target(text, fmt::format("unknown option '{}' (only {}=<arch> is accepted)", word, flag));
    }
    if (!target.arch.empty()) bad_target(text, fmt::format("{} given twice", flag));
    // "auto-a": the current device's arch with the arch-specific suffix (sm_90a) where one
    // exists; the backend's resolve_target fills it in.
    const bool valid = value == "auto" || (kind == "cuda" ? value == "auto-a" || is_cuda_arch(value)
                                                          : is_hip_arch(value));
    if (!valid) bad_target(text, fmt::format("'{}' is not a {} architecture", value, kind));
    target.arch = value == "auto" ? "" : std::string(value);
  }
  return target;
}

std::string Target::str() const {
  if (arch.empty()) return kind;
  return fmt::format("{} {}={}", kind, kind == "hip" ? "-mcpu" : "-arch", arch);
}

}  // namespace tilejit::detail
