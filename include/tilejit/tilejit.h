// tilejit/tilejit.h — everything a user needs: #include <tilejit/tilejit.h>.
#pragma once

#include "tilejit/dlpack.h"
#include "tilejit/dtype.h"
#include "tilejit/errors.h"
#include "tilejit/expr.h"
#include "tilejit/jit.h"
#include "tilejit/kernel.h"
#include "tilejit/program.h"
#include "tilejit/tensor.h"
