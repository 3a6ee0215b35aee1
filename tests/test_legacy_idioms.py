"""PyTorch's legacy idioms, checked against torch: FloatTensor & co, Tensor(*sizes | data),
Tensor.new, size= on the factories, is_xpu/is_mps, indexing with a range, Dropout2d/3d on
other ranks, RandomSampler's lazy draws with replacement, and tensors over memory-mapped or
read-only NumPy arrays in every op."""
import itertools
import os
import tracemalloc
import warnings

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from framework.utils.data import RandomSampler


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch (the parity extra) is not installed")


LEGACY = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor",
          "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "BoolTensor"]
DTYPES = ["float32", "float64", "float16", "bfloat16", "uint8", "int8", "int16", "int32",
          "int64", "bool"]


# ---------------------------------------------------------------------- legacy typed classes
@pytest.mark.parametrize("name", LEGACY)
def test_legacy_class_isinstance_matches_torch(torch, name):
    """isinstance(t, X) holds exactly for tensors of X's dtype on the CPU, as in torch; the
    classes are not Tensor subclasses (neither are torch's)."""
    ours, theirs = getattr(framework, name), getattr(torch, name)
    for dt in DTYPES:
        a = framework.zeros(2, dtype=getattr(framework, dt))
        b = torch.zeros(2, dtype=getattr(torch, dt))
        assert isinstance(a, ours) == isinstance(b, theirs), (name, dt)
    assert isinstance(framework.nn.Parameter(framework.zeros(2)), framework.FloatTensor) == \
        isinstance(torch.nn.Parameter(torch.zeros(2)), torch.FloatTensor) is True
    assert not isinstance([1.0], ours)
    assert issubclass(ours, framework.Tensor) == issubclass(theirs, torch.Tensor) is False
    assert ours.dtype.name == str(theirs.dtype).split(".")[1]
    assert ours.is_cuda is False and framework.cuda.__dict__[name].is_cuda is True
    assert not isinstance(framework.zeros(2, dtype=ours.dtype), framework.cuda.__dict__[name])


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_class_constructors_match_torch(torch, name):
    ours, theirs = getattr(framework, name), getattr(torch, name)
    for args in [(2, 3), (4,), (0,), (), (framework.Size([2, 1]),)]:
        targs = tuple(torch.Size(a) if isinstance(a, framework.Size) else a for a in args)
        a, b = ours(*args), theirs(*targs)
        assert type(a) is framework.Tensor
        assert tuple(a.shape) == tuple(b.shape) and a.dtype is ours.dtype, args
    data = [[1, 0], [3, 1]] if name != "BoolTensor" else [[True, False], [True, True]]
    for d in [data, tuple(map(tuple, data)), np.array(data), range(3)]:
        a, b = ours(d), theirs(d)
        assert a.dtype is ours.dtype
        np.testing.assert_array_equal(a.float().numpy(), b.float().numpy())


def test_legacy_constructor_conversions_and_errors(torch):
    assert framework.LongTensor([1.7, -2.2]).tolist() == torch.LongTensor([1.7, -2.2]).tolist()
    src = framework.tensor([1.0, 2.0])
    alias = framework.FloatTensor(src)
    alias[0] = 7.0  # shares memory, as torch's FloatTensor(tensor)
    assert src.tolist() == [7.0, 2.0] and alias is not src
    with pytest.raises(TypeError):
        torch.FloatTensor(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="expected a float32 tensor"):
        framework.FloatTensor(framework.tensor([1, 2]))
    for bad in [2.5, True, None]:
        with pytest.raises(TypeError):
            torch.FloatTensor(bad)
        with pytest.raises(TypeError, match="data must be a sequence"):
            framework.FloatTensor(bad)
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        framework.LongTensor(2, -1)


def test_tensor_type_with_legacy_classes(torch):
    x, tx = framework.tensor([1.5, -2.0]), torch.tensor([1.5, -2.0])
    for spec in ["LongTensor", "IntTensor", "DoubleTensor", "BoolTensor"]:
        for a, b in [(x.type(getattr(framework, spec)), tx.type(getattr(torch, spec))),
                     (x.type(f"torch.{spec}"), tx.type(f"torch.{spec}"))]:
            assert a.dtype.name == str(b.dtype).split(".")[1] and a.tolist() == b.tolist()
    assert x.type("framework.FloatTensor") is x and x.type(framework.float64).dtype is \
        framework.float64
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NoSuchTensor")


