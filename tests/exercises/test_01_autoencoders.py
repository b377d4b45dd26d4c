"""Chapter 01: each exercise's tests reject the plausible mistakes and accept other correct code.

The test cells (visible and hidden) are taken from the built solution notebook
and run in-process against each implementation below; nothing is trained.
"""

from __future__ import annotations

from exercise_checks import exercise_tests

CHAPTER = "01_autoencoders"


# An autoencoder template: {body} is the body of __init__, {fwd} the body of forward.
AE = """
class Autoencoder(nn.Module):
    def __init__(self, input_dim=784, hidden_dims=(512, 256), latent_dim=32):
        super().__init__()
        {body}

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        {fwd}
"""
GOOD_BODY = """w = [input_dim, *hidden_dims, latent_dim]
        enc = []
        for a, b in zip(w[:-1], w[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*enc[:-1])
        dec = []
        for a, b in zip(w[::-1][:-1], w[::-1][1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec[:-1], nn.Sigmoid())"""
GOOD_FWD = "return self.decode(self.encode(x))"


def ae(body=GOOD_BODY, fwd=GOOD_FWD):
    return AE.format(body=body, fwd=fwd)


EXERCISES = {
    "autoencoder_tests": {
        "correct": {
            "reference": ae(),
            "leaky relu and module lists": ae(body=GOOD_BODY.replace("nn.ReLU()", "nn.LeakyReLU(0.1)")),
            "forward through submodules": ae(fwd="return self.decoder(self.encoder(x))"),
        },
        "wrong": {
            "hard-coded hidden sizes": ae(body="""self.encoder = nn.Sequential(
            nn.Linear(input_dim, 512), nn.ReLU(),
            nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 512),
            nn.ReLU(), nn.Linear(512, input_dim), nn.Sigmoid())"""),
            "latent_dim ignored": ae(body=GOOD_BODY.replace("latent_dim]", "32]")),
            "input_dim ignored": ae(body=GOOD_BODY.replace("[input_dim,", "[784,")),
            "only the first hidden size used": ae(body=GOOD_BODY.replace("*hidden_dims", "hidden_dims[0]")),
            "no sigmoid on the output": ae(body=GOOD_BODY.replace("*dec[:-1], nn.Sigmoid()", "*dec[:-1]")),
            "relu before the sigmoid": ae(
                body=GOOD_BODY.replace("*dec[:-1], nn.Sigmoid()", "*dec, nn.Sigmoid()")),
            "relu on the code": ae(body=GOOD_BODY.replace("nn.Sequential(*enc[:-1])", "nn.Sequential(*enc)")),
            "forward returns the code": ae(fwd="return self.encode(x)"),
            "encoder and decoder not mirrored": ae(body=GOOD_BODY.replace("w[::-1]", "w")),
        },
    },
    "reconstruction_error_tests": {
        "correct": {
            "reference": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).mean(dim=1)""",
            "functional mse": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return F.mse_loss(model(x), x, reduction="none").mean(1)""",
            "inference mode": """
def reconstruction_error(model, x):
    with torch.inference_mode():
        out = model(x)
    return (out - x).pow(2).sum(-1) / x.shape[1]""",
        },
        "wrong": {
            "sum instead of mean": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).sum(dim=1)""",
            "mean over the batch": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).mean()""",
            "mean over the wrong axis": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).mean(dim=0)""",
            "builds a graph": """
def reconstruction_error(model, x):
    return ((model(x) - x) ** 2).mean(dim=1)""",
            "absolute error": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return (model(x) - x).abs().mean(dim=1)""",
            "root mean square": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).mean(dim=1).sqrt()""",
            "hard-coded 784": """
def reconstruction_error(model, x):
    with torch.no_grad():
        return ((model(x) - x) ** 2).sum(dim=1) / 784""",
        },
    },
    "add_noise_tests": {
        "correct": {
            "reference": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor * torch.randn_like(x)).clamp(0.0, 1.0)""",
            "torch.normal": """
def add_noise(x, noise_factor=0.3):
    noisy = x + torch.normal(0.0, 1.0, size=x.shape, dtype=x.dtype) * noise_factor
    return torch.clamp(noisy, min=0, max=1)""",
        },
        "wrong": {
            "in place": """
def add_noise(x, noise_factor=0.3):
    x += noise_factor * torch.randn_like(x)
    return x.clamp_(0, 1)""",
            "no clamp": """
def add_noise(x, noise_factor=0.3):
    return x + noise_factor * torch.randn_like(x)""",
            "clamp to [-1, 1]": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor * torch.randn_like(x)).clamp(-1, 1)""",
            "uniform noise": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor * torch.rand_like(x)).clamp(0, 1)""",
            "centred uniform noise": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor * 3 ** 0.5 * (2 * torch.rand_like(x) - 1)).clamp(0, 1)""",
            "noise_factor ignored": """
def add_noise(x, noise_factor=0.3):
    return (x + 0.3 * torch.randn_like(x)).clamp(0, 1)""",
            "variance instead of std": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor ** 2 * torch.randn_like(x)).clamp(0, 1)""",
            "one noise value for the whole tensor": """
def add_noise(x, noise_factor=0.3):
    return (x + noise_factor * torch.randn(1)).clamp(0, 1)""",
            "wrong default": """
def add_noise(x, noise_factor=0.5):
    return (x + noise_factor * torch.randn_like(x)).clamp(0, 1)""",
        },
    },
    "sparse_ae_loss_tests": {
        "correct": {
            "reference": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * z.abs().sum(dim=1).mean()""",
            "norms": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return ((recon - x) ** 2).mean() + l1_weight * torch.linalg.vector_norm(z, ord=1, dim=1).mean()""",
        },
        "wrong": {
            "summed mse": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x, reduction="sum") + l1_weight * z.abs().sum(dim=1).mean()""",
            "mean over code entries": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * z.abs().mean()""",
            "sum over the whole batch": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * z.abs().sum()""",
            "l2 penalty": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * (z ** 2).sum(dim=1).mean()""",
            "no abs": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * z.sum(dim=1).mean()""",
            "wrong sign": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) - l1_weight * z.abs().sum(dim=1).mean()""",
            "l1_weight ignored": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + 1e-3 * z.abs().sum(dim=1).mean()""",
            "penalty detached": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return F.mse_loss(recon, x) + l1_weight * z.detach().abs().sum(dim=1).mean()""",
            "per-sample vector instead of a scalar": """
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    return ((recon - x) ** 2).mean(1) + l1_weight * z.abs().sum(dim=1)""",
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
