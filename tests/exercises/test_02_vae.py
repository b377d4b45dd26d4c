"""Chapter 02: each exercise's tests reject the plausible mistakes and accept other correct code.

Same method as tests/test_ch01_exercise_checks.py: the graded test cells of the
built solution notebook run in-process against each implementation below.
"""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "02_vae"

VAE_TEMPLATE = """
class VAE(nn.Module):
    def __init__(self, input_dim=784, hidden_dim=400, latent_dim=20):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.head = nn.Linear(hidden_dim, 2 * latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, input_dim)

    def encode(self, x):
        mu, logvar = self.head(F.relu(self.fc1(x))).chunk(2, dim=-1)
        return mu, logvar

    def reparameterize(self, mu, logvar):
        {reparam}

    def decode(self, z):
        {decode}

    def forward(self, x):
        {forward}
"""
GOOD = dict(
    reparam="return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)",
    decode="return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))",
    forward="mu, logvar = self.encode(x)\n        return self.decode(self.reparameterize(mu, logvar)), mu, logvar",
)
vae = variants(VAE_TEMPLATE, GOOD)


KL_GOOD = """
def kl_divergence(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
"""

EXERCISES = {
    "vae_tests": {
        "correct": {
            "fused head, chunked": vae(),
            "std via sqrt(exp)": vae(reparam="return mu + torch.sqrt(torch.exp(logvar)) * torch.randn(mu.shape)"),
            "separate layers (reference layout)": vae().replace(
                "self.head = nn.Linear(hidden_dim, 2 * latent_dim)",
                "self.mu_l = nn.Linear(hidden_dim, latent_dim)\n        self.lv_l = nn.Linear(hidden_dim, latent_dim)"
            ).replace(
                "mu, logvar = self.head(F.relu(self.fc1(x))).chunk(2, dim=-1)\n        return mu, logvar",
                "h = F.relu(self.fc1(x))\n        return self.mu_l(h), self.lv_l(h)"),
        },
        "wrong": {
            "std taken as exp(logvar)": vae(reparam="return mu + torch.exp(logvar) * torch.randn_like(mu)"),
            "variance instead of std": vae(reparam="return mu + logvar.exp() ** 2 * torch.randn_like(mu)"),
            "no noise": vae(reparam="return mu"),
            "noise drawn once": vae(reparam="return mu + torch.exp(0.5 * logvar) * self.eps[: mu.shape[0], : mu.shape[1]]")
            .replace("self.latent_dim = latent_dim", "self.latent_dim = latent_dim\n        "
                     "self.eps = torch.randn(30000, max(latent_dim, 10))"),
            "noise detached from logvar": vae(
                reparam="return mu + torch.exp(0.5 * logvar).detach() * torch.randn_like(mu)"),
            "forward decodes mu": vae(forward="mu, logvar = self.encode(x)\n        return self.decode(mu), mu, logvar"),
            "no sigmoid on the output": vae(decode="return self.fc4(F.relu(self.fc3(z)))"),
            "latent_dim not stored": vae().replace("self.latent_dim = latent_dim", "self.latent_dim = 20"),
            "extra hidden layer": vae().replace(
                "self.fc3 = nn.Linear(latent_dim, hidden_dim)",
                "self.fc3 = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))"),
        },
    },
    "kl_divergence_tests": {
        "correct": {
            "reference": KL_GOOD,
            "written with sigma": """
def kl_divergence(mu, logvar):
    var = torch.exp(logvar)
    return -0.5 * torch.sum(1 + logvar - mu ** 2 - var, dim=-1)
""",
        },
        "wrong": {
            "wrong sign": KL_GOOD.replace("return 0.5", "return -0.5"),
            "missing one half": KL_GOOD.replace("return 0.5 * ", "return "),
            "std instead of variance": KL_GOOD.replace("logvar.exp()", "(0.5 * logvar).exp()"),
            "mean over dimensions": KL_GOOD.replace(".sum(dim=1)", ".mean(dim=1)"),
            "batch sum (scalar)": KL_GOOD.replace(".sum(dim=1)", ".sum()"),
            "log term missing": KL_GOOD.replace(" - logvar)", ")"),
        },
    },
    "vae_loss_tests": {
        "correct": {
            "reference": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=1)
    return (bce + beta * kl_divergence(mu, logvar)).mean()
""",
            "sums then divides": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return (bce + beta * kl_divergence(mu, logvar).sum()) / x.shape[0]
""",
        },
        "wrong": {
            "mean over pixels": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    return F.binary_cross_entropy(recon_x, x) + beta * kl_divergence(mu, logvar).mean()
""",
            "beta ignored": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return (bce + kl_divergence(mu, logvar).sum()) / x.shape[0]
""",
            "batch sum instead of mean": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return bce + beta * kl_divergence(mu, logvar).sum()
""",
            "mse instead of bce": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    mse = F.mse_loss(recon_x, x, reduction="none").sum(dim=1)
    return (mse + beta * kl_divergence(mu, logvar)).mean()
""",
            "kl subtracted": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=1)
    return (bce - beta * kl_divergence(mu, logvar)).mean()
""",
            "beta on the reconstruction": KL_GOOD + """
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=1)
    return (beta * bce + kl_divergence(mu, logvar)).mean()
