"""Benchmark workloads written once against the PyTorch API, so that the same code runs on
`framework` (Lantern) and on `torch`. Each `build_*(lib, device)` returns `step()`, which runs
one full training step (forward, loss, backward, optimizer step, zero_grad) and returns the
loss tensor, plus a one-line description."""
from __future__ import annotations

import math

import numpy as np


def _seed(lib):
    if hasattr(lib, "manual_seed"):
        lib.manual_seed(0)


def build_micro(lib, device="cpu", iters=1000):
    """W6: per-op autograd overhead, 1000 x (x = x * w + b) on 0-d tensors, then backward."""
    w = lib.tensor(0.999, device=device, requires_grad=True)
    b = lib.tensor(0.001, device=device, requires_grad=True)
    x0 = lib.tensor(1.0, device=device)

    def step():
        x = x0
        for _ in range(iters):
            x = x * w + b
        x.backward()
        w.grad = None
        b.grad = None
        return x
    return step, f"micro: {iters} x (x = x*w + b) on 0-d tensors + backward"


def build_mlp(lib, device="cpu", batch=128):
    """W1: 784-512-256-10 ReLU MLP, cross-entropy, SGD with momentum."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10)).to(device)
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = lib.tensor(rng.standard_normal((batch, 784), dtype=np.float32)).to(device)
    y = lib.tensor(rng.integers(0, 10, size=batch, dtype=np.int64)).to(device)

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step, f"mlp: 784-512-256-10 ReLU, batch {batch}, SGD momentum, cross-entropy"


def build_cnn(lib, device="cpu", batch=64):
    """W2: three 3x3 conv+BN+ReLU blocks (32-64-128, stride 2 twice), GAP, linear; SGD."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
    ).to(device)
    head = nn.Linear(128, 10).to(device)
    opt = lib.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.05,
                        momentum=0.9)
    x = lib.tensor(rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)).to(device)
    y = lib.tensor(rng.integers(0, 10, size=batch, dtype=np.int64)).to(device)

    def step():
        loss = F.cross_entropy(head(model(x).mean(dim=(2, 3))), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step, f"cnn: {batch}x3x32x32, 3x(conv3x3+BN+ReLU) 32-64-128, GAP, linear, SGD"


def build_dqn(lib, device="cpu", batch=32, buffer_size=10000, gamma=0.99, target_every=50):
    """W3: DQN update: 4-128-128-2 Q-net, Adam, no-grad target net, gather, smooth L1."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)

    def qnet():
        return nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 2)).to(device)
    q, target = qnet(), qnet()
    target.load_state_dict(q.state_dict())
    opt = lib.optim.Adam(q.parameters(), lr=1e-3)
    obs = rng.standard_normal((buffer_size, 4), dtype=np.float32)
    nxt = (obs + 0.05 * rng.standard_normal((buffer_size, 4), dtype=np.float32)).astype(np.float32)
    act = rng.integers(0, 2, size=(buffer_size, 1), dtype=np.int64)
    rew = np.ones(buffer_size, dtype=np.float32)
    done = (rng.random(buffer_size) < 0.05).astype(np.float32)
    count = [0]

    def step():
        idx = rng.integers(0, buffer_size, size=batch)
        o, n_ = lib.tensor(obs[idx]).to(device), lib.tensor(nxt[idx]).to(device)
        a, r = lib.tensor(act[idx]).to(device), lib.tensor(rew[idx]).to(device)
        d = lib.tensor(done[idx]).to(device)
        with lib.no_grad():
            td = r + gamma * (1.0 - d) * target(n_).max(dim=1)[0]
        loss = F.smooth_l1_loss(q(o).gather(1, a).reshape(-1), td)
        loss.backward()
        opt.step()
        opt.zero_grad()
        count[0] += 1
        if count[0] % target_every == 0:
            target.load_state_dict(q.state_dict())
        return loss
    return step, f"dqn: Q 4-128-128-2, batch {batch}, Adam, target net, smooth L1"


def build_transformer(lib, device="cpu", batch=32, seq=64, vocab=8000, d=128, heads=4, ffn=512,
                      layers=2, amp=False):
    """W4: 2-layer pre-LN Transformer encoder classifier with hand-written attention; AdamW."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)
    hd = d // heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.o = nn.Linear(d, d)
            self.ff1, self.ff2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
            att = F.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd)), dim=-1)
            x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, C))
            return x + self.ff2(F.relu(self.ff1(self.ln2(x))))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
            self.blocks = nn.Sequential(*[Block() for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, 2)

        def forward(self, ids, pos):
            return self.head(self.ln(self.blocks(self.tok(ids) + self.pos(pos))).mean(dim=1))

    model = Encoder().to(device)
    opt = lib.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    ids = lib.tensor(rng.integers(0, vocab, size=(batch, seq), dtype=np.int64)).to(device)
    pos = lib.tensor(np.arange(seq, dtype=np.int64)).to(device)
    y = lib.tensor(rng.integers(0, 2, size=batch, dtype=np.int64)).to(device)

    step = _train_step(lib, device, lambda: F.cross_entropy(model(ids, pos), y), opt, amp)
    return step, f"transformer: ids {batch}x{seq}, d {d}, {heads} heads, {layers} pre-LN " \
                 f"layers (FFN {ffn}), AdamW" + (", autocast float16 + GradScaler" if amp else "")


def build_gpt(lib, device="cpu", batch=12, seq=64, vocab=65, d=128, heads=4, layers=2):
    """A nanoGPT-shaped character model (issue #14's speed target): token + position
    embeddings, pre-LN causal self-attention blocks (F.scaled_dot_product_attention), GELU
    MLP, weight-tied head, AdamW."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.attn(self.ln1(x)).split(d, dim=2)
            q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)
            self.head.weight = self.wte.weight

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(lib.arange(idx.shape[1], device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    model = GPT().to(device)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    data = rng.integers(0, vocab, size=(batch, seq + 1), dtype=np.int64)
    x, y = lib.tensor(data[:, :-1]).to(device), lib.tensor(data[:, 1:]).to(device)

    def loss_fn():
        return F.cross_entropy(model(x).view(-1, vocab), y.reshape(-1))
    return _train_step(lib, device, loss_fn, opt, False), \
        f"gpt: {batch}x{seq} chars, d {d}, {heads} heads, {layers} layers, tied head, AdamW"


def build_gpt64(lib, device="cpu"):
    return build_gpt(lib, device, d=64)


def build_unet(lib, device="cpu", batch=8, size=64):
    """W5: 2D U-Net (16-32-64, bottleneck 128), CE + soft Dice, Adam."""
    step, _ = _unet(lib, device, batch, size, dims=2, amp=False)
    return step, f"unet: {batch}x1x{size}x{size}, 16-32-64-128, CE + soft Dice, Adam"


def _unet(lib, device, batch, size, dims, amp, channels=(16, 32, 64, 128), instance=False):
    """A U-Net (16-32-64, bottleneck 128; two 3^d conv+BN+ReLU per level, max pool 2,
    transposed-conv upsampling, skip concatenations) over `dims` spatial dims, 2 classes,
    cross-entropy + soft Dice, Adam: (step, None). `instance`: affine instance norm and
    leaky ReLU (0.01) instead, with conv biases (the MRI application's blocks)."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)
    Conv, BN = getattr(nn, f"Conv{dims}d"), getattr(nn, f"BatchNorm{dims}d")
    IN = getattr(nn, f"InstanceNorm{dims}d")
    Up, Pool = getattr(nn, f"ConvTranspose{dims}d"), getattr(nn, f"MaxPool{dims}d")

    def block(cin, cout):
        if instance:
            return nn.Sequential(Conv(cin, cout, 3, padding=1), IN(cout, affine=True),
                                 nn.LeakyReLU(0.01), Conv(cout, cout, 3, padding=1),
                                 IN(cout, affine=True), nn.LeakyReLU(0.01))
        return nn.Sequential(Conv(cin, cout, 3, padding=1, bias=False), BN(cout), nn.ReLU(),
                             Conv(cout, cout, 3, padding=1, bias=False), BN(cout), nn.ReLU())

    c1, c2, c3, c4 = channels

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1, self.e2, self.e3 = block(1, c1), block(c1, c2), block(c2, c3)
            self.mid = block(c3, c4)
            self.pool = Pool(2)
            self.u3, self.d3 = Up(c4, c3, 2, stride=2), block(2 * c3, c3)
            self.u2, self.d2 = Up(c3, c2, 2, stride=2), block(2 * c2, c2)
            self.u1, self.d1 = Up(c2, c1, 2, stride=2), block(2 * c1, c1)
            self.head = Conv(c1, 2, 1)

        def forward(self, x):
            e1 = self.e1(x)
            e2 = self.e2(self.pool(e1))
            e3 = self.e3(self.pool(e2))
            m = self.mid(self.pool(e3))
            x = self.d3(lib.cat([self.u3(m), e3], dim=1))
            x = self.d2(lib.cat([self.u2(x), e2], dim=1))
            return self.head(self.d1(lib.cat([self.u1(x), e1], dim=1)))

    model = UNet().to(device)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    xn = rng.standard_normal((batch, 1) + (size,) * dims, dtype=np.float32)
    tn = (xn[:, 0] > 0.5).astype(np.int64)
    x, t = lib.tensor(xn).to(device), lib.tensor(tn).to(device)
    onehot = lib.tensor(np.stack([1 - tn, tn], 1).astype(np.float32)).to(device)
    sums = (0,) + tuple(range(2, 2 + dims))

    def loss_fn():
        logits = model(x)
        p = F.softmax(logits.float() if amp else logits, dim=1)  # Dice in float32 under amp
        inter = (p * onehot).sum(dim=sums)
        denom = p.sum(dim=sums) + onehot.sum(dim=sums)
        return F.cross_entropy(logits, t) + 1.0 - ((2 * inter + 1) / (denom + 1)).mean()
    return _train_step(lib, device, loss_fn, opt, amp), None


# ============================================================================ GPU-sized
# Written once against the torch API like the ones above. Each also comes as an `_amp`
# variant: the forward and loss under autocast(device_type, float16) with a GradScaler
# (dynamic loss scaling), as in PyTorch's mixed-precision recipe.
def _train_step(lib, device, model_fn, opt, amp):
    """step() for loss = model_fn(): backward, optimizer step, zero_grad; with amp the
    forward runs under autocast float16 and the step goes through a GradScaler."""
    if not amp:
        def step():
            loss = model_fn()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss
        return step
    dev_type = str(device).split(":")[0]
    scaler = lib.amp.GradScaler(dev_type)

    def step():
        with lib.autocast(device_type=dev_type, dtype=lib.float16):
            loss = model_fn()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        return loss
    return step


def build_resnet18(lib, device="cuda", batch=128, amp=False):
    """ResNet-18 (basic blocks 2-2-2-2, 64-128-256-512, CIFAR stem: 3x3 conv, no max pool)
    on 3x32x32 inputs, 10 classes, SGD momentum 0.9, weight decay 5e-4."""
    nn, F = lib.nn, lib.nn.functional
    _seed(lib)
    rng = np.random.default_rng(0)

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(cout))

        def forward(self, x):
            y = F.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return F.relu(y + (x if self.short is None else self.short(x)))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(64), nn.ReLU())
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, 10)

        def forward(self, x):
            return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))

    model = ResNet18().to(device)
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = lib.tensor(rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)).to(device)
    y = lib.tensor(rng.integers(0, 10, size=batch, dtype=np.int64)).to(device)
    step = _train_step(lib, device, lambda: F.cross_entropy(model(x), y), opt, amp)
    return step, f"resnet18{'_amp' if amp else ''}: {batch}x3x32x32, ResNet-18 (CIFAR stem), " \
                 f"SGD momentum{', autocast float16 + GradScaler' if amp else ''}"


