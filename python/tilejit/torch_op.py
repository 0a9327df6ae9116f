"""tilejit kernels as PyTorch operators (docs/torch.md).

:meth:`tilejit.Kernel.as_torch_op` registers a PyTorch operator (``torch.library``'s low-level
API, see ``_register``) whose schema comes from the Program's params (tensor inputs, scalars,
``out_idx`` outputs as returns), whose fake implementation computes the outputs' shapes from
the Program's shape expressions (over torch's SymInts, so ``torch.compile(dynamic=True)``
traces once for every size), and whose implementation calls the kernel on torch's current
stream. Importing this module imports torch;
``tilejit`` itself does not.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch

from . import _core
from ._capture import refuse_during_capture
from ._core import ArgumentError, KernelParam, Program
from .kernel import Kernel

# A shape expression as _core.expr_tree gives it: an int, a variable, or (op, lhs, rhs).
Tree = Union[int, str, tuple]
MutatesArgs = Union[Iterable[str], None]

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "ceildiv": lambda a, b: -((-a) // b),
    "min": lambda a, b: torch.sym_min(a, b),
    "max": lambda a, b: torch.sym_max(a, b),
}


def evaluate(tree: Tree, env: dict[str, Any]) -> Any:
    """Evaluates a shape expression tree over ints or SymInts; floor division and modulo, as
    tilejit's Expr defines them (Python's // and % on ints and SymInts agree)."""
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return env[tree]
    op, lhs, rhs = tree
    return _BINARY[op](evaluate(lhs, env), evaluate(rhs, env))


def _variables(tree: Tree) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, tuple):
        return _variables(tree[1]) + _variables(tree[2])
    return []


