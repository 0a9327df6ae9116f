// Which of the Program's own headers a build read. The compilers report every file they
// opened (make-style `-MD -MF` output for the host compiler, nvcc and hipcc; NVRTC's device
// time trace); the cache key hashes the contents of those under the user include
// directories (docs/cache.md, "Headers").
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "options/include_dirs.h"

namespace tilejit::detail {

// The prerequisites of the rule in a make dependency file (`target: a.h b.h \` ...), with
// line continuations and escaped spaces undone. Throws Error when the text is not one.
std::vector<std::string> parse_make_dependencies(std::string_view text);

// The paths (relative ones taken from the current directory) that lie under one of `dirs`,
// absolute and lexically normal, sorted, each once.
std::vector<std::string> headers_under(const std::vector<std::string>& paths,
                                       const std::vector<std::filesystem::path>& dirs);

// The Program's headers listed in the make dependency file a compiler wrote for `-MD -MF
// dependency_file`: parse_make_dependencies, then headers_under the user include dirs.
std::vector<std::string> user_headers_from_make_file(const std::filesystem::path& dependency_file,
                                                     const Program& program,
                                                     const ResolvedOptions& options);

}  // namespace tilejit::detail
