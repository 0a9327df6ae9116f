"""TileLang front end: a TileLang kernel in, a tilejit Program out.

TileLang lowers the kernel (``tilelang.lower``, its own passes, under a PassContext holding the
``pass_configs``); this module then reads from the lowered modules what TileLang's host
wrappers read (the seed's TLCUDASourceWrapper / TLNVRTCSourceWrapper) and writes it down as a
Program: the device source, the params with their symbolic shapes, one Launch per
``call_packed`` of a device kernel in the host function (grid, block, dynamic shared memory
and cluster from its launch arguments; cooperative and PDL from the kernel's attributes), the
TMA descriptors of ``tma_descriptor_args``, the L2 windows the host sets around launches,
TileLang's include dirs and compile flags. The Program needs neither Python nor TileLang to run: save it with
``to_json()`` and run it from C++ or the CLI.

    import tilejit
    program = tilejit.Program.from_tilelang(matmul(1024, 1024, 1024), target="sm_90a")
    kernel = tilejit.compile(matmul(1024, 1024, 1024), out_idx=[-1], target="sm_90a")

Whatever the Program model cannot express (a launch inside a host-side loop, a kernel argument
computed on the host, a dtype tilejit lacks, ...) is a ProgramError naming the construct.
Importing this module imports TileLang; ``import tilejit`` alone never does.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Mapping, Optional, Sequence, Union

import tilelang
from tilelang import tvm

from . import _pass_configs
from ._core import L2Window, Launch, Program, ProgramError, Scalar, Tensor, TmaDescriptor

tirx = tvm.tirx

__all__ = ["from_tilelang", "include_dirs", "lower", "prim_func_of", "resolve_target"]

# The flags TileLang compiles its kernels with: C++20 on every backend (tl_templates'
# reduce.h uses explicit lambda template parameters), and for NVRTC -default-device, since
# CUTLASS declares some device helpers without __device__ (nvcc, compiling offline, has no
# use for it and the nvcc backend leaves it out).
TILELANG_FLAGS = ["-std=c++20", "-default-device"]

_SM = re.compile(r"^sm_(\d+)([af]?)$")

# The CUtensorMapDataType that tilejit encodes for a buffer dtype (src/cuda/tma.cc), to check
# TileLang's choice against: CUDA's enum values.
_TMA_DTYPE = {"uint8": 0, "int8": 0, "bool": 0, "float8_e4m3": 0, "float8_e4m3fn": 0,
              "float8_e5m2": 0, "uint16": 1, "int16": 1, "uint32": 2, "int32": 3, "uint64": 4,
              "int64": 5, "float16": 6, "float32": 7, "float64": 8, "bfloat16": 9}
# CUDA's CUtensorMap enums, by value, in tilejit's spelling (docs/program-format.md).
_INTERLEAVE = {0: "none", 1: "16b", 2: "32b"}
_SWIZZLE = {0: "none", 1: "32b", 2: "64b", 3: "128b", 4: "128b_atom_32b",
            5: "128b_atom_32b_flip_8b", 6: "128b_atom_64b"}
_L2_PROMOTION = {0: "none", 1: "64b", 2: "128b", 3: "256b"}
_OOB_FILL = {0: "none", 1: "nan_request_zero_fma"}


def _device_source(kernel_source: str) -> str:
    """The kernel source as TileLang hands it to NVRTC: with tl_templates' std shim for NVRTC
    (which has no C++ standard library; the header is empty elsewhere) and, for kernels that
    use PDL, the device runtime API declarations."""
    prefix = "#include <tl_templates/cuda/nvrtc_std.h>\n"
    if ("cudaGridDependencySynchronize" in kernel_source
            or "cudaTriggerProgrammaticLaunchCompletion" in kernel_source):
        prefix = '#include "cuda_device_runtime_api.h"\n' + prefix
    return prefix + kernel_source


# Host-side packed calls that set things up rather than launch a kernel.
_TMA_CREATE = ("__tvm_tensormap_create_tiled", "__tvm_tensormap_create_im2col")
_SETUP_CALLS = ("__tvm_set_device",) + _TMA_CREATE
# T.annotate_l2_hit_ratio: the host sets an access policy window on the stream before the
# launches it covers and resets it after them.
_L2_SET = "__tvm_cuda_stream_set_access_policy_window"
_L2_RESET = "__tvm_cuda_stream_reset_access_policy_window"


# ---- inputs: functions, targets, pass configs ------------------------------------------------

def prim_func_of(func: Any) -> tirx.PrimFunc:
    """The PrimFunc of ``func``: a PrimFunc itself, or a ``@tilelang.jit`` function whose
    ``get_tir()`` needs no arguments."""
    if isinstance(func, tirx.PrimFunc):
        return func
    get_tir = getattr(func, "get_tir", None)
    if get_tir is not None and type(func).__module__.startswith("tilelang"):
        try:
            prim_func = get_tir()
        except TypeError as error:
            raise ProgramError(
                f"a @tilelang.jit function needs arguments to produce its PrimFunc ({error}); "
                f"pass func.get_tir(*args) instead") from None
        if isinstance(prim_func, tirx.PrimFunc):
            return prim_func
    raise ProgramError(f"expected a TileLang PrimFunc or @tilelang.jit function, got "
                       f"{type(func).__module__}.{type(func).__name__}")


def _device_arch() -> str:
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        raise ProgramError("target 'auto' (or 'cuda' without an arch) needs a CUDA device to read "
                           "the architecture from; none is visible: pass e.g. target='sm_90a'")
    major, minor = torch.cuda.get_device_capability()
    # The arch-specific variant from 9.0 on, as tilejit's own 'auto' chooses.
    return f"sm_{major}{minor}{'a' if major >= 9 else ''}"


def resolve_target(target: Any = None) -> tuple[Any, str]:
    """(TVM Target for TileLang's lowering, tilejit target string) for the seed's target forms:
    None (TILELANG_TARGET, else 'auto'), 'auto', 'cuda', 'sm_90a', 'cuda -arch=sm_90a', a
    tvm Target or a Target dict. Only CUDA targets convert."""
    if target is None:
        target = os.environ.get("TILELANG_TARGET") or "auto"
    if isinstance(target, Mapping):
        target = tvm.target.Target(dict(target))
    if isinstance(target, tvm.target.Target):
        if target.kind.name != "cuda":
            raise ProgramError(f"target kind '{target.kind.name}': the TileLang front end "
                               f"converts CUDA kernels only")
        arch = str(target.attrs.get("arch", "")) or _device_arch()
        if "arch" not in target.attrs:
            target = tvm.target.Target({**target.export(), "arch": arch})
        return target, arch
    if not isinstance(target, str):
        raise ProgramError(f"target: expected a string, dict or tvm Target, got "
                           f"{type(target).__name__}")
    text = target.strip()
    match = re.search(r"-arch=(\S+)", text)
    if match:
        arch = match.group(1)
        kind = text.split()[0]
    elif _SM.match(text):
        arch, kind = text, "cuda"
    elif text in ("auto", "cuda"):
        arch, kind = _device_arch(), "cuda"
    else:
        kind, arch = text.split()[0] if text else text, ""
    if kind != "cuda":
        raise ProgramError(f"target '{target}': the TileLang front end converts CUDA kernels only "
                           f"(give 'auto', 'cuda', 'sm_XY' or a CUDA tvm Target)")
    if not _SM.match(arch):
        raise ProgramError(f"target '{target}': '{arch}' is not a CUDA arch like 'sm_90a'")
    return tvm.target.Target({"kind": "cuda", "arch": arch}), arch


def include_dirs() -> list[str]:
    """TileLang's headers, where TileLang itself finds them: tl_templates and CUTLASS."""
    from tilelang import env

    root = os.path.dirname(os.path.abspath(tilelang.__file__))
    templates = env.TILELANG_TEMPLATE_PATH or os.path.join(root, "src")
    cutlass = env.CUTLASS_INCLUDE_DIR or os.path.join(root, "3rdparty", "cutlass", "include")
    return [os.path.normpath(templates), os.path.normpath(cutlass)]


def _merged_options(func: tirx.PrimFunc, out_idx: Any, pass_configs: Optional[Mapping[Any, Any]],
                    compile_flags: Union[Sequence[str], str, None]):
    """out_idx, pass_configs and compile flags merged with the function's own attributes, as
    tilelang.compile merges them (explicit pass_configs win; flags are appended)."""
    attrs = func.attrs or {}
    if "tilelang_out_idx" in attrs:
        if out_idx is not None:
            raise ProgramError("out_idx is given, and the PrimFunc already returns T.empty "
                               "tensors (its tilelang_out_idx); give only one")
        out_idx = [int(i) for i in attrs["tilelang_out_idx"]]
    configs: dict[Any, Any] = {}
    if "tilelang_pass_configs" in attrs:
        configs.update({str(k): v for k, v in dict(attrs["tilelang_pass_configs"]).items()})
    configs.update(pass_configs or {})
    flags = [str(f) for f in attrs["tilelang_compile_flags"]] \
        if "tilelang_compile_flags" in attrs else []
    if isinstance(compile_flags, str):
        flags.append(compile_flags)
    else:
        flags.extend(compile_flags or ())
    flags = [item for flag in flags for item in flag.split()]
    return out_idx, configs, flags


def lower(func: Any, target: Any = None, pass_configs: Optional[Mapping[Any, Any]] = None):
    """TileLang's own lowering of ``func`` for a CUDA ``target``, device code not compiled:
    its CompiledArtifact (kernel_source, host_mod, device_mod, params)."""
    prim_func = prim_func_of(func)
    tvm_target, _ = resolve_target(target)
    known = tvm.transform.PassContext.list_configs().keys()
    config = _pass_configs.for_lowering(pass_configs, known)
    # LayoutInference reads the target from the context, not from the argument.
    with tvm.transform.PassContext(opt_level=3, config=config), tvm_target:
        return tilelang.lower(prim_func, target=tvm_target, enable_device_compile=False)


# ---- conversion ------------------------------------------------------------------------------

class _Names:
    """TIR variables to the names tilejit knows them by: tensor params (through their data
    pointers), shape/stride variables, scalar params and TMA descriptors."""

    def __init__(self) -> None:
        self.by_var: dict[Any, str] = {}
        self.kinds: dict[str, str] = {}  # name -> "tensor" / "symbol" / "scalar" / "descriptor"
        self.lets: dict[str, Any] = {}   # host let-bindings, by variable name

    def add(self, var: Any, name: str, kind: str, what: str) -> None:
        if var in self.by_var:
            return
        if name in self.kinds:
            raise ProgramError(f"{what}: the name '{name}' is used by two different variables of "
                               f"the TileLang function; give them distinct names")
        self.by_var[var] = name
        self.kinds[name] = kind

    def lookup(self, var: Any) -> Optional[str]:
        if var in self.by_var:
            return self.by_var[var]
        # The host function re-binds shape variables (N = shape[0]) under the same name.
        name = var.name
        return name if name in self.kinds else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, tirx.IntImm):
        return int(value.value)
    raise ProgramError(f"{what}: expected a constant, got the expression `{value}`")


_BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "FloorDiv": "/", "FloorMod": "%"}
_FUNCTIONS = {"Min": "min", "Max": "max"}


def _expr(value: Any, names: _Names, what: str, depth: int = 0) -> Union[int, str]:
    """A TIR integer expression as a tilejit expression (an int, or its text)."""
    if isinstance(value, int):
        return value
    if isinstance(value, tirx.IntImm):
        return int(value.value)
    if depth > 64:
        raise ProgramError(f"{what}: expression too deep: `{value}`")
    kind = type(value).__name__
    if isinstance(value, tirx.Var):
        name = names.lookup(value)
        if name is not None and names.kinds[name] in ("symbol", "scalar"):
            return name
        if value.name in names.lets:
            return _expr(names.lets[value.name], names, what, depth + 1)
        raise ProgramError(f"{what}: `{value.name}` is neither a shape variable nor a scalar "
                           f"parameter of the function, and the host computes it from something "
                           f"tilejit cannot express")
    if isinstance(value, tirx.Cast):
        # Integer casts (int64 shapes to int32 launch values) are dropped: tilejit evaluates in
        # int64 and reports overflow instead of wrapping.
        if not str(value.dtype).startswith(("int", "uint")):
            raise ProgramError(f"{what}: a cast to {value.dtype} in `{value}`")
        return _expr(value.value, names, what, depth + 1)
    if kind in _BINARY or kind in _FUNCTIONS:
        a = _expr(value.a, names, what, depth + 1)
        b = _expr(value.b, names, what, depth + 1)
        if kind in _FUNCTIONS:
            return f"{_FUNCTIONS[kind]}({a}, {b})"
        return f"({a}) {_BINARY[kind]} ({b})"
    raise ProgramError(f"{what}: `{value}` ({kind}) has no tilejit expression (tilejit has "
                       f"+ - * floor / % min max over shape variables)")


