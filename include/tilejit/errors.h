// tilejit/errors.h — the one exception family of tilejit.
//
//   try { auto k = tilejit::compile(program); k({&a, &b, 128}); }
//   catch (const tilejit::CompileError& e) { std::cerr << e.log(); }
//   catch (const tilejit::ArgumentError& e) { std::cerr << e.what(); }  // names the parameter
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tilejit {

// Base of every exception tilejit throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The Program itself is malformed: bad JSON, an unparsable expression, an unknown variable,
// a kernel name absent from the source, a TMA descriptor on a missing buffer.
class ProgramError : public Error {
 public:
  using Error::Error;
};

// A call received arguments that do not fit the kernel's parameters (count, kind, dtype,
// ndim, shape, strides, device, null pointer, scalar range), or options that make no sense.
// The message names the parameter, the dimension, what was expected and what came.
class ArgumentError : public Error {
 public:
  using Error::Error;
};

// A compiler (NVRTC, nvcc, the host compiler) rejected the source. what() shows the first
// error lines; log() is the compiler's complete output.
class CompileError : public Error {
 public:
  CompileError(std::string summary, std::string log, std::vector<std::string> options,
               std::string source_name)
      : Error(std::move(summary)),
        log_(std::move(log)),
        options_(std::move(options)),
        source_name_(std::move(source_name)) {}

  const std::string& log() const noexcept { return log_; }
  const std::vector<std::string>& options() const noexcept { return options_; }
  const std::string& source_name() const noexcept { return source_name_; }

 private:
  std::string log_;
  std::vector<std::string> options_;
  std::string source_name_;
};

// A CUDA driver or NVRTC call failed. The message names the call, the kernel (when there is
// one) and the driver's error string; code() is the raw CUresult / nvrtcResult.
class CudaError : public Error {
 public:
  CudaError(std::string message, int code) : Error(std::move(message)), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// The feature needs something this machine lacks: a CUDA driver, a device, hipcc, Metal.
class NotAvailableError : public Error {
 public:
  using Error::Error;
};

}  // namespace tilejit
