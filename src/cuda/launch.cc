#include "cuda/launch.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::cuda {
namespace {

using detail::KernelArg;

const char* source_name(KernelArg::Source source) {
  switch (source) {
    case KernelArg::Source::kParam:
      return "param";
    case KernelArg::Source::kSymbol:
      return "symbol";
    case KernelArg::Source::kTmaDescriptor:
      return "tma";
  }
  return "?";
}

// TMA descriptor indices in order of first use over the launches.
std::vector<int> used_descriptors(const Program& program,
                                  const std::vector<std::vector<KernelArg>>& args_per_launch) {
  std::vector<int> used;
  for (const auto& args : args_per_launch) {
    for (const KernelArg& arg : args) {
      if (arg.source == KernelArg::Source::kTmaDescriptor &&
          std::find(used.begin(), used.end(), arg.index) == used.end()) {
        used.push_back(arg.index);
      }
    }
  }
  if (used.size() > static_cast<size_t>(kMaxTmaDescriptors)) {
    throw ProgramError(
        fmt::format("program '{}' passes {} TMA descriptors; at most {} are supported",
                    program.name, used.size(), kMaxTmaDescriptors));
  }
  return used;
}

std::vector<std::vector<KernelArg>> resolve_all(const Program& program) {
  std::vector<std::vector<KernelArg>> all;
  all.reserve(program.launches.size());
  for (const Launch& launch : program.launches) {
    all.push_back(detail::resolve_kernel_args(program, launch));
  }
  return all;
}

// An integer stored in the `bytes` (1, 2, 4 or 8: layout_args admits no other nonzero size)
// that the kernel declares, as its conversion to that width. Each size is a fixed-size copy: a
// memcpy of a run-time length is a library call per argument, a third of pack_args' time with 19
// arguments.
void store_integer(std::byte* at, int64_t value, uint32_t bytes) {
  switch (bytes) {
    case 1: {
      const auto v = static_cast<uint8_t>(value);
      std::memcpy(at, &v, 1);
      break;
    }
    case 2: {
      const auto v = static_cast<uint16_t>(value);
      std::memcpy(at, &v, 2);
      break;
    }
    case 4: {
      const auto v = static_cast<uint32_t>(value);
      std::memcpy(at, &v, 4);
      break;
    }
    case 8:
      std::memcpy(at, &value, 8);
      break;
    default:
      break;
  }
}

int tma_slot_of(const std::vector<int>& used, int descriptor) {
  return static_cast<int>(std::find(used.begin(), used.end(), descriptor) - used.begin());
}

}  // namespace

CUaccessProperty parse_access_property(std::string_view text, std::string_view context) {
  if (text == "persisting") return CU_ACCESS_PROPERTY_PERSISTING;
  if (text == "streaming") return CU_ACCESS_PROPERTY_STREAMING;
  if (text == "normal") return CU_ACCESS_PROPERTY_NORMAL;
  throw ProgramError(fmt::format(
      "{}: access property '{}' is not one of persisting, streaming, normal", context, text));
}

