"""DistributedDataParallel and SyncBatchNorm on 2 MPI processes: the same parameters as one
process over the global batch (MLP and a CNN with SyncBatchNorm, SGD and Adam), no_sync
accumulation equal to a large-batch step, SyncBatchNorm equal to BatchNorm over the whole batch
(forward, gradients, running statistics), buffers and parameters from rank 0, unused
parameters, buckets launched during backward. Post-accumulate-grad hooks in this process."""
import framework as fw

DDP_SCRIPT = r"""
import copy
import numpy as np
import framework as fw
import framework.distributed as dist
import framework.nn as nn
import framework.nn.functional as F
from framework.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=30)
r, W = dist.get_rank(), dist.get_world_size()
fw.manual_seed(100 + r)   # different initial models: DDP must start every rank from rank 0's


def maxdiff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def same_on_all_ranks(tensors):
    for t in tensors:
        both = [fw.zeros_like(t) for _ in range(W)]
        dist.all_gather(both, t.detach().contiguous())
        assert all(bool((b == both[0]).all()) for b in both)


def mlp(dtype):
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)


def cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16, 3)).double()


def plain_bn(m):
    # the 1-process reference: the same layers with BatchNorm over the whole batch
    for n, c in list(m.named_children()):
        if isinstance(c, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(c.num_features).double()
            bn.load_state_dict(c.state_dict())
            m.add_module(n, bn)
        else:
            plain_bn(c)
    return m


def equivalence(name, model, opt_cls, tol, shape, **okw):
    ddp = DDP(model, bucket_cap_mb=0.0005)          # tiny buckets: several all-reduces a step
    same_on_all_ranks(list(model.parameters()) + list(model.buffers()))
    ref = plain_bn(copy.deepcopy(model))
    opt, ref_opt = opt_cls(ddp.parameters(), **okw), opt_cls(ref.parameters(), **okw)
    rng = np.random.default_rng(7)
    dt = next(model.parameters()).dtype
    for _ in range(4):
        x = fw.tensor(rng.standard_normal((8,) + shape)).to(dt)
        y = fw.tensor(rng.integers(0, 3, 8))
        mine = slice(r * 8 // W, (r + 1) * 8 // W)
        opt.zero_grad()
        F.cross_entropy(ddp(x[mine]), y[mine]).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        ref_opt.step()
    err = maxdiff(list(model.parameters()), list(ref.parameters()))
    bufs = [b for b in model.buffers() if b.is_floating_point()]
    err_b = maxdiff(bufs, [b for b in ref.buffers() if b.is_floating_point()]) if bufs else 0.0
    assert err < tol and err_b < tol, (name, err, err_b)
    same_on_all_ranks(list(model.parameters()))
    print(f"rank {r} equivalence {name}: {err:.1e}", flush=True)


equivalence("mlp-sgd-float64", mlp(fw.float64), fw.optim.SGD, 1e-12, (6,), lr=0.1, momentum=0.9)
equivalence("mlp-adam-float64", mlp(fw.float64), fw.optim.Adam, 1e-12, (6,), lr=0.01)
equivalence("mlp-sgd-float32", mlp(fw.float32), fw.optim.SGD, 1e-5, (6,), lr=0.1, momentum=0.9)
# Adam divides by sqrt(v): the conv biases ahead of BatchNorm have gradients of rounding
# size, which it scales up, hence the looser bound
equivalence("cnn-syncbn-sgd", nn.SyncBatchNorm.convert_sync_batchnorm(cnn()), fw.optim.SGD,
            1e-12, (2, 6, 6), lr=0.1, momentum=0.9)
equivalence("cnn-syncbn-adam", nn.SyncBatchNorm.convert_sync_batchnorm(cnn()), fw.optim.Adam,
            1e-8, (2, 6, 6), lr=0.01)

# no_sync: two local micro-batches, then one synchronised backward == one large-batch step
model = mlp(fw.float64)
ddp = DDP(model)
ref = copy.deepcopy(model)
rng = np.random.default_rng(3)
x, y = fw.tensor(rng.standard_normal((16, 6))), fw.tensor(rng.integers(0, 3, 16))
micro = [slice(k * 8 + r * 4, k * 8 + r * 4 + 4) for k in range(2)]
with ddp.no_sync():
    (F.cross_entropy(ddp(x[micro[0]]), y[micro[0]]) / 2).backward()
local = [p.grad.clone() for p in model.parameters()]
(F.cross_entropy(ddp(x[micro[1]]), y[micro[1]]) / 2).backward()
F.cross_entropy(ref(x), y).backward()
err = maxdiff([p.grad for p in model.parameters()], [p.grad for p in ref.parameters()])
assert err < 1e-14, err
assert maxdiff(local, [p.grad for p in ref.parameters()]) > 1e-3   # not reduced inside
opt, ref_opt = fw.optim.SGD(model.parameters(), lr=0.5), fw.optim.SGD(ref.parameters(), lr=0.5)
opt.step(); ref_opt.step()
assert maxdiff(list(model.parameters()), list(ref.parameters())) < 1e-14
print(f"rank {r} no_sync {err:.1e}", flush=True)

# SyncBatchNorm == BatchNorm over the whole batch: output, input and parameter gradients,
# running statistics (2-D and 4-D inputs)
for shape, bn_cls in (((12, 5), nn.BatchNorm1d), ((6, 3, 4, 5), nn.BatchNorm2d)):
    rng = np.random.default_rng(11)
    xfull = rng.standard_normal(shape) * 3 + 1
    gfull = rng.standard_normal(shape)
    sync = nn.SyncBatchNorm(shape[1]).double()
    full = bn_cls(shape[1]).double()
    with fw.no_grad():
        for m in (sync, full):
            m.weight.copy_(fw.tensor(np.linspace(0.5, 2, shape[1])))
            m.bias.copy_(fw.tensor(np.linspace(-1, 1, shape[1])))
    n = shape[0] // W
    xs = fw.tensor(xfull[r * n:(r + 1) * n], requires_grad=True)
    xf = fw.tensor(xfull, requires_grad=True)
    ys, yf = sync(xs), full(xf)
    (ys * fw.tensor(gfull[r * n:(r + 1) * n])).sum().backward()
    (yf * fw.tensor(gfull)).sum().backward()
    assert maxdiff([ys], [yf[r * n:(r + 1) * n]]) < 1e-12
    assert maxdiff([xs.grad], [xf.grad[r * n:(r + 1) * n]]) < 1e-12
    wgrad = fw.stack([sync.weight.grad, sync.bias.grad])
    dist.all_reduce(wgrad)   # local parameter gradients add up to the full batch's
    assert maxdiff([wgrad], [fw.stack([full.weight.grad, full.bias.grad])]) < 1e-12
    assert maxdiff([sync.running_mean, sync.running_var],
                   [full.running_mean, full.running_var]) < 1e-12
    sync.eval(); full.eval()   # eval: the running statistics, no communication
    assert maxdiff([sync(xs)], [full(xf)[r * n:(r + 1) * n]]) < 1e-12
print(f"rank {r} syncbn ok", flush=True)

# buffers follow rank 0 at every forward (broadcast_buffers)
net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
ddp = DDP(net)
ddp(fw.tensor(np.random.default_rng(r).standard_normal((5, 3)) + r))   # local statistics
ddp.eval()
ddp(fw.ones(2, 3, dtype=fw.float64))
same_on_all_ranks(list(net.buffers()))
assert list(ddp.state_dict())[:2] == ["module.0.weight", "module.0.bias"]

# unused parameters: refused without find_unused_parameters, zeros with it
class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)

    def forward(self, x, use_b):
        return self.a(x) + (self.b(x) if use_b else 0)   # c: never used

net = Branches().double()
ddp = DDP(net, find_unused_parameters=True, bucket_cap_mb=0.00001)
ddp(fw.ones(1, 2, dtype=fw.float64), use_b=(r == 1)).sum().backward()
assert net.c.weight.grad is None                        # unused on every rank: untouched
assert float(net.b.bias.grad.sum()) == 1.0              # (0 + 2) / 2: used on rank 1 only
assert float(net.a.bias.grad.sum()) == 2.0
strict = DDP(Branches().double())
strict(fw.ones(1, 2, dtype=fw.float64), use_b=True).sum().backward()
try:
    strict(fw.ones(1, 2, dtype=fw.float64), use_b=True)
except RuntimeError as exc:
    assert "find_unused_parameters=True" in str(exc)
else:
    raise AssertionError("an unfinished reduction was not reported")

# buckets are launched during backward: when the gradient reaches the first layer's output,
# the last layer's bucket is already on its way
net = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                    nn.Linear(64, 2)).double()
ddp = DDP(net, bucket_cap_mb=0.02)
seen = []
h = ddp.module[0](fw.ones(3, 4, dtype=fw.float64))
h.register_hook(lambda g: seen.append([b.work is not None for b in ddp._reducer.buckets]))
out = ddp.module[1:](h)
ddp._reducer.prepare(out)   # what DDP's forward does after the module's forward
out.sum().backward()
assert len(seen) == 1 and seen[0][0] and not seen[0][-1], seen
assert ddp._reducer.next_launch == len(ddp._reducer.buckets) > 2
dist.destroy_process_group()
print(f"rank {r} all ok", flush=True)
"""


