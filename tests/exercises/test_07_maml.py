"""Chapter 07: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "07_maml"
IMPORTS = "from torch.func import functional_call, grad, vmap\n"

EPISODE = IMPORTS + """
def sample_episode(images, labels, n_way, k_shot, n_query, rng):
    labels = np.asarray(labels)
    classes = {classes}
    support, query = [], []
    for c in classes:
        members = np.flatnonzero(labels == c)
        picked = {picked}
        support.append(picked[:k_shot])
        query.append({query})
    support_y = {support_y}
    query_y = torch.arange(n_way).repeat_interleave(n_query)
    return (images[torch.as_tensor(np.concatenate(support))], support_y,
            images[torch.as_tensor(np.concatenate(query))], query_y)
"""
GOOD_EPISODE = dict(classes="rng.choice(np.unique(labels), size=n_way, replace=False)",
                    picked="rng.permutation(members)[: k_shot + n_query]", query="picked[k_shot:]",
                    support_y="torch.arange(n_way).repeat_interleave(k_shot)")
episode = variants(EPISODE, GOOD_EPISODE)


INNER = IMPORTS + """
def inner_adapt(model, params, x, y, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    def support_loss(p):
        return loss_fn(functional_call(model, p, (x,)), y)

    for _ in range({steps}):
        grads = grad(support_loss)(params)
        if {detach_when}:
            grads = {{name: g.detach() for name, g in grads.items()}}
        params = {update}
    return params
"""
GOOD_INNER = dict(steps="steps", detach_when="first_order",
                  update="{name: params[name] - inner_lr * grads[name] for name in params}")
inner = variants(INNER, GOOD_INNER)


OUTER = """
def maml_outer_loss(model, params, tasks, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    def query_loss(support_x, support_y, query_x, query_y):
        adapted = inner_adapt(model, params, {adapt_on}, inner_lr, {steps}, first_order, loss_fn)
        return loss_fn(functional_call(model, {evaluate_with}, ({evaluate_on},)), query_y)

    return vmap(query_loss)(*tasks).{reduce}()
"""
GOOD_OUTER = dict(adapt_on="support_x, support_y", steps="steps", evaluate_with="adapted", evaluate_on="query_x",
                  reduce="mean")
outer_only = variants(OUTER, GOOD_OUTER)


def outer(**changes):
    return inner() + outer_only(**changes)


PROTO = """
def prototypes(embeddings, labels, n_way):
    return {prototypes}


def proto_logits(query_emb, protos):
    return {logits}
"""
GOOD_PROTO = dict(prototypes="torch.stack([embeddings[labels == c].mean(0) for c in range(n_way)])",
                  logits="-torch.cdist(query_emb, protos) ** 2")
proto = variants(PROTO, GOOD_PROTO)


EXERCISES = {
    "sample_episode_tests": {
        "correct": {
            "reference": episode(),
            "choice without replacement per class": episode(
                picked="rng.choice(members, size=k_shot + n_query, replace=False)"),
            "class ids from a shuffled unique list": episode(classes="rng.permutation(np.unique(labels))[:n_way]"),
        },
        "wrong": {
            # The seed's labels kept as the original class ids.
            "labels not remapped": episode(support_y="torch.as_tensor(np.repeat(classes, k_shot))"),
            # Support and query drawn independently: an image can be in both.
            "support and query drawn independently": episode(
                query="rng.choice(members, size=n_query, replace=False)",
                picked="rng.choice(members, size=k_shot, replace=False)"),
            "always the first images of a class": episode(picked="members[: k_shot + n_query]"),
            "always the first classes": episode(classes="np.unique(labels)[:n_way]"),
            "global numpy randomness": episode(
                classes="np.random.choice(np.unique(labels), size=n_way, replace=False)"),
            "classes may repeat": episode(classes="rng.choice(np.unique(labels), size=n_way, replace=True)"),
        },
    },
    "inner_adapt_tests": {
        "correct": {
            "reference": inner(),
            "grad_and_value and zip": IMPORTS + """
from torch.func import grad_and_value


def inner_adapt(model, params, x, y, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    def f(p):
        return loss_fn(functional_call(model, p, (x,)), y)

    new = dict(params)
    for _ in range(steps):
        g, _ = grad_and_value(f)(new)
        new = {k: v - inner_lr * (g[k].detach() if first_order else g[k]) for k, v in new.items()}
    return new
""",
        },
        "wrong": {
            # Silently first order: the inner gradients are always cut from the graph.
            "gradients always detached": inner(detach_when="True"),
            "first_order ignored": inner(detach_when="False"),
            "one step whatever steps": inner(steps="min(steps, 1)"),
            "gradient ascent": inner(update="{name: params[name] + inner_lr * grads[name] for name in params}"),
            # The inner step applied to the module's own parameters, in place.
            "update in place": IMPORTS + """
def inner_adapt(model, params, x, y, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p.sub_(inner_lr * g)
    return {k: v for k, v in model.named_parameters()}
""",
            # torch.autograd inside: right numbers on one task, but not under vmap.
            "torch.autograd.grad, not torch.func": IMPORTS + """
def inner_adapt(model, params, x, y, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    for _ in range(steps):
        loss = loss_fn(functional_call(model, params, (x,)), y)
        g = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
        params = {k: v - inner_lr * gk for (k, v), gk in zip(params.items(), g)}
    return params
""",
            "loss_fn ignored": inner().replace("return loss_fn(functional_call", "return F.cross_entropy(functional_call"),
        },
    },
    "maml_outer_loss_tests": {
        "correct": {
            "reference": outer(),
            "python loop over tasks": inner() + """
def maml_outer_loss(model, params, tasks, inner_lr, steps, first_order=False, loss_fn=F.cross_entropy):
    losses = []
    for sx, sy, qx, qy in zip(*tasks):
        adapted = inner_adapt(model, params, sx, sy, inner_lr, steps, first_order, loss_fn)
        losses.append(loss_fn(functional_call(model, adapted, (qx,)), qy))
    return sum(losses) / len(losses)
""",
        },
        "wrong": {
            # The query used for adaptation: the model is tested on what it was adapted on.
            "adapted on the query": outer(adapt_on="query_x, query_y"),
            "no adaptation": outer(evaluate_with="params"),
            "sum over tasks": outer(reduce="sum"),
            "one inner step whatever steps": outer(steps="1"),
            "first order always": outer().replace("inner_lr, steps, first_order, loss_fn", "inner_lr, steps, True, loss_fn"),
        },
    },
    "prototypes_tests": {
        "correct": {
            "reference": proto(),
            "one-hot matmul and broadcast": proto(
                prototypes="F.one_hot(labels, n_way).float().T @ embeddings / F.one_hot(labels, n_way).sum(0, keepdim=True).T",
                logits="-((query_emb[:, None, :] - protos[None, :, :]) ** 2).sum(-1)"),
            "expanded square": proto(
                logits="2 * query_emb @ protos.T - (query_emb ** 2).sum(1, keepdim=True) - (protos ** 2).sum(1)"),
        },
        "wrong": {
            # The seed's view(n_way, n_shot, -1): right only when the support is sorted by class.
            "assumes a class order": proto(prototypes="embeddings.view(n_way, -1, embeddings.shape[-1]).mean(1)"),
            "sum, not mean": proto(prototypes="torch.stack([embeddings[labels == c].sum(0) for c in range(n_way)])"),
            "mean over the wrong axis": proto(
                prototypes="torch.stack([embeddings[labels == c].mean(1) for c in range(n_way)])"),
            "distance without the square": proto(logits="-torch.cdist(query_emb, protos)"),
            "wrong sign": proto(logits="torch.cdist(query_emb, protos) ** 2"),
            "transposed logits": proto(logits="-(torch.cdist(query_emb, protos) ** 2).T"),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