# ---------------------------------------------------------------------- Tensor(...)
@pytest.mark.parametrize("args", [(2, 3), (5,), (0,), (), ([1, 2],), ((2, 3),), (range(4),),
                                  ([[1, 2], [3, 4]],), ([True, False],), ("np_int",),
                                  ("np_array",), ("size",), ("size0",)])
def test_tensor_legacy_constructor_matches_torch(torch, args):
    """Integers give an uninitialised tensor of that shape (Tensor(5) has 5 elements, not a
    0-d tensor holding 5), one sequence gives its data in the default float dtype."""
    def conv(lib, a):
        return {"np_int": np.int64(3), "np_array": np.array([1, 2], dtype=np.int64),
                "size": lib.Size([2, 1]), "size0": lib.Size([])}.get(a, a) \
            if isinstance(a, str) else a
    a = framework.Tensor(*(conv(framework, v) for v in args))
    b = torch.Tensor(*(conv(torch, v) for v in args))
    assert tuple(a.shape) == tuple(b.shape)
    assert a.dtype is framework.float32 and b.dtype is torch.float32
    if args and not isinstance(args[0], int) and args[0] not in ("np_int", "size", "size0"):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_tensor_legacy_constructor_details(torch):
    assert tuple(framework.Tensor(size=(2, 3)).shape) == tuple(torch.Tensor(size=(2, 3)).shape)
    src, tsrc = framework.tensor([1, 2]), torch.tensor([1, 2])
    a, b = framework.Tensor(src), torch.Tensor(tsrc)
    assert a.dtype is framework.int64 and b.dtype is torch.int64  # an alias keeps the dtype
    a[1] = 9
    assert src.tolist() == [1, 9]
    for bad in [2.5, True, None]:
        with pytest.raises(TypeError):
            torch.Tensor(bad)
        with pytest.raises(TypeError, match="data must be a sequence"):
            framework.Tensor(bad)
    with pytest.raises(TypeError):
        torch.Tensor(2, 3.0)
    with pytest.raises(TypeError, match="sizes must be integers"):
        framework.Tensor(2, 3.0)
    with pytest.raises(RuntimeError, match="negative dimension"):
        framework.Tensor(-1)
    with pytest.raises(RuntimeError, match="Legacy tensor constructor"):
        framework.Tensor(src, device="cpu")
    previous = framework.get_default_dtype()
    framework.set_default_dtype(framework.float64)
    try:
        assert framework.Tensor([1]).dtype is framework.float64
        assert framework.Tensor(2).dtype is framework.float64
        assert framework.FloatTensor(2).dtype is framework.float32
    finally:
        framework.set_default_dtype(previous)


def test_tensor_new_matches_torch(torch):
    x, tx = framework.zeros(2, dtype=framework.float64), torch.zeros(2, dtype=torch.float64)
    for args in [(2, 3), (), ([1, 2],), (range(3),)]:
        a, b = x.new(*args), tx.new(*args)
        assert tuple(a.shape) == tuple(b.shape) and a.dtype is framework.float64
    assert x.new([1.5]).tolist() == tx.new([1.5]).tolist()
    assert framework.tensor([1, 2]).new([1.5]).tolist() == torch.tensor([1, 2]).new([1.5]).tolist()


def test_is_xpu_is_mps(torch):
    t, tt = framework.zeros(2), torch.zeros(2)
    assert t.is_xpu is tt.is_xpu is False
    assert t.is_mps is tt.is_mps is False