def test_ddp_and_syncbatchnorm_on_two_processes(mpirun):
    res = mpirun(DDP_SCRIPT)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    for name in ("mlp-sgd-float64", "mlp-adam-float64", "mlp-sgd-float32", "cnn-syncbn-sgd",
                 "cnn-syncbn-adam"):
        assert f"rank 0 equivalence {name}" in out and f"rank 1 equivalence {name}" in out
    assert "rank 0 all ok" in out and "rank 1 all ok" in out


def test_post_accumulate_grad_hook_runs_once_the_gradient_is_complete():
    w1 = fw.randn(3, 3, requires_grad=True)
    w2 = fw.randn(3, 3, requires_grad=True)
    seen = []
    w1.register_post_accumulate_grad_hook(lambda p: seen.append(("w1", p.grad.clone())))
    handle = w2.register_post_accumulate_grad_hook(lambda p: seen.append(("w2", p.grad.clone())))
    x = fw.randn(2, 3)
    ((x @ w1).tanh() @ w2 + x @ w1).sum().backward()   # w1 is used twice
    assert [s[0] for s in seen] == ["w2", "w1"]          # w2's gradient is complete first
    assert fw.equal(seen[0][1], w2.grad) and fw.equal(seen[1][1], w1.grad)
    handle.remove()
    seen.clear()
    (x @ w2).sum().backward()
    assert seen == []
    try:
        (x @ w1).register_post_accumulate_grad_hook(lambda p: None)
    except RuntimeError as exc:
        assert "non-leaf" in str(exc)
    else:
        raise AssertionError("a hook on a non-leaf was accepted")


def test_dist_check_script_on_cpu(mpirun):
    """scripts/dist_check.py, which scripts/gpu_check.sh runs with NCCL on GPUs, passes its
    CPU twin (backend mpi) on 2 processes, so the GPU run tests the backend, not the script."""
    from pathlib import Path
    script = (Path(__file__).resolve().parents[2] / "scripts" / "dist_check.py").read_text()
    out = mpirun(script, n=2, timeout=120, args=("--backend", "mpi", "--device", "cpu"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dist check ok: backend mpi, 2 rank(s), cpu" in out.stdout
    assert out.stdout.count("DDP equals the whole-batch steps") == 2