def build_resnet18_amp(lib, device="cuda", batch=128):
    return build_resnet18(lib, device, batch, amp=True)


def build_transformer_gpu(lib, device="cuda", amp=False):
    """The W4 Transformer encoder step at GPU size: batch 64 x seq 256, d 512, 8 heads,
    4 pre-LN layers with FFN 2048, AdamW."""
    return build_transformer(lib, device, batch=64, seq=256, d=512, heads=8, ffn=2048, layers=4,
                             amp=amp)


def build_transformer_gpu_amp(lib, device="cuda"):
    return build_transformer_gpu(lib, device, amp=True)


def build_unet3d(lib, device="cuda", batch=2, size=96, amp=False):
    """The W5 U-Net in 3D on 1x96x96x96 volumes (see _unet)."""
    step, _ = _unet(lib, device, batch, size, dims=3, amp=amp)
    return step, f"unet3d{'_amp' if amp else ''}: {batch}x1x{size}x{size}x{size}, " \
                 f"16-32-64-128, CE + soft Dice, Adam" \
                 f"{', autocast float16 + GradScaler' if amp else ''}"


def build_unet3d_64(lib, device="cpu", batch=2, size=64):
    """The W5 U-Net in 3D on 64^3 patches, the MRI application's CPU training shape."""
    return build_unet3d(lib, device, batch, size)


