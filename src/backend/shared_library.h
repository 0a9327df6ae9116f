// A shared library loaded from bytes, never from a path another user could write.
//
//   SharedLibrary lib = SharedLibrary::from_bytes(artifact.binary, "vector_add");
//   auto call = reinterpret_cast<int (*)(void* const*, void*)>(lib.symbol("call_packed"));
//
// The bytes go into an anonymous memfd and are dlopen'ed through /proc/self/fd/N, so what is
// loaded is exactly what the caller verified (CONVENTIONS §5). dlclose on destruction.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "options/options.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

class SharedLibrary {
 public:
  SharedLibrary() = default;
  SharedLibrary(SharedLibrary&& other) noexcept;
  SharedLibrary& operator=(SharedLibrary&& other) noexcept;
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary();

  // `name` labels the memfd (visible in /proc/PID/maps) and error messages. Throws Error
  // with dlerror()'s text when the bytes are not a loadable library.
  static SharedLibrary from_bytes(std::string_view bytes, std::string_view name);

  // The address of an exported symbol; throws Error naming the symbol and the library when
  // it is missing.
  void* symbol(const char* symbol_name) const;
  // The same, or nullptr when missing.
  void* find_symbol(const char* symbol_name) const;
  // An exported variable (an ELF data object) and its size; {nullptr, 0} when the library
  // exports no variable of that name (a function is not one).
  std::pair<void*, size_t> find_variable(const char* symbol_name) const;

  explicit operator bool() const { return handle_ != nullptr; }
  const std::string& name() const { return name_; }

 private:
  void reset() noexcept;
  void* handle_ = nullptr;
  // The memfd stays open while the library is loaded: glibc recognizes an already-loaded
  // library by its path string, so a /proc/self/fd/N path must not be reused for another
  // library while this one is alive.
  int fd_ = -1;
  std::string name_;
};

// The library of an artifact built by a host-library backend (cpu, nvcc, hip). An artifact of
// another binary kind is an Error naming the program, the backend and what it holds.
SharedLibrary load_artifact_library(const CompiledArtifact& artifact, std::string_view backend);

// How the cpu backend links its libraries, ahead of the Program's flags. A disk hit dlopens
// the library from a memfd, and in this layout that costs half as much: two mappings where
// separate code pages make four, and no RELRO mprotect, so fewer pages to write and fault in
// (docs/PERFORMANCE.md, 2026-12-07). No segment is both writable and executable either way.
// Compile flags come later, so -Wl,-z,relro and -Wl,-z,separate-code there still win.
inline constexpr std::array<const char*, 2> kCpuLibraryLayoutFlags = {"-Wl,-z,noseparate-code",
                                                                      "-Wl,-z,norelro"};

// What the host-library backends (cpu, nvcc, hip) build alike. The Program's own flags, in
// the order they must come: -I per include dir, -D per define, then the resolved compile
// flags (the Program's followed by the options').
void append_program_flags(std::vector<std::string>& argv, const Program& program,
                          const ResolvedOptions& options);

// A host-library build that succeeded, and its artifact: the library's bytes, both sources,
// the command and its log, and the user headers named by the compiler's `-MD -MF
// dependency_file` output. The backend adds its toolchain's metadata.
struct LibraryBuild {
  std::filesystem::path library;
  std::filesystem::path dependency_file;
  std::string host_source;
  std::vector<std::string> command;
  std::string log;
};
CompiledArtifact library_artifact(std::string_view backend, const Target& target,
                                  const Program& program, const ResolvedOptions& options,
                                  const LibraryBuild& build);

}  // namespace tilejit::detail