def _params(func: tirx.PrimFunc, names: _Names) -> list[Any]:
    """tilejit params for the function's params; each tensor's data pointer goes into names."""
    # Shape and stride variables first, so that a tensor's expressions can refer to them.
    for param in func.params:
        buffer = func.buffer_map.get(param)
        if buffer is None:
            continue
        for i, dim in enumerate(list(buffer.shape) + list(buffer.strides)):
            if isinstance(dim, tirx.Var):
                names.add(dim, dim.name, "symbol", f"buffer '{buffer.name}' dimension {i}")
    params = []
    for param in func.params:
        buffer = func.buffer_map.get(param)
        if buffer is None:
            dtype = str(param.dtype)
            names.add(param, param.name, "scalar", f"parameter '{param.name}'")
            params.append(Scalar(param.name, _dtype(dtype, f"parameter '{param.name}'")))
            continue
        what = f"tensor parameter '{buffer.name}'"
        if not (isinstance(buffer.elem_offset, tirx.IntImm) and int(buffer.elem_offset) == 0):
            raise ProgramError(f"{what}: an element offset (`{buffer.elem_offset}`) — tilejit "
                               f"tensors start at their data pointer")
        shape = [_expr(d, names, f"{what} shape[{i}]") for i, d in enumerate(buffer.shape)]
        strides = [_expr(s, names, f"{what} strides[{i}]") for i, s in enumerate(buffer.strides)]
        dtype = _dtype(str(buffer.dtype), what)
        tensor = Tensor(buffer.name, dtype, shape, strides or None)
        if strides and tensor == Tensor(buffer.name, dtype, shape, _compact_strides(shape)):
            tensor = Tensor(buffer.name, dtype, shape)  # compact row-major: checked as such
        params.append(tensor)
        names.add(buffer.data, buffer.name, "tensor", what)
    return params


