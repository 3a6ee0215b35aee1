"""`python -m framework.run script.py` (and `lantern run`): unchanged PyTorch scripts run on
Lantern with `torch` mapped to `framework`; what Lantern lacks fails naming the missing API.

The scripts below are written here against PyTorch's API only (they import torch, never
framework) and run in a subprocess, as a user would run them."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A nanoGPT-shaped character model: token + position embeddings, causal self-attention (one
# block through F.scaled_dot_product_attention, one with a masked softmax), LayerNorm, a GELU
# MLP, a tied head, AdamW with decay groups, gradient clipping, a checkpoint saved and loaded
# back, and sampling under torch.no_grad with torch.multinomial.
GPT_SCRIPT = r'''
"""A nanoGPT-shaped character model, written against PyTorch's API only."""
import argparse
import math

import torch
import torch.nn as nn
from torch.nn import functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=150)
parser.add_argument("--seed", type=int, default=1337)
parser.add_argument("--out", default="ckpt.pt")
args = parser.parse_args()

torch.manual_seed(args.seed)
device = "cuda" if torch.cuda.is_available() else "cpu"

text = ("the quick brown fox jumps over the lazy dog.\n"
        "a lantern lights the way for the fox at night.\n") * 40
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}
encode = lambda s: [stoi[c] for c in s]
decode = lambda ids: "".join(itos[i] for i in ids)
data = torch.tensor(encode(text), dtype=torch.long)
n = int(0.9 * len(data))
train_data, val_data = data[:n], data[n:]

block_size, batch_size, n_embd, n_head, n_layer = 16, 12, 32, 4, 2


def get_batch(split):
    d = train_data if split == "train" else val_data
    ix = torch.randint(len(d) - block_size, (batch_size,))
    x = torch.stack([d[i:i + block_size] for i in ix])
    y = torch.stack([d[i + 1:i + 1 + block_size] for i in ix])
    return x.to(device), y.to(device)


class CausalSelfAttention(nn.Module):
    def __init__(self, flash):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(0.0)
        self.resid_dropout = nn.Dropout(0.0)
        self.flash = flash
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(n_embd, dim=2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0,
                                               is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, flash):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(flash)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd), nn.Dropout(0.0))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(flash=i % 2 == 0) for i in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight   # weight tying
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= block_size else idx[:, -block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


@torch.no_grad()
def estimate_loss(model):
    model.eval()
    out = {}
    for split in ("train", "val"):
        losses = torch.zeros(3)
        for k in range(3):
            _, loss = model(*get_batch(split))
            losses[k] = loss.item()
        out[split] = losses.mean().item()
    model.train()
    return out


model = GPT(len(chars)).to(device)
n_params = sum(p.numel() for p in model.parameters())
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=3e-3, betas=(0.9, 0.95))
first = estimate_loss(model)
print(f"params {n_params} start train {first['train']:.4f} val {first['val']:.4f}")
for step in range(args.steps):
    xb, yb = get_batch("train")
    _, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
last = estimate_loss(model)
print(f"end train {last['train']:.4f} val {last['val']:.4f}")

torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "config": {"vocab": len(chars), "block_size": block_size}}, args.out)
ckpt = torch.load(args.out, map_location=device)
fresh = GPT(ckpt["config"]["vocab"]).to(device)
fresh.load_state_dict(ckpt["model"])
fresh.eval()
context = torch.tensor([encode("the ")], dtype=torch.long, device=device)
sample = decode(fresh.generate(context, max_new_tokens=40, temperature=0.8, top_k=5)[0].tolist())
print("SAMPLE<<" + sample + ">>")
'''

# The structure of PyTorch's MNIST example (flags, cuda/mps/accelerator checks, Adadelta,
# StepLR, train/test loops, saving the state dict) on a synthetic image set.
MNIST_SCRIPT = r'''
"""The structure of PyTorch's MNIST example (flags, device choice, train/test loops, Adadelta,
StepLR, saving the state dict) on a synthetic 10-class image set, using PyTorch's API only."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 5 * 5, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print("Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}".format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print("\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n".format(
        test_loss, correct, len(test_loader.dataset), 100. * correct / len(test_loader.dataset)))
    return correct / len(test_loader.dataset)


def bars(n, generator):
    """Images of one bright row (the class) in noise."""
    labels = torch.randint(0, 10, (n,), generator=generator)
    images = 0.3 * torch.randn(n, 1, 14, 14, generator=generator)
    images[torch.arange(n), 0, labels + 2, :] += 1.0
    return TensorDataset((images - 0.1307) / 0.3081, labels)


def main():
    parser = argparse.ArgumentParser(description="PyTorch MNIST-style Example")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--test-batch-size", type=int, default=256, metavar="N")
    parser.add_argument("--epochs", type=int, default=2, metavar="N")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M")
    parser.add_argument("--no-cuda", action="store_true", default=False)
    parser.add_argument("--no-mps", action="store_true", default=False)
    parser.add_argument("--dry-run", action="store_true", default=False)
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=4, metavar="N")
    parser.add_argument("--save-model", action="store_true", default=False)
    args = parser.parse_args()
    use_cuda = not args.no_cuda and torch.cuda.is_available()
    use_mps = not args.no_mps and torch.backends.mps.is_available()
    torch.manual_seed(args.seed)
    if use_cuda:
        device = torch.device("cuda")
    elif use_mps:
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if torch.accelerator.is_available():
        print("accelerator:", torch.accelerator.current_accelerator())

    train_kwargs = {"batch_size": args.batch_size}
    test_kwargs = {"batch_size": args.test_batch_size}
    if use_cuda:
        cuda_kwargs = {"num_workers": 1, "pin_memory": True, "shuffle": True}
        train_kwargs.update(cuda_kwargs)
        test_kwargs.update(cuda_kwargs)
    g = torch.Generator().manual_seed(0)
    train_loader = DataLoader(bars(384, g), shuffle=True, **train_kwargs)
    test_loader = DataLoader(bars(256, g), **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        accuracy = test(model, device, test_loader)
        scheduler.step()
    print(f"FINAL_ACCURACY {accuracy:.4f} lr {scheduler.get_last_lr()[0]:.3f}")
    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")


if __name__ == "__main__":
    main()
'''

MISSING_API_SCRIPT = r"""
import sys
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F


def report(queue):
    queue.put(torch.nn.Linear.__module__)   # in a spawned child: Lantern's too


if __name__ == "__main__":
    print("ARGS", sys.argv[1:], __name__)
    for attempt in ("import torch.foo", "from torch.nn import NotALayer",
                    "torch.nn.NotALayer(2)", "F.not_a_function(1)", "torch.not_a_function()"):
        try:
            exec(attempt)
        except (ImportError, AttributeError) as exc:
            print(f"{attempt} -> {type(exc).__name__}: {exc}")
    # what the script sets on torch reaches Lantern's module
    torch.backends.cudnn.benchmark = True
    import framework
    print("benchmark", framework.backends.cudnn.benchmark, torch.nn.Linear is framework.nn.Linear)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=report, args=(queue,))
    child.start()
    print("spawned child sees", queue.get(timeout=60))
    child.join()
    sys.exit(int(sys.argv[-1]))
