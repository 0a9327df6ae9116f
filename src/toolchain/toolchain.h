// External tools: subprocesses with a timeout, the host C/C++ compiler, private temp dirs.
//
//   TempDir dir;                                   // 0700, removed on destruction
//   const HostCompiler& cc = HostCompiler::detect();
//   ProcessResult r = run_process({cc.c_compiler, "-c", "x.c"}, std::chrono::seconds(60));
//   if (r.exit_code != 0) std::cerr << r.output;
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tilejit::detail {

// tilejit's own version ("0.1.0"), as the build configured it.
std::string_view tilejit_version();

// The executable or shared object this code is linked into: the program for a static link,
// libtilejit.so, or the Python extension _core*.so; nullopt when it cannot be found.
std::optional<std::filesystem::path> tilejit_module_path();

struct ProcessResult {
  int exit_code = -1;  // the exit status; 128 + N when killed by signal N
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved as the program wrote them
};

// Runs argv[0] (looked up on PATH) with posix_spawn, capturing stdout and stderr. When the
// timeout expires the process is killed and timed_out is set. Throws Error when the program
// cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout);

// The absolute path of `name` on PATH (or `name` itself when it contains a '/' and is
// executable), if any.
std::optional<std::filesystem::path> find_program(std::string_view name);

// Held around every dlopen, dlclose and dl_iterate_phdr tilejit makes. glibc orders a walk of
// the loaded objects against a load or an unload under a lock of its own inside ld.so, which
// ThreadSanitizer cannot see; holding this one as well shows it the order glibc keeps (a
// walk reading a name a concurrent dlopen had just allocated was reported as a race).
std::mutex& dynamic_loader_mutex();

// The CPUs this process may run on (its affinity mask), at least 1: par_compile's default
// number of workers and the cap of the NVRTC worker pool.
int usable_cores();

// The host compilers: CC / CXX from the environment, else cc / c++ on PATH.
struct HostCompiler {
  std::string c_compiler;
  std::string cxx_compiler;
  std::string version;  // first line of `<cxx_compiler> --version`; part of cache keys

  // Detected once per process. Throws NotAvailableError when no compiler is found.
  static const HostCompiler& detect();
  // The names detect() looks up: {CC or "cc", CXX or "c++"}, without running either.
  static std::pair<std::string, std::string> names();
  // A specific compiler (CompileOptions::host_compiler), used for both C and C++.
  static HostCompiler named(std::string_view compiler);
};

// A private temporary directory (mode 0700) removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "tilejit");
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  void remove() noexcept;
  std::filesystem::path path_;
};

// Reads a whole file; throws Error naming it on failure.
std::string read_file(const std::filesystem::path& path);
// Writes a whole file (truncating); throws Error naming it on failure.
void write_file(const std::filesystem::path& path, std::string_view contents);

}  // namespace tilejit::detail
