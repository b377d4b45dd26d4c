"""Where a packed GRU's training pass spends its time on CPU (issue 39 §3, chapter 11's encoder).

Chapter 11 times one forward and backward pass of a GRU of its own size over a batch of rows of random lengths,
packed (pack_padded_sequence) or over the whole padded width, and advises the latter. Its text explains the
difference with a profile; this script takes that profile with the chapter's own `gru_pass` at full-mode sizes
on one thread and records the time shares it quotes. Writes results/diagnostics/packed_gru_profile.json.

    python -m tools.diagnostics.packed_gru_profile
"""

from __future__ import annotations

from tools import records
from tools.artifacts.chapter_code import load_chapter

NAME = "diagnostics/packed_gru_profile"
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


def profile_shares(one_pass) -> dict[str, float]:
    """Shares of self CPU time: filling, accumulating, copying, matrix products; and SliceBackward's total share."""
    from torch.profiler import ProfilerActivity, profile

    one_pass()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            one_pass()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    self_share = {e.key: e.self_cpu_time_total / total for e in events}
    slice_backward = sum(e.cpu_time_total for e in events if e.key.endswith("SliceBackward0")
                         and e.key.startswith("autograd::engine::evaluate_function")) / total
    return {"fill_share": round(self_share.get("aten::fill_", 0.0), 3),
            "add_share": round(self_share.get("aten::add_", 0.0), 3),
            "copy_share": round(self_share.get("aten::copy_", 0.0), 3),
            "matmul_share": round(sum(self_share.get(k, 0.0) for k in MATMULS), 3),
            "slice_backward_share": round(slice_backward, 3)}


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ch = load_chapter("11_seq2seq", names=("CFG",), context={"FAST": False})
    values = {}
    for name, packed in (("packed", True), ("full_width", False)):
        one_pass = ch["gru_pass"](packed=packed)
        values[f"{name}_ms"] = round(ch["milliseconds"](one_pass), 1)  # the chapter's timing, full-mode repeats
        values.update({f"{name}_{k}": v for k, v in profile_shares(one_pass).items()})
    values.update({"emb_dim": ch["CFG"]["emb_dim"], "hidden_dim": ch["CFG"]["hidden_dim"], "threads": 1})
    print(values)
    records.write(NAME, {"full": {"values": values,
                                  **records.provenance("python -m tools.diagnostics.packed_gru_profile")}})


if __name__ == "__main__":
    main()
