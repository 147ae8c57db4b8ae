"""The DSH network (Liu, Wang, Shan, Chen, CVPR 2016) as its authors released it in Caffe
(lhmRyan/deep-supervised-hashing-DSH: CIFAR-10/train_test.prototxt, finetune*.prototxt), in
torch: one trunk (conv-pool-LRN x2, conv-pool, FC 500) with a linear head, k outputs for
hashing or 10 for the CNN-cls classifier; its initialisation, the fine-tuning start, and
:func:`apply` (outputs or features of images, in batches).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

FC_DIM = 500


def _box_mean(x, size: int):
    """Mean over a size x size window, zero padding counted (symmetric: its own adjoint)."""
    return F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=True)


def _pow_neg_three_quarters(t):
    """t^(-3/4) as rsqrt(t) * sqrt(rsqrt(t)): two cheap vector ops instead of one ``pow``."""
    r = t.rsqrt()
    return r.mul_(r.sqrt())


class _WithinChannelLRNFn(torch.autograd.Function):
    """y = x t^-beta, t = 1 + alpha box_mean(x^2); the backward pass written out,
    dL/dx = g t^-beta + 2 x box_mean(-alpha beta g y / t), to spare autograd's extra passes
    over these memory-bound tensors (the LRNs cost as much as a convolution on a CPU)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta):
        t = _box_mean(x * x, size).mul_(alpha).add_(1)
        scale = _pow_neg_three_quarters(t) if beta == 0.75 else t.pow(-beta)
        y = x * scale
        ctx.save_for_backward(x, y, t, scale)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return y

    @staticmethod
    def backward(ctx, g):
        x, y, t, scale = ctx.saved_tensors
        inner = _box_mean((g * y).div_(t).mul_(-ctx.alpha * ctx.beta), ctx.size)
        return g * scale + inner.mul_(x).mul_(2), None, None, None


class WithinChannelLRN(nn.Module):
    """Caffe's LRN with ``norm_region: WITHIN_CHANNEL``: x / (1 + alpha * mean(x^2))^beta, the
    mean over a size x size window of the same channel, zero-padded and always divided by
    size^2 (Caffe builds it from AVE pooling with pad (size-1)/2, which counts the padding).
    ``torch.nn.LocalResponseNorm`` normalises ACROSS channels: a different layer."""

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x):
        return _WithinChannelLRNFn.apply(x, self.size, self.alpha, self.beta)


def caffe_pooled_size(n: int, kernel: int = 3, stride: int = 2) -> int:
    """Caffe rounds pooled sizes up: ceil((n - kernel) / stride) + 1 (32 -> 16 -> 8 -> 4)."""
    return max(math.ceil((n - kernel) / stride), 0) + 1


class DSHNet(nn.Module):
    """The released network. ``forward`` takes raw pixels, float (n, H, W, C) in 0-255 (NHWC,
    as datasets hold them); the per-pixel mean image of the training set is a buffer of the
    model, so a saved state dict is all an extractor needs. Inside, tensors are channels-last
    views, the fast layout for CPU convolutions."""

    def __init__(self, n_out: int, image_size: int = 32, channels: int = 3):
        super().__init__()
        s = image_size
        for _ in range(3):
            s = caffe_pooled_size(s)
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = WithinChannelLRN()
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.norm2 = WithinChannelLRN()
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(64 * s * s, FC_DIM)
        self.head = nn.Linear(FC_DIM, n_out)
        self.register_buffer("mean", torch.zeros(image_size, image_size, channels))

    def features(self, x):
        """The 500-D activations of the first FC layer after its ReLU (Caffe's ReLU is in
        place, so the released ``ip2`` blob holds these): the CNN-ours / CNN-cls features."""
        x = (x - self.mean).permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels-last
        x = self.norm1(F.relu(self.pool1(self.conv1(x))))
        x = self.norm2(F.relu(self.pool2(self.conv2(x))))
        x = self.pool3(F.relu(self.conv3(x)))
        # flatten in NCHW order, as Caffe's InnerProduct reads its (C, H, W) blob
        return F.relu(self.fc(x.contiguous().flatten(1)))

    def forward(self, x):
        return self.head(self.features(x))

    @classmethod
    def from_state_dict(cls, state: dict) -> "DSHNet":
        """Rebuild a network of the right shape from its state dict and load it."""
        h, _, c = state["mean"].shape
        net = cls(state["head.weight"].shape[0], image_size=h, channels=c)
        net.load_state_dict(state)
        return net


def caffe_xavier_(module: nn.Module, generator: torch.Generator) -> None:
    """Caffe's "xavier" filler on every conv / linear weight: U(-a, a), a = sqrt(3 / fan_in)
    (torch's ``xavier_uniform_`` averages fan_in and fan_out instead); biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            a = math.sqrt(3.0 / fan_in)
            with torch.no_grad():
                m.weight.uniform_(-a, a, generator=generator)
                m.bias.zero_()


def new_net(n_out: int, image_size: int, seed: int, channels: int = 3, head_std: float | None = None) -> DSHNet:
    """A freshly initialised network; the same seed gives the same weights. ``head_std``: the
    output layer drawn from N(0, head_std) with zero bias instead (a loss's
    ``head_init_std``), from the same generator after the other layers, which stay as they are."""
    net = DSHNet(n_out, image_size, channels)
    g = torch.Generator().manual_seed(seed)
    caffe_xavier_(net, g)
    if head_std is not None:
        with torch.no_grad():
            net.head.weight.normal_(0.0, head_std, generator=g)
            net.head.bias.zero_()
    return net


def finetune_net(state: dict, n_out: int, seed: int) -> DSHNet:
    """The released fine-tuning start: every layer (and the mean image) from a trained model,
    a new Xavier-initialised output layer of ``n_out`` units."""
    h, _, c = state["mean"].shape
    net = new_net(n_out, h, seed, c)
    trunk = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing, unexpected = net.load_state_dict(trunk, strict=False)
    if unexpected or set(missing) != {"head.weight", "head.bias"}:
        raise InputError("init_from: not a DSH network state dict")
    return net


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"device: unknown device {device!r}") from None


@torch.no_grad()
def apply(net: DSHNet, images: np.ndarray, what: str = "outputs", batch_size: int = 1000, device: str = "auto"):
    """float32 (n, k) outputs (``what="outputs"``) or (n, 500) FC features (``"features"``)
    of uint8 images, in batches, without mirroring."""
    dev = resolve_device(device)
    net.to(dev).eval()
    fn = net.features if what == "features" else net
    out = []
    for s in range(0, images.shape[0], batch_size):
        x = torch.from_numpy(images[s : s + batch_size].astype(np.float32)).to(dev)
        out.append(fn(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.head.out_features), np.float32)
