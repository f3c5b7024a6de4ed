"""DeepRacer's networks in torch: camera / lidar embedders, middleware, PPO and SAC heads.

Layer shapes follow the DeepRacer simulator (see SPEC "Networks"). Convolutions use VALID padding
and the flattened features are laid out in TensorFlow's NHWC order, so a TensorFlow checkpoint's
``Dense_0/kernel`` rows map one to one onto ours. Camera input is uint8 and scaled by 1/255 here,
inside the network, as the car feeds raw pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

CAMERAS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")
# [filters, kernel, stride] per convolution, dense widths after the flatten (embedder),
# then the middleware widths.
CONV_STACKS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "DEEP_CONVOLUTIONAL_NETWORK": ((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)),
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": ((32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)),
}
STEREO_STACK = ((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1))
EMBEDDER_DENSE: dict[str, tuple[int, ...]] = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": (),
    "DEEP_CONVOLUTIONAL_NETWORK": (64,),
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": (),
}
MIDDLEWARE: dict[str, tuple[int, ...]] = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": (512,),
    "DEEP_CONVOLUTIONAL_NETWORK": (512,),
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": (512, 512, 256, 128),
}
VECTOR_DENSE = (256, 256)
LOG_STD_RANGE = (-5.0, 2.0)


@dataclass(frozen=True)
class ObsSpec:
    """Observation layout: sensor name -> shape (cameras (H, W, C) uint8, others (n,) float)."""

    shapes: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, shapes: Mapping[str, Sequence[int]]) -> ObsSpec:
        return cls(tuple((k, tuple(int(d) for d in v)) for k, v in shapes.items()))

    def as_dict(self) -> dict[str, tuple[int, ...]]:
        return dict(self.shapes)


def conv_output(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class CameraEmbedder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], stack: Sequence[tuple[int, int, int]], dense: Sequence[int]):
        super().__init__()
        h, w, c = shape
        layers: list[nn.Module] = []
        for filters, kernel, stride in stack:
            layers += [nn.Conv2d(c, filters, kernel, stride), nn.ReLU()]
            c, h, w = filters, conv_output(h, kernel, stride), conv_output(w, kernel, stride)
        if h < 1 or w < 1:
            raise ValueError(f"camera shape {shape} is too small for this network")
        self.convs = nn.Sequential(*layers)
        self.flat_size = h * w * c
        fcs: list[nn.Module] = []
        width = self.flat_size
        for size in dense:
            fcs += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.dense = nn.Sequential(*fcs)
        self.out_size = width

    def forward(self, image: Tensor) -> Tensor:
        x = image.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        x = self.convs(x)
        # NHWC flatten so the dense kernel matches TensorFlow's [11264, 512] layout
        x = x.permute(0, 2, 3, 1).flatten(1)
        out: Tensor = self.dense(x)
        return out


class VectorEmbedder(nn.Module):
    def __init__(self, size: int, dense: Sequence[int] = VECTOR_DENSE):
        super().__init__()
        layers: list[nn.Module] = []
        width = size
        for out in dense:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.net = nn.Sequential(*layers)
        self.out_size = width

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x.float())
        return out


class Torso(nn.Module):
    """Sensor embedders, concatenated, then the middleware dense stack."""

    def __init__(self, spec: ObsSpec, network: str, vector_dense: Sequence[int] = VECTOR_DENSE, extra_inputs: int = 0):
        super().__init__()
        if network not in CONV_STACKS:
            raise ValueError(f"neural_network {network!r}; allowed: {', '.join(CONV_STACKS)}")
        self.keys = [k for k, _ in spec.shapes]
        embedders: dict[str, nn.Module] = {}
        width = extra_inputs
        for key, shape in spec.shapes:
            emb: CameraEmbedder | VectorEmbedder
            if len(shape) == 3:
                stack = STEREO_STACK if key == "STEREO_CAMERAS" else CONV_STACKS[network]
                emb = CameraEmbedder((shape[0], shape[1], shape[2]), stack, EMBEDDER_DENSE[network])
            else:
                emb = VectorEmbedder(math.prod(shape), vector_dense)
            embedders[key] = emb
            width += emb.out_size
        self.embedders = nn.ModuleDict(embedders)
        layers: list[nn.Module] = []
        for out in MIDDLEWARE[network]:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.middleware = nn.Sequential(*layers)
        self.out_size = width

    def forward(self, obs: Mapping[str, Tensor], extra: Tensor | None = None) -> Tensor:
        parts = [self.embedders[k](obs[k]) for k in self.keys]
        if extra is not None:
            parts.append(extra)
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        out: Tensor = self.middleware(x)
        return out


class PPOActorCritic(nn.Module):
    """Separate actor (network_1) and critic (network_0) stacks, as DeepRacer's clipped PPO."""

    def __init__(self, spec: ObsSpec, network: str, n_actions: int | None, vector_dense: Sequence[int] = VECTOR_DENSE):
        super().__init__()
        self.discrete = n_actions is not None
        self.critic_torso = Torso(spec, network, vector_dense)
        self.value_head = nn.Linear(self.critic_torso.out_size, 1)
        self.actor_torso = Torso(spec, network, vector_dense)
        out = n_actions if n_actions is not None else 2
        self.policy_head = nn.Linear(self.actor_torso.out_size, out)
        # small initial outputs: a near-uniform first policy explores every action
        nn.init.orthogonal_(self.policy_head.weight, 0.01)
        nn.init.zeros_(self.policy_head.bias)
        self.log_std = nn.Parameter(torch.zeros(1, out), requires_grad=not self.discrete)

    def value(self, obs: Mapping[str, Tensor]) -> Tensor:
        out: Tensor = self.value_head(self.critic_torso(obs)).squeeze(-1)
        return out

    def policy_output(self, obs: Mapping[str, Tensor]) -> Tensor:
        """Logits (discrete) or the mean in [-1, 1] (continuous)."""
        out: Tensor = self.policy_head(self.actor_torso(obs))
        return out if self.discrete else torch.tanh(out)

    def distribution(self, obs: Mapping[str, Tensor]) -> torch.distributions.Distribution:
        out = self.policy_output(obs)
        if self.discrete:
            return torch.distributions.Categorical(logits=out)
        std = self.log_std.clamp(*LOG_STD_RANGE).exp().expand_as(out)
        return torch.distributions.Independent(torch.distributions.Normal(out, std), 1)

    def greedy(self, obs: Mapping[str, Tensor]) -> Tensor:
        out = self.policy_output(obs)
        return out.argmax(dim=-1) if self.discrete else out

    squashed = False

    def act_distribution(self, obs: Mapping[str, Tensor]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Probabilities (discrete; empty log-std) or the mean and log-std (continuous)."""
        out = self.policy_output(obs)
        if self.discrete:
            return torch.softmax(out, dim=-1).numpy(), np.zeros(0, np.float32)
        log_std = self.log_std.clamp(*LOG_STD_RANGE).expand_as(out)
        return out.numpy(), log_std.numpy()


class SACActor(nn.Module):
    """Squashed Gaussian policy; the car uses tanh(mean)."""

    def __init__(self, spec: ObsSpec, network: str, vector_dense: Sequence[int] = VECTOR_DENSE):
        super().__init__()
        self.torso = Torso(spec, network, vector_dense)
        self.mean = nn.Linear(self.torso.out_size, 2)
        self.log_std = nn.Linear(self.torso.out_size, 2)

    def forward(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        h = self.torso(obs)
        return self.mean(h), self.log_std(h).clamp(*LOG_STD_RANGE)

    def sample(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        mean, log_std = self(obs)
        normal = torch.distributions.Normal(mean, log_std.exp())
        u = normal.rsample()
        action = torch.tanh(u)
        log_prob = (normal.log_prob(u) - torch.log(1.0 - action.pow(2) + 1e-6)).sum(-1)  # type: ignore[no-untyped-call]
        return action, log_prob

    def greedy(self, obs: Mapping[str, Tensor]) -> Tensor:
        mean, _ = self(obs)
        return torch.tanh(mean)

    squashed = True

    def act_distribution(self, obs: Mapping[str, Tensor]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Pre-tanh mean and log-std; the sampler squashes with tanh."""
        mean, log_std = self(obs)
        return mean.numpy(), log_std.numpy()


class QNetwork(nn.Module):
    def __init__(self, spec: ObsSpec, network: str, vector_dense: Sequence[int] = VECTOR_DENSE):
        super().__init__()
        self.torso = Torso(spec, network, vector_dense, extra_inputs=2)
        self.head = nn.Linear(self.torso.out_size, 1)

    def forward(self, obs: Mapping[str, Tensor], action: Tensor) -> Tensor:
        out: Tensor = self.head(self.torso(obs, action)).squeeze(-1)
        return out


def obs_to_tensors(obs: Mapping[str, object]) -> dict[str, Tensor]:
    """Batched numpy observations -> tensors (uint8 stays uint8: the network scales it)."""
    return {k: torch.as_tensor(v) for k, v in obs.items()}
