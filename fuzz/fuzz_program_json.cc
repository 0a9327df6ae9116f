// libFuzzer target: Program::from_json on arbitrary bytes. A Program that reads must print
// canonical JSON that reads back to an equal Program and prints identically; anything else
// must be a ProgramError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tilejit/errors.h"
#include "tilejit/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  tilejit::Program program;
  try {
    program = tilejit::Program::from_json(json);
  } catch (const tilejit::ProgramError&) {
    return 0;
  }
  const std::string printed = program.to_json();
  tilejit::Program again;
  try {
    again = tilejit::Program::from_json(printed);
  } catch (const tilejit::ProgramError&) {
    std::abort();  // a valid Program printed JSON that does not read back
  }
  if (!(again == program) || again.to_json() != printed) std::abort();
  return 0;
}
