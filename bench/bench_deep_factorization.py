"""Completion engine (Arora et al. 2019) near its matmul-bound limit, and against the authors' way.

For n = 100, depths 2, 3, 4, float32, one thread, a batch of B = 24 runs and
a single run (B = 1), this measures inside one process:

* the engine: ``implicit_reg.arora2019.trainer.BatchTrainer.run`` itself on a
  completion problem (``build_problem("completion", ...)``), rank 5, m = 2000
  observed entries, GroupRMSprop, with the production sync interval (100) and
  no run stopping (train-loss tolerance < 0) so the batch stays full;
* its **matmul-bound limit**: one engine step does N−1 batched products in
  the forward pass and 2(N−1) in the backward pass, so 3(N−1) products of
  100×100 matrices per step. The limit is 3(N−1) × the time of one
  ``torch.bmm`` of ``[B,100,100]`` operands (contiguous, written with
  ``out=``), timed in the same process. ``fraction = limit / engine time``;
* the same products on operands as cold as the engine's (a pool of ~4N
  ``[B,100,100]`` tensors, so each product reads and writes tensors that are
  not in cache, as the engine's are), to separate what the step's other work
  costs from what a batch that does not fit in L2 costs the products;
* a reference loop written the way the authors' code runs: one run at a
  time, ``nn.Parameter`` factors, autograd, a ``torch.optim``-style
  GroupRMSprop optimizer object, the loss gathered on the observed indices,
  and ``loss.item()`` (a host synchronisation) every step for the stopping test.

Interleaving (``_common.Lockstep``): every workload — the engines (B = 24
and B = 1, each a long ``run()``), the product chunks and the authors-style
loop — runs in its own thread, and they take turns: a hook on the engine's
``forward`` (``implicit_reg.arora2019.gradients.forward``, called once per engine iteration) hands over after ``window``
iterations. Each window is timed in that thread's CPU time. A round gives
one window of each; each ratio is taken within a round, and the figures are
medians over the rounds (the first round is warm-up).

``--baseline-rev REV`` (or ``--baseline FILE``) adds a single-file version of the
engine (``deep_factorization.py``, before it was split into ``observations``,
``initialization``, ``gradients``, ``schedule`` and ``trainer``) to the same rounds,
for before/after figures.

Usage::

    .venv/bin/python bench/bench_deep_factorization.py [--quick] [--json OUT] [--baseline-rev HEAD]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import (
    ROOT,
    Lockstep,
    entry,
    load_module_from,
    loop_participant,
    median,
    print_entries,
    quartiles,
    stepping,
    write_json,
)

from implicit_reg.arora2019 import data as matrix_data  # noqa: E402
from implicit_reg.arora2019 import gradients  # noqa: E402
from implicit_reg.arora2019.initialization import initial_factors  # noqa: E402
from implicit_reg.arora2019.observations import build_problem  # noqa: E402
from implicit_reg.arora2019.schedule import Schedule  # noqa: E402
from implicit_reg.arora2019.trainer import BatchTrainer  # noqa: E402

N_SIZE, RANK, N_OBS = 100, 5, 2000
LR, INIT_SCALE, ALPHA, EPS = 1e-3, 1e-3, 0.99, 1e-4
#: The engine's entry points under one name, as a single-file baseline module has them.
ENGINE = SimpleNamespace(build_problem=build_problem, initial_factors=initial_factors, Schedule=Schedule,
                         BatchTrainer=BatchTrainer)


def completion_problem(module=ENGINE, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = matrix_data.low_rank_ground_truth(N_SIZE, N_SIZE, RANK, rng)
    obs = matrix_data.completion_arrays(gt, N_OBS, rng)
    return gt, obs, module.build_problem("completion", obs, gt, "cpu", torch.float32)


# ------------------------------------------------------------------ authors' way
class GroupRMSprop(torch.optim.Optimizer):
    """GroupRMSprop as a torch.optim optimizer (spec §1.6a): one adaptive scalar for all parameters."""

    def __init__(self, params, lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-4) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})
        for group in self.param_groups:
            group["step"] = 0
            group["square_avg"] = torch.zeros(())

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["step"] += 1
            grad_sq = sum(p.grad.pow(2).sum() for p in group["params"])
            group["square_avg"].mul_(group["alpha"]).add_(grad_sq, alpha=1 - group["alpha"])
            avg = (group["square_avg"] / (1 - group["alpha"] ** group["step"])).sqrt().add_(group["eps"])
            for p in group["params"]:
                p.addcdiv_(p.grad, avg, value=-group["lr"])


class AuthorsStyleCompletion:
    """One run trained like the authors' main.py: autograd, optimizer object, ``.item()`` every step."""

    def __init__(self, obs: dict, depth: int, seed: int = 0, tol: float = -1.0) -> None:
        rng = np.random.default_rng(seed)
        init = initial_factors((N_SIZE, N_SIZE), depth, "gaussian", INIT_SCALE, rng)
        self.layers = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float32)) for w in init]
        self.opt = GroupRMSprop(self.layers, lr=LR, alpha=ALPHA, eps=EPS)
        self.indices = torch.as_tensor(obs["indices"])
        self.labels = torch.as_tensor(obs["labels"])
        self.tol = tol

    def steps(self, k: int) -> None:
        for _ in range(k):
            self.opt.zero_grad()
            e2e = self.layers[0]
            for w in self.layers[1:]:
                e2e = w @ e2e
            loss = (e2e.reshape(-1)[self.indices] - self.labels).pow(2).mean()
            loss.backward()
            self.opt.step()
            if loss.item() <= self.tol:  # the stopping test syncs with the host every step
                break


