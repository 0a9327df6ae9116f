#include "cuda/nvrtc.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cuda/nvrtc_pch.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::cuda {
namespace {

struct LoadedNvrtc {
  NvrtcApi api;
  std::string error;
};

std::vector<std::string> env_dirs() {
  std::vector<std::string> dirs;
  for (const char* name : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
      dirs.emplace_back(value);
    }
  }
  return dirs;
}

constexpr const char* kSonames[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};

// The toolkit roots cuda_include_dirs() searches, in order: CUDA_HOME, CUDA_PATH, then the
// one the loaded libnvrtc sits in.
std::vector<std::filesystem::path> toolkit_roots();

template <class Fn>
bool resolve(void* handle, const char* name, Fn& out, std::string& error) {
  out = reinterpret_cast<Fn>(dlsym(handle, name));
  if (out == nullptr) {
    error = fmt::format("NVRTC is not available: the loaded libnvrtc has no {}", name);
    return false;
  }
  return true;
}

LoadedNvrtc load_nvrtc() {
  LoadedNvrtc loaded;
  std::vector<std::string> candidates;
  for (const std::string& dir : env_dirs()) {
    for (const char* soname : kSonames) {
      candidates.push_back((std::filesystem::path(dir) / "lib64" / soname).string());
    }
  }
  for (const char* soname : kSonames) {
    candidates.emplace_back(soname);
  }
  void* handle = nullptr;
  std::string tried;
  for (const std::string& candidate : candidates) {
    if (candidate.find('/') != std::string::npos && !std::filesystem::exists(candidate)) {
      continue;
    }
    // Never dlclose'd: the API table points into it for the life of the process.
    {
      const std::lock_guard lock(detail::dynamic_loader_mutex());
      handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    }
    if (handle != nullptr) {
      break;
    }
    tried += fmt::format("\n  {}: {}", candidate, dlerror());
  }
  if (handle == nullptr) {
    loaded.error = fmt::format(
        "NVRTC is not available: libnvrtc could not be loaded (set CUDA_HOME to a CUDA 12 or 13 "
        "toolkit). Tried:{}",
        tried);
    return loaded;
  }
  NvrtcApi& api = loaded.api;
  std::string& error = loaded.error;
  PFN_nvrtcVersion version = nullptr;
  PFN_nvrtcGetNumSupportedArchs num_archs = nullptr;
  PFN_nvrtcGetSupportedArchs archs = nullptr;
  bool ok = resolve(handle, "nvrtcVersion", version, error) &&
            resolve(handle, "nvrtcGetNumSupportedArchs", num_archs, error) &&
            resolve(handle, "nvrtcGetSupportedArchs", archs, error) &&
            resolve(handle, "nvrtcGetErrorString", api.nvrtcGetErrorString, error) &&
            resolve(handle, "nvrtcCreateProgram", api.nvrtcCreateProgram, error) &&
            resolve(handle, "nvrtcDestroyProgram", api.nvrtcDestroyProgram, error) &&
            resolve(handle, "nvrtcCompileProgram", api.nvrtcCompileProgram, error) &&
            resolve(handle, "nvrtcGetProgramLogSize", api.nvrtcGetProgramLogSize, error) &&
            resolve(handle, "nvrtcGetProgramLog", api.nvrtcGetProgramLog, error) &&
            resolve(handle, "nvrtcGetCUBINSize", api.nvrtcGetCUBINSize, error) &&
            resolve(handle, "nvrtcGetCUBIN", api.nvrtcGetCUBIN, error) &&
            resolve(handle, "nvrtcGetPTXSize", api.nvrtcGetPTXSize, error) &&
            resolve(handle, "nvrtcGetPTX", api.nvrtcGetPTX, error) &&
            resolve(handle, "nvrtcAddNameExpression", api.nvrtcAddNameExpression, error) &&
            resolve(handle, "nvrtcGetLoweredName", api.nvrtcGetLoweredName, error);
  if (!ok) {
    return loaded;
  }
  api.nvrtcGetPCHCreateStatus =
      reinterpret_cast<PFN_nvrtcGetPCHCreateStatus>(dlsym(handle, "nvrtcGetPCHCreateStatus"));
  api.nvrtcGetPCHHeapSizeRequired =
      reinterpret_cast<PFN_nvrtcGetSize>(dlsym(handle, "nvrtcGetPCHHeapSizeRequired"));
  api.nvrtcSetPCHHeapSize =
      reinterpret_cast<PFN_nvrtcSetPCHHeapSize>(dlsym(handle, "nvrtcSetPCHHeapSize"));
  version(&api.major, &api.minor);
  int count = 0;
  num_archs(&count);
  api.supported_archs.resize(static_cast<size_t>(std::max(count, 0)));
  if (count > 0) {
    archs(api.supported_archs.data());
  }
  std::sort(api.supported_archs.begin(), api.supported_archs.end());
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(api.nvrtcCompileProgram), &info) != 0 &&
      info.dli_fname != nullptr) {
    api.library_path = info.dli_fname;
  }
  return loaded;
}

