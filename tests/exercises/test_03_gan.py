"""Chapter 03: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "03_gan"

MODELS = """
class Generator(nn.Module):
    def __init__(self, latent_dim=100, hidden_dims=(256, 512, 1024), out_dim=784):
        super().__init__()
        layers, width = [], latent_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.LeakyReLU({g_slope})]
            width = h
        layers += [nn.Linear(width, out_dim), {g_out}]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, in_dim=784, hidden_dims=(1024, 512, 256), dropout=0.3):
        super().__init__()
        layers, width = [], in_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout({d_drop})]
            width = h
        layers += [nn.Linear(width, 1){d_out}]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
"""
GOOD_MODELS = dict(g_slope="0.2", g_out="nn.Tanh()", d_drop="dropout", d_out="")
models = variants(MODELS, GOOD_MODELS)


LOSSES = """
def discriminator_loss(real_logits, fake_logits):
    return {d}


def generator_loss(fake_logits):
    return {g}
"""
GOOD_LOSSES = dict(
    d="F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + "
      "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
    g="F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
)
losses = variants(LOSSES, GOOD_LOSSES)


STEP = losses() + """
def train_step(generator, discriminator, real, opt_g, opt_d, latent_dim):
    z = torch.randn({z_batch}, latent_dim, device=real.device)
    fake = generator(z)
    real_logits = discriminator(real)
    fake_logits = discriminator({fake_for_d})
    d_loss = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(discriminator(fake))
    {g_zero}.zero_grad()
    g_loss.backward()
    {g_opt}.step()
    return {{"d_loss": d_loss.item(), "g_loss": g_loss.item(),
            "d_real": {d_real}, "d_fake": torch.sigmoid(fake_logits).mean().item()}}
"""
GOOD_STEP = dict(z_batch="real.shape[0]", fake_for_d="fake.detach()", g_zero="opt_g", g_opt="opt_g",
                 d_real="torch.sigmoid(real_logits).mean().item()")
step = variants(STEP, GOOD_STEP)


EXERCISES = {
    "gan_models_tests": {
        "correct": {
            "reference": models(),
            "modules kept in lists": models().replace("nn.LeakyReLU(0.2)", "nn.LeakyReLU(negative_slope=0.2)"),
        },
        "wrong": {
            "sigmoid on the discriminator": models(d_out=", nn.Sigmoid()"),
            "sigmoid at the generator output": models(g_out="nn.Sigmoid()"),
            "no output activation in the generator": models(g_out="nn.Identity()"),
            "relu instead of leaky relu": models(g_slope="0.0"),
            "dropout rate ignored": models(d_drop="0.3"),
            "hidden sizes hard-coded": models().replace("for h in hidden_dims:", "for h in (256, 512, 1024):", 1),
        },
    },
    "gan_losses_tests": {
        "correct": {
            "reference": losses(),
            "softplus form": losses(d="F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
                                    g="F.softplus(-fake_logits).mean()"),
        },
        "wrong": {
            "swapped labels": losses(
                d="F.binary_cross_entropy_with_logits(real_logits, torch.zeros_like(real_logits)) + "
                  "F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"),
            "missing fake term": losses(d="F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))"),
            "missing real term": losses(d="F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"),
            "averaged terms": losses(d="0.5 * (" + GOOD_LOSSES["d"] + ")"),
            "saturating generator loss": losses(
                g="-F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"),
            "generator target 0": losses(
                g="F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"),
            "sigmoid before the logits loss": losses(
                g="F.binary_cross_entropy_with_logits(torch.sigmoid(fake_logits), torch.ones_like(fake_logits))"),
            "log of a sigmoid": losses(
                d="-(torch.log(torch.sigmoid(real_logits)).mean() + torch.log(1 - torch.sigmoid(fake_logits)).mean())",
                g="-torch.log(torch.sigmoid(fake_logits)).mean()"),
            "summed over the batch": losses(
                g="F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction='sum')"),
        },
    },
    "train_step_tests": {
        "correct": {
            "reference": models() + step(),
            "fakes made twice": models() + step(fake_for_d="generator(z).detach()"),
            "no-grad fakes for D": models() + step(fake_for_d="fake.detach().clone()"),
        },
        "wrong": {
            "no detach": models() + step(fake_for_d="fake"),
            "no detach, fresh fakes for D": models() + step(fake_for_d="generator(z)"),
            "wrong optimizer in the G step": models() + step(g_zero="opt_d", g_opt="opt_d"),
            "both optimizers step in the G phase": models() + step(g_opt="opt_g.step(); opt_d"),
            "fixed batch size": models() + step(z_batch="64"),
            "d_real as a logit": models() + step(d_real="real_logits.mean().item()"),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
