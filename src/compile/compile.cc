// compile(): resolve options, key, memory cache, disk cache, build, load (DESIGN.md §2).
#include "compile/compile.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "backend/backend.h"
#include "cache/cache_stats.h"
#include "cache/disk_cache.h"
#include "cache/key.h"
#include "cache/key_memo.h"
#include "cache/memory_cache.h"
#include "cache/toolchain_record.h"
#include "compile/kernel_state.h"
#include "remote/remote_cache.h"
#include "tilejit/errors.h"

extern char** environ;  // POSIX: the process environment

namespace tilejit::detail {
namespace {

std::string env_string(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// True when `name` is set to 0, false, no or off (any case).
bool env_is_false(const char* name) {
  std::string value = env_string(name);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return value == "0" || value == "false" || value == "no" || value == "off";
}

std::vector<int> normalize_out_idx(const std::vector<int>& requested, const Program& program,
                                   std::string_view origin) {
  const int count = static_cast<int>(program.params.size());
  std::vector<int> out;
  out.reserve(requested.size());
  for (int index : requested) {
    const int resolved = index < 0 ? index + count : index;
    if (resolved < 0 || resolved >= count) {
      throw ArgumentError(
          fmt::format("out_idx ({}): index {} is out of range for Program '{}' with {} params",
                      origin, index, program.name, count));
    }
    if (program.params[static_cast<size_t>(resolved)].is_scalar()) {
      throw ArgumentError(
          fmt::format("out_idx ({}): index {} is param '{}', a scalar; outputs must be tensors",
                      origin, index, program.params[static_cast<size_t>(resolved)].name));
    }
    if (std::find(out.begin(), out.end(), resolved) != out.end()) {
      throw ArgumentError(fmt::format("out_idx ({}): param '{}' (index {}) is listed twice", origin,
                                      program.params[static_cast<size_t>(resolved)].name, index));
    }
    out.push_back(resolved);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Toolchain versions are probed once per (backend, target) and process: for the host
// compiler that is a subprocess, far too slow to repeat on every compile() call.
std::string toolchain_fingerprint(const Backend& backend, const Target& target) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::string> fingerprints;
  const std::string id = fmt::format("{}|{}", backend.name(), target.str());
  {
    std::lock_guard lock(mutex);
    if (auto it = fingerprints.find(id); it != fingerprints.end()) return it->second;
  }
  // Outside the lock: may be slow. A fresh process finds it recorded in the disk cache.
  std::optional<std::string> selector = backend.toolchain_selector(target);
  if (selector) *selector = id + "|" + *selector;
  std::string fingerprint = recorded_fingerprint(selector, [&] {
    return ToolchainProbe{backend.toolchain_fingerprint(target), backend.toolchain_files(target)};
  });
  std::lock_guard lock(mutex);
  return fingerprints.try_emplace(id, std::move(fingerprint)).first->second;
}

// The environment variables that resolve_options() reads.
constexpr const char* kTargetEnv = "TILELANG_TARGET";
constexpr const char* kBackendEnv = "TILELANG_EXECUTION_BACKEND";
constexpr const char* kVerboseEnv = "TILELANG_VERBOSE";
constexpr std::array<std::string_view, 3> kOptionEnvVars = {kTargetEnv, kBackendEnv, kVerboseEnv};
// Read by builds only: 0/false/no/off turns NVRTC precompiled headers off (docs/cache.md).
constexpr const char* kNvrtcPchEnv = "TILEJIT_NVRTC_PCH";

using OptionEnvironment = std::array<std::optional<std::string_view>, kOptionEnvVars.size()>;

// The values of kOptionEnvVars (nullopt when unset), in one pass over the environment: three
// getenv() calls would scan it three times, which dominated a memory hit.
OptionEnvironment option_environment() {
  OptionEnvironment values;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const char* text = *entry;
    // Two characters rule out almost every entry without a call (TERM, TMPDIR, TZ...); no
    // strlen() either, but for a match's value.
    if (text[0] != 'T' || text[1] != 'I' || std::strncmp(text + 2, "LELANG_", 7) != 0) continue;
    for (size_t i = 0; i < kOptionEnvVars.size(); ++i) {
      const std::string_view name = kOptionEnvVars[i];
      // Past "TILELANG_", one character tells the three apart.
      if (text[9] == name[9] && std::strncmp(text + 10, name.data() + 10, name.size() - 10) == 0 &&
          text[name.size()] == '=') {
        values[i] = std::string_view(text + name.size() + 1);
      }
    }
  }
  return values;
}

// compile() on a memory hit without resolving options or computing a key: each thread
// remembers the last Programs it compiled, with the CompileOptions and the option environment
// variables of that call, and the Kernel. A hit costs comparing those (no lock: the table is
// the thread's own). MemoryCache::clear() invalidates it through the cache's generation.
// For a Program with user include directories, whose key covers header contents that can
// change while the Program stays equal, a hit also recomputes the key from the headers its
// build read: one stat per header while their signatures are unchanged (header_hashes.h).
class HitMemo {
 public:
  static HitMemo& for_this_thread() {
    thread_local HitMemo memo;
    return memo;
  }

  const Kernel* find(const Program& program, const CompileOptions& options) const {
    const Entry& entry = entries_[slot(program)];
    if (entry.generation != MemoryCache::global().generation() || !entry.kernel) return nullptr;
    if (!(entry.options == options) || !(entry.program == program)) return nullptr;
    const OptionEnvironment now = option_environment();
    for (size_t i = 0; i < now.size(); ++i) {
      if (now[i].has_value() != entry.environment[i].has_value()) return nullptr;
      if (now[i] && *now[i] != *entry.environment[i]) return nullptr;
    }
    if (!entry.header_dirs.empty() && key_with_headers(entry.base_key, entry.header_dirs,
                                                       entry.headers) != entry.kernel.cache_key()) {
      return nullptr;
    }
    return &entry.kernel;
  }

  // `headers`: what the build of `kernel` read from `header_dirs` (none without those).
  void remember(const Program& program, const CompileOptions& options, uint64_t generation,
                const Kernel& kernel, const std::string& base_key,
                const std::vector<std::filesystem::path>& header_dirs,
                std::vector<std::string> headers) {
    Entry& entry = entries_[slot(program)];
    entry.base_key = base_key;
    entry.header_dirs = header_dirs;
    entry.headers = std::move(headers);
    entry.generation = generation;
    entry.program = program;
    entry.options = options;
    const OptionEnvironment now = option_environment();
    for (size_t i = 0; i < now.size(); ++i) {
      entry.environment[i] = now[i] ? std::optional<std::string>(*now[i]) : std::nullopt;
    }
    entry.kernel = kernel;
  }

 private:
  static constexpr size_t kSlots = 8;  // direct-mapped: a new Program replaces its slot's
  struct Entry {
    uint64_t generation = 0;
    Program program;
    CompileOptions options;
    std::array<std::optional<std::string>, kOptionEnvVars.size()> environment;
    Kernel kernel;
    std::string base_key;
    std::vector<std::filesystem::path> header_dirs;
    std::vector<std::string> headers;
  };

  // Sizes and the name's last character, not a hash of the name (~70 instructions, a twentieth
  // of a hit): Programs of one process mostly differ in their sources' sizes or their names'
  // endings (variants numbered or suffixed), and a collision only costs the slower path.
  static size_t slot(const Program& program) {
    const size_t last = program.name.empty() ? 0 : static_cast<unsigned char>(program.name.back());
    return (program.source.size() * 7 + program.name.size() * 3 + last) % kSlots;
  }

  std::array<Entry, kSlots> entries_;
};

struct Prepared {
  const Program& program;
  ResolvedOptions options;
  const Backend* backend = nullptr;
  CompileKey key;
  std::string remote_cache;  // CompileOptions::remote_cache
};

Prepared prepare(const Program& program, const CompileOptions& options,
                 CompilerPlacement placement = CompilerPlacement::kInProcess) {
  Prepared prepared{program, resolve_options(program, options), nullptr, {}, options.remote_cache};
  prepared.options.compiler_placement = placement;
  prepared.backend = &backend_named(prepared.options.backend);
  prepared.key = compile_key(program, prepared.options, [&] {
    return toolchain_fingerprint(*prepared.backend, prepared.options.target);
  });
  return prepared;
}

const char* source_name(CompileSource source) {
  switch (source) {
    case CompileSource::kMemoryCache:
      return "memory cache hit";
    case CompileSource::kDiskCache:
      return "disk cache hit";
    case CompileSource::kRemoteCache:
      return "remote cache hit";
    case CompileSource::kBuilt:
      return "built";
  }
  return "";
}

// Disk lookup, else remote lookup (which may wait on another process's compile lease), else
// build and store; then load. Runs at most once per key at a time in this process
// (MemoryCache), concurrently with other keys.
Kernel load_or_build(const Prepared& prepared, CompileSource* source) {
  std::optional<DiskCache> disk = DiskCache::from_env();
  DiskCache::Status status = DiskCache::Status::kMiss;
  Program program = prepared.program;
  program.out_idx = prepared.options.out_idx;
  if (disk && prepared.key.full) {
    DiskCache::Lookup found = disk->lookup(*prepared.key.full, &program);
    status = found.status;
    if (found.artifact) {
      try {
        Kernel kernel = make_kernel(std::move(*found.artifact), *prepared.key.full);
        *source = CompileSource::kDiskCache;
        count_cache_event(CacheEvent::kDiskHit);
        return kernel;
      } catch (const Error& e) {
        // Verified bytes that still do not load were built by a toolchain or driver that does
        // not match this machine's; the entry is useless here.
        std::fprintf(stderr, "tilejit: warning: cache: entry %s does not load (%s); rebuilding\n",
                     prepared.key.full->c_str(), e.what());
        disk->remove(*prepared.key.full);
      }
    }
  }
  // A Program whose key depends on headers not yet known here has no key to ask for.
  std::optional<RemoteCache::Claim> claim;
  RemoteCache* remote = prepared.key.full ? RemoteCache::from_url(prepared.remote_cache) : nullptr;
  if (remote) {
    claim.emplace(remote->claim(*prepared.key.full));
    if (claim->artifact) {
      // Verified bytes (HMAC, key, format): filed on disk, loaded like a disk hit.
      if (disk && status != DiskCache::Status::kUnsafe)
        disk->store(*prepared.key.full, *claim->artifact);
      try {
        Kernel kernel = make_kernel(std::move(*claim->artifact), *prepared.key.full);
        *source = CompileSource::kRemoteCache;
        count_cache_event(CacheEvent::kRemoteHit);
        return kernel;
      } catch (const Error& e) {
        // Signed by a peer whose toolchain or driver does not match this machine's.
        std::fprintf(stderr,
                     "tilejit: warning: remote cache: entry %s does not load (%s); "
                     "rebuilding\n",
                     prepared.key.full->c_str(), e.what());
        if (disk) disk->remove(*prepared.key.full);
        claim.reset();
      }
    }
  }
  program.validate();
  ResolvedOptions build_options = prepared.options;
  if (disk && !env_is_false(kNvrtcPchEnv)) build_options.nvrtc_pch_dir = disk->pch_dir().string();
  const auto start = std::filesystem::file_time_type::clock::now();
  CompiledArtifact artifact = prepared.backend->build(program, build_options);
  // The headers this build read decide the key it is filed under.
  const bool storable = disk && status != DiskCache::Status::kUnsafe;
  const BuiltKey built =
      key_of_build(prepared.key, artifact.dependencies, start, storable ? &*disk : nullptr);
  if (storable && built.storable) disk->store(built.key, artifact);
  if (claim && built.key == *prepared.key.full) claim->publish(artifact);
  *source = CompileSource::kBuilt;
  count_cache_event(CacheEvent::kMiss);
  return make_kernel(std::move(artifact), built.key);
}

// The seed's target_host is a TVM host target. tilejit's host code is C/C++ compiled for this
// machine, which is what "llvm" and "c" mean there; a cross-compilation target has no meaning.
void check_target_host(std::string_view target_host) {
  if (target_host.empty() || target_host == "llvm" || target_host == "c") return;
  throw ArgumentError(fmt::format(
      "target_host \"{}\": tilejit builds host code for this machine only, so target_host may be "
      "\"llvm\" or \"c\" (both mean this machine) or left unset; to choose the compiler of the "
      "host code use host_compiler (CLI: --host-compiler)",
      target_host));
}

}  // namespace

ResolvedOptions resolve_options(const Program& program, const CompileOptions& options) {
  ResolvedOptions resolved;
  // A Program's language names its target kind: "cuda", "c", "hip", "metal".
  const std::string language_kind(to_string(program.language));

  std::string target_text = options.target;
  if (target_text.empty()) target_text = env_string(kTargetEnv);
  if (target_text.empty()) target_text = "auto";
  Target target = Target::parse(target_text);
  if (target.kind == "auto") target.kind = language_kind;
  if (target.kind != language_kind) {
    throw ArgumentError(
        fmt::format("target '{}' cannot compile Program '{}': its source language is '{}'",
                    target_text, program.name, language_kind));
  }

  std::string requested_backend = options.execution_backend;
  if (requested_backend.empty()) requested_backend = env_string(kBackendEnv);
  resolved.backend = backend_for(requested_backend, target);
  resolved.target = backend_named(resolved.backend).resolve_target(target);

  check_target_host(options.target_host);
  resolved.host_compiler = options.host_compiler;
  resolved.verbose = options.verbose.has_value() ? *options.verbose : env_flag(kVerboseEnv);
  resolved.pass_configs = options.pass_configs;
  resolved.out_idx = options.out_idx
                         ? normalize_out_idx(*options.out_idx, program, "compile option")
                         : normalize_out_idx(program.out_idx, program, "Program");
  resolved.compile_flags = program.compile_flags;
  resolved.compile_flags.insert(resolved.compile_flags.end(), options.compile_flags.begin(),
                                options.compile_flags.end());
  return resolved;
}

std::string compile_cache_key(const Program& program, const CompileOptions& options) {
  Prepared prepared = prepare(program, options);
  if (prepared.key.full) return *prepared.key.full;
  // Which headers make up the key is known only once a build has listed them.
  return compile(program, options).cache_key();
}

CompileOutcome compile_with_outcome(const Program& program, const CompileOptions& options,
                                    CompilerPlacement placement) {
  HitMemo& memo = HitMemo::for_this_thread();
  if (const Kernel* kernel = memo.find(program, options)) {
    return {*kernel, CompileSource::kMemoryCache};
  }
  const auto start = std::chrono::steady_clock::now();
  const uint64_t generation = MemoryCache::global().generation();
  const Prepared prepared = prepare(program, options, placement);
  CompileOutcome outcome;
  bool built = false;
  // While the headers are unknown, concurrent first compiles of one Program meet on its base
  // key; the Kernel is then also filed under its full key, which later calls compute.
  const std::string memory_key =
      prepared.key.full ? *prepared.key.full : "headers?" + prepared.key.base;
  outcome.kernel = MemoryCache::global().get_or_build(
      memory_key, [&] { return load_or_build(prepared, &outcome.source); }, &built);
  if (!built) outcome.source = CompileSource::kMemoryCache;
  if (built && outcome.kernel.cache_key() != memory_key) {
    MemoryCache::global().insert(outcome.kernel.cache_key(), outcome.kernel);
  }
  // A verbose compile reports every call, hits included, so it stays on the full path.
  if (!prepared.options.verbose) {
    const std::optional<std::vector<std::string>> headers = known_headers(prepared.key);
    // Headers unknown: the build saw one change while it ran and recorded nothing.
    if (prepared.key.header_dirs.empty() || headers) {
      memo.remember(program, options, generation, outcome.kernel, prepared.key.base,
                    prepared.key.header_dirs, headers.value_or(std::vector<std::string>{}));
    }
  }
  if (prepared.options.verbose) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "tilejit: %s: %s in %.2f ms (backend %s, target %s, key %.16s)\n",
                 program.name.c_str(), source_name(outcome.source), ms,
                 prepared.options.backend.c_str(), prepared.options.target.str().c_str(),
                 outcome.kernel.cache_key().c_str());
  }
  return outcome;
}

}  // namespace tilejit::detail

namespace tilejit {

Kernel compile(const Program& program, const CompileOptions& options) {
  return detail::compile_with_outcome(program, options).kernel;
}

}  // namespace tilejit