# ------------------------------------------------------------------ references
class ProductChunk:
    """One step's 3(N−1) batched products of ``[B,n,n]`` operands (one Lockstep unit).

    ``hot``: the same three tensors every time (operands and output stay in
    cache: the strict matmul-bound limit). ``cold``: a pool of as many
    ``[B,n,n]`` tensors as the engine keeps (factors, partial products,
    gradients, upstream products: about 4N), each product reading two and
    writing a third that were not touched recently, as in the engine.
    """

    def __init__(self, batch: int, depth: int, kind: str = "hot") -> None:
        g = torch.Generator().manual_seed(1)
        n_products = 3 * (depth - 1)
        pool = 3 if kind == "hot" else max(6, 4 * depth)
        tensors = [torch.randn(batch, N_SIZE, N_SIZE, generator=g) for _ in range(pool)]
        self.triples = [(tensors[(3 * k) % pool], tensors[(3 * k + 1) % pool], tensors[(3 * k + 2) % pool])
                        for k in range(n_products)]

    def __call__(self) -> None:
        for a, b, out in self.triples:
            torch.bmm(a, b, out=out)


def engine_participant(lock: Lockstep, module, problem, depth: int, batch: int):
    """A BatchTrainer (``module``'s) on a full batch that never stops; one unit = one iteration."""
    init = [module.initial_factors((N_SIZE, N_SIZE), depth, "gaussian", INIT_SCALE, np.random.default_rng(s))
            for s in range(batch)]
    schedule = module.Schedule(max_iters=10**9, log_every=10**9, sync_every=100, train_loss_tol=-1.0,
                               rmsprop_alpha=ALPHA, rmsprop_eps=EPS, checkpoint_seconds=0)
    trainer = module.BatchTrainer(problem, init, [LR] * batch, schedule, dtype=torch.float32)
    return trainer.run