def _scalar_type(program_name: str, param: KernelParam) -> str:
    """The schema type of a scalar param: int, float or bool."""
    if param.dtype == "bool":
        return "bool"
    if param.dtype.startswith(("float", "bfloat")):
        return "float"
    if param.dtype.startswith(("int", "uint")):
        return "int"
    raise ArgumentError(f"{program_name}: scalar '{param.name}' of dtype {param.dtype} has no "
                        f"torch operator type (int, float or bool)")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class OutputShapes:
    """The fake (meta) half of an op: checks what tensors' metadata can be checked without data
    and computes the out_idx outputs from the Program's shape expressions.

    Messages follow the Binder's wording, so an error reads the same whether torch.compile
    meets it while tracing or the kernel meets it at run time. Equalities between symbolic
    sizes are recorded with ``torch._check``, which torch.compile turns into a runtime assert.
    """

    def __init__(self, program: Program, params: Sequence[KernelParam], out_idx: Sequence[int]):
        self.name = program.name
        outputs = set(out_idx)
        self.inputs = [p for i, p in enumerate(params) if i not in outputs]
        self.outputs = [params[i] for i in out_idx]
        self.trees = {p.name: [_core.expr_tree(e) for e in p.shape] for p in params}
        self.dtypes = {p.name: p.torch_dtype() for p in params if not p.is_scalar()}
        # What a call binds: input dims that are a bare symbol, and integer scalars.
        bound = {tree for p in self.inputs for tree in self.trees[p.name] if isinstance(tree, str)}
        bound |= {p.name for p in self.inputs
                  if p.is_scalar() and _scalar_type(self.name, p) == "int"}
        for p in self.outputs:
            for tree in self.trees[p.name]:
                missing = [v for v in _variables(tree) if v not in bound]
                if missing:
                    raise ArgumentError(
                        f"{self.name}: output '{p.name}' has a shape symbol '{missing[0]}' that no "
                        f"input binds, so its size cannot be known before the launch")

    def _fail(self, index: int, what: str) -> None:
        raise ArgumentError(f"{self.name}: argument '{self.inputs[index].name}' (#{index}): {what}")

    def _agree(self, index: int, what: str, expected: Any, got: Any, shown: str = "") -> None:
        """Checks expected == got now (ints) or at run time (SymInts); ``shown`` describes the
        expected value in the message ("n = 5 (bound from 'A' dim 0)")."""
        message = f"{what}: expected {shown or expected}, got {got}"
        if isinstance(expected, int) and isinstance(got, int):
            if expected != got:
                self._fail(index, message)
        else:
            torch._check(expected == got, lambda: f"{self.name}: argument "
                         f"'{self.inputs[index].name}' (#{index}): {message}")

    def __call__(self, args: Sequence[Any]) -> list[torch.Tensor]:
        if len(args) != len(self.inputs):
            raise ArgumentError(f"{self.name}: expected {len(self.inputs)} arguments "
                                f"({', '.join(p.name for p in self.inputs)}), got {len(args)}")
        env: dict[str, Any] = {}
        origin: dict[str, str] = {}
        derived: list[tuple[int, int, Tree, Any]] = []
        device, device_origin = None, ""
        for i, (param, value) in enumerate(zip(self.inputs, args)):
            if param.is_scalar():
                if isinstance(value, torch.Tensor):
                    self._fail(i, f"expected a {param.dtype} scalar, got a tensor")
                continue
            if not isinstance(value, torch.Tensor):
                self._fail(i, f"expected a {param.dtype} tensor, got {type(value).__name__}")
            if device is None:
                device, device_origin = value.device, param.name
            elif value.device != device:
                self._fail(i, f"expected device {device} (where '{device_origin}' is), "
                              f"got {value.device}")
            if value.dtype != self.dtypes[param.name]:
                self._fail(i, f"expected dtype {param.dtype}, got {_dtype_name(value.dtype)}")
            trees = self.trees[param.name]
            if value.dim() != len(trees):
                self._fail(i, f"expected {len(trees)} dimensions, got {value.dim()} "
                              f"(shape {list(value.shape)})")
            for d, tree in enumerate(trees):
                size = value.shape[d]
                if isinstance(tree, str) and tree not in env:
                    env[tree] = size
                    origin[tree] = f"'{param.name}' dim {d}"
                else:
                    derived.append((i, d, tree, size))
        for i, param in enumerate(self.inputs):
            if param.is_scalar() and _scalar_type(self.name, param) == "int":
                if param.name in env:
                    self._agree(i, f"scalar shares the name of a shape symbol bound from "
                                   f"{origin[param.name]}", env[param.name], args[i])
                else:
                    env[param.name] = args[i]
        for i, d, tree, size in derived:
            unbound = [v for v in _variables(tree) if v not in env]
            if unbound:
                self._fail(i, f"dim {d}: the shape symbol '{unbound[0]}' is bound by no input")
            expected = evaluate(tree, env)
            shown = f"{tree} = {expected} (bound from {origin[tree]})" if tree in origin else ""
            self._agree(i, f"dim {d}", expected, size, shown)
        if device is None:
            raise ArgumentError(f"{self.name}: a torch op needs at least one tensor input to "
                                f"place its outputs")
        return [torch.empty([evaluate(t, env) for t in self.trees[p.name]],
                            dtype=self.dtypes[p.name], device=device) for p in self.outputs]


