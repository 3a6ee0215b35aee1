"""`lantern rl` end to end on tiny runs: train (the metrics.json contract, progress.csv, the
curves), eval, export, resume with the replay buffer bit for bit, benchmark over two seeds,
enjoy (GIF), the Atari preset on a few steps, the shipped zoo agents reaching their recorded
returns, and the bad inputs the issue lists (each one clear line, exit code 1)."""
import json

import numpy as np
import pytest

import framework as fw
import models
from apps.cli import main
from apps.rl.presets import list_presets, load_preset, preset_for_env

pytest.importorskip("gymnasium")
pytest.importorskip("yaml")

# a tiny CartPole setup: 600-2,000 steps and a few hundred updates of a 32x32 network
TINY = ["--set", "learning_starts=200", "train_freq=50", "gradient_steps=10", "batch_size=32",
        "buffer_size=5000", "net_arch=[32,32]"]


def _train(out, *extra):
    return main(["rl", "train", "--env", "CartPole-v1", *TINY, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny CartPole run with periodic checkpoints (kept, with the buffer)."""
    out = tmp_path_factory.mktemp("cartpole")
    assert _train(out, "--total-timesteps", "2000", "--checkpoint-every", "1000",
                  "--keep-checkpoints", "--save-buffer", "--log-every", "500",
                  "--eval-episodes", "5") == 0
    return out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if not line.startswith("lantern: warning")]
    assert len(err) == 1, err
    assert err[0].startswith("lantern: error: ")
    return err[0]


def _model_tensors(path) -> dict:
    state = fw.load(path)
    return {k: v.numpy() for k, v in state["model"].items()}


# ============================================================================ presets
def test_presets_name_their_environments_and_valid_hyperparameters():
    assert {"cartpole", "acrobot", "mountaincar", "lunarlander", "atari"} <= set(list_presets())
    cartpole = load_preset("cartpole")
    assert cartpole.env == "CartPole-v1" and cartpole.n_timesteps == 50_000
    assert cartpole.config().net_arch == (256, 256) and cartpole.config().n_step == 3
    assert preset_for_env("Acrobot-v1").name == "acrobot"
    assert preset_for_env("ALE/Breakout-v5").name == "atari"
    assert preset_for_env("Taxi-v3") is None
    atari = load_preset("atari")
    assert atari.config().optimize_memory and atari.atari["frame_stack"] == 4
    assert atari.env_kwargs["frameskip"] == 1


def test_a_preset_file_with_an_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("CartPole-v1:\n  n_timesteps: 10\n  learning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: DQNConfig: unknown hyperparameter\(s\) "
                                         "learning_rat"):
        load_preset(str(bad))


# ============================================================================ train
def test_train_writes_the_contract(run):
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["eval"]) >= {"mean_return", "std_return", "episodes"}
    assert m["eval"]["episodes"] == 5 and len(m["eval"]["returns"]) == 5
    assert m["eval"]["mean_return"] == pytest.approx(np.mean(m["eval"]["returns"]))
    assert m["timesteps"] == 2000 and m["seconds"] > 0 and m["env"] == "CartPole-v1"
    assert m["preset"] == "cartpole" and m["updates"] == (2000 - 200) // 50 * 10
    shares = [m["timings"][f"{k}_share"] for k in ("env", "act", "store", "update")]
    assert all(0 < s < 1 for s in shares) and sum(shares) <= 1.0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["net_arch"] == [32, 32] and cfg["config"]["n_step"] == 3   # preset
    assert cfg["config"]["learning_starts"] == 200 and cfg["total_timesteps"] == 2000
    rows = (run / "progress.csv").read_text().splitlines()
    assert rows[0] == "timesteps,episodes,mean_return,epsilon,loss,steps_per_s,seconds"
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(500, 2001, 500))
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for f in ("last.safetensors", "step_1000.safetensors"):
        assert (run / f).stat().st_size > 0, f


def test_eval_reproduces_the_training_runs_evaluation(run, tmp_path):
    assert main(["rl", "eval", "--model", str(run), "--episodes", "5",
                 "--out", str(tmp_path)]) == 0
    ev = json.loads((tmp_path / "metrics.json").read_text())["eval"]
    train_ev = json.loads((run / "metrics.json").read_text())["eval"]
    assert ev["seed"] == train_ev["seed"] == 1000
    assert ev["returns"] == train_ev["returns"]
    # another seed, the same policy: still deterministic run to run
    assert main(["rl", "eval", "--model", str(run / "last.safetensors"), "--episodes", "3",
                 "--seed", "7", "--out", str(tmp_path / "b")]) == 0
    assert main(["rl", "eval", "--model", str(run / "last.safetensors"), "--episodes", "3",
                 "--seed", "7", "--out", str(tmp_path / "c")]) == 0
    b, c = (json.loads((tmp_path / d / "metrics.json").read_text())["eval"] for d in "bc")
    assert b == c


def test_export_holds_the_same_policy(run, tmp_path):
    exported = tmp_path / "agent.safetensors"
    assert main(["rl", "export", "--model", str(run), "--out", str(exported)]) == 0
    meta = json.loads(exported.with_suffix(".json").read_text())
    assert meta["app"] == "rl" and meta["env_id"] == "CartPole-v1"
    assert meta["model"] == "dqn_mlp" and meta["model_kwargs"]["hidden"] == [32, 32]
    assert main(["rl", "eval", "--model", str(exported), "--episodes", "5",
                 "--out", str(tmp_path / "e")]) == 0
    ev = json.loads((tmp_path / "e" / "metrics.json").read_text())["eval"]
    assert ev["returns"] == json.loads((run / "metrics.json").read_text())["eval"]["returns"]


def test_resume_with_the_buffer_equals_the_uninterrupted_run(run, tmp_path):
    out = tmp_path / "resumed"
    assert main(["rl", "train", "--resume", str(run / "step_1000.safetensors"),
                 "--out", str(out), "--log-every", "500", "--eval-episodes", "5"]) == 0
    a = json.loads((run / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert b["eval"]["returns"] == a["eval"]["returns"]
    assert (b["timesteps"], b["episodes"], b["updates"]) == (a["timesteps"], a["episodes"],
                                                            a["updates"])

    def curve(folder):   # everything but the clock columns
        return [r.split(",")[:5] for r in (folder / "progress.csv").read_text().splitlines()]
    assert curve(out) == curve(run)
    wa, wb = _model_tensors(run / "last.safetensors"), _model_tensors(out / "last.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_resume_keeps_the_checkpoints_hyperparameters(run, tmp_path, capsys):
    assert main(["rl", "train", "--resume", str(run / "step_1000.safetensors"), "--set",
                 "learning_rate=0.1", "--out", str(tmp_path)]) == 1
    assert "drop learning_rate" in _one_error_line(capsys)
    assert main(["rl", "train", "--resume", str(run), "--out", str(tmp_path)]) == 1
    assert "already at step 2000" in _one_error_line(capsys)


# ============================================================================ bad input
@pytest.mark.parametrize("argv, needle", [
    (["train", "--env", "Pendulum-v1"], "Pendulum-v1: DQN needs a discrete action space"),
    (["train", "--env", "CartPol-v1"], "unknown environment id 'CartPol-v1'; did you mean "
                                       "CartPole-v1"),
    (["train", "--env", "Acrobot-v1", "--preset", "cartpole"],
     "--preset cartpole is for CartPole-v1, not --env Acrobot-v1"),
    (["train", "--preset", "cartpol"], "unknown preset 'cartpol' (did you mean cartpole?)"),
    (["train", "--env", "CartPole-v1", "--set", "learning_rat=1"],
     "--set learning_rat: not a DQN hyperparameter (did you mean learning_rate?)"),
    (["train", "--env", "CartPole-v1", "--set", "gamma=2"], "gamma must be in [0, 1]"),
    (["eval", "--model", "zoo:lenet5.mnist5k"], "a vision model, not an rl agent"),
    (["eval", "--model", "no/such/run"], "no/such/run: no such file or run folder"),
])
def test_bad_input_is_one_line(argv, needle, tmp_path, capsys):
    assert main(["rl", *argv, "--out", str(tmp_path)] if argv[0] == "train" else
                ["rl", *argv]) == 1
    assert needle in _one_error_line(capsys)


def test_checkpoint_for_another_space_or_corrupt_is_named(run, tmp_path, capsys):
    assert main(["rl", "eval", "--model", str(run), "--env", "Acrobot-v1"]) == 1
    line = _one_error_line(capsys)
    assert "a policy for CartPole-v1 (observations (4,), 2 actions), not Acrobot-v1 " \
           "(observations (6,), 3 actions)" in line
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes((run / "last.safetensors").read_bytes()[:500])
    for cmd in (["eval", "--model", str(corrupt)], ["train", "--resume", str(corrupt)]):
        assert main(["rl", *cmd]) == 1
        assert f"{corrupt}: not a readable checkpoint" in _one_error_line(capsys)


# ============================================================================ enjoy, benchmark
def test_enjoy_writes_a_gif(run, tmp_path):
    pytest.importorskip("pygame")
    from PIL import Image
    gif = tmp_path / "cartpole.gif"
    assert main(["rl", "enjoy", "--model", str(run), "--out", str(gif), "--max-steps", "8",
                 "--scale", "0.25"]) == 0
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.size == (150, 100)
        durations = []
        for i in range(im.n_frames):   # Pillow merges identical frames, adding their time
            im.seek(i)
            durations.append(im.info["duration"])
    assert sum(durations) == 9 * 20      # the reset frame and one per step, at 50 fps


def test_enjoy_refuses_other_formats(run, tmp_path, capsys):
    assert main(["rl", "enjoy", "--model", str(run), "--out", str(tmp_path / "x.avi")]) == 1
    assert "the output is a .gif" in _one_error_line(capsys)


def test_benchmark_two_seeds(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["rl", "benchmark", "--env", "CartPole-v1", *TINY, "--seeds", "0", "1",
                 "--total-timesteps", "600", "--eval-episodes", "2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert [s["seed"] for s in m["seeds"]] == [0, 1]
    assert all(s["timesteps"] == 600 and s["eval"]["episodes"] == 2 for s in m["seeds"])
    means = [s["eval"]["mean_return"] for s in m["seeds"]]
    assert m["eval"]["mean_return"] == pytest.approx(np.mean(means))
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "seed_1" / "metrics.json").is_file()
    table = capsys.readouterr().out
    assert "update share" in table and "   all" in table


def test_learning_curves_on_a_common_grid():
    from apps.rl.recipe import curve_on_grid
    c = curve_on_grid([10, 20, 30], [1.0, 3.0, 5.0], np.array([0, 10, 15, 30, 40]))
    np.testing.assert_allclose(c, [np.nan, 1.0, 1.0, 3.0, 3.0])


# ============================================================================ atari, zoo
def test_atari_preset_trains_and_evaluates_a_few_steps(tmp_path):
    pytest.importorskip("ale_py")
    out = tmp_path / "pong"
    assert main(["rl", "train", "--env", "ALE/Pong-v5", "--total-timesteps", "104",
                 "--env-kwargs", "max_episode_steps=40", "--set", "learning_starts=100",
                 "buffer_size=500", "batch_size=4", "--eval-episodes", "1",
                 "--checkpoint-every", "0", "--no-plots", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["preset"] == "atari" and m["updates"] == 1 and m["config"]["optimize_memory"]
    meta = fw.load(out / "last.safetensors")["meta"]
    assert meta["obs_shape"] == [4, 84, 84] and meta["network"] == "NatureCNN"
    assert meta["atari_wrappers"]["frame_stack"] == 4


ZOO = [w for w in models.list_weights() if models.get_entry(w.model).domain == "rl"]


def test_the_zoo_ships_cartpole_and_acrobot_agents():
    names = {w.name for w in ZOO}
    assert {"dqn_mlp.cartpole-v1", "dqn_mlp.acrobot-v1"} <= names
    for w in ZOO:
        assert w.recipe.startswith(f"lantern rl train --env {w.metrics['dataset']} ")
        assert w.metrics["episodes"] == 20 and w.metrics["timesteps"] > 0


@pytest.mark.parametrize("w", ZOO, ids=lambda w: w.name)
def test_zoo_agents_reach_their_recorded_return(w, tmp_path):
    if w.metrics["dataset"].startswith("LunarLander"):
        pytest.importorskip("Box2D")
    out = tmp_path / w.tag
    assert main(["rl", "eval", "--model", f"zoo:{w.name}", "--episodes", "20",
                 "--out", str(out)]) == 0
    ev = json.loads((out / "metrics.json").read_text())["eval"]
    assert ev["seed"] == w.metrics["eval_seed"]
    assert ev["mean_return"] == pytest.approx(w.metrics["mean_return"], abs=1e-4)
    assert ev["std_return"] == pytest.approx(w.metrics["std_return"], abs=1e-4)
