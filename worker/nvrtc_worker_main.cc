// tilejit-nvrtc-worker: compiles CUDA sources with NVRTC for a tilejit process
// (src/cuda/nvrtc_worker.h starts it; the wire format is src/cuda/nvrtc_worker_protocol.h).
//
// stdin is one end of a socket pair. The loop: wait for a request, run compile_cuda() on it,
// send back its output or its exception, repeat. It exits on EOF (the tilejit process closed
// the socket or ended) and after worker::kIdleTimeout without a request, so that an idle
// worker does not keep NVRTC's memory. Single-threaded.
//
//   tilejit-nvrtc-worker [--idle-timeout-seconds N]
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "cuda/nvrtc.h"
#include "cuda/nvrtc_worker_protocol.h"
#include "tilejit/errors.h"

namespace {

namespace worker = tilejit::cuda::worker;

constexpr int kRequests = STDIN_FILENO;
constexpr int kBadUsage = 2;

int fail(const std::string& why) {
  std::fprintf(stderr, "tilejit-nvrtc-worker: %s\n", why.c_str());
  return kBadUsage;
}

// Relative include directories and source names mean what they mean in the caller.
void enter(const std::string& directory, std::string& current) {
  if (directory.empty() || directory == current) return;
  if (::chdir(directory.c_str()) != 0) {
    throw tilejit::Error("the NVRTC worker cannot enter the caller's working directory " +
                         directory + ": " + std::strerror(errno));
  }
  current = directory;
}

int serve(std::chrono::milliseconds idle_timeout) {
  std::string directory;
  for (;;) {
    pollfd request_ready{kRequests, POLLIN, 0};
    const int ready = ::poll(&request_ready, 1, static_cast<int>(idle_timeout.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return fail(std::string("poll failed: ") + std::strerror(errno));
    if (ready == 0) return 0;  // idle

    const worker::Frame frame = worker::read_frame(kRequests);
    if (frame.status == worker::Frame::Status::kClosed) return 0;
    if (frame.status == worker::Frame::Status::kForeign) {
      // Answer with our own header, so that a tilejit of another version can say what is
      // wrong instead of seeing a dead worker.
      (void)worker::write_frame(kRequests, {});
      return fail("the request is not tilejit-nvrtc-worker protocol version " +
                  std::to_string(worker::kProtocolVersion) +
                  " (this program is started by tilejit, not by hand)");
    }
    const auto start = std::chrono::steady_clock::now();
    const auto since_start = [&] {
      return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count());
    };
    const worker::Request request = worker::decode_request(frame.payload);
    std::string response;
    try {
      enter(request.working_directory, directory);
      tilejit::cuda::NvrtcOutput output =
          tilejit::cuda::compile_cuda(request.source, request.options);
      response = worker::encode_output(output, since_start());
    } catch (...) {
      response = worker::encode_exception(std::current_exception(), since_start());
    }
    if (!worker::write_frame(kRequests, response)) return 0;  // the caller is gone
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::milliseconds idle_timeout = worker::kIdleTimeout;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--idle-timeout-seconds" && i + 1 < argc) {
      idle_timeout = std::chrono::seconds(std::atoi(argv[++i]));
    } else {
      return fail("unknown argument '" + std::string(arg) + "'; usage: " + argv[0] +
                  " [--idle-timeout-seconds N]");
    }
  }
  // Ctrl-C reaches the terminal's whole process group. What an interrupted compile means is
  // the tilejit process's decision; when it exits, this one sees EOF and follows.
  ::signal(SIGINT, SIG_IGN);
  worker::keep_freed_memory();
  // NVRTC is loaded before the first request, not inside it: the request's time in the worker
  // (reported with each answer) is then the compile alone, and a new worker's time to its first
  // answer splits into process start-up (exec, libraries, NVRTC) and NVRTC's first-compile
  // set-up. When NVRTC is missing, each request is answered with the NotAvailableError.
  try {
    (void)tilejit::cuda::nvrtc_available();
    return serve(idle_timeout);
  } catch (const std::exception& e) {
    // A malformed request, a broken socket, or no memory to load NVRTC: nothing sensible to
    // answer.
    return fail(e.what());
  }
}
