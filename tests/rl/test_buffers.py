"""Replay memory: ring wrap-around, frame storage against plain storage, the sum-tree against
a brute-force prefix search, prioritized sampling and weights, n-step transitions."""
import numpy as np
import pytest

import framework as fw
from apps.rl.buffers import (NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer,
                             SumTree)


def _add_one(buf, i, terminated=False, truncated=False, next_value=None):
    nxt = i + 0.5 if next_value is None else next_value
    buf.add(np.array([[i, -i]], np.float32), np.array([[nxt, -nxt]], np.float32), [i % 3],
            [float(i)], [terminated], [truncated])


# ============================================================================ plain storage
def test_plain_buffer_wraps_around_keeping_the_newest():
    buf = ReplayBuffer(5, (2,))
    for i in range(7):
        _add_one(buf, i)
    assert len(buf) == 5 and buf.pos == 2
    # slots 0, 1 were overwritten by transitions 5, 6; slots 2..4 hold 2..4
    np.testing.assert_array_equal(buf.obs[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.next_obs[:, 0], [5.5, 6.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(buf.actions, [2, 0, 2, 0, 1])
    np.testing.assert_array_equal(buf.rewards, [5, 6, 2, 3, 4])
    batch = buf.sample(200, np.random.default_rng(0))
    assert set(batch.obs[:, 0].tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 0.5)
    np.testing.assert_array_equal(batch.rewards, batch.obs[:, 0])
    assert batch.weights is None and batch.terminated.dtype == np.float32


def test_plain_buffer_batch_add_wraps_inside_one_call():
    buf = ReplayBuffer(4, (1,), n_envs=3)
    for t in range(3):      # 9 transitions of 3 envs into 4 slots
        obs = np.array([[10 * t + e] for e in range(3)], np.float32)
        buf.add(obs, obs + 1, [0, 1, 2], [1.0, 1.0, 1.0], [False] * 3)
    assert len(buf) == 4 and buf.pos == 1
    np.testing.assert_array_equal(np.sort(buf.obs[:, 0]), [12, 20, 21, 22])


def test_sampling_an_empty_buffer_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, (1,)).sample(2, np.random.default_rng(0))


# ============================================================================ frame storage
def _episode_stream(n_envs, steps, seed, term_p=0.05, trunc_p=0.04):
    """Per-env streams of 1-step transitions with unique observations [env, t, ...]."""
    rng = np.random.default_rng(seed)
    obs = np.array([[e, 0, 0] for e in range(n_envs)], np.float32)
    out = []
    for t in range(1, steps + 1):
        actions = rng.integers(0, 4, n_envs)
        rewards = rng.normal(size=n_envs).astype(np.float32)
        nxt = np.array([[e, t, 0] for e in range(n_envs)], np.float32)
        term = rng.random(n_envs) < term_p
        trunc = ~term & (rng.random(n_envs) < trunc_p)
        out.append((obs.copy(), actions, rewards, nxt.copy(), term, trunc))
        reset = np.array([[e, t, 1] for e in range(n_envs)], np.float32)   # a new episode
        obs = np.where((term | trunc)[:, None], reset, nxt)
    return out


def _key(o):
    return tuple(np.asarray(o).tolist())


@pytest.mark.parametrize("capacity", [1000, 60])
@pytest.mark.parametrize("n", [1, 3])
def test_frame_storage_holds_the_same_transitions_as_plain_storage(capacity, n):
    n_envs = 2
    plain = ReplayBuffer(10_000, (3,), n_envs=n_envs)
    frames = ReplayBuffer(capacity, (3,), n_envs=n_envs, optimize_memory=True)
    acc_p = NStepAccumulator(n, 0.9, n_envs, (3,))
    acc_f = NStepAccumulator(n, 0.9, n_envs, (3,))
    for obs, a, r, nxt, term, trunc in _episode_stream(n_envs, 400, seed=n):
        for acc, buf in ((acc_p, plain), (acc_f, frames)):
            tr = acc.add(obs, a, r, nxt, term, trunc)
            buf.add(tr.obs, tr.next_obs, tr.actions, tr.rewards, tr.terminated, tr.truncated,
                    tr.steps, tr.env_ids)
    truth = {}
    for i in range(len(plain)):
        truth[_key(plain.obs[i])] = (plain.next_obs[i], plain.actions[i], plain.rewards[i],
                                     plain.terminated[i], plain.steps[i])
    slots = np.flatnonzero(frames.valid)
    assert len(frames) == slots.size
    if capacity >= 1000:        # nothing overwritten: every transition is there
        assert len(frames) == len(plain)
    else:                       # the newest ones, less a few padding/overwritten rows
        assert len(frames) >= capacity - 2 * n_envs * (n + 2) - 10
    batch = frames.gather(slots)
    for i in range(slots.size):
        nxt, a, r, term, k = truth[_key(batch.obs[i])]
        assert (batch.actions[i], batch.rewards[i], batch.terminated[i], batch.steps[i]) == \
            (a, r, term, k)
        if not term:             # after a termination the next obs is never used
            np.testing.assert_array_equal(batch.next_obs[i], nxt)
    # sampling draws only stored transitions, and their next observations are right
    sample = frames.sample(500, np.random.default_rng(0))
    for o, nx, term in zip(sample.obs, sample.next_obs, sample.terminated):
        if not term:
            np.testing.assert_array_equal(nx, truth[_key(o)][0])


def test_frame_storage_keeps_the_final_observation_of_a_truncated_episode():
    buf = ReplayBuffer(8, (1,), optimize_memory=True)
    buf.add([[0]], [[1]], [0], [1.0], [False])
    buf.add([[1]], [[99]], [0], [1.0], [False], [True])          # truncated: final obs 99
    buf.add([[50]], [[51]], [0], [1.0], [False])                 # the next episode
    b = buf.gather(np.flatnonzero(buf.valid))
    np.testing.assert_array_equal(b.obs[:, 0], [0, 1, 50])
    np.testing.assert_array_equal(b.next_obs[:, 0], [1, 99, 51])
    np.testing.assert_array_equal(buf.valid[:4], [True, True, False, True])


# ============================================================================ sum-tree
@pytest.mark.parametrize("capacity", [1, 7, 16, 100])
def test_sum_tree_matches_a_brute_force_prefix_search(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    prio = rng.integers(0, 5, capacity).astype(np.float64)   # integers: exact sums
    prio[rng.random(capacity) < 0.3] = 0.0
    prio[0] = max(prio[0], 1.0)
    tree.update(np.arange(capacity), prio)
    for _ in range(3):       # a few partial updates, with a duplicate slot
        idx = rng.integers(0, capacity, 5)
        new = rng.integers(0, 7, 5).astype(np.float64)
        tree.update(idx, new)
        for i, p in zip(idx, new):
            prio[i] = p
        j = int(rng.integers(0, capacity))        # and one slot alone (its own code path)
        tree.update([j], [float(rng.integers(0, 7))])
        prio[j] = tree[j]
    if prio.sum() == 0:
        tree.update([0], [3.0])
        prio[0] = 3.0
    cumsum = np.cumsum(prio)
    assert tree.total == cumsum[-1]
    assert tree.min == (prio[prio > 0].min())
    s = np.concatenate([rng.random(500) * cumsum[-1], cumsum[:-1], [0.0]])
    s = s[s < cumsum[-1]]
    expected = np.searchsorted(cumsum, s, side="right")
    np.testing.assert_array_equal(tree.find(s), expected)
    assert np.all(prio[tree.find(s)] > 0)
    np.testing.assert_array_equal(tree[np.arange(capacity)], prio)
    for level in range(tree.depth):      # every inner node is the sum of its children
        nodes = np.arange(1 << level, 2 << level)
        np.testing.assert_array_equal(tree._sum[nodes], tree._sum[2 * nodes] +
                                      tree._sum[2 * nodes + 1])


def test_sum_tree_rejects_bad_priorities_and_empty_search():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="empty"):
        tree.find([0.0])
    with pytest.raises(ValueError, match="non-negative"):
        tree.update([0], [-1.0])
    with pytest.raises(IndexError):
        tree.update([4], [1.0])
    assert tree.min == np.inf


# ============================================================================ prioritized
def _filled_per(alpha, td, beta=0.4):
    buf = PrioritizedReplayBuffer(len(td), (1,), alpha=alpha, beta=beta, eps=0.0)
    for i in range(len(td)):
        buf.add([[i]], [[i]], [0], [0.0], [False])
    buf.update_priorities(np.arange(len(td)), td)
    return buf


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_prioritized_sampling_frequencies_follow_priorities(alpha):
    td = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 9.5])
    buf = _filled_per(alpha, td)
    n = 60_000
    idx = buf.sample_indices(n, np.random.default_rng(1))
    freq = np.bincount(idx, minlength=td.size) / n
    expected = td ** alpha / (td ** alpha).sum()
    # stratified sampling: far tighter than multinomial noise
    np.testing.assert_allclose(freq, expected, atol=3e-3)


