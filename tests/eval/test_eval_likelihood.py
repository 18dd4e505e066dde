import numpy as np
import pytest
import torch

from slamlm.eval.likelihood import pack_rows, token_logprobs
from slamlm.model import SpeechLM, named_shape

V = 23


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = SpeechLM(named_shape("tiny", vocab_size=V))
    # bigger weights than the default init so log-probs differ clearly between tokens
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(8.0 if p.dim() > 1 else 1.0)
    return m.eval()


def one_at_a_time(model, seq: np.ndarray) -> np.ndarray:
    """Reference: unpacked forward of a single sequence, log-softmax by hand."""
    with torch.no_grad():
        logits = model(torch.tensor(seq)[None])[0].double()  # (T, V)
    lp = torch.log_softmax(logits, -1)
    return lp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].numpy()


def random_seqs(n, seed=0, lo=2, hi=40):
    rng = np.random.default_rng(seed)
    return [np.concatenate([[1], rng.integers(3, V, rng.integers(lo, hi)), [2]]) for _ in range(n)]


def test_pack_rows_fits_and_covers():
    lengths = [5, 3, 2, 4, 9, 1, 7]
    rows = pack_rows(lengths, row_len=9)
    assert sorted(i for r in rows for i in r) == list(range(7))
    assert all(sum(lengths[i] for i in r) <= 9 for r in rows)
    assert len(rows) == 4  # 31 tokens need at least 4 rows of 9
    assert pack_rows([12, 3], row_len=8) == [[0], [1]]  # too long: its own row


def test_matches_one_sequence_at_a_time(model):
    seqs = random_seqs(12)
    got = token_logprobs(model, seqs, max_tokens=256)
    for s, lp in zip(seqs, got):
        assert lp.shape == (len(s) - 1,)
        np.testing.assert_allclose(lp, one_at_a_time(model, s), atol=1e-5)
    assert all(lp.max() < 0 for lp in got)


def test_batch_size_invariance_and_order(model):
    seqs = random_seqs(30, seed=1)
    tiny = token_logprobs(model, seqs, max_tokens=1)  # one sequence per forward
    big = token_logprobs(model, seqs, max_tokens=100_000)
    mid = token_logprobs(model, seqs, max_tokens=128, row_len=64)
    for a, b, c in zip(tiny, big, mid):
        np.testing.assert_allclose(a, b, atol=1e-5)
        np.testing.assert_allclose(a, c, atol=1e-5)
    # order = input order: reversing the inputs reverses the outputs
    rev = token_logprobs(model, seqs[::-1], max_tokens=128)
    for a, b in zip(big, rev[::-1]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_packing_shares_forwards(model):
    calls = []
    orig = model.forward

    def counting(*a, **k):
        calls.append(a[0].shape)
        return orig(*a, **k)

    model.forward = counting
    try:
        token_logprobs(model, random_seqs(40, seed=2), max_tokens=4096)
    finally:
        del model.forward
    assert len(calls) == 1 and calls[0][0] * calls[0][1] <= 4096


def test_short_sequences_and_training_flag(model):
    model.train()
    out = token_logprobs(model, [np.array([1]), np.array([1, 2])])
    assert out[0].shape == (0,) and out[1].shape == (1,)
    assert model.training  # restored
    model.eval()


@pytest.mark.gpu
def test_cuda_bf16_close_to_cpu_fp32():
    torch.manual_seed(1)
    cpu = SpeechLM(named_shape("tiny", vocab_size=V)).eval()  # default init: moderate logits
    seqs = random_seqs(50, seed=3)
    ref = token_logprobs(cpu, seqs, max_tokens=4096)
    gpu = SpeechLM(named_shape("tiny", vocab_size=V)).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.to("cuda", torch.bfloat16)
    packed = token_logprobs(gpu, seqs, max_tokens=4096)
    single = token_logprobs(gpu, seqs, max_tokens=1)
    for r, p, s in zip(ref, packed, single):
        assert p.shape == r.shape
        np.testing.assert_allclose(p, r, atol=0.05)  # bf16 weights vs fp32
        np.testing.assert_allclose(p, s, atol=0.05)  # packing changes little even in bf16


@pytest.mark.parametrize("fast", [True, False])
def test_cpu_bf16_only_where_bf16_is_fast(monkeypatch, fast):
    """cpu_bf16 scores under bf16 autocast on a CPU whose bf16 matmuls are fast (close to
    fp32, not identical), and leaves fp32 untouched elsewhere."""
    import slamlm.device

    monkeypatch.setattr(slamlm.device, "bf16_is_fast", lambda device: fast)
    torch.manual_seed(1)
    m = SpeechLM(named_shape("tiny", vocab_size=V)).eval()  # default init: moderate logits
    seqs = random_seqs(40, seed=4)
    ref = token_logprobs(m, seqs, max_tokens=4096)
    got = token_logprobs(m, seqs, max_tokens=4096, cpu_bf16=True)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    if fast:
        assert 0 < diff < 0.1, diff
        assert all(np.isclose(a.mean(), b.mean(), atol=0.02) for a, b in zip(ref, got))
    else:
        assert diff == 0


def _best_fit_reference(lengths, row_len):
    """Best-fit decreasing, one item at a time over all open rows (slow, obviously right)."""
    rows, room = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        fits = [(room[r], r) for r in range(len(rows)) if room[r] >= lengths[i] and room[r] > 0]
        if fits:
            _, r = min(fits)
            rows[r].append(i)
            room[r] -= lengths[i]
        else:
            rows.append([i])
            room.append(row_len - lengths[i])
    return rows


def test_pack_rows_is_exact_best_fit_on_many_sequences():
    rng = np.random.default_rng(3)
    for row_len, n in ((16, 300), (128, 2000), (40, 500)):
        lengths = [max(2, int(x)) for x in rng.lognormal(np.log(row_len / 4), 0.7, n)]
        assert pack_rows(lengths, row_len) == _best_fit_reference(lengths, row_len)