def build_unet3d_lesion(lib, device="cpu", batch=4, size=32):
    """The MRI application's lesion recipe shape: a 3D U-Net 8-16-32-64 with instance norm and
    leaky ReLU on 4 patches of 32^3 (`lantern mri train --task lesion --dims 3d`)."""
    step, _ = _unet(lib, device, batch, size, dims=3, amp=False, channels=(8, 16, 32, 64),
                    instance=True)
    return step, f"unet3d_lesion: {batch}x1x{size}x{size}x{size}, 8-16-32-64, instance norm, " \
                 f"leaky ReLU, CE + soft Dice, Adam"


def build_unet3d_amp(lib, device="cuda", batch=2, size=96):
    return build_unet3d(lib, device, batch, size, amp=True)


def _lenet5(lib):
    """LeNet-5 as the zoo's `lenet5` (conv 6@5x5 pad 2, ReLU, max pool, conv 16@5x5, ReLU,
    max pool, 120-84-10 with ReLU), written against the PyTorch API."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def build_lenet5(lib, device="cpu", batch=128):
    """Vision: a LeNet-5 training step on 1x28x28 digits, SGD momentum."""
    _seed(lib)
    rng = np.random.default_rng(0)
    model = _lenet5(lib).to(device)
    opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = lib.tensor(rng.random((batch, 1, 28, 28), dtype=np.float32)).to(device)
    y = lib.tensor(rng.integers(0, 10, size=batch, dtype=np.int64)).to(device)
    step = _train_step(lib, device, lambda: lib.nn.functional.cross_entropy(model(x), y), opt,
                       False)
    return step, f"lenet5: {batch}x1x28x28, LeNet-5 training step, SGD momentum"


def build_lenet5_predict(lib, device="cpu", batch=256):
    """Vision: LeNet-5 inference (eval mode, no grad, softmax) on 1x28x28 digits; images/s =
    batch / time per step."""
    _seed(lib)
    rng = np.random.default_rng(0)
    model = _lenet5(lib).to(device).eval()
    x = lib.tensor(rng.random((batch, 1, 28, 28), dtype=np.float32)).to(device)

    def step():
        with lib.no_grad():
            return lib.nn.functional.softmax(model(x), dim=1)
    step.rate = (batch, "images")
    return step, f"lenet5_predict: {batch}x1x28x28, LeNet-5 eval forward + softmax"


def build_resnet18_cifar(lib, device="cpu", batch=64):
    """Vision: the ResNet-18 (CIFAR stem) training step at the CPU batch size of 64."""
    step, _ = build_resnet18(lib, device, batch=batch)
    return step, f"resnet18_cifar: {batch}x3x32x32, ResNet-18 (CIFAR stem), SGD momentum"


# ------------------------------------------------------------------------------------- text
def _textcnn(lib, vocab, embed=128, widths=(3, 4, 5), channels=100, classes=2):
    """TextCNN (Kim 2014) written against the PyTorch API: the zoo's `textcnn` without its
    padding masks (every token of the benchmark batch is real)."""
    nn, F = lib.nn, lib.nn.functional

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
            self.convs = nn.ModuleList([nn.Conv1d(embed, channels, w) for w in widths])
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(channels * len(widths), classes)

        def forward(self, ids):
            x = self.embedding(ids).transpose(1, 2)
            pooled = [F.relu(conv(x)).amax(2) for conv in self.convs]
            return self.fc(self.dropout(lib.cat(pooled, 1)))
    return TextCNN()


def _token_classifier_step(lib, device, model, batch, length, vocab):
    """A training step (Adam, cross-entropy) of a token classifier on one fixed random batch
    of batch x length token ids; its rate is tokens."""
    _seed(lib)
    rng = np.random.default_rng(0)
    model = model().to(device)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    ids = lib.tensor(rng.integers(1, vocab, size=(batch, length), dtype=np.int64)).to(device)
    y = lib.tensor(rng.integers(0, 2, size=batch, dtype=np.int64)).to(device)
    step = _train_step(lib, device, lambda: lib.nn.functional.cross_entropy(model(ids), y),
                       opt, False)
    step.rate = (batch * length, "tokens")
    return step


def build_textcnn(lib, device="cpu", batch=50, length=64, vocab=20000):
    """Text: a TextCNN training step (widths 3/4/5 x 100 channels, embeddings 128, Adam);
    tokens/s = batch * length / time per step."""
    step = _token_classifier_step(lib, device, lambda: _textcnn(lib, vocab), batch, length,
                                  vocab)
    return step, f"textcnn: {batch}x{length} tokens, vocab {vocab}, TextCNN training step, Adam"


def _birnn(lib, cell, vocab, embed=128, hidden=128, classes=2):
    """The zoo's bilstm_attn/bigru_attn without packing and attention: embeddings, a
    bidirectional LSTM or GRU, mean over time, linear (every token of the batch is real)."""
    nn = lib.nn

    class BiRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
            self.rnn = getattr(nn, cell)(embed, hidden, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(2 * hidden, classes)

        def forward(self, ids):
            out, _ = self.rnn(self.embedding(ids))
            return self.fc(out.mean(1))
    return BiRNN()


def _build_birnn(cell, lib, device, batch=32, length=64, vocab=20000):
    step = _token_classifier_step(lib, device, lambda: _birnn(lib, cell, vocab), batch, length,
                                  vocab)
    return step, (f"bi{cell.lower()}: {batch}x{length} tokens, embeddings 128, bidirectional "
                  f"{cell} 128, training step, Adam")


def build_bilstm(lib, device="cpu"):
    """Text: a bidirectional LSTM classifier's training step; tokens/s."""
    return _build_birnn("LSTM", lib, device)