def test_importance_weights_are_normalised_by_the_largest():
    td = np.array([1.0, 2.0, 4.0, 8.0])
    alpha, beta = 0.6, 0.5
    buf = _filled_per(alpha, td, beta)
    b = buf.sample(16, np.random.default_rng(0))
    p = td ** alpha / (td ** alpha).sum()
    w = (td.size * p) ** -beta
    np.testing.assert_allclose(b.weights, (w / w.max())[b.indices], rtol=1e-6)
    assert b.weights.max() <= 1.0
    # the slot with the smallest priority has weight exactly 1 whenever it is drawn
    w0 = buf.importance_weights(np.array([0]), beta)
    np.testing.assert_allclose(w0, [1.0], rtol=1e-6)


def test_new_transitions_get_the_largest_priority_seen():
    buf = PrioritizedReplayBuffer(8, (1,), alpha=1.0, eps=0.0)
    buf.add([[0]], [[0]], [0], [0.0], [False])
    buf.update_priorities([0], [5.0])
    buf.add([[1]], [[1]], [0], [0.0], [False])
    assert buf.tree[1] == 5.0 and buf.max_priority == 5.0
    with pytest.raises(ValueError, match="errors"):
        buf.update_priorities([0, 1], [1.0])


# ============================================================================ n-step
def test_n_step_returns_with_termination_and_truncation_in_the_middle():
    g = 0.5
    acc = NStepAccumulator(3, g, 2, (1,))
    # env 0: rewards 1, 2, 4, 8 then terminated at its 4th step; then a new episode: 16
    # env 1: rewards 1, 1 then truncated at its 2nd step; then 3, 3, 3, 3
    r0 = [1, 2, 4, 8, 16, 0]
    r1 = [1, 1, 3, 3, 3, 3]
    term0 = [0, 0, 0, 1, 0, 0]
    trunc1 = [0, 1, 0, 0, 0, 0]
    out = []
    for t in range(6):
        obs = np.array([[100 + t], [200 + t]], np.float32)
        nxt = np.array([[100 + t + 1], [200 + t + 1]], np.float32)
        tr = acc.add(obs, [t, t], [r0[t], r1[t]], nxt, [bool(term0[t]), False],
                     [False, bool(trunc1[t])])
        out += [(int(e), float(o[0]), float(r), float(n[0]), bool(te), bool(tu), int(k))
                for e, o, r, n, te, tu, k in zip(tr.env_ids, tr.obs, tr.rewards, tr.next_obs,
                                                 tr.terminated, tr.truncated, tr.steps)]
    env0 = [x[1:] for x in out if x[0] == 0]
    env1 = [x[1:] for x in out if x[0] == 1]
    assert env0 == [
        (100, 1 + g * 2 + g * g * 4, 103, False, False, 3),   # full window at t = 2
        (101, 2 + g * 4 + g * g * 8, 104, True, False, 3),    # flushed at the termination
        (102, 4 + g * 8, 104, True, False, 2),
        (103, 8, 104, True, False, 1)]
    # the new episode's window (104, 105) is not complete yet: nothing from it
    assert env1 == [
        (200, 1 + g * 1, 202, False, True, 2),                # truncated: bootstrap from 202
        (201, 1, 202, False, True, 1),
        (202, 3 + g * 3 + g * g * 3, 205, False, False, 3),
        (203, 3 + g * 3 + g * g * 3, 206, False, False, 3)]