ArgLayout layout_args(const Program& program, const Launch& launch,
                      const std::vector<KernelArg>& args,
                      const std::function<int(std::string_view)>& symbol_slot,
                      const std::function<int(int)>& tma_slot) {
  if (args.size() > static_cast<size_t>(kMaxKernelArgs)) {
    throw ProgramError(fmt::format("kernel '{}' takes {} parameters; at most {} are supported",
                                   launch.kernel, args.size(), kMaxKernelArgs));
  }
  ArgLayout layout;
  uint32_t offset = 0;
  for (const KernelArg& arg : args) {
    ArgSlot slot;
    slot.source = arg.source;
    slot.kind = arg.kind;
    switch (arg.source) {
      case KernelArg::Source::kParam: {
        slot.index = arg.index;
        const KernelParam& param = program.params.at(static_cast<size_t>(arg.index));
        bool pointer = !param.is_scalar() || param.dtype.is_handle();
        if (param.is_struct()) {
          // Passed in place from the BoundCall's aligned copy, as a TMA map is; the driver
          // copies arg.bytes from it.
          slot.kind = KernelArg::Kind::kStruct;
          slot.bytes = 0;
        } else if (pointer) {
          slot.kind = KernelArg::Kind::kPointer;
          slot.bytes = sizeof(void*);
        } else {
          slot.bytes = arg.bytes;
        }
        break;
      }
      case KernelArg::Source::kSymbol:
        slot.index = symbol_slot(arg.name);
        slot.bytes = arg.bytes;
        if (slot.index < 0) {
          throw ProgramError(fmt::format("kernel '{}': parameter '{}' names no bound symbol",
                                         launch.kernel, arg.name));
        }
        break;
      case KernelArg::Source::kTmaDescriptor:
        slot.index = tma_slot(arg.index);
        slot.bytes = 0;
        break;
    }
    bool valid_size =
        slot.bytes == 0 || slot.bytes == 1 || slot.bytes == 2 || slot.bytes == 4 || slot.bytes == 8;
    if (slot.kind == KernelArg::Kind::kFloat && slot.bytes != 4 && slot.bytes != 8) {
      valid_size = false;
    }
    if (!valid_size) {
      throw ProgramError(fmt::format(
          "kernel '{}': parameter '{}' of type '{}' ({} bytes) cannot be passed by the nvrtc "
          "launch plan (supported: pointers, 1/2/4/8-byte integers, float, double, CUtensorMap)",
          launch.kernel, arg.name, arg.c_type, slot.bytes));
    }
    if (slot.bytes != 0) {
      offset = (offset + slot.bytes - 1) / slot.bytes * slot.bytes;
      slot.offset = offset;
      offset += slot.bytes;
    }
    layout.slots.push_back(slot);
  }
  if (offset > kMaxArgBytes) {
    throw ProgramError(
        fmt::format("kernel '{}': its arguments take {} bytes; at most {} are supported",
                    launch.kernel, offset, kMaxArgBytes));
  }
  layout.total_bytes = offset;
  return layout;
}

ProgramPlan build_program_plan(const Program& program, const detail::Binder& binder) {
  ProgramPlan plan;
  std::vector<std::vector<KernelArg>> all_args = resolve_all(program);
  plan.tma_descriptors = used_descriptors(program, all_args);
  auto symbol_slot = [&binder](std::string_view name) { return binder.symbol_slot(name); };
  auto tma_slot = [&plan](int descriptor) { return tma_slot_of(plan.tma_descriptors, descriptor); };
  for (size_t l = 0; l < program.launches.size(); ++l) {
    const Launch& launch = program.launches[l];
    LaunchPlan lp;
    lp.kernel = launch.kernel;
    static constexpr const char* kAxes[] = {"x", "y", "z"};
    for (int d = 0; d < 3; ++d) {
      lp.grid[d] = binder.compile(launch.grid[d],
                                  fmt::format("grid.{} of launch '{}'", kAxes[d], launch.kernel));
      lp.block[d] = binder.compile(launch.block[d],
                                   fmt::format("block.{} of launch '{}'", kAxes[d], launch.kernel));
    }
    lp.dynamic_smem = binder.compile(launch.dynamic_smem,
                                     fmt::format("dynamic_smem of launch '{}'", launch.kernel));
    lp.cluster = launch.cluster;
    lp.cooperative = launch.cooperative;
    lp.pdl = launch.pdl;
    lp.layout = layout_args(program, launch, all_args[l], symbol_slot, tma_slot);
    for (const ArgSlot& slot : lp.layout.slots) {
      if (slot.source == KernelArg::Source::kTmaDescriptor) {
        lp.tma_slots.push_back(slot.index);
      }
    }
    if (launch.l2_windows.size() > 1) {
      throw ProgramError(fmt::format(
          "launch '{}' declares {} L2 windows; a stream holds one access-policy window, so at most "
          "one per launch is supported",
          launch.kernel, launch.l2_windows.size()));
    }
    if (!launch.l2_windows.empty()) {
      const L2Window& window = launch.l2_windows[0];
      std::string context = fmt::format("L2 window of launch '{}'", launch.kernel);
      lp.has_l2_window = true;
      lp.l2.param = -1;
      for (size_t i = 0; i < program.params.size(); ++i) {
        if (program.params[i].name == window.param && !program.params[i].is_scalar()) {
          lp.l2.param = static_cast<int>(i);
        }
      }
      if (lp.l2.param < 0) {
        throw ProgramError(
            fmt::format("{}: '{}' is not a tensor parameter", context, window.param));
      }
      if (!(window.hit_ratio >= 0.0 && window.hit_ratio <= 1.0)) {
        throw ProgramError(
            fmt::format("{}: hit_ratio {} is outside [0, 1]", context, window.hit_ratio));
      }
      lp.l2.num_bytes = binder.compile(window.num_bytes, context + " num_bytes");
      lp.l2.hit_ratio = static_cast<float>(window.hit_ratio);
      lp.l2.hit_property = parse_access_property(window.hit_property, context);
      lp.l2.miss_property = parse_access_property(window.miss_property, context);
      if (lp.l2.miss_property == CU_ACCESS_PROPERTY_PERSISTING) {
        throw ProgramError(fmt::format("{}: miss_property must be streaming or normal", context));
      }
    }
    plan.launches.push_back(std::move(lp));
  }
  return plan;
}