def _compact_strides(shape: Sequence[Union[int, str]]) -> list[Union[int, str]]:
    strides: list[Union[int, str]] = [1]
    for dim in reversed(list(shape)[1:]):
        strides.insert(0, f"({dim}) * ({strides[0]})")
    return strides


def _dtype(dtype: str, what: str) -> str:
    try:
        Scalar("probe", dtype)
    except ProgramError:
        raise ProgramError(f"{what}: dtype '{dtype}' has no tilejit equivalent") from None
    return dtype


def _single(module: Any, what: str) -> Any:
    functions = list(module.functions.items())
    if len(functions) != 1:
        raise ProgramError(f"the lowered {what} module has {len(functions)} functions; the "
                           f"TileLang front end converts one host function")
    return functions[0][1]


_LOOPS_AND_BRANCHES = tuple(getattr(tirx, n) for n in ("For", "While", "IfThenElse")
                            if hasattr(tirx, n))
# `x = value` in the host function: Bind statements (LetStmt before TVM's tirx) and Let
# expressions.
_BINDINGS = tuple(getattr(tirx, n) for n in ("Bind", "LetStmt", "Let") if hasattr(tirx, n))


def _packed_calls(host: tirx.PrimFunc, names: _Names) -> tuple[list[Any], set[Any]]:
    """Every tvm_call_packed in the host body in execution order, the ones under a host-side
    branch or loop, and (into names.lets) the host's let-bindings."""
    calls: list[Any] = []
    nested: set[Any] = set()
    packed = tvm.ir.Op.get("tirx.tvm_call_packed")

    def collect_nested(node: Any) -> None:
        if isinstance(node, tirx.Call) and node.op.same_as(packed):
            nested.add(node)

    def visit(node: Any) -> None:
        if isinstance(node, tirx.Call) and node.op.same_as(packed):
            calls.append(node)
        elif isinstance(node, _LOOPS_AND_BRANCHES):
            body = [node.body] if not isinstance(node, tirx.IfThenElse) else \
                [node.then_case] + ([node.else_case] if node.else_case is not None else [])
            for stmt in body:
                tirx.stmt_functor.post_order_visit(stmt, collect_nested)
        elif isinstance(node, _BINDINGS):
            names.lets.setdefault(node.var.name, node.value)

    tirx.stmt_functor.post_order_visit(host.body, visit)
    return calls, nested