const LoadedNvrtc& loaded_nvrtc() {
  static const LoadedNvrtc loaded = load_nvrtc();
  return loaded;
}

// NVRTC has no -MD: the headers it opened are listed only in its device time trace, as
// "Processing Header File" events. The trace goes to a private temporary directory (NVRTC
// appends ".json" to the name it is given).
class DependencyTrace {
 public:
  std::string option() const { return "--fdevice-time-trace=" + (dir_.path() / "trace").string(); }

  // Every header file the trace names, in the order NVRTC finished them.
  std::vector<std::string> headers(const NvrtcApi& api) const {
    std::vector<std::string> headers;
    bool found = false;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path(), ec)) {
      found = true;
      std::ifstream in(entry.path());
      const nlohmann::json trace = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (!trace.is_object() || !trace.contains("traceEvents")) {
        throw Error(fmt::format("NVRTC {}'s time trace {} is not the JSON tilejit reads",
                                api.version_string(), entry.path().string()));
      }
      for (const nlohmann::json& event : trace["traceEvents"]) {
        if (event.value("name", "") != "Processing Header File") continue;
        if (auto args = event.find("args"); args != event.end() && args->contains("detail")) {
          headers.push_back(args->at("detail").get<std::string>());
        }
      }
    }
    // No list would key the Program as if it read no header: refuse rather than go stale.
    if (!found) throw Error(unsupported(api));
    return headers;
  }

  static std::string unsupported(const NvrtcApi& api) {
    return fmt::format(
        "NVRTC {} did not report which headers it read (--fdevice-time-trace); the cache key of "
        "a Program with include directories needs that list. Use an NVRTC that supports the "
        "option (CUDA 12.8 or newer), or the nvcc backend",
        api.version_string());
  }

 private:
  detail::TempDir dir_{"tilejit-nvrtc-trace"};
};

// The first lines of the log that report errors, for what().
std::string summarize_errors(const std::string& log) {
  std::string summary;
  int lines = 0;
  size_t start = 0;
  while (start < log.size() && lines < 5) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) {
      end = log.size();
    }
    std::string_view line(log.data() + start, end - start);
    if (line.find("error") != std::string_view::npos) {
      summary += "\n  ";
      summary += line;
      ++lines;
    }
    start = end + 1;
  }
  return summary;
}

}  // namespace

const NvrtcApi& nvrtc() {
  const LoadedNvrtc& loaded = loaded_nvrtc();
  if (!loaded.error.empty()) {
    throw NotAvailableError(loaded.error);
  }
  return loaded.api;
}

bool nvrtc_available(std::string* why) {
  const LoadedNvrtc& loaded = loaded_nvrtc();
  if (!loaded.error.empty() && why != nullptr) {
    *why = loaded.error;
  }
  return loaded.error.empty();
}

namespace {

std::vector<std::filesystem::path> toolkit_roots() {
  std::vector<std::filesystem::path> roots;
  for (const std::string& dir : env_dirs()) {
    roots.emplace_back(dir);
  }
  std::string why;
  if (nvrtc_available(&why) && !nvrtc().library_path.empty()) {
    // <root>/lib64/libnvrtc.so.13 (or <root>/lib/...): the toolkit root is two levels up.
    roots.push_back(std::filesystem::path(nvrtc().library_path).parent_path().parent_path());
  }
  return roots;
}

}  // namespace

bool nvrtc_loaded() {
  // The loaded objects' file names, not dlopen(RTLD_NOLOAD): for a name not loaded, that
  // searches the library path on disk, ~0.1 ms of a fresh process's first disk hit. A name
  // "libnvrtc.so" or "libnvrtc.so.<anything>" covers every soname of kSonames and the files
  // they link to; erring towards "loaded" only costs a probe instead of a recorded fingerprint.
  const auto visit = [](dl_phdr_info* info, size_t, void*) -> int {
    const std::string_view path = info->dlpi_name != nullptr ? info->dlpi_name : "";
    const std::string_view name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
    return name == "libnvrtc.so" || name.starts_with("libnvrtc.so.") ? 1 : 0;
  };
  const std::lock_guard lock(detail::dynamic_loader_mutex());
  return dl_iterate_phdr(visit, nullptr) != 0;
}