def measure_depth(depth: int, batches, rounds: int, baseline=None, authors: bool = True) -> dict[str, np.ndarray]:
    """One lockstep group for a depth: engines (and baseline engines), product chunks, authors loop.

    Returns per-round arrays: ``engine B`` (s per iteration), ``product B`` (s per
    step's products, hot operands), ``cold B`` (same, cold operands), ``authors``
    (s per step), ``baseline B``.
    """
    lock = Lockstep(rounds)
    undo = [lock.hook_forward(gradients)]
    _, obs, problem = completion_problem()
    for batch in batches:
        window = 4 if batch >= 8 else 40
        lock.add(f"engine {batch}", engine_participant(lock, ENGINE, problem, depth, batch), window)
        for kind, label in (("hot", "product"), ("cold", "cold")):
            chunk = ProductChunk(batch, depth, kind)
            lock.add(f"{label} {batch}", loop_participant(lock, f"{label} {batch}", chunk),
                     window if batch >= 8 else window // 4)
        if baseline is not None:
            b_problem = completion_problem(baseline)[2]
            lock.add(f"baseline {batch}", engine_participant(lock, baseline, b_problem, depth, batch), window)
    if baseline is not None:
        undo.append(lock.hook_forward(baseline))
    if authors:
        run = AuthorsStyleCompletion(obs, depth)
        lock.add("authors", loop_participant(lock, "authors", lambda: run.steps(1)), 10)
    try:
        times = lock.run()
    finally:
        for u in undo:
            u()
    return {k: np.asarray(v) for k, v in times.items()}


#: Where the single-file engine lived at older revisions (newest first).
BASELINE_PATHS = ("src/implicit_reg/arora2019/deep_factorization.py", "src/implicit_reg/deep_factorization.py")


def baseline_module(args):
    """The single-file engine of ``--baseline FILE`` or ``--baseline-rev REV`` (None without either)."""
    if args.baseline:
        return load_module_from(args.baseline, "dfm_baseline")
    if args.baseline_rev:
        for rel in BASELINE_PATHS:
            shown = subprocess.run(["git", "show", f"{args.baseline_rev}:{rel}"], cwd=ROOT, capture_output=True,
                                   text=True)
            if shown.returncode == 0:
                text = shown.stdout
                break
        else:
            raise SystemExit(f"--baseline-rev {args.baseline_rev}: no single-file engine at {BASELINE_PATHS} "
                             "(a revision after the engine's split: give a file with --baseline)")
        path = Path(tempfile.mkdtemp()) / "deep_factorization_baseline.py"
        path.write_text(text)
        return load_module_from(path, "dfm_baseline")
    return None


def benchmark(quick: bool = False, baseline=None, depths=(2, 3, 4), batches=(24, 1)) -> list[dict]:
    rounds = 8 if quick else 60
    entries: list[dict] = []
    for depth in depths:
        n_products = 3 * (depth - 1)
        t = measure_depth(depth, batches, rounds, baseline)
        for batch in batches:
            eng = t[f"engine {batch}"]
            tag = f"completion d{depth} B={batch}"
            per_run = median(eng) / batch
            # One product unit is the step's 3(N−1) batched products: the limit itself.
            fraction = t[f"product {batch}"] / eng
            fraction_cold = t[f"cold {batch}"] / eng
            speedup = t["authors"] / (eng / batch)
            lo, hi = quartiles(list(fraction))
            entries += [
                entry(f"{tag}: engine time per run-iteration", per_run * 1e6, "us"),
                entry(f"{tag}: engine run-iterations/s (ratio: vs authors-style loop)", 1 / per_run, "it/s",
                      median(speedup)),
                entry(f"{tag}: one bmm of B 100x100 products", median(t[f"product {batch}"]) / n_products * 1e6, "us"),
                entry(f"{tag}: fraction of matmul-bound limit ({n_products} products/step)",
                      median(fraction), "", median(fraction), iqr=[lo, hi], target=0.85),
                entry(f"{tag}: fraction of the limit with operands as cold as the engine's",
                      median(fraction_cold), "", median(fraction_cold)),
            ]
            if baseline is not None:
                # Interleaved with the engine above: the ratio is the engine's own speed-up.
                b = t[f"baseline {batch}"]
                entries.append(entry(f"{tag}: baseline engine time per run-iteration (ratio: baseline/now)",
                                     median(b) / batch * 1e6, "us", median(b / eng)))
        if len(batches) > 1:
            b_big, b_one = max(batches), min(batches)
            entries.append(entry(f"completion d{depth}: run-iteration speed-up of B={b_big} over B={b_one}",
                                 median((t[f"engine {b_one}"] / b_one) / (t[f"engine {b_big}"] / b_big)), "x",
                                 median((t[f"engine {b_one}"] / b_one) / (t[f"engine {b_big}"] / b_big))))
        entries.append(entry(f"completion d{depth}: authors-style loop, time per iteration",
                             median(t["authors"]) * 1e6, "us"))
    return entries


def mixed_depths(rounds: int, batch: int = 24, depths=(2, 3, 4)) -> list[dict]:
    """Completion: one batch of every depth (B = 24 each) vs the per-depth batches, same runs.

    Sensing batches mix depths because the products with A are shared; in completion the
    residual is element-wise, so mixing shares only the per-step bookkeeping. This measures
    whether that is worth changing the completion batching (it is not, see bench/README.md).
    """
    _, _, problem = completion_problem()
    lock = Lockstep(rounds)
    init = {d: [initial_factors((N_SIZE, N_SIZE), d, "gaussian", INIT_SCALE, np.random.default_rng(s))
                for s in range(batch)] for d in depths}
    schedule = Schedule(max_iters=10**9, log_every=10**9, sync_every=100, train_loss_tol=-1.0,
                        rmsprop_alpha=ALPHA, rmsprop_eps=EPS, checkpoint_seconds=0)
    for d in depths:
        trainer = BatchTrainer(problem, init[d], [LR] * batch, schedule, dtype=torch.float32)
        lock.add(f"d{d}", stepping(lock, f"d{d}", trainer), 1)
    mixed = BatchTrainer(problem, [f for d in depths for f in init[d]], [LR] * batch * len(depths), schedule,
                         dtype=torch.float32)
    lock.add("mixed", stepping(lock, "mixed", mixed), 1)
    t = {k: np.asarray(v) for k, v in lock.run().items()}
    separate = sum(t[f"d{d}"] for d in depths)
    tag = "+".join(f"d{d}" for d in depths)
    return [entry(f"completion {tag}, B={batch} each: one mixed-depth batch, time per step (ratio: per-depth "
                  f"batches' summed step time / mixed)", median(t["mixed"]) * 1e3, "ms", median(separate / t["mixed"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the entries as JSON")
    parser.add_argument("--baseline", help="another deep_factorization.py to measure the same way")
    parser.add_argument("--baseline-rev", help="git revision whose deep_factorization.py is the baseline")
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--batches", type=int, nargs="+", default=[24, 1])
    parser.add_argument("--mixed", action="store_true", help="only: one mixed-depth batch vs per-depth batches")
    args = parser.parse_args()
    if args.mixed:
        entries = mixed_depths(8 if args.quick else 30)
        print_entries(entries, "completion engine")
        if args.json:
            write_json(entries, args.json)
        return
    entries = benchmark(args.quick, baseline_module(args), tuple(args.depths), tuple(args.batches))
    print_entries(entries, "completion engine")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