def _attrs(func: tirx.PrimFunc) -> dict[str, Any]:
    attrs = func.attrs or {}
    return {str(k): attrs[k] for k in attrs.keys()}


def _tensor_at(address: Any, names: _Names) -> Optional[str]:
    """The tensor param whose data pointer ``address`` is, if it is one."""
    name = names.lookup(address) if isinstance(address, tirx.Var) else None
    return name if name is not None and names.kinds[name] == "tensor" else None


def _descriptor(name: str, args: Sequence[Any], buffers: dict[str, Any], names: _Names) -> Any:
    what = f"TMA descriptor '{name}'"
    create = str(args[0].value) if isinstance(args[0], tirx.StringImm) else str(args[0])
    if create not in _TMA_CREATE:
        raise ProgramError(f"{what}: made by '{create}', which tilejit does not know")
    im2col = create == "__tvm_tensormap_create_im2col"
    dtype_code = _int(args[2], f"{what} data type")
    rank = _int(args[3], f"{what} rank")
    buffer = _tensor_at(args[4], names)
    if buffer is None:
        raise ProgramError(f"{what}: its global address `{args[4]}` is not the start of a tensor "
                           f"parameter (tilejit encodes descriptors over whole parameters)")
    dtype = str(buffers[buffer].dtype)
    expected = _TMA_DTYPE.get(dtype)
    if expected != dtype_code:
        raise ProgramError(f"{what}: TileLang encodes tensor '{buffer}' ({dtype}) as "
                           f"CUtensorMapDataType {dtype_code}, tilejit as {expected}")
    rest = list(args[5:])
    need = 5 * rank + 2 if im2col else 4 * rank + 4
    if len(rest) < need:
        raise ProgramError(f"{what}: {len(rest)} arguments after the address, expected {need} "
                           f"for rank {rank}")
    dims = [_expr(d, names, f"{what} global_dims[{i}]") for i, d in enumerate(rest[:rank])]
    # TileLang lists rank byte strides, the first being the element size; the driver (and
    # tilejit) take the rank - 1 strides of dimensions 1 and up.
    strides = [_expr(s, names, f"{what} global_strides[{i}]")
               for i, s in enumerate(rest[rank + 1:2 * rank])]

    def enum(table: dict[int, str], value: Any, field: str) -> str:
        code = _int(value, f"{what} {field}")
        if code not in table:
            raise ProgramError(f"{what}: {field} {code} is not a CUDA value tilejit knows")
        return table[code]

    if not im2col:
        box = [_int(b, f"{what} box_dims[{i}]") for i, b in enumerate(rest[2 * rank:3 * rank])]
        element_strides = [_int(e, f"{what} element_strides[{i}]")
                           for i, e in enumerate(rest[3 * rank:4 * rank])]
        tail = rest[4 * rank:4 * rank + 4]
        return TmaDescriptor(name, buffer, kind="tiled", rank=rank, global_dims=dims,
                             global_strides=strides, box_dims=box,
                             element_strides=element_strides,
                             interleave=enum(_INTERLEAVE, tail[0], "interleave"),
                             swizzle=enum(_SWIZZLE, tail[1], "swizzle"),
                             l2_promotion=enum(_L2_PROMOTION, tail[2], "l2_promotion"),
                             oob_fill=enum(_OOB_FILL, tail[3], "oob_fill"))
    element_strides = [_int(e, f"{what} element_strides[{i}]")
                       for i, e in enumerate(rest[2 * rank:3 * rank])]
    lower = [_int(c, f"{what} lower_corner[{i}]")
             for i, c in enumerate(rest[3 * rank:4 * rank - 2])]
    upper = [_int(c, f"{what} upper_corner[{i}]")
             for i, c in enumerate(rest[4 * rank - 2:5 * rank - 4])]
    pixels, channels, *tail = rest[5 * rank - 4:5 * rank + 2]
    return TmaDescriptor(name, buffer, kind="im2col", rank=rank, global_dims=dims,
                         global_strides=strides, element_strides=element_strides,
                         interleave=enum(_INTERLEAVE, tail[0], "interleave"),
                         swizzle=enum(_SWIZZLE, tail[1], "swizzle"),
                         l2_promotion=enum(_L2_PROMOTION, tail[2], "l2_promotion"),
                         oob_fill=enum(_OOB_FILL, tail[3], "oob_fill"),
                         lower_corner=lower, upper_corner=upper,
                         channels_per_pixel=_int(channels, f"{what} channels_per_pixel"),
                         pixels_per_column=_int(pixels, f"{what} pixels_per_column"))


