// Where the compiler looks for a Program's own headers. Below both backend/ (which lists the
// headers a build read under these directories) and cache/ (whose key hashes those headers).
#pragma once

#include <filesystem>
#include <vector>

#include "options/options.h"
#include "tilejit/program.h"

namespace tilejit::detail {

// The directories the compiler searches for the Program's own headers, in search order:
// Program::include_dirs, then every -I/-isystem/--include-path directory in the resolved
// compile flags. Absolute and lexically normal.
std::vector<std::filesystem::path> user_include_dirs(const Program& program,
                                                     const ResolvedOptions& options);

}  // namespace tilejit::detail
