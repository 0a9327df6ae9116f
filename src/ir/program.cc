#include "tilejit/program.h"

#include <fmt/format.h>
#include <algorithm>

#include "tilejit/errors.h"

namespace tilejit {
namespace {

std::array<Expr, 3> three_dims(std::vector<Expr> dims, std::string_view what) {
  if (dims.empty() || dims.size() > 3) {
    throw ProgramError(fmt::format("{} takes 1 to 3 dimensions, got {}", what, dims.size()));
  }
  std::array<Expr, 3> out{Expr(1), Expr(1), Expr(1)};
  std::move(dims.begin(), dims.end(), out.begin());
  return out;
}

}  // namespace

std::string_view to_string(Language language) {
  switch (language) {
    case Language::kCuda:
      return "cuda";
    case Language::kC:
      return "c";
    case Language::kHip:
      return "hip";
    case Language::kMetal:
      return "metal";
  }
  return "cuda";
}

Language parse_language(std::string_view text) {
  for (Language l : {Language::kCuda, Language::kC, Language::kHip, Language::kMetal}) {
    if (to_string(l) == text) return l;
  }
  throw ProgramError(fmt::format("unknown language '{}': expected cuda | c | hip | metal", text));
}

KernelParam KernelParam::tensor(std::string name, DataType dtype, std::vector<Expr> shape,
                                std::optional<std::vector<Expr>> strides) {
  KernelParam p;
  p.name = std::move(name);
  p.dtype = dtype;
  p.shape = std::move(shape);
  p.strides = std::move(strides);
  p.scalar = false;
  return p;
}

KernelParam KernelParam::scalar_param(std::string name, DataType dtype) {
  KernelParam p;
  p.name = std::move(name);
  p.dtype = dtype;
  p.scalar = true;
  return p;
}

KernelParam KernelParam::struct_param(std::string name, std::vector<StructField> fields) {
  KernelParam p = scalar_param(std::move(name), DataType{TypeCode::kStruct, 8, 1});
  p.fields = std::move(fields);
  return p;
}

StructLayout KernelParam::struct_layout() const {
  StructLayout layout;
  uint32_t end = 0;
  for (const StructField& field : fields) {
    const auto element = static_cast<uint32_t>(field.dtype.storage_bytes(1));
    const uint32_t offset = (end + element - 1) / element * element;
    layout.offsets.push_back(offset);
    end = offset + element * field.count;
    layout.alignment = std::max(layout.alignment, element);
  }
  layout.size = (end + layout.alignment - 1) / layout.alignment * layout.alignment;
  return layout;
}

Launch& Launch::with_grid(std::vector<Expr> dims) {
  grid = three_dims(std::move(dims), fmt::format("the grid of launch '{}'", kernel));
  return *this;
}

Launch& Launch::with_block(std::vector<Expr> dims) {
  block = three_dims(std::move(dims), fmt::format("the block of launch '{}'", kernel));
  return *this;
}

Launch& Launch::with_dynamic_smem(Expr bytes) {
  dynamic_smem = std::move(bytes);
  return *this;
}

Launch& Launch::with_cluster(std::array<uint32_t, 3> dims) {
  cluster = dims;
  return *this;
}

Launch& Launch::with_cooperative(bool on) {
  cooperative = on;
  return *this;
}

Launch& Launch::with_pdl(bool on) {
  pdl = on;
  return *this;
}

Launch& Launch::with_signature(std::string parameter_list) {
  signature = std::move(parameter_list);
  return *this;
}

Launch& Launch::with_args(std::vector<std::string> names) {
  args = std::move(names);
  return *this;
}

Launch& Launch::with_l2_window(L2Window window) {
  l2_windows.push_back(std::move(window));
  return *this;
}

std::vector<std::string> Program::shape_variables() const {
  std::vector<std::string> out;
  auto add = [&](const Expr& e) {
    for (std::string& v : e.variables()) {
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
    }
  };
  for (const KernelParam& p : params) {
    for (const Expr& e : p.shape) add(e);
    if (p.strides) {
      for (const Expr& e : *p.strides) add(e);
    }
  }
  return out;
}

const KernelParam* Program::find_param(std::string_view param_name) const {
  for (const KernelParam& p : params) {
    if (p.name == param_name) return &p;
  }
  return nullptr;
}

ProgramBuilder::ProgramBuilder(std::string name) {
  program_.name = std::move(name);
}

ProgramBuilder& ProgramBuilder::source(std::string text, Language language) {
  program_.source = std::move(text);
  program_.language = language;
  return *this;
}

ProgramBuilder& ProgramBuilder::tensor(std::string name, std::string_view dtype,
                                       std::vector<Expr> shape,
                                       std::optional<std::vector<Expr>> strides) {
  program_.params.push_back(KernelParam::tensor(std::move(name), DataType::parse(dtype),
                                                std::move(shape), std::move(strides)));
  return *this;
}

ProgramBuilder& ProgramBuilder::scalar(std::string name, std::string_view dtype) {
  program_.params.push_back(KernelParam::scalar_param(std::move(name), DataType::parse(dtype)));
  return *this;
}

ProgramBuilder& ProgramBuilder::struct_scalar(std::string name, std::vector<StructField> fields) {
  program_.params.push_back(KernelParam::struct_param(std::move(name), std::move(fields)));
  return *this;
}

ProgramBuilder& ProgramBuilder::launch(Launch launch) {
  program_.launches.push_back(std::move(launch));
  return *this;
}

ProgramBuilder& ProgramBuilder::tma(TmaDescriptor descriptor) {
  program_.tma_descriptors.push_back(std::move(descriptor));
  return *this;
}

ProgramBuilder& ProgramBuilder::include_dir(std::string dir) {
  program_.include_dirs.push_back(std::move(dir));
  return *this;
}

ProgramBuilder& ProgramBuilder::define(std::string name, std::string value) {
  program_.defines[std::move(name)] = std::move(value);
  return *this;
}

ProgramBuilder& ProgramBuilder::out_idx(std::vector<int> indices) {
  program_.out_idx = std::move(indices);
  return *this;
}

ProgramBuilder& ProgramBuilder::compile_flag(std::string flag) {
  program_.compile_flags.push_back(std::move(flag));
  return *this;
}

Program ProgramBuilder::build() const {
  program_.validate();
  return program_;
}

}  // namespace tilejit