class DeviceVariants:
    """The kernel an op launches on each device: one per CUDA architecture.

    ``recompile`` builds the Program again for the current device (called under
    ``torch.cuda.device``, so that target "auto" resolves to that device, not device 0); None
    means one kernel serves every device (an explicit architecture, or the cpu backend).
    """

    def __init__(self, kernel: Kernel, recompile: Optional[Callable[[], Kernel]]):
        self.kernel = kernel
        self.recompile = recompile if kernel.backend != "cpu" else None
        # Device index -> kernel: read without the lock by the op's impl on every call.
        self.by_device: dict[int, Kernel] = {}
        self._by_arch: dict[str, Kernel] = {}
        self._lock = threading.Lock()

    def for_device(self, device: torch.device) -> Kernel:
        if self.recompile is None or device.type != "cuda":
            return self.kernel
        index = device.index if device.index is not None else torch.cuda.current_device()
        kernel = self.by_device.get(index)
        if kernel is None:
            kernel = self._resolve(index)
        return kernel

    def _resolve(self, index: int) -> Kernel:
        major, minor = torch.cuda.get_device_capability(index)
        arch = f"sm_{major}{minor}"
        with self._lock:
            kernel = self._by_arch.get(arch)
            if kernel is None:
                # The kernel given was built for some device: it serves that architecture.
                if self.kernel.target.removesuffix("a").endswith(arch):
                    kernel = self.kernel
                else:
                    refuse_during_capture(f"compile of '{self.kernel.program.name}' for {arch} "
                                          f"(device cuda:{index})")
                    with torch.cuda.device(index):
                        kernel = self.recompile()
                self._by_arch[arch] = kernel
            self.by_device[index] = kernel
        return kernel


def _first_device(args: Sequence[Any]) -> torch.device:
    for value in args:
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")


def _returns(num_outputs: int) -> str:
    if num_outputs == 0:
        return "()"
    if num_outputs == 1:
        return "Tensor"
    return "(" + ", ".join(["Tensor"] * num_outputs) + ")"


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or name.count("::") != 1 or not all(name.split("::")):
        raise ArgumentError(f"torch_op: expected a name 'namespace::op', got {name!r}")
    namespace, op = name.split("::")
    if hasattr(getattr(torch.ops, namespace), op):
        raise ArgumentError(f"torch_op: the operator '{name}' is already registered; pick another "
                            f"name (an operator cannot be registered twice in a process)")


def _mutated(program_name: str, inputs: Sequence[KernelParam], num_outputs: int,
             mutates_args: MutatesArgs) -> list[str]:
    tensors = [p.name for p in inputs if not p.is_scalar()]
    if mutates_args is None:
        if num_outputs == 0:
            raise ArgumentError(
                f"{program_name}: the kernel returns no outputs, so it writes into some of its "
                f"tensor inputs; name them with mutates_args=[...] (one of {', '.join(tensors)})")
        return []
    names = [mutates_args] if isinstance(mutates_args, str) else list(mutates_args)
    for name in names:
        if name not in tensors:
            raise ArgumentError(f"{program_name}: mutates_args names '{name}', which is not a "
                                f"tensor input (inputs: {', '.join(tensors)})")
    return names


def _schema(program_name: str, inputs: Sequence[KernelParam], mutated: Sequence[str],
            num_outputs: int) -> str:
    fields = []
    for param in inputs:
        if param.is_scalar():
            fields.append(f"{_scalar_type(program_name, param)} {param.name}")
        elif param.name in mutated:
            # Each written tensor is its own alias set: (a0!), (a1!), ...
            fields.append(f"Tensor(a{mutated.index(param.name)}!) {param.name}")
        else:
            fields.append(f"Tensor {param.name}")
    return f"({', '.join(fields)}) -> {_returns(num_outputs)}"


def _as_result(outputs: Any) -> Any:
    """A kernel call's result (None, a tensor or a list) as the op returns it."""
    return tuple(outputs) if isinstance(outputs, list) else outputs


def _fake_result(outputs: list[torch.Tensor]) -> Any:
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


# One torch.library.Library per namespace, kept for the life of the process: a Library's
# registrations are removed when it is garbage collected.
_LIBRARIES: dict[str, Any] = {}

# The dispatch key sets of a call with ordinary CPU or CUDA tensors and nothing between autograd
# and the backend (no __torch_dispatch__ mode or subclass, no fake tensor, no conjugate view):
# for such a call, redispatching below autograd reaches the CompositeExplicitAutograd impl, so
# the autograd kernel calls the impl itself (the fast path).
_FAST_KEYSETS = frozenset(
    torch._C.DispatchKeySet(backend).add(autograd).raw_repr()
    for backend, autograd in ((torch._C.DispatchKey.CPU, torch._C.DispatchKey.AutogradCPU),
                              (torch._C.DispatchKey.CUDA, torch._C.DispatchKey.AutogradCUDA)))