# ---------------------------------------------------------------------- size=
@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_size_keyword_matches_torch(torch, fn):
    for size in [(2, 3), [4], (), "Size"]:
        s_ours = framework.Size([2, 1]) if size == "Size" else size
        s_torch = torch.Size([2, 1]) if size == "Size" else size
        a = getattr(framework, fn)(size=s_ours)
        b = getattr(torch, fn)(size=s_torch)
        assert tuple(a.shape) == tuple(b.shape) and a.dtype is framework.float32
    assert getattr(framework, fn)(size=(2,), dtype=framework.float64).dtype is framework.float64
    with pytest.raises(TypeError):
        getattr(torch, fn)(2, size=(3,))
    with pytest.raises(TypeError, match="multiple values for argument 'size'"):
        getattr(framework, fn)(2, size=(3,))
    with pytest.raises(TypeError):
        getattr(torch, fn)(size=2)
    with pytest.raises(TypeError, match="must be tuple of ints"):
        getattr(framework, fn)(size=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sizes'"):
        getattr(framework, fn)(sizes=(2,))


def test_randint_and_full_keywords_match_torch(torch):
    for kwargs in [dict(high=10, size=(3,)), dict(low=2, high=10, size=(3,))]:
        a, b = framework.randint(**kwargs), torch.randint(**kwargs)
        assert tuple(a.shape) == tuple(b.shape) and a.dtype is framework.int64
        assert int(a.min()) >= kwargs.get("low", 0) and int(a.max()) < 10
    for args in [(10, (3,)), (3, 10, (2,))]:
        assert tuple(framework.randint(*args).shape) == tuple(torch.randint(*args).shape)
    assert tuple(framework.randint(10, size=(4, 2)).shape) == (4, 2)
    a, b = framework.full(size=(2,), fill_value=3), torch.full(size=(2,), fill_value=3)
    assert a.tolist() == b.tolist() and a.dtype is framework.int64


# ---------------------------------------------------------------------- range indices
READ_KEYS = ["range(2)", "range(1, 4, 2)", "(slice(None), range(3))", "(range(2), range(2))",
             "range(0)", "range(3, 0, -1)", "(range(2), 1)", "(range(2), slice(None), None)",
             "(Ellipsis, range(2))", "range(-2, 0)"]


@pytest.mark.parametrize("key", READ_KEYS)
def test_range_index_matches_torch(torch, key):
    """A range indexes like the list of its values (advanced indexing), as in torch."""
    k = eval(key)
    x, tx = framework.arange(24.0).reshape(4, 6), torch.arange(24.0).reshape(4, 6)
    a, b = x[k], tx[k]
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("key, value", [("range(2)", "0.0"), ("(slice(None), range(1, 3))",
                                                               "T([-1.0, -2.0])"),
                                        ("(range(2), range(2))", "99.0"), ("range(0)", "5.0")])
def test_range_index_assignment_matches_torch(torch, key, value):
    k = eval(key)
    y, ty = framework.arange(24.0).reshape(4, 6), torch.arange(24.0).reshape(4, 6)
    y[k] = eval(value, {"T": framework.tensor})
    ty[k] = eval(value, {"T": torch.tensor})
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_range_index_gradient_matches_torch(torch):
    x = framework.arange(12.0).reshape(3, 4).requires_grad_()
    tx = torch.arange(12.0).reshape(3, 4).requires_grad_()
    (x[range(0, 3, 2), range(1, 3)] * framework.tensor([2.0, 3.0])).sum().backward()
    (tx[range(0, 3, 2), range(1, 3)] * torch.tensor([2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------------- Dropout2d / 3d
def _shared_dims(y):
    """For each dim, whether the mask is constant along it (all kept or dropped together)."""
    m = np.asarray(y) != 0
    return [bool((m == m.take([0], axis=d)).all()) for d in range(m.ndim)]


@pytest.mark.parametrize("fname, shape", [("dropout2d", (8, 9, 5)), ("dropout2d", (8, 9)),
                                          ("dropout2d", (8, 9, 4, 5, 6)),
                                          ("dropout2d", (8, 9, 4, 5)),
                                          ("dropout3d", (8, 9, 5, 6)),
                                          ("dropout3d", (8, 9, 5)), ("dropout3d", (40,)),
                                          ("dropout3d", (8, 9, 4, 5, 6, 7)),
                                          ("dropout3d", (8, 9, 3, 4, 5))])
def test_feature_dropout_other_ranks_match_torch(torch, fname, shape):
    """Same warnings (text and count) and the same mask structure as PyTorch 2.x: dropout2d
    drops along dim 1 (a 3-D input is (N, C, L)); dropout3d takes non-5-D input as
    unbatched and drops along dim 0."""
    results = []
    for lib, fn in [(framework, getattr(F, fname)),
                    (torch, getattr(torch.nn.functional, fname))]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = fn(lib.ones(shape), 0.5, True)
            fn(lib.ones(shape), 0.5, False)  # warns in evaluation too
        results.append(([str(w.message) for w in caught], [w.category for w in caught],
                        _shared_dims(y.numpy()), y.numpy()))
    (msgs, cats, dims, y), (tmsgs, tcats, tdims, _) = results
    assert msgs == tmsgs and cats == tcats
    assert dims == tdims
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.0 in y and 2.0 in y


@pytest.mark.parametrize("fname, shape", [("dropout2d", (4,)), ("dropout3d", ())])
def test_feature_dropout_too_few_dims_matches_torch(torch, fname, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError) as theirs:
            getattr(torch.nn.functional, fname)(torch.ones(shape), 0.5, True)
        with pytest.raises(RuntimeError) as ours:
            getattr(F, fname)(framework.ones(shape), 0.5, True)
        assert str(ours.value) == str(theirs.value)
        # no mask is drawn in evaluation or with p=1: no error, as in torch
        assert getattr(F, fname)(framework.ones(shape), 0.5, False).shape == shape
        assert getattr(F, fname)(framework.ones(shape), 1.0, True).sum().item() == 0.0


def test_dropout_modules_warn_on_unbatched_input():
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = framework.nn.Dropout2d(0.5)(framework.ones(8, 9, 5))
    assert _shared_dims(y.numpy()) == [False, False, True]
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        y = framework.nn.Dropout3d(0.5)(framework.ones(8, 9, 5))
    assert _shared_dims(y.numpy()) == [False, True, True]


# ---------------------------------------------------------------------- RandomSampler
def test_random_sampler_with_replacement_is_lazy():
    """10**12 samples: the first ones come at once and the memory stays O(chunk) (the old
    sampler allocated all indices: 8 TB here)."""
    sampler = RandomSampler(range(1000), replacement=True, num_samples=10 ** 12,
                            generator=framework.Generator().manual_seed(3))
    assert len(sampler) == 10 ** 12
    tracemalloc.start()
    try:
        first = list(itertools.islice(iter(sampler), 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000
    assert len(first) == 1000 and all(0 <= i < 1000 for i in first)
    assert len(set(first)) > 500  # draws, not a constant


def test_random_sampler_stream_is_chunked_and_seeded(torch):
    """Draws of 32 from the generator, then the rest, as torch's sampler draws them; the same
    seed gives the same stream."""
    def run(seed):
        return list(RandomSampler(range(50), replacement=True, num_samples=70,
                                  generator=framework.Generator().manual_seed(seed)))
    a = run(5)
    assert a == run(5) and a != run(6) and len(a) == 70
    g = framework.Generator().manual_seed(5)
    expected = []
    for n in (32, 32, 6):
        expected += framework.randint(0, 50, (n,), generator=g).tolist()
    assert a == expected
    ts = torch.utils.data.RandomSampler(range(50), replacement=True, num_samples=70)
    assert len(ts) == len(RandomSampler(range(50), replacement=True, num_samples=70))


# ---------------------------------------------------------------------- memmap / read-only
def _mm(tmp_path, arr, mode="r", name=None):
    path = tmp_path / (name or f"a{abs(hash(arr.tobytes())) % 10 ** 9}.npy")
    np.save(path, arr)
    return np.load(path, mmap_mode=mode)


def _readonly(arr):
    arr = arr.copy()
    arr.flags.writeable = False
    return arr


@pytest.fixture(params=["np.load(mmap_mode='r')", "np.memmap", "read-only", "joblib"])
def wrap(request, tmp_path):
    """Turn an array into the kind of array under test (same values)."""
    kind = request.param
    counter = itertools.count()

    def make(arr):
        arr = np.ascontiguousarray(arr)
        if kind == "np.load(mmap_mode='r')":
            return _mm(tmp_path, arr, name=f"l{next(counter)}.npy")
        if kind == "np.memmap":
            path = tmp_path / f"m{next(counter)}.bin"
            m = np.memmap(path, dtype=arr.dtype, mode="w+", shape=arr.shape)
            m[...] = arr
            m.flush()
            return np.memmap(path, dtype=arr.dtype, mode="r", shape=arr.shape)
        if kind == "joblib":
            joblib = pytest.importorskip("joblib")
            path = tmp_path / f"j{next(counter)}.pkl"
            joblib.dump(arr, path)
            return joblib.load(path, mmap_mode="r")
        return _readonly(arr)
    return make


def test_ops_over_memmap_and_readonly_arrays_match_torch(torch, wrap):
    """Each op gets one operand over the special array and one ordinary tensor: the results
    equal the ordinary ones and torch's (before the fix, linear and conv refused with
    'Input (cpu) and weight (cpu) must be on the same device')."""
    rng = np.random.default_rng(0)
    x4 = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w4 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    v = rng.standard_normal((5, 6)).astype(np.float32)
    w = rng.standard_normal((3, 6)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    idx = np.array([4, 0, 2])
    P = framework.from_numpy
    S = lambda a: framework.from_numpy(wrap(a))  # noqa: E731
    assert type(S(w)._data) is np.ndarray  # tensors hold plain ndarrays
    cases = {
        "linear": (lambda: F.linear(P(v), S(w), S(b)),
                   lambda: torch.nn.functional.linear(torch.tensor(v), torch.tensor(w),
                                                      torch.tensor(b))),
        "linear_input": (lambda: F.linear(S(v), P(w)),
                         lambda: torch.nn.functional.linear(torch.tensor(v), torch.tensor(w))),
        "conv2d": (lambda: F.conv2d(P(x4), S(w4), padding=1),
                   lambda: torch.nn.functional.conv2d(torch.tensor(x4), torch.tensor(w4),
                                                      padding=1)),
        "conv2d_input": (lambda: F.conv2d(S(x4), P(w4)),
                         lambda: torch.nn.functional.conv2d(torch.tensor(x4), torch.tensor(w4))),
        "matmul": (lambda: P(v) @ S(w).t(), lambda: torch.tensor(v) @ torch.tensor(w).t()),
        "matmul_left": (lambda: S(v) @ P(w).t(), lambda: torch.tensor(v) @ torch.tensor(w).t()),
        "add": (lambda: P(v) + S(v), lambda: torch.tensor(v) * 2),
        "radd": (lambda: S(v) + P(v), lambda: torch.tensor(v) * 2),
        "mul_array": (lambda: P(v) * wrap(v), lambda: torch.tensor(v) ** 2),
        "index": (lambda: S(v)[framework.tensor(idx)], lambda: torch.tensor(v)[torch.tensor(idx)]),
        "index_by": (lambda: P(v)[S(idx)], lambda: torch.tensor(v)[torch.tensor(idx)]),
        "slice": (lambda: S(v)[1:4, ::2], lambda: torch.tensor(v)[1:4, ::2]),
        "embedding": (lambda: F.embedding(framework.tensor(idx), S(v)),
                      lambda: torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(v))),
        "layer_norm": (lambda: F.layer_norm(P(v), (6,), S(v[0]), S(v[1])),
                       lambda: torch.nn.functional.layer_norm(torch.tensor(v), (6,),
                                                              torch.tensor(v[0]),
                                                              torch.tensor(v[1]))),
        "softmax": (lambda: F.softmax(S(v), -1), lambda: torch.softmax(torch.tensor(v), -1)),
        "cat": (lambda: framework.cat([P(v), S(v)]), lambda: torch.cat([torch.tensor(v)] * 2)),
        "where": (lambda: framework.where(S(v) > 0, S(v), P(v) * 0),
                  lambda: torch.where(torch.tensor(v) > 0, torch.tensor(v), 0.0)),
        "as_tensor": (lambda: framework.as_tensor(wrap(v)) + 1, lambda: torch.tensor(v) + 1),
        "tensor": (lambda: framework.tensor(wrap(v)) + 1, lambda: torch.tensor(v) + 1),
    }
    for name, (ours, theirs) in cases.items():
        np.testing.assert_allclose(ours().numpy(), theirs().numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_autograd_through_memmap_weight_matches_torch(torch, wrap):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    w = rng.standard_normal((3, 6)).astype(np.float32)
    xi = framework.from_numpy(wrap(x)).requires_grad_()  # read-only memory may require grad
    wi = framework.from_numpy(wrap(w))
    F.linear(xi, wi).tanh().sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.linear(tx, torch.tensor(w)).tanh().sum().backward()
    np.testing.assert_allclose(xi.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
@pytest.mark.parametrize("mode", ["r+", "c"])
def test_optimizer_step_on_parameter_over_memmap_matches_torch(torch, tmp_path, opt, mode):
    """A parameter sharing a writable memmap (np.memmap subclass) trains like any other and,
    with mode 'r+', its updates reach the file (as torch.from_numpy's memory does)."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    path = tmp_path / "w.npy"
    np.save(path, w)
    p = framework.nn.Parameter(framework.from_numpy(np.load(path, mmap_mode=mode)))
    tp = torch.nn.Parameter(torch.tensor(w))
    o = getattr(framework.optim, opt)([p, framework.nn.Parameter(framework.zeros(2))], lr=0.1)
    to = getattr(torch.optim, opt)([tp, torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    for _ in range(3):
        o.zero_grad()
        to.zero_grad()
        (F.linear(framework.tensor(x), p) ** 2).mean().backward()
        (torch.nn.functional.linear(torch.tensor(x), tp) ** 2).mean().backward()
        o.step()
        to.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    on_disk = np.load(path)
    if mode == "r+":
        np.testing.assert_allclose(on_disk, tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    else:  # copy-on-write: the file keeps the original values
        np.testing.assert_array_equal(on_disk, w)


def test_parameter_over_readonly_memory(torch, tmp_path):
    """Read-only memory cannot be updated in place (torch would write into it, or crash on
    a read-only mapping): a clear error names the cause and the fixes; a copy trains."""
    w = np.ones((3, 4), np.float32)
    mm = _mm(tmp_path, w)
    for src in [mm, _readonly(w)]:
        for opt in ["SGD", "Adam"]:
            p = framework.nn.Parameter(framework.from_numpy(src))
            (p * 2).sum().backward()
            with pytest.raises(RuntimeError, match="read-only.*framework.tensor"):
                getattr(framework.optim, opt)([p, framework.nn.Parameter(
                    framework.zeros(1))], lr=0.1).step()
    p = framework.nn.Parameter(framework.tensor(mm))
    (p * 2).sum().backward()
    framework.optim.SGD([p], lr=0.1).step()
    assert np.allclose(p.detach().numpy(), 0.8) and np.array_equal(np.asarray(mm), w)
    with pytest.raises(RuntimeError, match="read-only"):
        framework.from_numpy(mm).add_(1)
    assert os.path.exists(tmp_path)


@pytest.mark.parametrize("alias", sorted(__import__("framework.ops", fromlist=["ALIASES"])
                                         .ALIASES))
def test_numpy_style_aliases_match_torch(alias):
    """framework.<alias> and Tensor.<alias> exist wherever torch has them, with its values."""
    torch = pytest.importorskip("torch")
    import framework as fw
    x = np.array([[0.3, -0.6], [0.9, 1.7]])
    if alias == "arccosh":
        x = x + 2.0
    elif alias in ("arcsin", "arccos", "arctanh"):
        x = x / 2.0
    binary = alias in ("arctan2", "divide", "true_divide", "multiply", "subtract", "greater",
                       "greater_equal", "less", "less_equal", "not_equal")
    args_fw = (fw.tensor(x), fw.tensor(x[::-1].copy())) if binary else (fw.tensor(x),)
    args_t = (torch.tensor(x), torch.tensor(x[::-1].copy())) if binary else (torch.tensor(x),)
    kw = {"min": -0.5, "max": 0.5} if alias == "clip" else {}
    want = getattr(torch, alias)(*args_t, **kw).numpy()
    np.testing.assert_allclose(getattr(fw, alias)(*args_fw, **kw).numpy(), want, rtol=1e-12)
    if hasattr(torch.Tensor, alias):
        got = getattr(args_fw[0], alias)(*args_fw[1:], **kw).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)


_MIXED_KEYS = [(slice(None), 0, slice(None), [1, 2]), (0, slice(None), [1, 2, 3]),
               (Ellipsis, 0, [1, 3]), (slice(None), 0, None, [1, 2]),
               (0, [0, 2], slice(None), 1), (slice(None), [0, 1], 0, [1, 2]),
               (-1, slice(1, 3), [0, 3])]


@pytest.mark.parametrize("key", _MIXED_KEYS, ids=str)
def test_integer_and_array_indices_place_dims_as_pytorch(key):
    """Integers are selects before advanced indexing, as in PyTorch (NumPy would broadcast them
    with the arrays and move the result's dims when a slice separates them): reads, writes,
    and both gradients."""
    torch = pytest.importorskip("torch")
    import framework as fw
    a = np.arange(120, dtype=np.float64).reshape(2, 3, 4, 5)
    x, t = fw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, want = x[key], t[key]
    assert tuple(out.shape) == tuple(want.shape)
    np.testing.assert_array_equal(out.detach().numpy(), want.detach().numpy())
    g = np.random.default_rng(0).standard_normal(tuple(want.shape))
    out.backward(fw.tensor(g))
    want.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    v = np.random.default_rng(1).standard_normal(tuple(want.shape))
    xv, tv = fw.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, u = x * 1.0, t * 1.0
    y[key], u[key] = xv * 2, tv * 2
    np.testing.assert_array_equal(y.detach().numpy(), u.detach().numpy())
    (y ** 2).sum().backward()
    (u ** 2).sum().backward()
    np.testing.assert_allclose(xv.grad.numpy(), tv.grad.numpy())
