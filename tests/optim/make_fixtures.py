#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that tests/optim compares cai's optimizers and learning-rate
schedules with: ten steps of torch.optim.AdamW and torch.optim.SGD from fixed inputs, and the factors of
Hugging Face transformers' learning-rate schedules.

Usage: make_fixtures.py [OUT_DIR]   (default: tests/data/optim next to this script's tests/)

OUT_DIR receives
  adamw.json      {"torch": version, "steps": 10, "theta0": [50], "gradients": [10][50],
                   "cases": [{"name", "dtype" ("float32" | "float64"), "lr", "beta1", "beta2", "eps",
                              "weight_decay", "amsgrad", "theta": [50], "exp_avg": [50],
                              "exp_avg_sq": [50], "max_exp_avg_sq": [50] or []}]}
                  theta is the parameter after the 10 steps of torch.optim.AdamW(foreach=False), the
                  others its state; theta0 and the gradients are float32 values (widened for float64).
  sgd.json        the same for torch.optim.SGD: cases with "lr", "momentum", "dampening",
                  "weight_decay", "nesterov", "theta" and "momentum_buffer" ([] without momentum).
  schedules.json  {"transformers": version, "cases": [{"name", "kind" ("linear" | "cosine" |
                   "cosine_min" | "constant"), "warmup", "total", "min_lr_rate", "factors": [...]}]}:
                  the LambdaLR factor of transformers' get_*_schedule_with_warmup at steps 0..total.
                  Written only when transformers can be imported.

Every input comes from numpy's generator with fixed seeds, and every hyper-parameter is a float32 value
(cai's hyper-parameters are float), so a rerun with any torch writes the same inputs; the expected values
may differ from the committed ones in the last bits. Numbers are written as the shortest decimal that
reads back as the same double, so float32 values read back exactly.
Exits 77 when torch cannot be imported (CTest's skip code for the live check).
"""
import json
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # the live check is skipped, not failed, without PyTorch
    print(f"skipping: {e}", file=sys.stderr)
    sys.exit(77)

N = 50       # elements of the parameter
STEPS = 10   # optimizer steps


def f32(x):
    """The float32 value nearest to x, as a Python float (what cai's float hyper-parameters hold)."""
    return float(np.float32(x))


def values(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def inputs():
    rng = np.random.default_rng(20260427)
    theta0 = rng.standard_normal(N).astype(np.float32)
    # A gradient sequence that changes each step: its scale jumps by up to 30x, and a few entries are 0.
    scales = [1.0, 0.1, 3.0, 0.5, 1.0, 0.05, 2.0, 1.0, 0.3, 1.5]
    gradients = []
    for scale in scales:
        g = (rng.standard_normal(N) * scale).astype(np.float32)
        g[rng.integers(0, N, size=3)] = 0.0
        gradients.append(g)
    return theta0, gradients


def run(make_optimizer, theta0, gradients, dtype):
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=dtype))
    opt = make_optimizer([p])
    for g in gradients:
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return p.detach().numpy(), opt.state[p]


def adamw_cases(theta0, gradients):
    settings = [
        ("pytorch defaults with a larger learning rate", "float32",
         dict(lr=f32(1e-2), beta1=f32(0.9), beta2=f32(0.999), eps=f32(1e-8), weight_decay=f32(1e-2), amsgrad=False)),
        ("amsgrad with strong weight decay", "float32",
         dict(lr=f32(5e-3), beta1=f32(0.8), beta2=f32(0.99), eps=f32(1e-6), weight_decay=f32(0.1), amsgrad=True)),
        ("small beta1 without weight decay", "float32",
         dict(lr=f32(2e-2), beta1=f32(0.3), beta2=f32(0.95), eps=f32(1e-8), weight_decay=0.0, amsgrad=True)),
        ("pytorch defaults in double precision", "float64",
         dict(lr=f32(1e-2), beta1=f32(0.9), beta2=f32(0.999), eps=f32(1e-8), weight_decay=f32(1e-2), amsgrad=False)),
    ]
    cases = []
    for name, dtype, h in settings:
        def make(params, h=h):
            return torch.optim.AdamW(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"],
                                     weight_decay=h["weight_decay"], amsgrad=h["amsgrad"], foreach=False)
        theta, state = run(make, theta0, gradients, getattr(torch, dtype))
        assert int(state["step"]) == STEPS
        cases.append(dict(name=name, dtype=dtype, **h, theta=values(theta),
                          exp_avg=values(state["exp_avg"]), exp_avg_sq=values(state["exp_avg_sq"]),
                          max_exp_avg_sq=values(state["max_exp_avg_sq"]) if h["amsgrad"] else []))
    return cases


def sgd_cases(theta0, gradients):
    settings = [
        ("plain sgd", "float32", dict(lr=f32(0.1), momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)),
        ("heavy-ball momentum with weight decay", "float32",
         dict(lr=f32(0.05), momentum=f32(0.9), dampening=0.0, weight_decay=f32(1e-2), nesterov=False)),
        ("nesterov momentum", "float32",
         dict(lr=f32(0.05), momentum=f32(0.9), dampening=0.0, weight_decay=0.0, nesterov=True)),
        ("momentum with dampening", "float32",
         dict(lr=f32(0.1), momentum=f32(0.5), dampening=f32(0.25), weight_decay=f32(1e-3), nesterov=False)),
        ("nesterov momentum in double precision", "float64",
         dict(lr=f32(0.05), momentum=f32(0.9), dampening=0.0, weight_decay=f32(1e-2), nesterov=True)),
    ]
    cases = []
    for name, dtype, h in settings:
        def make(params, h=h):
            return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"], dampening=h["dampening"],
                                   weight_decay=h["weight_decay"], nesterov=h["nesterov"], foreach=False)
        theta, state = run(make, theta0, gradients, getattr(torch, dtype))
        buf = state.get("momentum_buffer") if state else None
        cases.append(dict(name=name, dtype=dtype, **h, theta=values(theta),
                          momentum_buffer=values(buf) if buf is not None else []))
    return cases


def schedule_cases():
    try:
        import transformers
        from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                                  get_cosine_with_min_lr_schedule_with_warmup, get_linear_schedule_with_warmup)
    except ImportError as e:
        print(f"no schedules.json: {e}", file=sys.stderr)
        return None, None
    settings = [
        ("linear with warm-up", "linear", 5, 40, 0.0),
        ("linear without warm-up", "linear", 0, 17, 0.0),
        ("cosine with warm-up", "cosine", 10, 60, 0.0),
        ("cosine without warm-up", "cosine", 0, 33, 0.0),
        ("cosine to a minimum with warm-up", "cosine_min", 7, 50, 0.1),
        ("constant with warm-up", "constant", 8, 20, 0.0),
    ]
    cases = []
    for name, kind, warmup, total, min_lr_rate in settings:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        if kind == "linear":
            sched = get_linear_schedule_with_warmup(opt, warmup, total)
        elif kind == "cosine":
            sched = get_cosine_schedule_with_warmup(opt, warmup, total)
        elif kind == "cosine_min":
            sched = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr_rate=min_lr_rate)
        else:
            sched = get_constant_schedule_with_warmup(opt, warmup)
        # LambdaLR's lambdas give the factor of each step exactly (the optimizer's lr is base x factor).
        factors = [float(sched.lr_lambdas[0](step)) for step in range(total + 1)]
        cases.append(dict(name=name, kind=kind, warmup=warmup, total=total, min_lr_rate=min_lr_rate,
                          factors=factors))
    return transformers.__version__, cases


def dump(path, obj):
    """JSON with one array per line, so that a diff of a regenerated fixture stays readable."""
    def encode(value, indent):
        pad = " " * indent
        if isinstance(value, dict):
            items = [f'{pad} {json.dumps(k)}: {encode(v, indent + 1)}' for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            return "[\n" + ",\n".join(pad + " " + encode(v, indent + 1) for v in value) + "\n" + pad + "]"
        return json.dumps(value, separators=(",", ":"))
    with open(path, "w") as f:
        f.write(encode(obj, 0) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "optim")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    theta0, gradients = inputs()
    common = dict(torch=torch.__version__, steps=STEPS, theta0=values(theta0),
                  gradients=[values(g) for g in gradients])
    dump(os.path.join(out, "adamw.json"), dict(common, cases=adamw_cases(theta0, gradients)))
    dump(os.path.join(out, "sgd.json"), dict(common, cases=sgd_cases(theta0, gradients)))
    version, cases = schedule_cases()
    if cases is not None:
        dump(os.path.join(out, "schedules.json"), dict(transformers=version, cases=cases))
    print(f"wrote the optimizer fixtures into {out}")


if __name__ == "__main__":
    main()