std::vector<std::string> nvrtc_toolchain_files() {
  std::vector<std::string> files;
  std::string why;
  if (nvrtc_available(&why) && !nvrtc().library_path.empty()) files.push_back(nvrtc().library_path);
  for (const std::string& dir : env_dirs()) {
    for (const char* soname : kSonames) {
      files.push_back((std::filesystem::path(dir) / "lib64" / soname).string());
    }
  }
  // Where dlopen of a bare soname looks: LD_LIBRARY_PATH's directories (a library added to one
  // changes its mtime), then the cache ldconfig writes.
  if (const char* path = std::getenv("LD_LIBRARY_PATH")) {
    std::string_view dirs = path;
    while (!dirs.empty()) {
      const size_t colon = dirs.find(':');
      if (colon != 0) files.emplace_back(dirs.substr(0, colon));
      dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
  }
  files.emplace_back("/etc/ld.so.cache");
  for (const auto& root : toolkit_roots()) {
    for (const char* probed : {"include/cuda_runtime.h", "include/cuda.h", "include/cccl"}) {
      files.push_back((root / probed).string());
    }
  }
  return files;
}

std::vector<std::filesystem::path> cuda_include_dirs() {
  const std::vector<std::filesystem::path> roots = toolkit_roots();
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  for (const auto& root : roots) {
    std::filesystem::path include = root / "include";
    if (std::filesystem::exists(include / "cuda_runtime.h", ec) ||
        std::filesystem::exists(include / "cuda.h", ec)) {
      dirs.push_back(include);
      if (std::filesystem::is_directory(include / "cccl", ec)) {
        dirs.push_back(include / "cccl");
      }
      break;
    }
  }
  return dirs;
}

CudaArch CudaArch::parse(std::string_view text) {
  std::string_view rest = text;
  bool prefixed = false;
  for (std::string_view prefix : {"sm_", "compute_"}) {
    if (rest.starts_with(prefix)) {
      rest.remove_prefix(prefix.size());
      prefixed = true;
      break;
    }
  }
  CudaArch arch;
  if (!rest.empty() && rest.back() == 'a') {
    arch.arch_specific = true;
    rest.remove_suffix(1);
  }
  bool digits = rest.size() >= 2 && rest.size() <= 3 &&
                std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!prefixed || !digits) {
    throw ArgumentError(fmt::format(
        "target arch '{}' is not a CUDA architecture: expected sm_XY or sm_XYa (e.g. sm_90a)",
        text));
  }
  int number = std::stoi(std::string(rest));
  arch.major = number / 10;
  arch.minor = number % 10;
  return arch;
}

std::string CudaArch::sm() const {
  return fmt::format("sm_{}{}{}", major, minor, arch_specific ? "a" : "");
}

std::vector<std::string> nvrtc_options(const NvrtcApi& api, const NvrtcOptions& options,
                                       std::string* target) {
  int wanted = options.arch.number();
  if (!api.supported_archs.empty() && wanted < api.supported_archs.front()) {
    throw ArgumentError(
        fmt::format("target arch {} is older than NVRTC {} supports (oldest: sm_{})",
                    options.arch.sm(), api.version_string(), api.supported_archs.front()));
  }
  std::string arch;
  if (api.max_arch() != 0 && wanted > api.max_arch()) {
    // NVRTC predates the device: emit PTX for the newest architecture it knows and let the
    // driver JIT it at load. Arch-specific (`a`) features cannot cross architectures.
    arch = fmt::format("compute_{}", api.max_arch());
  } else {
    arch = options.arch.sm();
  }
  if (target != nullptr) {
    *target = arch;
  }
  std::vector<std::string> result;
  result.push_back("--gpu-architecture=" + arch);
  bool has_std = std::any_of(options.flags.begin(), options.flags.end(), [](const std::string& f) {
    return f.starts_with("--std=") || f.starts_with("-std=");
  });
  if (!has_std) {
    result.emplace_back("--std=c++17");
  }
  for (const std::string& dir : options.include_dirs) {
    result.push_back("--include-path=" + dir);
  }
  for (const auto& dir : cuda_include_dirs()) {
    result.push_back("--include-path=" + dir.string());
  }
  for (const auto& [name, value] : options.defines) {
    result.push_back(value.empty() ? "--define-macro=" + name
                                   : fmt::format("--define-macro={}={}", name, value));
  }
  if (options.verbose) {
    result.emplace_back("-lineinfo");
  }
  result.insert(result.end(), options.flags.begin(), options.flags.end());
  return result;
}

