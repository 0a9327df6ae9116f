// CompiledArtifact <-> a set of named files. The disk cache stores these files (and verifies
// their hashes before building an artifact from the bytes it read); save()/load() write and
// read them as a directory.
#pragma once

#include <map>
#include <string>

#include "tilejit/kernel.h"

namespace tilejit::detail {

// The file that holds the Program, as JSON, and the one with the backend, target and metadata.
inline constexpr const char* kProgramFile = "program.json";
inline constexpr const char* kArtifactFile = "artifact.json";

// File name -> contents. Always has "artifact.json" and kProgramFile; the binary, the sources
// and the compiler log ("metadata.log" / "metadata.compile_log") are present when non-empty.
std::map<std::string, std::string> artifact_to_files(const CompiledArtifact& artifact);
// Throws Error naming the file when one is missing or malformed, or when the artifact was
// written by another format version. `keyed_program`: the Program (out_idx set) whose cache key
// named these files, which is then their program.json (the key covers every field of it), so
// the copy at hand is taken and kProgramFile need not be among `files`; null: parsed. The
// contents are moved out of `files` (a binary can be hundreds of kilobytes).
CompiledArtifact artifact_from_files(std::map<std::string, std::string> files,
                                     const Program* keyed_program = nullptr);

}  // namespace tilejit::detail
