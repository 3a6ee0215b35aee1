"""Replay memory for off-policy agents: a uniform replay buffer in preallocated NumPy arrays
(optionally storing each observation once, for image observations), a sum-tree, prioritized
replay on top of it, and the accumulator that turns 1-step transitions into n-step ones.

A transition is (obs, action, reward, next_obs, terminated, steps): `reward` is the
(discounted) sum over `steps` environment steps and the TD target bootstraps from `next_obs`
with discount gamma ** steps unless `terminated`. A time-limit truncation is not a
termination: its transition bootstraps from the final observation.

Every buffer has `state_dict()` / `load_state_dict()` made of NumPy arrays and Python
scalars only, so a checkpoint can hold the replay memory and a resumed run samples exactly
what the uninterrupted run would have.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["Batch", "Transitions", "ReplayBuffer", "SumTree", "PrioritizedReplayBuffer",
           "NStepAccumulator"]


class Batch(NamedTuple):
    """A sampled minibatch. `terminated` is float32 (1.0: do not bootstrap); `weights` are the
    importance-sampling weights of prioritized replay (None for uniform replay); `indices` are
    the buffer slots the samples came from (for `update_priorities`)."""
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    steps: np.ndarray
    indices: np.ndarray
    weights: np.ndarray | None = None


class Transitions(NamedTuple):
    """Transitions produced by `NStepAccumulator.add`, in time order per environment.
    `truncated` marks transitions whose episode was cut by a time limit right at their end
    (they bootstrap from `next_obs`, the final observation)."""
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    steps: np.ndarray
    env_ids: np.ndarray


def _check_state(state: dict, expected: dict, what: str) -> None:
    for key, want in expected.items():
        got = state.get(key)
        if got is None:
            raise ValueError(f"{what} state: missing {key!r}")
        if isinstance(want, tuple):
            got = tuple(int(v) for v in np.asarray(got).reshape(-1))
        elif isinstance(want, str):
            got = str(got)
        else:
            got = int(got)
        if got != want:
            raise ValueError(f"{what} state: {key} is {got}, this buffer has {want}")


# ============================================================================== uniform replay
class ReplayBuffer:
    """Uniform replay over the last `capacity` transitions.

    Plain storage (default) keeps obs and next_obs of every transition in one ring of
    `capacity` slots. With `optimize_memory=True` (for image observations) each environment
    has a column of capacity // n_envs rows holding its observation stream once: a
    transition's next observation is the obs `steps` rows further down the same column. At a
    time-limit truncation the final observation is kept in the following row, which holds no
    transition (so the next episode starts one row later); after a termination the next
    observation is never used. Transitions must then be added in time order per environment.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32,
                 n_envs: int = 1, optimize_memory: bool = False) -> None:
        capacity, n_envs = int(capacity), int(n_envs)
        if n_envs < 1:
            raise ValueError(f"ReplayBuffer: n_envs must be positive, got {n_envs}")
        if capacity < n_envs:
            raise ValueError(f"ReplayBuffer: capacity {capacity} is below n_envs={n_envs}")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self.n_envs = n_envs
        self.optimize_memory = bool(optimize_memory)
        if self.optimize_memory:
            self.rows = capacity // n_envs
            if self.rows < 4:
                raise ValueError(f"ReplayBuffer: optimize_memory needs at least 4 rows per "
                                 f"environment, got capacity {capacity} for {n_envs} envs")
            self.capacity = self.rows * n_envs       # slot = row * n_envs + env
            self._frames = np.zeros((self.rows, n_envs) + self.obs_shape, self.obs_dtype)
            self.obs = self._frames.reshape((self.capacity,) + self.obs_shape)
            self.next_obs = None
            self.valid = np.zeros(self.capacity, bool)
            self.row_pos = np.zeros(n_envs, np.int64)       # next row to write, per env
            self.rows_used = 0          # rows that hold data in some column (a prefix)
        else:
            self.rows = self.capacity = capacity
            self.obs = np.zeros((capacity,) + self.obs_shape, self.obs_dtype)
            self.next_obs = np.zeros((capacity,) + self.obs_shape, self.obs_dtype)
            self.pos = 0
        self.actions = np.zeros(self.capacity, np.int64)
        self.rewards = np.zeros(self.capacity, np.float32)
        self.terminated = np.zeros(self.capacity, np.float32)
        self.steps = np.ones(self.capacity, np.int16)
        self.size = 0       # transitions that can be sampled

    def __len__(self) -> int:
        return self.size

    # ------------------------------------------------------------------------------ writing
    def add(self, obs, next_obs, action, reward, terminated, truncated=None, steps=None,
            env_ids=None) -> np.ndarray:
        """Store a batch of B transitions (B = n_envs unless `env_ids` says which environment
        each came from); returns the slots written. `steps` (default 1) is how many
        environment steps each transition spans (its discount is gamma ** steps). `truncated`
        (default False) and `env_ids` matter to frame storage only, which needs to know each
        transition's environment and where episodes were cut by a time limit."""
        action = np.asarray(action).reshape(-1)
        b = action.shape[0]
        obs = np.asarray(obs).reshape((b,) + self.obs_shape)
        next_obs = np.asarray(next_obs).reshape((b,) + self.obs_shape)
        reward = np.asarray(reward, np.float32).reshape(b)
        terminated = np.asarray(terminated).reshape(b)
        steps = np.ones(b, np.int16) if steps is None else np.asarray(steps).reshape(b)
        if not self.optimize_memory:
            idx = (self.pos + np.arange(b)) % self.capacity
            self.obs[idx] = obs
            self.next_obs[idx] = next_obs
            self._write(idx, action, reward, terminated, steps)
            self.pos = int((self.pos + b) % self.capacity)
            self.size = min(self.size + b, self.capacity)
            self._on_write(idx, None)
            return idx
        env_ids = np.arange(b) if env_ids is None else np.asarray(env_ids).reshape(b)
        truncated = np.zeros(b, bool) if truncated is None else np.asarray(truncated).reshape(b)
        if b and (env_ids.min() < 0 or env_ids.max() >= self.n_envs):
            raise ValueError(f"ReplayBuffer.add: env id out of range [0, {self.n_envs})")
        if b and (steps.min() < 1 or steps.max() > self.rows - 2):
            raise ValueError(f"ReplayBuffer.add: steps must be in [1, {self.rows - 2}] for "
                             f"{self.rows} rows per environment")
        written = np.empty(b, np.int64)
        for i in range(b):     # in order: one environment may have several transitions
            e, k = int(env_ids[i]), int(steps[i])
            p = int(self.row_pos[e])
            slot = p * self.n_envs + e
            ahead = ((p + np.arange(1, k + 1)) % self.rows) * self.n_envs + e
            self.obs[slot] = obs[i]
            self.obs[ahead[-1]] = next_obs[i]
            # the transitions in these rows lose their obs or (further up) their next obs
            self.size -= int(self.valid[ahead].sum())
            self.valid[ahead] = False
            self.size += not self.valid[slot]
            self.valid[slot] = True
            written[i] = slot
            cut = bool(truncated[i]) and not bool(terminated[i]) and k == 1
            self.row_pos[e] = (p + (2 if cut else 1)) % self.rows   # keep the final obs row
            self.rows_used = min(max(self.rows_used, p + k + 1), self.rows)
            self._on_write(np.array([slot]), ahead)
        self._write(written, action, reward, terminated, steps)
        return written

    def _write(self, idx, action, reward, terminated, steps) -> None:
        self.actions[idx] = action
        self.rewards[idx] = reward
        self.terminated[idx] = terminated
        self.steps[idx] = steps

    def _on_write(self, written: np.ndarray, invalidated: np.ndarray | None) -> None:
        """Hook for prioritized replay: slots that now hold a new transition / none."""

    # ----------------------------------------------------------------------------- sampling
    def next_obs_of(self, idx: np.ndarray) -> np.ndarray:
        if not self.optimize_memory:
            return self.next_obs[idx]
        env = idx % self.n_envs
        row = (idx // self.n_envs + self.steps[idx]) % self.rows
        return self.obs[row * self.n_envs + env]

    def gather(self, idx: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions in slots `idx`."""
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs_of(idx),
                     self.terminated[idx], self.steps[idx], idx, weights)

    def sample_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` slots drawn uniformly (with replacement) among the stored transitions."""
        if len(self) == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        if not self.optimize_memory:
            return rng.integers(0, self.size, n)
        # rejection sampling over the rows written so far: only padding rows, rows just
        # overwritten and not-yet-written rows are rejected, so few draws are wasted
        span = self.rows_used * self.n_envs
        out = np.empty(0, np.int64)
        while out.shape[0] < n:
            draw = rng.integers(0, span, 2 * (n - out.shape[0]) + 8)
            out = np.concatenate([out, draw[self.valid[draw]]])
        return out[:n]

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        return self.gather(self.sample_indices(batch_size, rng))

    # ---------------------------------------------------------------------------- state
    def _geometry(self) -> dict:
        return {"capacity": self.capacity, "n_envs": self.n_envs,
                "optimize_memory": int(self.optimize_memory), "obs_shape": self.obs_shape,
                "obs_dtype": str(self.obs_dtype)}

    def state_dict(self) -> dict:
        """The filled part of the arrays plus the pointers (NumPy arrays and scalars)."""
        n = self.rows_used * self.n_envs if self.optimize_memory else self.size
        state = dict(self._geometry())
        state["obs_shape"] = np.asarray(self.obs_shape, np.int64)
        state.update(size=self.size, filled=n, obs=self.obs[:n].copy(),
                     actions=self.actions[:n].copy(), rewards=self.rewards[:n].copy(),
                     terminated=self.terminated[:n].copy(), steps=self.steps[:n].copy())
        if self.optimize_memory:
            state.update(valid=self.valid.copy(), row_pos=self.row_pos.copy(),
                         rows_used=self.rows_used)
        else:
            state.update(next_obs=self.next_obs[:n].copy(), pos=self.pos)
        return state

    def load_state_dict(self, state: dict) -> None:
        _check_state(state, self._geometry(), type(self).__name__)
        n = int(state["filled"])
        for name in ("obs", "actions", "rewards", "terminated", "steps"):
            getattr(self, name)[:n] = np.asarray(state[name])
        self.size = int(state["size"])
        if self.optimize_memory:
            self.valid[:] = np.asarray(state["valid"], bool)
            self.row_pos[:] = np.asarray(state["row_pos"])
            self.rows_used = int(state["rows_used"])
        else:
            self.next_obs[:n] = np.asarray(state["next_obs"])
            self.pos = int(state["pos"])


# ============================================================================== sum-tree
class SumTree:
    """Priorities of `capacity` slots in a complete binary tree of sums (and of minima), so
    that setting a priority costs O(log n) and drawing a slot with probability proportional
    to its priority costs O(log n), both vectorised over many slots.

    The leaves are padded to a power of two; a priority of 0 marks an empty slot, which is
    never found and does not count in `min`.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree: capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaves.bit_length() - 1
        self._sum = np.zeros(2 * self.leaves, np.float64)      # node i: children 2i, 2i + 1
        self._min = np.full(2 * self.leaves, np.inf, np.float64)

    @property
    def total(self) -> float:
        return float(self._sum[1])

    @property
    def min(self) -> float:
        """The smallest non-zero priority (inf when the tree is empty)."""
        return float(self._min[1])

    def __getitem__(self, idx) -> np.ndarray:
        return self._sum[self.leaves + np.asarray(idx)]

    def update(self, idx, priority) -> None:
        """Set the priorities of slots `idx` (arrays; a later duplicate wins)."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        priority = np.broadcast_to(np.asarray(priority, np.float64), idx.shape)
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError(f"SumTree.update: slot out of range [0, {self.capacity})")
        if not np.all(np.isfinite(priority)) or priority.min() < 0:
            raise ValueError("SumTree.update: priorities must be finite and non-negative")
        if idx.size == 1:     # one slot (a new transition): walk up with Python floats
            self._update_one(int(idx[0]), float(priority[0]))
            return
        node = idx + self.leaves
        self._sum[node] = priority
        self._min[node] = np.where(priority > 0, priority, np.inf)
        for _ in range(self.depth):
            # siblings give duplicate parents; each duplicate writes the same value
            node = node >> 1
            left = 2 * node
            self._sum[node] = self._sum[left] + self._sum[left + 1]
            self._min[node] = np.minimum(self._min[left], self._min[left + 1])

    def _update_one(self, i: int, priority: float) -> None:
        total, low = self._sum, self._min
        node = i + self.leaves
        total[node] = priority
        low[node] = priority if priority > 0 else np.inf
        while node > 1:
            node >>= 1
            left = 2 * node
            total[node] = float(total[left]) + float(total[left + 1])
            low[node] = min(float(low[left]), float(low[left + 1]))

    def find(self, prefix_sums) -> np.ndarray:
        """For each value s in [0, total), the slot i with cumsum[i-1] <= s < cumsum[i]
        (cumsum of the priorities in slot order); never an empty slot."""
        s = np.array(prefix_sums, np.float64).reshape(-1)
        if self.total <= 0:
            raise ValueError("SumTree.find: the tree is empty")
        node = np.ones(s.shape[0], np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self._sum[left]
            # go right when s is past the left subtree, but never into an empty subtree (the
            # float sums can leave s a hair above a subtree's total)
            right = (s >= left_sum) & (self._sum[left + 1] > 0)
            s = np.where(right, s - left_sum, s)
            node = left + right
        return node - self.leaves

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "priorities": self._sum[self.leaves:
                                                                   self.leaves + self.capacity].copy()}

    def load_state_dict(self, state: dict) -> None:
        _check_state(state, {"capacity": self.capacity}, "SumTree")
        self._sum[:] = 0.0
        self._min[:] = np.inf
        self.update(np.arange(self.capacity), np.asarray(state["priorities"], np.float64))


# ============================================================================== prioritized
class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016): slot i is drawn with probability
    P(i) = p_i^alpha / sum_k p_k^alpha, p_i = |td error| + eps (new transitions get the
    largest priority seen so far), and weighted by w_i = (N P(i))^-beta / max_k w_k, where the
    maximum is over every stored transition (it belongs to the smallest priority)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32,
                 n_envs: int = 1, optimize_memory: bool = False, alpha: float = 0.6,
                 beta: float = 0.4, eps: float = 1e-6) -> None:
        super().__init__(capacity, obs_shape, obs_dtype, n_envs, optimize_memory)
        if alpha < 0:
            raise ValueError(f"PrioritizedReplayBuffer: alpha must be >= 0, got {alpha}")
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def _on_write(self, written: np.ndarray, invalidated: np.ndarray | None) -> None:
        if invalidated is not None:
            self.tree.update(invalidated, 0.0)
        self.tree.update(written, self.max_priority ** self.alpha)

    def sample_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified: one draw in each of n equal segments of the priority mass."""
        total = self.tree.total
        if total <= 0:
            raise ValueError("PrioritizedReplayBuffer.sample: the buffer is empty")
        s = (np.arange(n) + rng.random(n)) * (total / n)
        return self.tree.find(np.minimum(s, np.nextafter(total, 0)))

    def sample(self, batch_size: int, rng: np.random.Generator,
               beta: float | None = None) -> Batch:
        idx = self.sample_indices(batch_size, rng)
        return self.gather(idx, self.importance_weights(idx, self.beta if beta is None else beta))

    def importance_weights(self, idx: np.ndarray, beta: float) -> np.ndarray:
        n = len(self)
        total = self.tree.total
        p = self.tree[idx] / total
        w = (n * p) ** -beta
        w_max = (n * self.tree.min / total) ** -beta
        return (w / w_max).astype(np.float32)

    def update_priorities(self, idx, td_errors) -> None:
        """Set the priorities of sampled slots from their TD errors (or any loss)."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        p = np.abs(np.asarray(td_errors, np.float64).reshape(-1)) + self.eps
        if p.shape != idx.shape:
            raise ValueError(f"update_priorities: {idx.shape[0]} slots but {p.shape[0]} errors")
        if self.optimize_memory:   # a slot overwritten since it was sampled stays empty
            p = np.where(self.valid[idx], p, 0.0)
        self.max_priority = max(self.max_priority, float(p.max(initial=0.0)))
        self.tree.update(idx, p ** self.alpha)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(priorities=self.tree.state_dict()["priorities"],
                     max_priority=self.max_priority, alpha=self.alpha, beta=self.beta)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tree.load_state_dict({"capacity": self.capacity,
                                   "priorities": state["priorities"]})
        self.max_priority = float(state["max_priority"])