def test_n_step_of_one_is_the_identity():
    acc = NStepAccumulator(1, 0.9, 1, (2,))
    tr = acc.add([[1, 2]], [1], [0.5], [[3, 4]], [False], [False])
    np.testing.assert_array_equal(tr.next_obs, [[3, 4]])
    assert tr.rewards.tolist() == [0.5] and tr.steps.tolist() == [1]


# ============================================================================ state
@pytest.mark.parametrize("kind", ["plain", "frames", "per"])
def test_state_dict_round_trip_through_a_file_samples_identically(kind, tmp_path):
    def make():
        if kind == "per":
            return PrioritizedReplayBuffer(64, (3,), n_envs=2, alpha=0.7)
        return ReplayBuffer(64, (3,), n_envs=2, optimize_memory=kind == "frames")
    buf = make()
    acc = NStepAccumulator(2, 0.9, 2, (3,))
    for obs, a, r, nxt, term, trunc in _episode_stream(2, 50, seed=3):
        tr = acc.add(obs, a, r, nxt, term, trunc)
        buf.add(tr.obs, tr.next_obs, tr.actions, tr.rewards, tr.terminated, tr.truncated,
                tr.steps, tr.env_ids)
    if kind == "per":
        buf.update_priorities(np.arange(10), np.linspace(0.1, 3, 10))
    fw.save({"buffer": buf.state_dict(), "nstep": acc.state_dict()}, tmp_path / "b.safetensors")
    state = fw.load(tmp_path / "b.safetensors")
    other = make()
    other.load_state_dict(state["buffer"])
    acc2 = NStepAccumulator(2, 0.9, 2, (3,))
    acc2.load_state_dict(state["nstep"])
    b1 = buf.sample(32, np.random.default_rng(5))
    b2 = other.sample(32, np.random.default_rng(5))
    for x, y in zip(b1, b2):
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(x, y)
    step = _episode_stream(2, 1, seed=9)[0]
    t1, t2 = acc.add(*step), acc2.add(*step)
    for x, y in zip(t1, t2):
        np.testing.assert_array_equal(x, y)


def test_loading_a_state_of_another_geometry_names_the_mismatch():
    state = ReplayBuffer(64, (3,)).state_dict()
    with pytest.raises(ValueError, match="capacity is 64"):
        ReplayBuffer(32, (3,)).load_state_dict(state)
    with pytest.raises(ValueError, match="obs_shape"):
        ReplayBuffer(64, (4,)).load_state_dict(state)
