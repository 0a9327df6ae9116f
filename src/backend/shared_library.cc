#include "backend/shared_library.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "backend/dependencies.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace {

std::string fd_path(int fd) {
  return fmt::format("/proc/self/fd/{}", fd);
}

// True when a loaded object has the file name `path`. dlopen(path, RTLD_NOLOAD) would answer
// too, but opens and fstat()s the file to compare it with every loaded one, on every load.
bool loaded_under(const std::string& path) {
  const auto visit = [](dl_phdr_info* info, size_t, void* data) -> int {
    return info->dlpi_name != nullptr && *static_cast<const std::string*>(data) == info->dlpi_name
               ? 1
               : 0;
  };
  return dl_iterate_phdr(visit, const_cast<std::string*>(&path)) != 0;
}

void write_all(int fd, std::string_view bytes, std::string_view name) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(
          fmt::format("cannot write library '{}' to memory: {}", name, std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

SharedLibrary SharedLibrary::from_bytes(std::string_view bytes, std::string_view name) {
  SharedLibrary library;
  library.name_ = std::string(name);
  const std::string label = fmt::format("tilejit:{}", name);
  library.fd_ = ::memfd_create(label.c_str(), MFD_CLOEXEC);
  if (library.fd_ < 0) {
    throw Error(
        fmt::format("memfd_create for library '{}' failed: {}", name, std::strerror(errno)));
  }
  write_all(library.fd_, bytes, name);

  // A library that was dlclose'd but not unloaded (e.g. one with STB_GNU_UNIQUE symbols)
  // keeps its /proc/self/fd/N name, and dlopen would hand that stale library back for a new
  // file behind the same number. Move to a higher descriptor until the name is unused.
  const std::lock_guard lock(dynamic_loader_mutex());
  for (int attempt = 0;; ++attempt) {
    if (!loaded_under(fd_path(library.fd_))) break;
    if (attempt == 64) {
      throw Error(fmt::format("cannot find an unused descriptor to load library '{}'", name));
    }
    const int moved = ::fcntl(library.fd_, F_DUPFD_CLOEXEC, library.fd_ + 1);
    if (moved < 0) {
      throw Error(fmt::format("cannot load library '{}': {}", name, std::strerror(errno)));
    }
    ::close(library.fd_);
    library.fd_ = moved;
  }

  const std::string path = fd_path(library.fd_);
  library.handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library.handle_ == nullptr) {
    const char* reason = ::dlerror();
    throw Error(fmt::format("cannot load library '{}': {}", name,
                            reason != nullptr ? reason : "unknown dlopen error"));
  }
  return library;
}

SharedLibrary::SharedLibrary(SharedLibrary&& other) noexcept
    : handle_(other.handle_), fd_(other.fd_), name_(std::move(other.name_)) {
  other.handle_ = nullptr;
  other.fd_ = -1;
}

SharedLibrary& SharedLibrary::operator=(SharedLibrary&& other) noexcept {
  if (this != &other) {
    reset();
    handle_ = other.handle_;
    fd_ = other.fd_;
    name_ = std::move(other.name_);
    other.handle_ = nullptr;
    other.fd_ = -1;
  }
  return *this;
}

SharedLibrary::~SharedLibrary() {
  reset();
}

void SharedLibrary::reset() noexcept {
  if (handle_ != nullptr) {
    const std::lock_guard lock(dynamic_loader_mutex());
    ::dlclose(handle_);
  }
  if (fd_ >= 0) ::close(fd_);
  handle_ = nullptr;
  fd_ = -1;
}

void* SharedLibrary::find_symbol(const char* symbol_name) const {
  if (handle_ == nullptr) return nullptr;
  return ::dlsym(handle_, symbol_name);
}

std::pair<void*, size_t> SharedLibrary::find_variable(const char* symbol_name) const {
  void* address = find_symbol(symbol_name);
  if (address == nullptr) return {nullptr, 0};
  // The symbol table entry dladdr1 finds for the address carries the type and the size.
  Dl_info info{};
  void* found = nullptr;
  if (::dladdr1(address, &info, &found, RTLD_DL_SYMENT) == 0 || found == nullptr) {
    return {nullptr, 0};
  }
  const auto* entry = static_cast<const ElfW(Sym)*>(found);
  if (ELF64_ST_TYPE(entry->st_info) != STT_OBJECT) {
    return {nullptr, 0};
  }
  return {address, static_cast<size_t>(entry->st_size)};
}

void* SharedLibrary::symbol(const char* symbol_name) const {
  void* address = find_symbol(symbol_name);
  if (address == nullptr) {
    throw Error(fmt::format("library '{}' does not export '{}'", name_, symbol_name));
  }
  return address;
}

SharedLibrary load_artifact_library(const CompiledArtifact& artifact, std::string_view backend) {
  if (artifact.binary_kind != "shared_library") {
    throw Error(
        fmt::format("program '{}': the {} backend loads shared libraries, got a '{}' artifact",
                    artifact.program.name, backend, artifact.binary_kind));
  }
  return SharedLibrary::from_bytes(artifact.binary, artifact.program.name);
}

void append_program_flags(std::vector<std::string>& argv, const Program& program,
                          const ResolvedOptions& options) {
  for (const std::string& include_dir : program.include_dirs) argv.push_back("-I" + include_dir);
  for (const auto& [define, value] : program.defines) {
    argv.push_back(value.empty() ? "-D" + define : fmt::format("-D{}={}", define, value));
  }
  for (const std::string& flag : options.compile_flags) argv.push_back(flag);
}

CompiledArtifact library_artifact(std::string_view backend, const Target& target,
                                  const Program& program, const ResolvedOptions& options,
                                  const LibraryBuild& build) {
  CompiledArtifact artifact;
  artifact.backend = backend;
  artifact.target = target.str();
  artifact.program = program;
  artifact.program.out_idx = options.out_idx;
  artifact.binary_kind = "shared_library";
  artifact.binary = read_file(build.library);
  artifact.host_source = build.host_source;
  artifact.device_source = program.source;
  artifact.metadata["compile_command"] = fmt::format("{}", fmt::join(build.command, " "));
  artifact.metadata["compile_log"] = build.log;
  artifact.dependencies = user_headers_from_make_file(build.dependency_file, program, options);
  return artifact;
}

}  // namespace tilejit::detail
