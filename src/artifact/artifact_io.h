// CompiledArtifact <-> a set of named files. The disk cache stores these files (and verifies
// their hashes before building an artifact from the bytes it read); save()/load() write and
// read them as a directory.
#pragma once

#include <map>
#include <string>

#include "tilejit/kernel.h"

namespace tilejit::detail {

// File name -> contents. Always has "artifact.json" and "program.json"; the binary and the
// sources are present when non-empty.
std::map<std::string, std::string> artifact_to_files(const CompiledArtifact& artifact);
// Throws Error naming the file when one is missing or malformed, or when the artifact was
// written by another format version.
CompiledArtifact artifact_from_files(const std::map<std::string, std::string>& files);

}  // namespace tilejit::detail