std::string render_program_plan(const Program& program) {
  std::vector<std::vector<KernelArg>> all_args = resolve_all(program);
  std::vector<int> used = used_descriptors(program, all_args);
  std::string text = fmt::format(
      "// nvrtc launch plan of program '{}' (executed in C++ by tilejit; not compiled)\n"
      "// call(params..., stream): bind arguments, then in order:\n",
      program.name);
  for (size_t slot = 0; slot < used.size(); ++slot) {
    const TmaDescriptor& d = program.tma_descriptors[static_cast<size_t>(used[slot])];
    text += fmt::format(
        "tma[{}] {} = {}(buffer={}, rank={}, global_dims={}, global_strides={}, box_dims=[{}], "
        "element_strides=[{}], interleave={}, swizzle={}, l2_promotion={}, oob_fill={}{})  "
        "// once per call; cached while address, dims and strides repeat\n",
        slot, d.name,
        d.kind == TmaDescriptor::Kind::kTiled ? "cuTensorMapEncodeTiled"
                                              : "cuTensorMapEncodeIm2col",
        d.buffer, d.rank, d.global_dims.empty() ? "<buffer shape>" : "<given>",
        d.global_strides.empty() ? "<buffer strides>" : "<given>", fmt::join(d.box_dims, ", "),
        fmt::join(d.element_strides, ", "), d.interleave, d.swizzle, d.l2_promotion, d.oob_fill,
        d.kind == TmaDescriptor::Kind::kIm2col
            ? fmt::format(", lower_corner=[{}], upper_corner=[{}], channels_per_pixel={}, "
                          "pixels_per_column={}",
                          fmt::join(d.lower_corner, ", "), fmt::join(d.upper_corner, ", "),
                          d.channels_per_pixel, d.pixels_per_column)
            : "");
  }
  for (size_t l = 0; l < program.launches.size(); ++l) {
    const Launch& launch = program.launches[l];
    ArgLayout layout = layout_args(
        program, launch, all_args[l], [](std::string_view) { return 0; },
        [&used](int descriptor) { return tma_slot_of(used, descriptor); });
    text += fmt::format("launch[{}] {}\n", l, launch.kernel);
    text += fmt::format("  grid  = ({}, {}, {})\n", launch.grid[0].str(), launch.grid[1].str(),
                        launch.grid[2].str());
    text += fmt::format("  block = ({}, {}, {})\n", launch.block[0].str(), launch.block[1].str(),
                        launch.block[2].str());
    text += fmt::format(
        "  dynamic_smem = {}  // static + dynamic > 48 KB: "
        "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES\n",
        launch.dynamic_smem.str());
    if (launch.uses_cluster()) {
      text += fmt::format("  attribute CLUSTER_DIMENSION = ({}, {}, {})\n", launch.cluster[0],
                          launch.cluster[1], launch.cluster[2]);
    }
    if (launch.cooperative) text += "  attribute COOPERATIVE = 1\n";
    if (launch.pdl) text += "  attribute PROGRAMMATIC_STREAM_SERIALIZATION = 1\n";
    for (const L2Window& w : launch.l2_windows) {
      text += fmt::format(
          "  l2 window: base={}, num_bytes=min({}, device max persisting L2, max window), "
          "hit_ratio={}, hit={}, miss={}  // set before, reset after, limit restored\n",
          w.param, w.num_bytes.str(), w.hit_ratio, w.hit_property, w.miss_property);
    }
    text += fmt::format("  args ({} bytes):\n", layout.total_bytes);
    for (size_t a = 0; a < layout.slots.size(); ++a) {
      const ArgSlot& slot = layout.slots[a];
      const KernelArg& arg = all_args[l][a];
      if (slot.source == KernelArg::Source::kTmaDescriptor) {
        text += fmt::format("    {} {}  <- &tma[{}]\n", arg.c_type, arg.name, slot.index);
      } else if (slot.kind == KernelArg::Kind::kStruct) {
        text += fmt::format("    {} {}  <- struct '{}', {} bytes in place\n", arg.c_type, arg.name,
                            arg.name, arg.bytes);
      } else {
        text += fmt::format("    {} {}  <- {} '{}', {} bytes at offset {}\n", arg.c_type, arg.name,
                            source_name(slot.source), arg.name, slot.bytes, slot.offset);
      }
    }
    text += "  cuLaunchKernelEx(config, kernel, args, stream)\n";
  }
  return text;
}