def _library(namespace: str) -> Any:
    lib = _LIBRARIES.get(namespace)
    if lib is None:
        lib = _LIBRARIES[namespace] = torch.library.Library(namespace, "FRAGMENT")
    return lib


def _register(name: str, schema: str, impl: Callable[..., Any], fake: Callable[..., Any],
              backward: Any, setup_context: Optional[Callable[..., Any]],
              tensor_inputs: Sequence[int]) -> Any:
    """Registers the op with torch.library's low-level API and returns ``torch.ops.ns.op``.

    Not torch.library.custom_op: its Python autograd and version-counter wrappers run on every
    call and cost several times torch's own dispatch (docs/PERFORMANCE.md). Here ``impl`` is
    the CompositeExplicitAutograd kernel (it bumps the version of the tensors it writes
    itself), and a Python kernel at AutogradCPU/AutogradCUDA calls it directly when the call
    needs no autograd graph and nothing sits between autograd and the backend; otherwise it
    hands the call to torch's autograd kernel (torch.library.register_autograd, which raises
    at backward time when no formula was given, as custom_op does) or redispatches below
    autograd. An op without outputs has no autograd kernel of its own: torch's C++ fallback.
    """
    namespace, op_name = name.split("::")
    parsed = torch._C.parse_schema(name + schema)
    written = [i for i, a in enumerate(parsed.arguments)
               if a.alias_info is not None and a.alias_info.is_write]
    num_outputs = len(parsed.returns)
    if written and backward is not None:
        raise ArgumentError(f"{name}: a kernel that writes its inputs (mutates_args) cannot have "
                            f"a backward formula; torch differentiates functional ops only")
    if isinstance(backward, Kernel):
        backward = _kernel_backward(name, backward, tensor_inputs)
    if written:
        kernel_impl = impl

        def impl(*args: Any) -> Any:
            result = kernel_impl(*args)
            torch.autograd.graph.increment_version([args[i] for i in written])
            return result

    lib = _library(namespace)
    lib.define(op_name + schema, tags=(torch.Tag.pt2_compliant_tag,))
    packet = getattr(getattr(torch.ops, namespace), op_name)
    overload = packet.default
    lib.impl(op_name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(name, fake, lib=lib)
    # Calls that record an autograd graph go to torch's autograd kernel: the formula given, or
    # one that says at backward time that there is none. A kernel that writes its inputs has
    # no formula (torch refuses one for a non-functional schema) and records nothing.
    formula = None
    if not written:
        torch.library.register_autograd(
            name, backward if backward is not None else _no_formula(name),
            setup_context=(setup_context or _save_inputs) if backward is not None else None,
            lib=lib)
        get_kernel = getattr(torch.library, "get_kernel", None)  # torch >= 2.9
        if get_kernel is None:
            return packet  # torch's autograd kernel serves every call, at its cost
        formula = get_kernel(overload, "AutogradCPU")
    if not num_outputs:
        # No outputs, no graph to record: torch's C++ autograd fallback (which redispatches
        # below autograd and records nothing here) costs less than any Python kernel.
        return packet
    below_autograd = torch._C._after_autograd_keyset
    grad_enabled = torch.is_grad_enabled

    # The hot path of every eager call: a loop, not a generator; no call that can be saved.
    def autograd(keyset: Any, *args: Any) -> Any:
        if grad_enabled():
            for i in tensor_inputs:
                if args[i].requires_grad:
                    if formula is None:
                        raise ArgumentError(
                            f"{name}: writes its inputs (mutates_args), so its outputs cannot "
                            f"record an autograd graph, but an input requires grad; call it "
                            f"under torch.no_grad()")
                    return formula.call_boxed(keyset, *args)
        if keyset.raw_repr() in _FAST_KEYSETS:
            return impl(*args)
        with torch._C._AutoDispatchBelowAutograd():
            return overload.redispatch(keyset & below_autograd, *args)

    for key in ("AutogradCPU", "AutogradCUDA"):
        lib.impl(op_name, autograd, key, with_keyset=True)
    return packet


def _no_formula(name: str) -> Callable[..., Any]:
    def backward(ctx: Any, *grads: Any) -> Any:
        raise RuntimeError(f"Trying to backward through {name} but no autograd formula was "
                           f"registered; register one with as_torch_op(..., backward=...)")

    return backward


def _save_inputs(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    """The default setup_context: tensor inputs saved for backward, scalars kept as values."""
    ctx.tensor_positions = [i for i, v in enumerate(inputs) if isinstance(v, torch.Tensor)]
    ctx.save_for_backward(*[inputs[i] for i in ctx.tensor_positions])
    ctx.inputs = [None if isinstance(v, torch.Tensor) else v for v in inputs]


def saved_inputs(ctx: Any) -> list[Any]:
    """The forward's inputs, in order, as the default setup_context saved them."""
    inputs = list(ctx.inputs)
    for position, tensor in zip(ctx.tensor_positions, ctx.saved_tensors):
        inputs[position] = tensor
    return inputs


def _kernel_backward(name: str, kernel: Kernel, tensor_inputs: Sequence[int]) -> Callable[..., Any]:
    """A backward Kernel becomes an op of its own (``name_backward``), called with the forward's
    inputs followed by the output gradients; its outputs are the gradients of the forward's
    tensor inputs, in order."""
    if len(kernel.out_idx) != len(tensor_inputs):
        raise ArgumentError(
            f"backward kernel '{kernel.program.name}' returns {len(kernel.out_idx)} outputs; it "
            f"must return one gradient per tensor input of the forward ({len(tensor_inputs)})")
    backward_op = kernel.as_torch_op(name + "_backward")

    def backward(ctx: Any, *grads: Any) -> Any:
        outputs = backward_op(*saved_inputs(ctx), *(g.contiguous() for g in grads))
        outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        result: list[Any] = [None] * len(ctx.inputs)
        for position, grad in zip(tensor_inputs, outputs):
            result[position] = grad
        return tuple(result) if len(result) > 1 else result[0]

    return backward


_VARIANTS: dict[str, DeviceVariants] = {}


def variants_of(kernel: Kernel) -> Optional[DeviceVariants]:
    """The per-device kernels of the op registered for ``kernel``, if any (Kernel.warmup)."""
    return _VARIANTS.get(kernel.cache_key)


def register_kernel(kernel: Kernel, name: str, *, mutates_args: MutatesArgs = None,
                    backward: Any = None, setup_context: Optional[Callable[..., Any]] = None,
                    recompile: Optional[Callable[[], Kernel]] = None,
                    per_device: bool = True) -> Any:
    """Kernel.as_torch_op; ``recompile`` (tilejit.compile's) rebuilds it for another device.

    ``per_device=False`` (tilejit.compile with an explicit architecture): the kernel serves
    every device as it is, and nothing is rebuilt."""
    _check_name(name)
    program = kernel.program
    outputs = OutputShapes(program, kernel.params, kernel.out_idx)
    num_outputs = len(kernel.out_idx)
    if not any(not p.is_scalar() for p in outputs.inputs):
        raise ArgumentError(f"{program.name}: a torch op needs at least one tensor input (torch "
                            f"dispatches on it and places the outputs on its device)")
    mutated = _mutated(program.name, outputs.inputs, num_outputs, mutates_args)
    schema = _schema(program.name, outputs.inputs, mutated, num_outputs)
    if not per_device:
        recompile = None
    elif recompile is None and kernel.backend != "cpu":
        arch_specific = kernel.target.endswith("a")

        def recompile() -> Kernel:
            major, minor = torch.cuda.get_device_capability()
            suffix = "a" if arch_specific and major >= 9 else ""
            return _core.compile(Kernel, program, out_idx=kernel.out_idx,
                                 execution_backend=kernel.backend,
                                 target=f"cuda -arch=sm_{major}{minor}{suffix}")

    variants = DeviceVariants(kernel, recompile)
    _VARIANTS[kernel.cache_key] = variants
    tensor_inputs = [i for i, p in enumerate(outputs.inputs) if not p.is_scalar()]
    # The impl runs on every call: no per-call work that can be done here.
    if variants.recompile is None:
        launch: Callable[..., Any] = kernel
    else:
        first, by_device = tensor_inputs[0], variants.by_device

        def launch(*args: Any) -> Any:
            tensor = args[first]
            chosen = by_device.get(tensor.get_device())
            if chosen is None:
                chosen = variants.for_device(tensor.device)
            return chosen(*args)

    impl = launch if num_outputs < 2 else (lambda *args: tuple(launch(*args)))

    def fake(*args: Any) -> Any:
        return _fake_result(outputs(args))

    return _register(name, schema, impl, fake, backward, setup_context, tensor_inputs)


def register_jit(jit: Any, name: str, *, mutates_args: MutatesArgs = None, backward: Any = None,
                 setup_context: Optional[Callable[..., Any]] = None) -> Any:
    """JITImpl.as_torch_op: an eager-mode jit function as an op.

    The schema comes from the function's type annotations (torch.library.infer_schema: tensors
    ``torch.Tensor``, scalars ``int``/``float``/``bool``, the return ``torch.Tensor`` or a tuple
    of them). The fake implementation calls the function with fake tensors to get the Program
    and computes the outputs from its shape expressions; a Program whose shapes are written
    symbolically ("n", not ``A.shape[0]``) therefore traces once for every size.
    """
    _check_name(name)
    try:
        schema = torch.library.infer_schema(jit.func, mutates_args=tuple(mutates_args or ()))
    except Exception as error:
        raise ArgumentError(
            f"@tilejit.jit '{jit.__name__}' as a torch op: its parameters and return need type "
            f"annotations (torch.Tensor, int, float, bool): {error}") from None

    def impl(*args: Any) -> Any:
        device = _first_device(args)
        if device.type == "cuda":
            # target "auto" resolves to the tensors' device, not the current one.
            with torch.cuda.device(device):
                return _as_result(jit._run_eager(args, {}))
        return _as_result(jit._run_eager(args, {}))

    def fake(*args: Any) -> Any:
        kernel_program = jit.get_tir(*args)
        if not isinstance(kernel_program, Program):
            raise ArgumentError(
                f"@tilejit.jit '{jit.__name__}' as a torch op must return a tilejit.Program, got "
                f"{type(kernel_program).__name__}; compile a TileLang kernel with "
                f"tilejit.compile(..., torch_op=...) instead")
        params = kernel_program.params
        out_idx = jit.out_idx if jit.out_idx is not None else kernel_program.out_idx
        out_idx = [out_idx] if isinstance(out_idx, int) else list(out_idx or [])
        shapes = OutputShapes(kernel_program, params, sorted(i % len(params) for i in out_idx))
        # As in eager mode, the kernel takes its inputs from the function's arguments by name.
        bound = jit.signature.bind(*args).arguments
        missing = [p.name for p in shapes.inputs if p.name not in bound]
        if missing:
            raise ArgumentError(
                f"@tilejit.jit '{jit.__name__}' (eager): the Program's parameter '{missing[0]}' "
                f"is not an argument of the function; eager mode passes arguments to the kernel "
                f"by name ({', '.join(bound)})")
        return _fake_result(shapes([bound[p.name] for p in shapes.inputs]))

    tensor_inputs = [i for i, p in enumerate(jit.signature.parameters.values())
                     if p.annotation in (torch.Tensor, "torch.Tensor", "Tensor")]
    return _register(name, schema, impl, fake, backward, setup_context, tensor_inputs)
