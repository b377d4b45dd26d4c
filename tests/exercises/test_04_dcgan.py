"""Chapter 04: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "04_dcgan"

MODELS = """
class DCGenerator(nn.Module):
    def __init__(self, latent_dim=100, base_channels=64):
        super().__init__()
        b = base_channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 4 * b, 7, 1, 0, bias=False), nn.BatchNorm2d(4 * b), nn.ReLU(),
            nn.ConvTranspose2d(4 * b, 2 * b, 4, 2, 1, bias=False), {g_bn2}, nn.ReLU(),
            nn.ConvTranspose2d(2 * b, 1, 4, 2, 1), {g_out},
        )

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCDiscriminator(nn.Module):
    def __init__(self, base_channels=64):
        super().__init__()
        b = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, b, 4, 2, 1), {d_first}, nn.LeakyReLU({slope}),
            {d_second}, nn.BatchNorm2d(2 * b), nn.LeakyReLU({slope}),
            nn.Conv2d(2 * b, 1, 7, 1, 0){d_out},
        )

    def forward(self, x):
        return self.net(x).view(x.shape[0], 1)
"""
GOOD_MODELS = dict(g_bn2="nn.BatchNorm2d(2 * b)", g_out="nn.Tanh()", d_first="nn.Identity()", slope="0.2",
                   d_second="nn.Conv2d(b, 2 * b, 4, 2, 1, bias=False)", d_out="")
models = variants(MODELS, GOOD_MODELS)


INIT = """
def weights_init(module):
    if isinstance(module, ({conv_types})):
        nn.init.normal_(module.weight, 0.0, {std})
        if module.bias is not None:
            {conv_bias}
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, {bn_mean}, 0.02)
        {bn_bias}
    {other}
"""
GOOD_INIT = dict(conv_types="nn.Conv2d, nn.ConvTranspose2d", std="0.02", conv_bias="nn.init.zeros_(module.bias)",
                 bn_mean="1.0", bn_bias="nn.init.zeros_(module.bias)", other="")
init = variants(INIT, GOOD_INIT)


EXERCISES = {
    "dcgan_models_tests": {
        "correct": {
            "reference": models(),
            "unflatten instead of view": models().replace(
                "return self.net(z.view(z.shape[0], -1, 1, 1))", "return self.net(z[:, :, None, None])"),
        },
        "wrong": {
            "sigmoid on the discriminator": models(d_out=", nn.Sigmoid()"),
            "batchnorm on the discriminator input": models(d_first="nn.BatchNorm2d(b)"),
            "max pooling instead of strides": models(
                d_second="nn.Conv2d(b, 2 * b, 3, 1, 1, bias=False), nn.MaxPool2d(2)"),
            "relu in the discriminator": models(slope="0.0"),
            "no tanh at the output": models(g_out="nn.Identity()"),
            "sigmoid at the output: images in [0, 1]": models(g_out="nn.Sigmoid()"),
            "tanh rescaled to [0, 1]": models(g_out="nn.Tanh()").replace(
                "return self.net(z.view(z.shape[0], -1, 1, 1))", "return (self.net(z.view(z.shape[0], -1, 1, 1)) + 1) / 2"),
            "output clamped to [0, 1]": models(g_out="nn.Hardtanh(0.0, 1.0)"),
            "generator missing a batchnorm": models(g_bn2="nn.Identity()"),
            "base channels hard-coded": models().replace("b = base_channels", "b = 64"),
        },
    },
    "weights_init_tests": {
        "correct": {
            "reference": init(),
            "torch.no_grad and tensor methods": """
def weights_init(module):
    with torch.no_grad():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.normal_(0, 0.02)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.normal_(1, 0.02)
            module.bias.zero_()
""",
        },
        "wrong": {
            "std 0.2": init(std="0.2"),
            "batchnorm weights around 0": init(bn_mean="0.0"),
            "conv bias left alone": init(conv_bias="pass"),
            "batchnorm bias left alone": init(bn_bias="pass"),
            "transposed convolutions skipped": init(conv_types="nn.Conv2d,"),
            "new parameter instead of in place": init(std="0.02").replace(
                "nn.init.normal_(module.weight, 0.0, 0.02)",
                "module.weight = nn.Parameter(torch.randn_like(module.weight) * 0.02)"),
            "linear layers touched too": init(other="""if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)"""),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
