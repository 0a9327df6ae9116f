// NVRTC in worker processes. NVRTC serializes most of a compile inside one process (measured on
// a 16-core host: 16 threads compile 2.3x faster than one, 16 processes 10.8x), so par_compile
// runs each NVRTC compile in a pooled child process, tilejit-nvrtc-worker
// (worker/nvrtc_worker_main.cc), which calls compile_cuda() and sends back the result.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cuda/nvrtc.h"

namespace tilejit::cuda {

inline constexpr const char* kNvrtcWorkerEnv = "TILEJIT_NVRTC_WORKER";
inline constexpr const char* kNvrtcWorkerName = "tilejit-nvrtc-worker";

// compile_cuda() in a worker process: the same NvrtcOutput, or the same exception type
// (CompileError with NVRTC's log, ArgumentError, NotAvailableError, ...).
//
// The pool is process-wide and starts on first use: a compile takes an idle worker or starts a
// new one (at most one per usable core; beyond that, compiles wait for one to come back).
// Workers exit after worker::kIdleTimeout without a request. A worker that dies during a
// compile (NVRTC crashed, or it was killed) is replaced and the compile sent once more to a new
// worker; when that one dies too, CompileError says how the worker died: an NVRTC crash costs
// the compile, never the caller's process.
//
// The executable is $TILEJIT_NVRTC_WORKER when set (and only that), else tilejit-nvrtc-worker
// in the directory of the binary that contains tilejit (the Python package directory for the
// wheel), the build tree's, or the install prefix's libexec. When none is usable, or starting
// it fails, the compile runs in this process (same result, no overlap) after one warning on
// stderr naming what was tried.
NvrtcOutput compile_cuda_in_worker(std::string_view source, const NvrtcOptions& options);

// The pool's state, for tests and diagnostics.
struct NvrtcWorkerStats {
  std::vector<int> idle_pids;
  std::vector<int> busy_pids;  // workers running a compile
  uint64_t spawned = 0;        // workers started by this process
  uint64_t retried = 0;        // compiles sent again because their worker died
  // Where a compile's time goes, summed over the compiles workers answered: the round trip
  // (request written to answer read), and the part of it the worker spent on the request.
  uint64_t answered = 0;
  uint64_t round_trip_ns = 0;
  uint64_t worker_ns = 0;
  // A new worker's start-up: from spawning it to its first answer, and the worker's own time on
  // that first request (which includes loading NVRTC and its first-compile set-up).
  uint64_t first_answers = 0;
  uint64_t first_answer_ns = 0;
  uint64_t first_worker_ns = 0;
};
NvrtcWorkerStats nvrtc_worker_stats();

}  // namespace tilejit::cuda