"""


def _run(args, cwd, timeout=240):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt")
    _write(folder, "train_gpt.py", GPT_SCRIPT)
    proc = _run(["-m", "framework.run", "train_gpt.py", "--steps", "60", "--out", "gpt.pt"],
                folder)
    return folder, proc


def test_nanogpt_shaped_script_trains_through_the_runner(gpt_run):
    folder, proc = gpt_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    start = next(ln for ln in lines if ln.startswith("params")).split()
    end = next(ln for ln in lines if ln.startswith("end")).split()
    start_train, start_val = float(start[4]), float(start[6])
    end_train, end_val = float(end[2]), float(end[4])
    assert 3.0 < start_train < 3.6   # about ln(vocab size): an untrained model
    assert end_train < start_train - 1.5 and end_val < start_val - 1.5, proc.stdout
    sample = proc.stdout.split("SAMPLE<<", 1)[1].split(">>", 1)[0]
    assert sample.startswith("the ") and len(sample) == 4 + 40
    assert set(sample) <= set("the quick brown fox jumps over the lazy dog.\n"
                              "a lantern lights the way for the fox at night.\n")
    assert (folder / "gpt.pt").is_file()


def test_the_scripts_checkpoint_loads_in_torch(gpt_run):
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    folder, proc = gpt_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(folder / "gpt.pt")   # torch's defaults: weights only
    sd = ckpt["model"]
    assert sd["lm_head.weight"].shape == (ckpt["config"]["vocab"], 32)
    # the tied weights are one storage in the file, as torch.save writes them
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
    assert ckpt["optimizer"]["param_groups"][0]["weight_decay"] == 0.1


def test_mnist_style_example_runs_unchanged(tmp_path):
    _write(tmp_path, "main.py", MNIST_SCRIPT)
    proc = _run(["-m", "framework.run", "main.py", "--epochs", "2", "--save-model"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Train Epoch: 2" in proc.stdout and "Test set: Average loss" in proc.stdout
    accuracy = float(proc.stdout.split("FINAL_ACCURACY")[1].split()[0])
    assert accuracy > 0.9, proc.stdout
    assert "lr 0.490" in proc.stdout   # StepLR: 1.0 * 0.7 ** 2
    assert (tmp_path / "mnist_cnn.pt").read_bytes()[:4] == b"PK\x03\x04"   # torch's format


def test_missing_apis_are_named_through_lantern_run(tmp_path):
    _write(tmp_path, "probe.py", MISSING_API_SCRIPT)
    proc = _run(["-m", "apps.cli", "run", "probe.py", "--epochs", "3", "-x", "4"], tmp_path)
    assert proc.returncode == 4, proc.stderr[-3000:]   # the script's exit status
    out = proc.stdout
    assert "ARGS ['--epochs', '3', '-x', '4'] __main__" in out
    assert "import torch.foo -> ModuleNotFoundError: Lantern has no torch.foo (framework.foo)" \
        in out
    assert "from torch.nn import NotALayer -> ImportError: cannot import name 'NotALayer' " \
           "from 'torch.nn' (" + str(ROOT / "framework" / "nn" / "__init__.py") + ")" in out
    assert "torch.nn.NotALayer(2) -> AttributeError: Lantern has no torch.nn.NotALayer" in out
    assert "F.not_a_function(1) -> AttributeError: Lantern has no " \
           "torch.nn.functional.not_a_function" in out
    assert "torch.not_a_function() -> AttributeError: Lantern has no torch.not_a_function" \
        in out
    assert "benchmark True True" in out
    assert "spawned child sees framework.nn.modules.linear" in out


def test_an_uncaught_error_shows_the_scripts_traceback(tmp_path):
    _write(tmp_path, "args.py", """
        import sys
        import torch
        print("ARGS", sys.argv[1:], __name__)
        if "--fail" in sys.argv:
            torch.nn.NotALayer(3)
        """)
    proc = _run(["-m", "framework.run", "args.py", "--fail"], tmp_path)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert err[0] == "Traceback (most recent call last):" and 'File "args.py", line 6' in err[1]
    assert err[-1] == "AttributeError: Lantern has no torch.nn.NotALayer (framework.nn has no " \
                      "attribute 'NotALayer')"
    proc = _run(["-m", "framework.run", "missing.py"], tmp_path)
    assert proc.returncode == 2 and "missing.py: no such script" in proc.stderr
