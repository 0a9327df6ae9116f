// env_flag: the one reading of boolean environment variables (TILELANG_VERBOSE,
// TILELANG_DISABLE_CACHE, ...), shared by option resolution and the disk cache.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include "options/options.h"

namespace tilejit::detail {

bool env_flag(const char* name) {
  const char* raw = std::getenv(name);
  std::string value = raw == nullptr ? std::string() : std::string(raw);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return value == "1" || value == "true" || value == "yes" || value == "on";
}

}  // namespace tilejit::detail