def _convert(artifact: Any, func: tirx.PrimFunc, name: str, out_idx: Any,
             compile_flags: list[str]) -> Program:
    names = _Names()
    params = _params(func, names)
    buffers = {b.name: b for b in func.buffer_map.values()}
    host = _single(artifact.host_mod, "host")
    host_attrs = _attrs(host)
    devices = {gv.name_hint: f for gv, f in artifact.device_mod.functions.items()}
    calls, nested = _packed_calls(host, names)

    tma_args = host_attrs.get("tma_descriptor_args") or {}
    descriptor_args: dict[str, list[Any]] = {}
    for var, args in dict(tma_args).items():
        names.add(var, var.name, "descriptor", f"TMA descriptor '{var.name}'")
        descriptor_args[var.name] = list(args)
    descriptors: dict[str, Any] = {}
    launches = []
    l2_windows: list[Any] = []  # the stream's access policy window for the next launches
    for call in calls:
        callee = str(call.args[0].value)
        if callee in _SETUP_CALLS:
            continue
        if callee == _L2_SET:
            address, num_bytes, hit_ratio = call.args[1:4]
            what = "L2 persistence window"
            tensor = _tensor_at(address, names)
            if tensor is None:
                raise ProgramError(f"{what}: its base `{address}` is not the start of a tensor "
                                   f"parameter")
            if call in nested:
                raise ProgramError(f"{what} on '{tensor}' is set inside a host-side branch or "
                                   f"loop; tilejit sets windows per launch")
            # A stream has one window: a second one replaces the first.
            l2_windows = [L2Window(tensor, _expr(num_bytes, names, f"{what} on '{tensor}'"),
                                   hit_ratio=float(hit_ratio.value))]
            continue
        if callee == _L2_RESET:
            l2_windows = []
            continue
        if callee not in devices:
            raise ProgramError(f"the host function calls '{callee}', which is not a device kernel "
                               f"of the lowered module; tilejit runs only kernel launches")
        if call in nested:
            raise ProgramError(f"the launch of '{callee}' is inside a host-side branch or loop; "
                               f"tilejit launches a fixed sequence of kernels")
        device = devices[callee]
        attrs = _attrs(device)
        count = len(device.params)
        args, launch_values = list(call.args[1:1 + count]), list(call.args[1 + count:])
        arg_names = []
        for i, (arg, param) in enumerate(zip(args, device.params)):
            what = f"kernel '{callee}' argument {i} ('{param.name}')"
            arg_name = names.lookup(arg) if isinstance(arg, tirx.Var) else None
            if arg_name is None:
                raise ProgramError(f"{what} is `{arg}`, computed on the host; tilejit passes "
                                   f"params, shape variables and TMA descriptors only")
            if names.kinds[arg_name] == "descriptor" and arg_name not in descriptors:
                descriptors[arg_name] = _descriptor(arg_name, descriptor_args[arg_name],
                                                    buffers, names)
            arg_names.append(arg_name)
        tags = [str(t) for t in attrs.get("tirx.kernel_launch_params",
                                          attrs.get("tir.kernel_launch_params", []))]
        if len(tags) != len(launch_values):
            raise ProgramError(f"kernel '{callee}': {len(launch_values)} launch values for the "
                               f"launch parameters {tags}")
        grid: list[Any] = [1, 1, 1]
        block: list[Any] = [1, 1, 1]
        cluster = [1, 1, 1]
        if "cluster_dims" in attrs:
            dims = [_int(d, f"kernel '{callee}' cluster_dims") for d in attrs["cluster_dims"]]
            cluster[:len(dims)] = dims
        dynamic_smem: Any = 0
        for tag, value in zip(tags, launch_values):
            what = f"kernel '{callee}' {tag}"
            if ".cluster_dim_" in tag:
                cluster["xyz".index(tag[-1])] = _int(value, what)
            elif tag.startswith("blockIdx."):
                grid["xyz".index(tag[-1])] = _expr(value, names, what)
            elif tag.startswith("threadIdx."):
                block["xyz".index(tag[-1])] = _expr(value, names, what)
            elif tag.endswith("use_dyn_shared_memory"):
                dynamic_smem = _expr(value, names, what)
            else:
                raise ProgramError(f"kernel '{callee}': launch parameter '{tag}' has no tilejit "
                                   f"equivalent")
        launches.append(Launch(callee, grid=grid, block=block, dynamic_smem=dynamic_smem,
                               cluster=cluster,
                               cooperative=bool(attrs.get("use_cooperative_groups", False)),
                               pdl="has_cuda_pdl_sync" in attrs, args=arg_names,
                               l2_windows=list(l2_windows)))
    if not launches:
        raise ProgramError(f"'{name}': the lowered host function launches no device kernel")
    return Program(name, _device_source(artifact.kernel_source), params=params, launches=launches,
                   tma_descriptors=list(descriptors.values()), language="cuda",
                   include_dirs=include_dirs(), out_idx=out_idx,
                   compile_flags=TILELANG_FLAGS + compile_flags)