NvrtcOutput compile_cuda(std::string_view source, const NvrtcOptions& options) {
  const NvrtcApi& api = nvrtc();
  NvrtcOutput out;
  out.options = nvrtc_options(api, options, &out.target);
  bool ptx = out.target.starts_with("compute_");
  out.binary_kind = ptx ? "ptx" : "cubin";

  std::string source_text(source);
  const char* header_sources[] = {device_header_source().data()};
  const char* header_names[] = {kDeviceHeaderName};
  nvrtcProgram program = nullptr;
  nvrtcResult result = api.nvrtcCreateProgram(
      &program, source_text.c_str(), options.source_name.c_str(), 1, header_sources, header_names);
  if (result != NVRTC_SUCCESS) {
    throw CompileError(fmt::format("nvrtcCreateProgram failed for {}: {}", options.source_name,
                                   api.nvrtcGetErrorString(result)),
                       "", out.options, options.source_name);
  }
  auto destroy = [&api](nvrtcProgram* p) { api.nvrtcDestroyProgram(p); };
  std::unique_ptr<nvrtcProgram, decltype(destroy)> guard(&program, destroy);

  for (const std::string& expression : options.name_expressions) {
    nvrtcResult added = api.nvrtcAddNameExpression(program, expression.c_str());
    if (added != NVRTC_SUCCESS) {
      throw CompileError(fmt::format("nvrtcAddNameExpression(\"{}\") failed for {}: {}", expression,
                                     options.source_name, api.nvrtcGetErrorString(added)),
                         "", out.options, options.source_name);
    }
  }

  PchCompile pch(api, source, options, out.options);
  std::optional<DependencyTrace> trace;
  std::vector<const char*> argv;
  argv.reserve(out.options.size() + 2);
  for (const std::string& option : out.options) {
    argv.push_back(option.c_str());
  }
  if (!pch.option().empty()) {
    argv.push_back(pch.option().c_str());
  }
  // Traced whenever a PCH is created or used (nvrtc_pch.h): NVRTC refuses a PCH created with
  // other options (warning 629), and the trace option counts, whatever its path.
  std::string trace_option;
  if (options.list_dependencies || !pch.option().empty()) {
    trace.emplace();
    trace_option = trace->option();
    argv.push_back(trace_option.c_str());
  }
  nvrtcResult compiled =
      api.nvrtcCompileProgram(program, static_cast<int>(argv.size()), argv.data());

  size_t log_size = 0;
  api.nvrtcGetProgramLogSize(program, &log_size);
  if (log_size > 1) {
    out.log.resize(log_size);
    api.nvrtcGetProgramLog(program, out.log.data());
    out.log.resize(log_size - 1);  // the terminating NUL
  }
  if (compiled == NVRTC_ERROR_INVALID_OPTION && trace) {
    throw CompileError(DependencyTrace::unsupported(api), out.log, out.options,
                       options.source_name);
  }
  if (compiled != NVRTC_SUCCESS) {
    throw CompileError(fmt::format("NVRTC {} failed to compile {} for {} ({}):{}",
                                   api.version_string(), options.source_name, out.target,
                                   api.nvrtcGetErrorString(compiled), summarize_errors(out.log)),
                       out.log, out.options, options.source_name);
  }
  std::vector<std::string> headers;
  if (trace) {
    headers = trace->headers(api);
  }
  out.pch = pch.finish(api, program, out.log, &headers);
  if (options.list_dependencies) {
    out.dependencies = std::move(headers);
  }
  for (const std::string& expression : options.name_expressions) {
    const char* lowered = nullptr;
    nvrtcResult found = api.nvrtcGetLoweredName(program, expression.c_str(), &lowered);
    if (found != NVRTC_SUCCESS || lowered == nullptr) {
      throw CompileError(
          fmt::format("NVRTC compiled {} but has no lowered name for the kernel '{}' ({}): "
                      "expected a __global__ function of that C++ name",
                      options.source_name, expression, api.nvrtcGetErrorString(found)),
          out.log, out.options, options.source_name);
    }
    out.lowered_names.emplace_back(lowered);
  }
  size_t size = 0;
  (ptx ? api.nvrtcGetPTXSize : api.nvrtcGetCUBINSize)(program, &size);
  out.binary.resize(size);
  (ptx ? api.nvrtcGetPTX : api.nvrtcGetCUBIN)(program, out.binary.data());
  return out;
}

}  // namespace tilejit::cuda
