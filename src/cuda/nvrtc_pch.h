// NVRTC precompiled headers (CUDA 12.8+, docs/cache.md) for sources that begin with the same
// #include directives, as every kernel TileLang lowers does (tl_templates, CUTLASS/cute): the
// first compile writes a PCH of that prefix, later compiles load it instead of parsing the
// headers again, and produce the same binary.
//
// A PCH is valid only in the NVRTC instance that wrote it: NVRTC records the address of its
// PCH heap, which differs in every process (ASLR), and ignores the file anywhere else (warning
// 20282). So each process, and each NVRTC worker process, keeps its PCHs in a directory of its
// own under NvrtcOptions::pch_dir, `<pid>-XXXXXX`, flock'ed while it lives and removed when it
// exits; a directory whose lock can be taken belongs to a dead process and is removed by the
// next process that writes a PCH.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/nvrtc.h"

namespace tilejit::cuda {

// The preprocessor directives a PCH of `source` covers, one per line (with their continuation
// lines), without the blank and // comment lines between them: everything before the first
// line of code, where NVRTC's header stop is. The PCH is keyed on this text, so kernels that
// differ below their includes (TileLang's tile sizes) share one. NVRTC checks the directives
// itself too, so a /* */ comment that ends the text early cannot make it load a wrong PCH.
std::string pch_directives(std::string_view source);

// One compile's part in the process's PCH store: constructed before nvrtcCompileProgram, it
// picks a recorded PCH that is still valid (same NVRTC, options, prefix, and header contents;
// the file unchanged since NVRTC wrote it) or names the file to create, and holds the lock
// that serializes PCH compiles (they share NVRTC's one PCH heap). finish() after the compile.
class PchCompile {
 public:
  // Inactive (no option, no lock) when options.pch_dir is empty, NVRTC lacks PCH support, the
  // source has no #include before its code, or the PCH directory is not private to this user.
  PchCompile(const NvrtcApi& api, std::string_view source, const NvrtcOptions& options,
             const std::vector<std::string>& nvrtc_options);
  PchCompile(const PchCompile&) = delete;
  PchCompile& operator=(const PchCompile&) = delete;
  ~PchCompile();  // removes what a failed compile may have left of a PCH it was to create

  // --use-pch=<file>, --create-pch=<file>, or empty when inactive. A compile with either must
  // list dependencies (--fdevice-time-trace): a created PCH's headers are recorded from the
  // trace, so that a later edit of one retires the PCH, and NVRTC uses a PCH only with the
  // options it was created with, the trace included.
  const std::string& option() const { return option_; }

  // After a successful compile: records the created PCH with `traced` (the headers NVRTC
  // read), forgets a PCH NVRTC did not use, grows NVRTC's PCH heap when it was too small.
  // When the PCH was used, adds the headers it covers to `traced` (NVRTC's trace no longer
  // lists them). Returns NvrtcOutput::pch: "created <file>", "used <file>" or empty.
  std::string finish(const NvrtcApi& api, nvrtcProgram program, const std::string& log,
                     std::vector<std::string>* traced);

 private:
  std::unique_lock<std::mutex> lock_;
  std::string key_;
  std::string file_;
  std::string option_;
  bool creating_ = false;
  bool finished_ = false;
};

}  // namespace tilejit::cuda