# ============================================================================== n-step
class NStepAccumulator:
    """Turns each environment's stream of 1-step transitions into n-step transitions
    (obs_t, a_t, sum_{i<k} gamma^i r_{t+i}, obs_{t+k}, terminated, k), k = n inside an
    episode. When an episode ends every pending transition is flushed with k shortened to
    the end: after a termination without bootstrap, after a time-limit truncation with
    bootstrap from the final observation (discount gamma^k)."""

    def __init__(self, n: int, gamma: float, n_envs: int, obs_shape: tuple[int, ...],
                 obs_dtype=np.float32) -> None:
        if n < 1:
            raise ValueError(f"NStepAccumulator: n must be positive, got {n}")
        self.n, self.gamma, self.n_envs = int(n), float(gamma), int(n_envs)
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self._obs = np.zeros((self.n, self.n_envs) + self.obs_shape, self.obs_dtype)
        self._actions = np.zeros((self.n, self.n_envs), np.int64)
        self._rewards = np.zeros((self.n, self.n_envs), np.float64)
        self._start = np.zeros(self.n_envs, np.int64)
        self._count = np.zeros(self.n_envs, np.int64)
        self._discounts = self.gamma ** np.arange(self.n)
        shape = (0,) + self.obs_shape
        self._empty = Transitions(np.zeros(shape, self.obs_dtype), np.zeros(0, np.int64),
                                  np.zeros(0, np.float32), np.zeros(shape, self.obs_dtype),
                                  np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int16),
                                  np.zeros(0, np.int64))

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> Transitions:
        """One vector-environment step (arrays over n_envs); `next_obs` is the true next
        observation (the final one where an episode ended). Returns the transitions that are
        complete, oldest first per environment."""
        n, envs = self.n, np.arange(self.n_envs)
        next_obs = np.asarray(next_obs).reshape((self.n_envs,) + self.obs_shape)
        terminated = np.asarray(terminated, bool).reshape(self.n_envs)
        truncated = np.asarray(truncated, bool).reshape(self.n_envs) & ~terminated
        j = (self._start + self._count) % n
        self._obs[j, envs] = np.asarray(obs).reshape((self.n_envs,) + self.obs_shape)
        self._actions[j, envs] = np.asarray(action).reshape(self.n_envs)
        self._rewards[j, envs] = np.asarray(reward, np.float64).reshape(self.n_envs)
        self._count += 1
        ended = terminated | truncated
        full = np.flatnonzero(~ended & (self._count == n))
        parts: list[tuple] = []
        if full.size:       # the common case: one n-step transition per running episode
            first = self._start[full]
            window = (first[None, :] + np.arange(n)[:, None]) % n           # (n, envs)
            ret = self._discounts @ self._rewards[window, full[None, :]]
            parts.append((self._obs[first, full], self._actions[first, full], ret,
                          next_obs[full], np.zeros(full.size, bool), np.zeros(full.size, bool),
                          np.full(full.size, n, np.int16), full))
            self._start[full] = (first + 1) % n
            self._count[full] -= 1
        for e in np.flatnonzero(ended):    # flush the episode: k = count, count - 1, ..., 1
            k = int(self._count[e])
            order = (self._start[e] + np.arange(k)) % n
            r = self._rewards[order, e]
            # ret_i = sum_{m >= i} gamma^(m - i) r_m, by a backward recursion
            ret = np.empty(k)
            acc = 0.0
            for i in range(k - 1, -1, -1):
                acc = r[i] + self.gamma * acc
                ret[i] = acc
            parts.append((self._obs[order, e], self._actions[order, e], ret,
                          np.repeat(next_obs[e][None], k, 0), np.full(k, terminated[e]),
                          np.full(k, truncated[e]), np.arange(k, 0, -1).astype(np.int16),
                          np.full(k, e)))
            self._start[e] = 0
            self._count[e] = 0
        if not parts:
            return self._empty
        cols = parts[0] if len(parts) == 1 else [np.concatenate(c) for c in zip(*parts)]
        return Transitions(cols[0].astype(self.obs_dtype, copy=False),
                           cols[1].astype(np.int64, copy=False),
                           cols[2].astype(np.float32), cols[3].astype(self.obs_dtype, copy=False),
                           cols[4], cols[5], cols[6], cols[7].astype(np.int64, copy=False))

    def state_dict(self) -> dict:
        return {"n": self.n, "n_envs": self.n_envs, "gamma": self.gamma,
                "obs": self._obs.copy(), "actions": self._actions.copy(),
                "rewards": self._rewards.copy(), "start": self._start.copy(),
                "count": self._count.copy()}

    def load_state_dict(self, state: dict) -> None:
        _check_state(state, {"n": self.n, "n_envs": self.n_envs}, "NStepAccumulator")
        if not math.isclose(float(state["gamma"]), self.gamma):
            raise ValueError(f"NStepAccumulator state: gamma is {state['gamma']}, this "
                             f"accumulator has {self.gamma}")
        self._obs[:] = np.asarray(state["obs"])
        self._actions[:] = np.asarray(state["actions"])
        self._rewards[:] = np.asarray(state["rewards"])
        self._start[:] = np.asarray(state["start"])
        self._count[:] = np.asarray(state["count"])
