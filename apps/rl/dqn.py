"""DQN (Mnih et al. 2015) on gymnasium vector environments, with the Rainbow parts as flags:
Double DQN, dueling heads, prioritized replay, n-step returns, noisy nets and C51.

    agent = DQN("CartPole-v1", DQNConfig(learning_rate=2.3e-3, ...), seed=0)
    agent.learn(50_000)
    mean, std, returns = agent.evaluate(20, seed=1000)

The loop follows Stable-Baselines3's DQN and uses its hyperparameter names, so rl-zoo presets
carry over: the agent acts for `train_freq` vector steps, then (once past `learning_starts`)
does `gradient_steps` updates; `target_update_interval` counts environment steps (divided by
n_envs, as SB3), so with a large `gradient_steps` the target network stays fixed within a
burst of updates. Actions are uniform until `learning_starts`, then epsilon-greedy with
epsilon following the schedule over the first `exploration_fraction` of the run (with
`noisy`, epsilon is 0: exploration comes from the noise).

Episodes end by termination (no bootstrap) or truncation (bootstrap from the final
observation). The vector environment runs without autoreset: the observation `step` returns
is always the true next observation, and finished environments are reset explicitly, each
episode with a seed drawn from the agent's generator. That makes a checkpoint able to rebuild
the environments exactly (reset with the episode's seed, replay its actions), so a resumed
run on the CPU continues bit for bit.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from models.rl.qnets import NatureCNN, QNetwork

from ..common.checkpoint import load_checkpoint, save_checkpoint
from .buffers import Batch, NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer
from .schedules import exponential_schedule, linear_schedule

__all__ = ["DQNConfig", "DQN", "td_targets", "categorical_projection", "make_vec_env",
           "make_env", "evaluate_greedy"]

Callback = Callable[[dict], Any]


# ============================================================================== config
@dataclass
class DQNConfig:
    """Hyperparameters, named as Stable-Baselines3 / rl-zoo name them (defaults are SB3's)."""
    learning_rate: float = 1e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    batch_size: int = 32
    gamma: float = 0.99
    train_freq: int = 4                  # vector steps between bursts of updates
    gradient_steps: int = 1              # updates per burst; -1: as many as env steps collected
    target_update_interval: int = 10_000  # environment steps
    tau: float = 1.0                     # 1: hard copy; < 1: Polyak averaging
    exploration_fraction: float = 0.1
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    exploration_schedule: str = "linear"  # or "exponential"
    max_grad_norm: float = 10.0
    loss: str = "huber"                  # "huber" (smooth L1, delta 1) or "mse"
    net_arch: tuple[int, ...] = (64, 64)
    adam_eps: float = 1e-8
    double: bool = False
    dueling: bool = False
    per: bool = False
    per_alpha: float = 0.6
    per_beta0: float = 0.4               # annealed linearly to 1 over the run
    per_eps: float = 1e-6
    n_step: int = 1
    noisy: bool = False
    noisy_sigma0: float = 0.5
    atoms: int = 1                       # > 1: C51 over linspace(v_min, v_max, atoms)
    v_min: float = -10.0
    v_max: float = 10.0
    n_envs: int = 1
    optimize_memory: bool = False        # frame storage (image observations)

    def __post_init__(self) -> None:
        self.net_arch = tuple(int(h) for h in self.net_arch)
        checks = [
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.buffer_size >= self.batch_size > 0, "need buffer_size >= batch_size > 0"),
            (self.learning_starts >= 0, "learning_starts must be >= 0"),
            (0.0 <= self.gamma <= 1.0, "gamma must be in [0, 1]"),
            (self.train_freq >= 1, "train_freq must be >= 1"),
            (self.gradient_steps >= 1 or self.gradient_steps == -1,
             "gradient_steps must be >= 1, or -1"),
            (self.target_update_interval >= 1, "target_update_interval must be >= 1"),
            (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
            (0.0 <= self.exploration_fraction <= 1.0, "exploration_fraction must be in [0, 1]"),
            (self.exploration_schedule in ("linear", "exponential"),
             "exploration_schedule must be 'linear' or 'exponential'"),
            (self.loss in ("huber", "mse"), "loss must be 'huber' or 'mse'"),
            (self.max_grad_norm > 0, "max_grad_norm must be positive"),
            (self.n_step >= 1, "n_step must be >= 1"),
            (self.atoms >= 1 and self.atoms != 2, "atoms must be 1 or at least 3"),
            (self.atoms == 1 or self.v_min < self.v_max, "v_min must be below v_max"),
            (self.n_envs >= 1, "n_envs must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DQNConfig: {message}")

    @classmethod
    def from_dict(cls, values: dict) -> "DQNConfig":
        """A config from a preset/checkpoint mapping; an unknown key is a ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"DQNConfig: unknown hyperparameter(s) {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["net_arch"] = list(self.net_arch)
        return d


# ============================================================================== targets
def td_targets(next_q_target, rewards, terminated, discounts, next_q_online=None,
               double: bool = False):
    """One-step (or n-step) TD targets y = r + (1 - terminated) * discount * V(s').

    V(s') = max_a Q_target(s', a), or with `double` Q_target(s', argmax_a Q_online(s', a))
    (van Hasselt et al. 2016). `discounts` is gamma ** steps per sample (a scalar works too);
    a terminated transition never bootstraps, a truncated one is simply not terminated.
    Shapes: next_q_* (N, n_actions), the others (N,). No gradient flows through the result.
    """
    with fw.no_grad():
        if double:
            if next_q_online is None:
                raise ValueError("td_targets: double=True needs next_q_online")
            a = next_q_online.argmax(1, keepdim=True)
            v = next_q_target.gather(1, a).squeeze(1)
        else:
            v = next_q_target.amax(1)
        return rewards + (1.0 - terminated) * discounts * v


def categorical_projection(next_probs, rewards, terminated, discounts, support):
    """C51's target distribution: the return distribution r + (1 - terminated) * discount * z
    (z the support atoms, with probabilities `next_probs` (N, K)) clipped to [v_min, v_max]
    and projected back onto the support by splitting each atom's mass between its two
    neighbours in proportion to closeness. Returns (N, K); each row sums to 1."""
    with fw.no_grad():
        n, k = next_probs.shape
        v_min, v_max = float(support[0]), float(support[-1])
        dz = (v_max - v_min) / (k - 1)
        not_done = (1.0 - terminated) * discounts
        tz = (rewards.unsqueeze(1) + not_done.unsqueeze(1) * support.unsqueeze(0))
        b = (tz.clamp(v_min, v_max) - v_min) / dz           # fractional atom index in [0, K-1]
        lower = b.floor()
        upper = b.ceil()
        # an exact atom (lower == upper) keeps all its mass
        m_lower = next_probs * (upper - b + (lower == upper).to(b.dtype))
        m_upper = next_probs * (b - lower)
        offset = (fw.arange(n, device=next_probs.device) * k).unsqueeze(1)
        out = fw.zeros(n * k, dtype=next_probs.dtype, device=next_probs.device)
        out.index_add_(0, (lower.long() + offset).reshape(-1), m_lower.reshape(-1))
        out.index_add_(0, (upper.long() + offset).reshape(-1), m_upper.reshape(-1))
        return out.reshape(n, k)


# ============================================================================== environments
def _gym():
    try:
        import gymnasium
    except ImportError:
        raise ImportError("lantern rl needs gymnasium: pip install gymnasium") from None
    return gymnasium


def _check_env_id(env_id: str) -> None:
    gym = _gym()
    if env_id.startswith("ALE/") and env_id not in gym.registry:
        try:    # gymnasium knows the Atari games once ale-py has registered them
            import ale_py
        except ImportError:
            raise ValueError(f"{env_id}: Atari games need ale-py (its wheel ships the ROMs): "
                             "pip install ale-py") from None
        gym.register_envs(ale_py)
    if ":" in env_id or env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown environment id {env_id!r}{hint}")


def _check_spaces(env_id: str, obs_space, act_space) -> None:
    gym = _gym()
    if not isinstance(act_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id}: DQN needs a discrete action space, this environment's is "
                         f"{act_space}")
    if not isinstance(obs_space, gym.spaces.Box):
        raise ValueError(f"{env_id}: DQN needs a Box observation space (a vector or image "
                         f"frames), this environment's is {obs_space}")
    shape = tuple(obs_space.shape)
    if len(shape) != 1 and not (len(shape) == 3 and shape[1:] == (84, 84)):
        raise ValueError(f"{env_id}: observations of shape {shape} are not supported: need a "
                         "vector (obs_dim,) or stacked 84x84 frames (C, 84, 84)")


def make_vec_env(env_id: str, n_envs: int = 1, env_kwargs: dict | None = None,
                 wrappers: Sequence[Callable] | None = None):
    """gymnasium's SyncVectorEnv of `n_envs` copies of `env_id` without autoreset (the agent
    resets finished environments itself); errors name the id."""
    gym = _gym()
    _check_env_id(env_id)
    try:
        envs = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.DISABLED},
                            wrappers=list(wrappers or ()), **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ValueError(f"{env_id}: cannot create the environment ({exc})") from None
    try:
        _check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
    except ValueError:
        envs.close()
        raise
    return envs


def make_env(env_id: str, env_kwargs: dict | None = None,
             wrappers: Sequence[Callable] | None = None, render_mode: str | None = None):
    """One environment of `env_id` (for evaluation and rendering), its wrappers applied in
    order, with the same checks and one-line errors as `make_vec_env`."""
    gym = _gym()
    _check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise ValueError(f"{env_id}: cannot create the environment ({exc})") from None
    for w in wrappers or ():
        env = w(env)
    try:
        _check_spaces(env_id, env.observation_space, env.action_space)
    except ValueError:
        env.close()
        raise
    return env


def evaluate_greedy(q_net: nn.Module, env, n_episodes: int = 20,
                    seed: int = 0) -> tuple[float, float, list[float]]:
    """Greedy returns of a Q-network (noisy layers in eval mode) over `n_episodes` of the
    single environment `env`, reset with `seed` once (later episodes continue its generator,
    as SB3's evaluate_policy): (mean, std over episodes, returns)."""
    if n_episodes < 1:
        raise ValueError(f"evaluate: n_episodes must be positive, got {n_episodes}")
    image = len(env.observation_space.shape) == 3
    dtype = np.uint8 if image else np.float32
    start = int(env.action_space.start)
    device = next(q_net.parameters()).device
    returns: list[float] = []
    training = q_net.training
    q_net.eval()
    try:
        obs, _ = env.reset(seed=int(seed))
        while len(returns) < n_episodes:
            total, done = 0.0, False
            while not done:
                x = fw.from_numpy(np.asarray(obs, dtype)[None])
                with fw.no_grad():
                    q = q_net.q_values(x if device.type == "cpu" else x.to(device))
                a = int(q.argmax(1).cpu().numpy()[0])
                obs, r, term, trunc, _ = env.step(a + start)
                total += float(r)
                done = term or trunc
            returns.append(total)
            if len(returns) < n_episodes:
                obs, _ = env.reset()
    finally:
        q_net.train(training)
    return float(np.mean(returns)), float(np.std(returns)), returns


@contextlib.contextmanager
def _limit_threads(n: int | None):
    """Run with `n` intra-op/BLAS threads (None: unchanged), restoring the count after."""
    previous = fw.get_num_threads()
    if n is None or n == previous:
        yield
        return
    fw.set_num_threads(n)
    try:
        yield
    finally:
        fw.set_num_threads(previous)


def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


# ============================================================================== agent
class DQN:
    """A DQN agent for a registered gymnasium id with a discrete action space.

    `seed` seeds the framework's generator (network initialisation, noise), the agent's own
    NumPy generator (exploration, replay sampling, episode seeds) and the environments'
    first episodes. Training statistics: `episode_returns`, `episode_lengths`,
    `episode_end_steps` (the step counter when each episode ended), `num_timesteps`,
    `num_updates`, and `timings` (seconds spent stepping and resetting the environments,
    choosing actions, storing transitions and bookkeeping, and updating the network).

    `threads` is the number of intra-op/BLAS threads `learn` runs with (restored after).
    None picks 1 for an MLP on the CPU: its 64x256-sized products gain nothing from a second
    thread, and on a shared machine a BLAS thread waiting for a busy core made each update
    ten times slower (measured 1.1 ms with 1 thread, 12 ms with 2 on this 2-core VM under
    load); otherwise the process setting is kept.
    """

    def __init__(self, env_id: str, config: DQNConfig | None = None, seed: int = 0,
                 device: str = "cpu", env_kwargs: dict | None = None,
                 wrappers: Sequence[Callable] | None = None, threads: int | None = None) -> None:
        self.config = cfg = config or DQNConfig()
        self.threads = threads
        self.env_id, self.seed = env_id, int(seed)
        self.env_kwargs = dict(env_kwargs or {})
        self.wrappers = list(wrappers or ())
        self.device = fw.device(device)
        self.envs = make_vec_env(env_id, cfg.n_envs, self.env_kwargs, self.wrappers)
        obs_space = self.envs.single_observation_space
        act_space = self.envs.single_action_space
        self.obs_shape = tuple(int(s) for s in obs_space.shape)
        self.n_actions = int(act_space.n)
        self._action_start = int(act_space.start)
        image = len(self.obs_shape) == 3
        self.obs_dtype = np.dtype(np.uint8) if image else np.dtype(np.float32)

        fw.manual_seed(self.seed)
        self.q_net = self._build_net().to(self.device)
        self.target_net = self._build_net().to(self.device)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.train(self.q_net.training)
        for p in self.target_net.parameters():
            p.requires_grad_(False)
        self._params = list(self.q_net.parameters())
        self.optimizer = fw.optim.Adam(self._params, lr=cfg.learning_rate, eps=cfg.adam_eps)

        buffer_cls = PrioritizedReplayBuffer if cfg.per else ReplayBuffer
        kw = {"alpha": cfg.per_alpha, "beta": cfg.per_beta0, "eps": cfg.per_eps} if cfg.per else {}
        self.buffer = buffer_cls(cfg.buffer_size, self.obs_shape, self.obs_dtype, cfg.n_envs,
                                 cfg.optimize_memory, **kw)
        self.nstep = (NStepAccumulator(cfg.n_step, cfg.gamma, cfg.n_envs, self.obs_shape,
                                       self.obs_dtype) if cfg.n_step > 1 else None)
        make_schedule = linear_schedule if cfg.exploration_schedule == "linear" else \
            exponential_schedule
        self.exploration = make_schedule(cfg.exploration_initial_eps, cfg.exploration_final_eps,
                                         cfg.exploration_fraction)
        self.beta_schedule = linear_schedule(cfg.per_beta0, 1.0, 1.0)

        self.rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.num_updates = 0
        self._n_calls = 0                   # vector steps
        self._synced_at = -1                # num_updates when the target was last copied
        self.last_loss: float | None = None
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.episode_end_steps: list[int] = []
        self.timings = {"env": 0.0, "act": 0.0, "store": 0.0, "update": 0.0}
        self._ep_return = np.zeros(cfg.n_envs, np.float64)
        self._ep_len = np.zeros(cfg.n_envs, np.int64)
        self._ep_seeds = np.array([self.seed + i for i in range(cfg.n_envs)], np.int64)
        self._ep_actions: list[list[int]] = [[] for _ in range(cfg.n_envs)]
        obs, _ = self.envs.reset(seed=[int(s) for s in self._ep_seeds])
        self._obs = np.asarray(obs, self.obs_dtype)

    def _build_net(self) -> nn.Module:
        cfg = self.config
        kw = dict(dueling=cfg.dueling, noisy=cfg.noisy, atoms=cfg.atoms, v_min=cfg.v_min,
                  v_max=cfg.v_max, sigma0=cfg.noisy_sigma0)
        if len(self.obs_shape) == 3:
            return NatureCNN(self.obs_shape[0], self.n_actions, **kw)
        return QNetwork(self.obs_shape[0], self.n_actions, cfg.net_arch, **kw)

    # -------------------------------------------------------------------------- acting
    def exploration_rate(self, total_timesteps: int) -> float:
        """Epsilon at the current step of a run of `total_timesteps` steps."""
        if self.config.noisy:
            return 0.0
        return self.exploration(self.num_timesteps / max(1, total_timesteps))

    def _tensor(self, a: np.ndarray):
        t = fw.from_numpy(a)
        return t if self.device.type == "cpu" else t.to(self.device)

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        with fw.no_grad():
            q = self.q_net.q_values(self._tensor(obs))
            return q.argmax(1).cpu().numpy()

    def _act(self, epsilon: float) -> np.ndarray:
        n = self.config.n_envs
        random_actions = self.rng.integers(0, self.n_actions, n)
        if self.num_timesteps < self.config.learning_starts:
            return random_actions
        explore = self.rng.random(n) < epsilon
        if explore.all():    # no forward pass when every env explores
            return random_actions
        if self.config.noisy:
            self.q_net.reset_noise()
        return np.where(explore, random_actions, self._greedy(self._obs))

    def predict(self, obs, deterministic: bool = True, epsilon: float = 0.0):
        """Actions for observations (one observation -> an int, a batch -> an array).
        Deterministic: greedy on the mean network (noisy layers in eval mode); otherwise
        epsilon-greedy with `epsilon` on the noisy network."""
        obs = np.asarray(obs, self.obs_dtype)
        single = obs.shape == self.obs_shape
        if not single and tuple(obs.shape[1:]) != self.obs_shape:
            raise ValueError(f"predict: observations of shape {obs.shape} for an agent of "
                             f"observation shape {self.obs_shape}")
        batch = obs.reshape((-1,) + self.obs_shape)
        training = self.q_net.training
        self.q_net.train(not deterministic)
        try:
            actions = self._greedy(batch)
        finally:
            self.q_net.train(training)
        if not deterministic and epsilon > 0:
            explore = self.rng.random(len(actions)) < epsilon
            actions = np.where(explore, self.rng.integers(0, self.n_actions, len(actions)),
                               actions)
        actions = actions + self._action_start
        return int(actions[0]) if single else actions

    # -------------------------------------------------------------------------- training
    def learn(self, total_timesteps: int, callback: Callback | None = None) -> "DQN":
        """Train until the step counter reaches `total_timesteps` (a resumed agent continues
        from its counter; schedules run over `total_timesteps`). `callback(info)` is called
        after every vector step with a dict (timesteps, episode_returns/lengths of the
        episodes that ended in this step, epsilon, loss (mean of the last burst), updates,
        steps_per_second); returning False stops training."""
        threads = self.threads
        if threads is None and self.device.type == "cpu" and isinstance(self.q_net, QNetwork):
            threads = 1
        fw.set_flush_denormal(True)   # denormal Adam moments would slow every update
        with _limit_threads(threads):
            self._learn(int(total_timesteps), callback)
        return self

    def _learn(self, total_timesteps: int, callback: Callback | None) -> None:
        cfg = self.config
        clock = time.perf_counter
        t_begin, steps_begin = clock(), self.num_timesteps
        every_target = max(cfg.target_update_interval // cfg.n_envs, 1)
        n_updates = cfg.gradient_steps if cfg.gradient_steps > 0 else cfg.train_freq * cfg.n_envs
        timings = self.timings
        while self.num_timesteps < total_timesteps:
            t0 = clock()
            epsilon = self.exploration_rate(total_timesteps)
            actions = self._act(epsilon)
            t1 = clock()
            next_obs, rewards, terminated, truncated, _ = self.envs.step(
                actions + self._action_start if self._action_start else actions)
            t2 = clock()
            next_obs = np.asarray(next_obs, self.obs_dtype)
            done = terminated | truncated
            for e in range(cfg.n_envs):
                self._ep_actions[e].append(int(actions[e]))
            self._store(actions, rewards, next_obs, terminated, truncated)
            self._ep_return += rewards
            self._ep_len += 1
            ended_returns: list[float] = []
            ended_lengths: list[int] = []
            t_env = 0.0
            self.num_timesteps += cfg.n_envs
            if done.any():
                for e in np.flatnonzero(done):
                    ended_returns.append(float(self._ep_return[e]))
                    ended_lengths.append(int(self._ep_len[e]))
                    self._ep_return[e] = 0.0
                    self._ep_len[e] = 0
                    self._ep_actions[e] = []
                self.episode_returns += ended_returns
                self.episode_lengths += ended_lengths
                self.episode_end_steps += [self.num_timesteps] * len(ended_returns)
                seeds = self.rng.integers(0, 2 ** 31, int(done.sum()))
                self._ep_seeds[done] = seeds
                seed_list: list = [None] * cfg.n_envs
                for e, s in zip(np.flatnonzero(done), seeds):
                    seed_list[e] = int(s)
                t_reset = clock()
                next_obs, _ = self.envs.reset(seed=seed_list, options={"reset_mask": done})
                t_env += clock() - t_reset
                next_obs = np.asarray(next_obs, self.obs_dtype)
            self._obs = next_obs
            t3 = clock()
            timings["act"] += t1 - t0
            timings["env"] += t2 - t1 + t_env
            timings["store"] += t3 - t2 - t_env
            self._n_calls += 1
            if self._n_calls % every_target == 0:
                self._update_target()
            if self._n_calls % cfg.train_freq == 0 and self.num_timesteps > cfg.learning_starts:
                self._train(n_updates, total_timesteps)
                timings["update"] += clock() - t3
            if callback is not None:
                elapsed = clock() - t_begin
                info = {"timesteps": self.num_timesteps, "episode_returns": ended_returns,
                        "episode_lengths": ended_lengths, "epsilon": epsilon,
                        "loss": self.last_loss, "updates": self.num_updates,
                        "steps_per_second": (self.num_timesteps - steps_begin) / elapsed
                        if elapsed > 0 else 0.0}
                if callback(info) is False:
                    break

    def _store(self, actions, rewards, next_obs, terminated, truncated) -> None:
        if self.nstep is None:
            self.buffer.add(self._obs, next_obs, actions, rewards, terminated, truncated)
            return
        tr = self.nstep.add(self._obs, actions, rewards, next_obs, terminated, truncated)
        if tr.actions.shape[0]:
            self.buffer.add(tr.obs, tr.next_obs, tr.actions, tr.rewards, tr.terminated,
                            tr.truncated, tr.steps, tr.env_ids)

    @fw.no_grad()
    def _update_target(self) -> None:
        tau = self.config.tau
        if tau >= 1.0:
            if self._synced_at == self.num_updates:   # nothing changed since the last copy
                return
            for pt, p in zip(self.target_net.parameters(), self._params):
                pt.copy_(p)
            self._synced_at = self.num_updates
            return
        for pt, p in zip(self.target_net.parameters(), self._params):
            pt.mul_(1.0 - tau).add_(p, alpha=tau)

    def _targets(self, batch: Batch, target_out, sl: slice = slice(None)):
        """TD targets (N,), or for C51 the projected target distributions (N, K), of the
        samples `sl` of `batch`, given the target network's outputs for their next obs."""
        cfg = self.config
        t = self._tensor
        rewards, terminated = t(batch.rewards[sl]), t(batch.terminated[sl])
        steps = batch.steps[sl]
        discounts = t((cfg.gamma ** steps.astype(np.float64)).astype(np.float32)) \
            if cfg.n_step > 1 else cfg.gamma
        with fw.no_grad():
            online = self.q_net.q_values(t(batch.next_obs[sl])) if cfg.double else None
            if cfg.atoms == 1:
                return td_targets(target_out, rewards, terminated, discounts, online,
                                  cfg.double)
            probs = F.softmax(target_out, -1)
            support = self.target_net.support
            q = online if cfg.double else (probs * support).sum(-1)
            p_next = probs[fw.arange(probs.shape[0], device=probs.device), q.argmax(1)]
            if not isinstance(discounts, fw.Tensor):
                discounts = fw.full((p_next.shape[0],), discounts, device=p_next.device)
            return categorical_projection(p_next, rewards, terminated, discounts, support)

    def _target_outputs(self, next_obs: np.ndarray):
        """The target network on many next observations, in chunks that bound memory."""
        rows = max(self.config.batch_size, (1 << 22) // max(1, int(np.prod(self.obs_shape))))
        with fw.no_grad():
            outs = [self.target_net(self._tensor(next_obs[i:i + rows]))
                    for i in range(0, next_obs.shape[0], rows)]
        return outs[0] if len(outs) == 1 else fw.cat(outs, 0)

    def _loss(self, obs, actions, target, weights=None):
        """(loss, per-sample priority signal or None); `actions` is (N, 1) int64."""
        cfg = self.config
        out = self.q_net(obs)
        if cfg.atoms == 1:
            q = out.gather(1, actions).squeeze(1)
            if weights is None:
                loss = F.smooth_l1_loss(q, target) if cfg.loss == "huber" else \
                    F.mse_loss(q, target)
                return loss, None
            per = F.smooth_l1_loss(q, target, reduction="none") if cfg.loss == "huber" else \
                F.mse_loss(q, target, reduction="none")
            return (per * weights).mean(), (q.detach() - target)
        n, _, k = out.shape
        logits = out.gather(1, actions.unsqueeze(2).expand(n, 1, k)).squeeze(1)
        per = -(target * F.log_softmax(logits, -1)).sum(-1)     # cross-entropy
        if weights is None:
            return per.mean(), None
        # the priority is the KL divergence (Rainbow): cross-entropy less the target's entropy
        with fw.no_grad():
            entropy = -(target * target.clamp_min(1e-12).log()).sum(-1)
        return (per * weights).mean(), per.detach() - entropy

    def _step(self, loss) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self._params, self.config.max_grad_norm)
        self.optimizer.step()
        self.num_updates += 1

    def _train(self, n_updates: int, total_timesteps: int) -> None:
        cfg = self.config
        bs = cfg.batch_size
        t = self._tensor
        losses = []
        if cfg.noisy:
            self.target_net.reset_noise()
        if not cfg.per:
            # uniform replay: the target network is fixed during a burst (it changes on
            # environment steps only), so draw every minibatch at once and run the target
            # network on all their next observations in one pass
            big = self.buffer.sample(n_updates * bs, self.rng)
            target_out = self._target_outputs(big.next_obs)
            targets = None if cfg.double else self._targets(big, target_out)
            if targets is not None and self.device.type == "cpu":
                targets = targets.numpy()      # slicing NumPy is cheaper than slicing tensors
            actions = big.actions.reshape(-1, 1)
            for u in range(n_updates):
                sl = slice(u * bs, (u + 1) * bs)
                if cfg.noisy:
                    self.q_net.reset_noise()
                if targets is None:
                    target = self._targets(big, target_out[sl], sl)
                else:
                    target = t(targets[sl]) if isinstance(targets, np.ndarray) else targets[sl]
                loss, _ = self._loss(t(big.obs[sl]), t(actions[sl]), target)
                self._step(loss)
                losses.append(loss.detach())
        else:
            beta = self.beta_schedule(self.num_timesteps / max(1, total_timesteps))
            for _ in range(n_updates):
                batch = self.buffer.sample(bs, self.rng, beta)
                if cfg.noisy:
                    self.q_net.reset_noise()
                target = self._targets(batch, self._target_outputs(batch.next_obs))
                loss, prio = self._loss(t(batch.obs), t(batch.actions.reshape(-1, 1)), target,
                                        t(batch.weights))
                self._step(loss)
                self.buffer.update_priorities(batch.indices, prio.cpu().numpy())
                losses.append(loss.detach())
        self.last_loss = float(fw.stack(losses).mean().item())

    # -------------------------------------------------------------------------- evaluation
    def evaluate(self, n_episodes: int = 20, seed: int = 0) -> tuple[float, float, list[float]]:
        """Greedy (deterministic) returns over `n_episodes` on a fresh environment reset with
        `seed` once (later episodes continue its generator, as SB3's evaluate_policy);
        (mean, std over episodes, returns)."""
        env = make_env(self.env_id, self.env_kwargs, self.wrappers)
        try:
            return evaluate_greedy(self.q_net, env, n_episodes, seed)
        finally:
            env.close()

    # -------------------------------------------------------------------------- state
    def meta(self) -> dict:
        """What a checkpoint says about the agent (JSON-able)."""
        return {"algorithm": "dqn", "env_id": self.env_id, "env_kwargs": self.env_kwargs,
                "obs_shape": list(self.obs_shape), "n_actions": self.n_actions,
                "seed": self.seed, "config": self.config.to_dict(),
                "network": type(self.q_net).__name__}

    def state_dict(self, include_buffer: bool = True) -> dict:
        """Everything to continue training exactly: networks, optimizer, counters, generator
        states, the environments' current episodes and (optionally) the replay memory."""
        state = {
            "model": self.q_net.state_dict(),
            "target_model": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "meta": self.meta(),
            "counters": {"num_timesteps": self.num_timesteps, "num_updates": self.num_updates,
                         "n_calls": self._n_calls, "synced_at": self._synced_at,
                         "last_loss": self.last_loss},
            "episodes": {"returns": np.asarray(self.episode_returns, np.float64),
                         "lengths": np.asarray(self.episode_lengths, np.int64),
                         "end_steps": np.asarray(self.episode_end_steps, np.int64)},
            "rng": {"agent": _rng_state(self.rng), "framework": fw.get_rng_state()},
            "env": {"seeds": self._ep_seeds.copy(), "returns": self._ep_return.copy(),
                    "lengths": self._ep_len.copy(), "obs": self._obs.copy(),
                    "actions": [np.asarray(a, np.int64) for a in self._ep_actions]},
        }
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
            if self.nstep is not None:
                state["nstep"] = self.nstep.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; without a saved buffer the replay memory starts empty.
        The environments are rebuilt by replaying each one's current episode."""
        meta = state.get("meta", {})
        if list(meta.get("obs_shape", [])) != list(self.obs_shape) or \
                int(meta.get("n_actions", -1)) != self.n_actions:
            raise ValueError(f"checkpoint is for {meta.get('env_id')} (observations "
                             f"{tuple(meta.get('obs_shape', ()))}, {meta.get('n_actions')} "
                             f"actions), this agent has {self.env_id} (observations "
                             f"{self.obs_shape}, {self.n_actions} actions)")
        self.q_net.load_state_dict(state["model"])
        self.target_net.load_state_dict(state["target_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        c = state["counters"]
        self.num_timesteps, self.num_updates = int(c["num_timesteps"]), int(c["num_updates"])
        self._n_calls, self._synced_at = int(c["n_calls"]), int(c["synced_at"])
        self.last_loss = None if c["last_loss"] is None else float(c["last_loss"])
        ep = state["episodes"]
        self.episode_returns = [float(x) for x in np.asarray(ep["returns"]).reshape(-1)]
        self.episode_lengths = [int(x) for x in np.asarray(ep["lengths"]).reshape(-1)]
        self.episode_end_steps = [int(x) for x in np.asarray(ep["end_steps"]).reshape(-1)]
        _set_rng_state(self.rng, state["rng"]["agent"])
        fw.set_rng_state(state["rng"]["framework"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        if self.nstep is not None and "nstep" in state:
            self.nstep.load_state_dict(state["nstep"])
        self._restore_envs(state["env"])

    def _restore_envs(self, env_state: dict) -> None:
        seeds = np.asarray(env_state["seeds"], np.int64)
        obs, _ = self.envs.reset(seed=[int(s) for s in seeds])
        obs = np.asarray(obs, self.obs_dtype).copy()
        for e, sub in enumerate(self.envs.envs):
            actions = [int(a) for a in np.asarray(env_state["actions"][e]).reshape(-1)]
            for a in actions:
                o, _, term, trunc, _ = sub.step(a + self._action_start)
                if term or trunc:
                    raise ValueError(f"{self.env_id}: replaying environment {e}'s episode "
                                     "ended it early: the environment is not reproducible "
                                     "from its seed")
                obs[e] = np.asarray(o, self.obs_dtype)
            self._ep_actions[e] = actions
        saved = np.asarray(env_state["obs"], self.obs_dtype)
        if not np.array_equal(obs, saved):
            raise ValueError(f"{self.env_id}: replaying the current episodes did not reach the "
                             "saved observations: the environment is not reproducible from "
                             "its seed")
        self._obs = obs
        self._ep_seeds = seeds.copy()
        self._ep_return = np.asarray(env_state["returns"], np.float64).copy()
        self._ep_len = np.asarray(env_state["lengths"], np.int64).copy()

    def save(self, path, include_buffer: bool = True) -> Path:
        """Write the state to `path` (a .safetensors file, atomically)."""
        return save_checkpoint(path, self.state_dict(include_buffer))

    @classmethod
    def load(cls, path, device: str = "cpu", env_kwargs: dict | None = None,
             wrappers: Sequence[Callable] | None = None) -> "DQN":
        """An agent rebuilt from a checkpoint written by `save` (same environment id, config
        and seed), ready to evaluate or to continue training."""
        state = load_checkpoint(path, require=("model", "meta"))
        meta = state["meta"]
        if meta.get("algorithm") != "dqn" or "config" not in meta:
            raise ValueError(f"{path}: not a DQN checkpoint")
        config = DQNConfig.from_dict(meta["config"])
        agent = cls(meta["env_id"], config, int(meta.get("seed", 0)), device,
                    env_kwargs if env_kwargs is not None else meta.get("env_kwargs"),
                    wrappers)
        agent.load_state_dict(state)
        return agent

    def close(self) -> None:
        self.envs.close()
