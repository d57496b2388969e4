"""PyTorch CPU reference for the training-throughput table (docs/training.md).

Builds the SAME network as the kit from its IR (JSON written by scripts/bench_train.ts --torch),
with the official module semantics (RepMLP 2021 forward: global perceptron, grouped fc3 + BN1d,
local conv branches + BN), and times forward + backward + SGD step (embedding models: cross-entropy
over the embedding outputs as a stand-in for the margin loss; the head's cost is negligible).

usage: python3 scripts/bench_train_torch.py IR.json BATCH STEPS THREADS
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RepMLP21(nn.Module):
    def __init__(self, l):
        super().__init__()
        self.C, self.O, self.H, self.W, self.h, self.w = l["inC"], l["outC"], l["H"], l["W"], l["h"], l["w"]
        self.g, self.ks = l["g"], l["ks"]
        self.hp, self.wp = self.H // self.h, self.W // self.w
        self.gp = l.get("gp", True) is not False and (self.H != self.h or self.W != self.w)
        if self.gp:
            P = self.C * self.hp * self.wp
            self.avg_bn = nn.BatchNorm2d(self.C)
            self.fc1 = nn.Linear(P, P // l["r"])
            self.fc2 = nn.Linear(P // l["r"], P)
        self.fc3 = nn.Conv2d(self.C * self.h * self.w, self.O * self.h * self.w, 1, groups=self.g, bias=False)
        self.fc3_bn = nn.BatchNorm1d(self.O * self.h * self.w)
        self.convs = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(self.C, self.O, k, padding=k // 2, groups=self.g, bias=False), nn.BatchNorm2d(self.O))
             for k in self.ks])

    def forward(self, x):
        N = x.shape[0]
        if self.gp:
            v = self.avg_bn(F.avg_pool2d(x, (self.h, self.w))).reshape(N, -1)
            v = self.fc2(F.relu(self.fc1(v))).reshape(N, self.C, self.hp, 1, self.wp, 1)
            x = (x.reshape(N, self.C, self.hp, self.h, self.wp, self.w) + v).reshape(N, self.C, self.H, self.W)
        p = x.reshape(N, self.C, self.hp, self.h, self.wp, self.w).permute(0, 2, 4, 1, 3, 5)
        p = p.reshape(-1, self.C, self.h, self.w)
        out = self.fc3(p.reshape(-1, self.C * self.h * self.w, 1, 1)).reshape(-1, self.O * self.h * self.w)
        out = self.fc3_bn(out).reshape(-1, self.O, self.h, self.w)
        for c in self.convs:
            out = out + c(p)
        out = out.reshape(N, self.hp, self.wp, self.O, self.h, self.w).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(N, self.O, self.H, self.W)


class Residual(nn.Module):
    def __init__(self, body, short, post):
        super().__init__()
        self.body, self.short, self.post = body, short, post

    def forward(self, x):
        y = self.body(x) + (self.short(x) if self.short is not None else x)
        return F.relu(y) if self.post == "relu" else y


class Lambda(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


def build(l):
    k = l["kind"]
    if k == "seq":
        return nn.Sequential(*[build(c) for c in l["layers"]])
    if k == "residual":
        return Residual(build(l["body"]), build(l["shortcut"]) if l["shortcut"] else None, l["post"])
    if k in ("conv", "convbn"):
        conv = nn.Conv2d(l["inC"], l["outC"], l["k"], l["stride"], l["pad"], groups=l["groups"],
                         bias=(k == "conv" and l["bias"]))
        if k == "conv":
            return conv
        mods = [conv, nn.BatchNorm2d(l["outC"])]
        if l["act"] == "relu":
            mods.append(nn.ReLU())
        return nn.Sequential(*mods)
    if k == "bn":
        return nn.BatchNorm2d(l["C"])
    if k == "linear":
        return nn.Linear(l["inF"], l["outF"], bias=l["bias"])
    if k == "act":
        return {"relu": nn.ReLU(), "gelu": nn.GELU(), "sigmoid": nn.Sigmoid()}[l["fn"]]
    if k == "gap":
        return Lambda(lambda x: x.mean((2, 3)))
    if k == "flatten":
        return nn.Flatten()
    if k == "l2norm":
        return Lambda(lambda x: F.normalize(x, dim=1))
    if k == "repmlp21":
        return RepMLP21(l)
    raise SystemExit(f"layer kind {k} not supported by this benchmark")


def main():
    ir, batch, steps, threads = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(ir["root"]).train()
    C, H, W = ir["input"]
    x = torch.randn(batch, C, H, W)
    out_dim = model(x[:2]).shape[1]
    y = torch.randint(0, out_dim, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for i in range(steps + 1):
        if i == 1:
            t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"torch": torch.__version__, "threads": threads, "batch": batch, "steps": steps,
                      "img_per_s": batch * steps / dt, "img_per_cpu_s": batch * steps / dc}))


if __name__ == "__main__":
    main()