def build_bigru(lib, device="cpu"):
    """Text: the same with a GRU."""
    return _build_birnn("GRU", lib, device)


def _minilm_batch(batch, length):
    """`batch` rows of `length` real MiniLM tokens ([CLS] text [SEP]) cut from the embedded
    rotten-tomatoes sentences, so that no position is padding in either library."""
    import datasets
    from tokenizers import Tokenizer
    from datasets.text import open_text_dataset
    folder = datasets.fetch("minilm-l6")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    texts = open_text_dataset("rotten-tomatoes", split="test").texts
    stream = [i for e in tok.encode_batch(list(texts[:2000])) for i in e.ids[1:-1]]
    body = length - 2
    if len(stream) < batch * body:
        raise ValueError(f"minilm: {len(stream)} tokens cannot fill {batch}x{length}")
    rows = [[101] + stream[r * body:(r + 1) * body] + [102] for r in range(batch)]
    return np.array(rows, dtype=np.int64), folder


def _minilm_embed(lib, device, batch, length):
    """all-MiniLM-L6-v2 sentence embeddings (eval, no grad: encoder, mean pooling, L2) at
    batch x length tokens; Lantern's zoo model against transformers' BertModel on the same
    files. sentences/s = batch / time per step."""
    ids_np, folder = _minilm_batch(batch, length)
    if lib.__name__ == "torch":
        import transformers  # the oracle; an ImportError leaves Lantern timed alone
        model = transformers.BertModel.from_pretrained(str(folder)).eval().to(device)

        def encode(ids, mask):
            return model(input_ids=ids, attention_mask=mask).last_hidden_state
    else:
        from models import get_model
        model = get_model("minilm_l6", weights="minilm_l6.sentence-transformers").eval()
        model = model.to(device)

        def encode(ids, mask):
            return model(ids, attention_mask=mask).last_hidden_state
    ids = lib.tensor(ids_np).to(device)
    mask = lib.ones(ids_np.shape, dtype=lib.int64).to(device)

    def step():
        with lib.no_grad():
            h = encode(ids, mask)
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
            return lib.nn.functional.normalize(pooled, p=2, dim=1)
    step.rate = (batch, "sentences")
    return step, f"minilm: {batch}x{length} tokens, all-MiniLM-L6-v2 embeddings (eval, no grad)"