void pack_args(const ArgLayout& layout, const detail::BoundCall& call, const CUtensorMap* maps,
               std::byte* buffer, void** pointers) {
  size_t n = layout.slots.size();
  for (size_t i = 0; i < n; ++i) {
    const ArgSlot& slot = layout.slots[i];
    std::byte* at = buffer + slot.offset;
    pointers[i] = at;
    switch (slot.source) {
      case KernelArg::Source::kTmaDescriptor:
        // The driver copies parameters at launch, so the call's stack copy is enough.
        pointers[i] = const_cast<CUtensorMap*>(&maps[slot.index]);
        break;
      case KernelArg::Source::kSymbol:
        store_integer(at, call.symbols[static_cast<size_t>(slot.index)], slot.bytes);
        break;
      case KernelArg::Source::kParam: {
        size_t p = static_cast<size_t>(slot.index);
        switch (slot.kind) {
          case KernelArg::Kind::kPointer:
          case KernelArg::Kind::kTmaDescriptor:
            std::memcpy(at, &call.data[p], sizeof(void*));
            break;
          case KernelArg::Kind::kStruct:
            pointers[i] = call.data[p];  // the Binder's aligned copy of the struct's bytes
            break;
          case KernelArg::Kind::kFloat:
            if (slot.bytes == 4) {
              float value = static_cast<float>(call.float_values[p]);
              std::memcpy(at, &value, 4);
            } else {
              std::memcpy(at, &call.float_values[p], 8);
            }
            break;
          case KernelArg::Kind::kInt:
          case KernelArg::Kind::kUInt:
          case KernelArg::Kind::kBool:
            store_integer(at, call.int_values[p], slot.bytes);
            break;
        }
        break;
      }
    }
  }
}

}  // namespace tilejit::cuda