""",
        },
    },
    "sample_tests": {
        "correct": {
            "reference": """
def sample(model, n):
    dev = next(model.parameters()).device
    with torch.no_grad():
        return model.decode(torch.randn(n, model.latent_dim, device=dev))
""",
            "moved to the device": """
@torch.no_grad()
def sample(model, n):
    z = torch.randn(n, model.latent_dim)
    return model.decode(z.to(next(model.parameters()).device))
""",
        },
        "wrong": {
            "uniform codes": """
def sample(model, n):
    with torch.no_grad():
        return model.decode(torch.rand(n, model.latent_dim, device=next(model.parameters()).device))
""",
            "builds a graph": """
def sample(model, n):
    return model.decode(torch.randn(n, model.latent_dim, device=next(model.parameters()).device))
""",
            "hard-coded latent size": """
def sample(model, n):
    with torch.no_grad():
        return model.decode(torch.randn(n, 20, device=next(model.parameters()).device))
""",
            "ignores the model's device": """
def sample(model, n):
    with torch.no_grad():
        return model.decode(torch.randn(n, model.latent_dim))
""",
            "one code repeated": """
def sample(model, n):
    with torch.no_grad():
        z = torch.randn(1, model.latent_dim, device=next(model.parameters()).device)
        return model.decode(z.expand(n, -1))
""",
            "wrong scale": """
def sample(model, n):
    with torch.no_grad():
        return model.decode(2 * torch.randn(n, model.latent_dim, device=next(model.parameters()).device))
""",
        },
    },
    "interpolate_tests": {
        "correct": {
            "reference": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        mu_a, _ = model.encode(x_a.unsqueeze(0))
        mu_b, _ = model.encode(x_b.unsqueeze(0))
        t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
        return model.decode((1 - t) * mu_a + t * mu_b)
""",
            "torch.lerp over a batch": """
@torch.no_grad()
def interpolate(model, x_a, x_b, steps=10):
    mu, _ = model.encode(torch.stack([x_a, x_b]))
    w = torch.linspace(0, 1, steps)[:, None]
    return model.decode(torch.lerp(mu[0].expand(steps, -1), mu[1].expand(steps, -1), w))
""",
        },
        "wrong": {
            "interpolates images": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
        return (1 - t) * x_a + t * x_b
""",
            "endpoints excluded": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        mu_a, _ = model.encode(x_a.unsqueeze(0))
        mu_b, _ = model.encode(x_b.unsqueeze(0))
        t = torch.linspace(0.0, 1.0, steps + 2)[1:-1].unsqueeze(1)
        return model.decode((1 - t) * mu_a + t * mu_b)
""",
            "sampled codes instead of means": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        mu_a, lv_a = model.encode(x_a.unsqueeze(0))
        mu_b, lv_b = model.encode(x_b.unsqueeze(0))
        za = mu_a + torch.exp(0.5 * lv_a) * torch.randn_like(mu_a)
        zb = mu_b + torch.exp(0.5 * lv_b) * torch.randn_like(mu_b)
        t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
        return model.decode((1 - t) * za + t * zb)
""",
            "steps ignored": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        mu_a, _ = model.encode(x_a.unsqueeze(0))
        mu_b, _ = model.encode(x_b.unsqueeze(0))
        t = torch.linspace(0.0, 1.0, 10).unsqueeze(1)
        return model.decode((1 - t) * mu_a + t * mu_b)
""",
            "reversed direction": """
def interpolate(model, x_a, x_b, steps=10):
    with torch.no_grad():
        mu_a, _ = model.encode(x_a.unsqueeze(0))
        mu_b, _ = model.encode(x_b.unsqueeze(0))
        t = torch.linspace(1.0, 0.0, steps).unsqueeze(1)
        return model.decode((1 - t) * mu_a + t * mu_b)
""",
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
