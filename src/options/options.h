// What a backend builds with: the target and the options after the environment and the
// defaults are applied. Below both backend/ and cache/ (the key hashes these fields); the
// resolution itself (resolve_options, src/compile/compile.h) needs the backend registry.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tilejit::detail {

// A resolved compilation target. kind: "cuda" | "c" | "hip" | "metal"; arch: "sm_90a",
// "sm_80", "gfx90a" or empty. str() is canonical ("cuda -arch=sm_90a", "c").
struct Target {
  std::string kind;
  std::string arch;

  // Accepts "auto", "cuda", "cuda -arch=sm_90a", "sm_90a", "nvidia/h100"-style is not
  // supported; "c", "llvm" (= c), "hip", "hip -mcpu=gfx90a", "metal". Throws ArgumentError.
  static Target parse(std::string_view text);
  std::string str() const;
  bool is_auto_arch() const { return arch.empty() || arch == "auto"; }
  friend bool operator==(const Target&, const Target&) = default;
};

// Where a backend that compiles inside this process (NVRTC) runs its compiler. NVRTC compiles
// in one process barely overlap (measured: 2.3x on 16 threads, 10.8x on 16 processes), so
// par_compile asks for worker processes; a single compile() stays in-process (no spawn).
// Not part of the cache key: both places produce the same binary.
enum class CompilerPlacement { kInProcess, kWorkerProcess };

// The options after env vars and defaults are applied; what a backend builds with.
struct ResolvedOptions {
  std::string backend;
  Target target;
  std::string target_host;
  std::vector<int> out_idx;  // non-negative, ascending
  bool verbose = false;
  std::map<std::string, std::string> pass_configs;
  std::vector<std::string> compile_flags;  // Program's then the options'
  CompilerPlacement compiler_placement = CompilerPlacement::kInProcess;
  // Where NVRTC keeps this process's precompiled headers (cuda/nvrtc_pch.h): set by compile()
  // for a build when the disk cache is on and TILEJIT_NVRTC_PCH is not 0; empty: none. Not
  // part of the key: a PCH changes how fast a binary is built, never its bytes.
  std::string nvrtc_pch_dir;
};

// True when the environment variable is "1", "true", "yes" or "on" (any case).
bool env_flag(const char* name);

}  // namespace tilejit::detail
