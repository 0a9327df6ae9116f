"""pass_configs: the seed's PassContext options, as far as they mean something to tilejit.

TileLang's ``pass_configs`` configure its lowering passes. tilejit honours the keys that change
the device compile (fast math, ptxas's register usage level, extra device flags) for every
Program; for a TileLang function the rest go to TileLang's lowering (tilejit.tilelang). A key that has no meaning for the
Program at hand is reported once per process, never silently hashed into the cache key.
"""

from __future__ import annotations

import operator
import shlex
import threading
import warnings
from typing import Any, Iterable, Mapping, Optional

from ._core import ArgumentError

# TileLang's PassConfigKey values (tilelang.transform.PassConfigKey), spelled out so that
# tilejit reads them without importing TileLang.
FAST_MATH = "tl.enable_fast_math"
DEVICE_COMPILE_FLAGS = "tl.device_compile_flags"
PTXAS_REGISTER_USAGE_LEVEL = "tl.ptxas_register_usage_level"
DEVICE_KEYS = (FAST_MATH, PTXAS_REGISTER_USAGE_LEVEL, DEVICE_COMPILE_FLAGS)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, why: str) -> None:
    """A UserWarning for ``key``, the first time only (per process)."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"tilejit: pass_configs key '{key}' {why}; it is ignored", UserWarning,
                  stacklevel=4)


def key_name(key: Any) -> str:
    """A key as text: PassConfigKey members (enums) by their value."""
    return str(getattr(key, "value", key))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _split_flags(value: Any) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    flags: list[str] = []
    for item in value or ():
        flags.extend(shlex.split(item) if isinstance(item, str) else [str(item)])
    return flags


def _register_usage_level(value: Any) -> int:
    """ptxas's --register-usage-level takes 0..10; outside that range ptxas only warns and
    ignores it, so a bad value is refused here rather than compiled without effect. Integers
    and their decimal text are taken, as TileLang's int(value) takes them."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    try:
        level = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        level = None
    if level is None or not 0 <= level <= 10:
        raise ArgumentError(f"pass_configs['{PTXAS_REGISTER_USAGE_LEVEL}']: expected an integer "
                            f"from 0 to 10 (ptxas --register-usage-level), got {value!r}")
    return level


def device_flags(pass_configs: Optional[Mapping[Any, Any]]) -> list[str]:
    """The device-compiler flags that ``pass_configs`` asks for, as TileLang's nvcc build adds
    them. NVRTC takes the same spellings, so both CUDA backends get them."""
    flags: list[str] = []
    for key, value in (pass_configs or {}).items():
        name = key_name(key)
        if name == FAST_MATH and _truthy(value):
            flags.append("--use_fast_math")
        elif name == PTXAS_REGISTER_USAGE_LEVEL and value is not None:
            flags.append(f"--ptxas-options=--register-usage-level={_register_usage_level(value)}")
        elif name == DEVICE_COMPILE_FLAGS:
            flags.extend(_split_flags(value))
    return flags


def for_program(pass_configs: Optional[Mapping[Any, Any]]) -> list[str]:
    """pass_configs given with a hand-written Program: the flags they ask for; every other key
    configures a TileLang lowering that does not happen here, and is warned about once."""
    for key in (pass_configs or {}):
        name = key_name(key)
        if name not in DEVICE_KEYS:
            warn_once(name, "means nothing for a hand-written Program (it configures TileLang's "
                            "lowering; tilejit honours only "
                            f"{', '.join(repr(k) for k in DEVICE_KEYS)} here)")
    return device_flags(pass_configs)


def for_lowering(pass_configs: Optional[Mapping[Any, Any]],
                 known: Iterable[str]) -> dict[str, Any]:
    """The entries of ``pass_configs`` that TileLang's PassContext knows (``known``); any other
    key is warned about once and left out (TVM would refuse it)."""
    known = set(known)
    config: dict[str, Any] = {}
    for key, value in (pass_configs or {}).items():
        name = key_name(key)
        if name in known:
            # TileLang's PassContext takes the extra device flags as a list only.
            config[name] = _split_flags(value) if name == DEVICE_COMPILE_FLAGS else value
        else:
            warn_once(name, "is not a pass config of this TileLang/TVM (see "
                            "tilelang.transform.PassConfigKey)")
    return config