def build_minilm_short(lib, device="cpu", batch=32, length=16):
    return _minilm_embed(lib, device, batch, length)


def build_minilm_128(lib, device="cpu", batch=32, length=128):
    return _minilm_embed(lib, device, batch, length)


WORKLOADS = {"micro": build_micro, "mlp": build_mlp, "cnn": build_cnn, "dqn": build_dqn,
             "transformer": build_transformer, "unet": build_unet, "gpt": build_gpt,
             "gpt64": build_gpt64,
             "resnet18": build_resnet18, "resnet18_amp": build_resnet18_amp,
             "transformer_gpu": build_transformer_gpu,
             "transformer_gpu_amp": build_transformer_gpu_amp,
             "unet3d": build_unet3d, "unet3d_amp": build_unet3d_amp, "unet3d_64": build_unet3d_64,
             "unet3d_lesion": build_unet3d_lesion,
             "lenet5": build_lenet5, "lenet5_predict": build_lenet5_predict,
             "resnet18_cifar": build_resnet18_cifar, "textcnn": build_textcnn,
             "bilstm": build_bilstm, "bigru": build_bigru,
             "minilm_short": build_minilm_short, "minilm_128": build_minilm_128}
VISION_WORKLOADS = ("lenet5", "lenet5_predict", "resnet18_cifar")
TEXT_WORKLOADS = ("textcnn", "bilstm", "bigru", "minilm_short", "minilm_128")
GPU_WORKLOADS = ("resnet18", "resnet18_amp", "transformer_gpu", "transformer_gpu_amp", "unet3d",
                 "unet3d_amp")
ALIASES = {"W6": "micro", "W1": "mlp", "W2": "cnn", "W3": "dqn", "W4": "transformer", "W5": "unet"}