# Conversions already made in this process: (structural hash of the PrimFunc, the options) ->
# [(PrimFunc, Program)]. A repeated tilejit.compile(prim_func) then skips TileLang's lowering
# (up to seconds) and goes straight to tilejit's memory cache, as TileLang's own cache does.
_converted: dict[Any, list[tuple[Any, Program]]] = {}
_converted_lock = threading.Lock()


def _memo_key(prim_func: Any, arch: str, configs: Mapping[Any, Any], out_idx: Any,
              flags: Sequence[str], name: str) -> Any:
    options = repr((arch, sorted((str(k), repr(v)) for k, v in configs.items()), out_idx,
                    list(flags), name))
    return tvm.ir.structural_hash(prim_func), options


def from_tilelang(func: Any, target: Any = None, pass_configs: Optional[Mapping[Any, Any]] = None,
                  out_idx: Any = None, compile_flags: Union[Sequence[str], str, None] = None,
                  name: Optional[str] = None) -> Program:
    """Lowers a TileLang PrimFunc (or ``@tilelang.jit`` function) with TileLang and converts
    the result into a tilejit Program.

    ``target`` takes the seed's forms ('auto', 'cuda', 'sm_90a', a tvm Target or dict; None
    reads TILELANG_TARGET). ``pass_configs`` go to TileLang's lowering; fast math and
    'tl.device_compile_flags' also become device-compiler flags of the Program, as do
    ``compile_flags``. ``out_idx`` (or the PrimFunc's T.empty outputs) becomes the Program's.
    A ``@tilelang.jit`` function contributes its decorator's out_idx, pass_configs and
    compile_flags (the explicit arguments win). The name defaults to the function's global
    symbol. Raises ProgramError for what cannot be converted.
    """
    prim_func = prim_func_of(func)
    if prim_func is not func:
        # A @tilelang.jit function: its decorator's options, under the explicit ones.
        if out_idx is None:
            out_idx = getattr(func, "out_idx", None)
        pass_configs = {**(getattr(func, "pass_configs", None) or {}), **(pass_configs or {})}
        decorator_flags = getattr(func, "compile_flags", None) or []
        if isinstance(decorator_flags, str):
            decorator_flags = [decorator_flags]
        if isinstance(compile_flags, str):
            compile_flags = [compile_flags]
        compile_flags = list(decorator_flags) + list(compile_flags or [])
    out_idx, configs, flags = _merged_options(prim_func, out_idx, pass_configs, compile_flags)
    if isinstance(out_idx, int):
        out_idx = [out_idx]
    if name is None:
        attrs = prim_func.attrs or {}
        name = str(attrs["global_symbol"]) if "global_symbol" in attrs else "main"
    _, arch = resolve_target(target)
    key = _memo_key(prim_func, arch, configs, out_idx, flags, name)
    with _converted_lock:
        for seen, program in _converted.get(key, ()):
            if tvm.ir.structural_equal(seen, prim_func):
                return program
    artifact = lower(prim_func, target, configs)
    program = _convert(artifact, prim_func, name, out_idx,
                       _pass_configs.device_flags(configs) + flags)
    with _converted_lock:
        _converted.setdefault(key, []).append((prim_func, program))
    return program
