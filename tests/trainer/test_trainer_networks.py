"""The networks have DeepRacer's layer shapes and TensorFlow's flatten order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.networks import CameraEmbedder, ObsSpec, PPOActorCritic, QNetwork, SACActor, Torso

CAMERA = ObsSpec.of({"FRONT_FACING_CAMERA": (120, 160, 1)})


def _convs(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, nn.Conv2d)]


def _denses(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, nn.Linear)]


def test_shallow_matches_the_console_checkpoint_shapes() -> None:
    net = PPOActorCritic(CAMERA, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", None)
    # TF kernels [8,8,1,32] [4,4,32,64] [3,3,64,64] are torch [32,1,8,8] [64,32,4,4] [64,64,3,3]
    for torso in (net.actor_torso, net.critic_torso):
        assert _convs(torso) == [(32, 1, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3)]
        assert _denses(torso) == [(512, 11264)]
    assert tuple(net.policy_head.weight.shape) == (2, 512)  # policy_mean [512, 2]
    assert tuple(net.value_head.weight.shape) == (1, 512)  # v_values_head_0/output [512, 1]
    assert tuple(net.log_std.shape) == (1, 2)  # policy_log_std [1, 2]
    assert net.actor_torso.embedders["FRONT_FACING_CAMERA"].flat_size == 11264


def test_standard_and_deep_layer_shapes() -> None:
    std = Torso(CAMERA, "DEEP_CONVOLUTIONAL_NETWORK")
    assert _convs(std) == [(32, 1, 5, 5), (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert _denses(std) == [(64, 25 * 35 * 64), (512, 64)]
    deep = Torso(CAMERA, "DEEP_CONVOLUTIONAL_NETWORK_DEEP")
    assert _convs(deep) == [(32, 1, 8, 8), (32, 32, 4, 4), (64, 32, 4, 4), (64, 64, 3, 3)]
    assert _denses(deep) == [(512, 3 * 6 * 64), (512, 512), (256, 512), (128, 256)]


def test_stereo_and_lidar_embedders() -> None:
    spec = ObsSpec.of({"STEREO_CAMERAS": (120, 160, 2), "LIDAR": (64,)})
    torso = Torso(spec, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW")
    stereo = torso.embedders["STEREO_CAMERAS"]
    assert [s[0] for s in _convs(stereo)] == [32, 64, 64, 128, 128]
    assert [s[2] for s in _convs(stereo)] == [3, 3, 3, 3, 3]
    assert _denses(torso.embedders["LIDAR"]) == [(256, 64), (256, 256)]
    obs = {"STEREO_CAMERAS": torch.zeros(2, 120, 160, 2, dtype=torch.uint8), "LIDAR": torch.ones(2, 64)}
    assert torso(obs).shape == (2, 512)
    actor, q = (
        SACActor(spec, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
        QNetwork(spec, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    )
    action, logp = actor.sample(obs)
    assert action.shape == (2, 2) and bool((action.abs() <= 1).all()) and logp.shape == (2,)
    assert q(obs, action).shape == (2,)


def test_flatten_is_nhwc_and_input_is_scaled_inside() -> None:
    torch.manual_seed(0)
    emb = CameraEmbedder((120, 160, 1), ((32, 8, 4), (64, 4, 2), (64, 3, 1)), ())
    image = torch.randint(0, 256, (1, 120, 160, 1), dtype=torch.uint8)
    with torch.no_grad():
        flat = emb(image)
        conv_out = emb.convs(image.permute(0, 3, 1, 2).float() / 255.0)  # N, C, H, W
    _, c, _, w = conv_out.shape
    for hi, wi, ci in [(0, 0, 5), (3, 7, 0), (10, 15, 63), (5, 1, 17)]:
        assert float(flat[0, (hi * w + wi) * c + ci]) == pytest.approx(float(conv_out[0, ci, hi, wi]), abs=1e-6)


def test_continuous_mean_is_bounded_and_discrete_outputs_one_logit_per_action() -> None:
    obs = {"FRONT_FACING_CAMERA": torch.full((3, 120, 160, 1), 255, dtype=torch.uint8)}
    cont = PPOActorCritic(CAMERA, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", None)
    with torch.no_grad():
        cont.policy_head.bias.fill_(50.0)
        assert bool((cont.greedy(obs).abs() <= 1.0).all())
    disc = PPOActorCritic(CAMERA, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", 7)
    with torch.no_grad():
        assert disc.policy_output(obs).shape == (3, 7) and disc.greedy(obs).shape == (3,)


def test_unknown_network_is_rejected() -> None:
    with pytest.raises(ValueError, match="neural_network 'RESNET'"):
        Torso(CAMERA, "RESNET")
