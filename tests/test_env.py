"""utils.env: device choice, seeding, the fast-mode switch, environment text."""

import random

import numpy as np
import torch

import utils
from utils import env


def test_get_device_is_cpu_here_and_honours_preference(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert utils.get_device() == torch.device("cpu")
    assert utils.get_device("cpu") == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert utils.get_device().type == "mps"


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    utils.seed_everything(123)
    first = draw()
    utils.seed_everything(123)
    assert draw() == first
    utils.seed_everything(124)
    assert draw() != first
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled()


def test_fast_mode_switch(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert not utils.is_fast_mode()
    for value in ("1", "true", "YES", "on"):
        monkeypatch.setenv("COURSE_FAST", value)
        assert utils.is_fast_mode()
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not utils.is_fast_mode()
    assert utils.by_mode("fast", "full") == "full"
    # nbgrader sets NBGRADER_EXECUTION while it autogrades: fast mode regardless of COURSE_FAST.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert utils.is_fast_mode() and utils.is_autograding()
    assert utils.by_mode("fast", "full") == "fast"


def test_describe_environment_names_versions_device_and_mode(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    text = utils.describe_environment(torch.device("cpu"))
    assert torch.__version__ in text and "cpu" in text and "быстрый" in text
    assert str(torch.get_num_threads()) in text
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert "полный" in utils.describe_environment(torch.device("cpu"))


def test_in_colab_follows_the_colab_module(monkeypatch):
    import sys
    import types

    assert not env.in_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert env.in_colab()


def test_model_device_follows_parameters_then_buffers_and_defaults_to_cpu():
    assert utils.model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert utils.model_device(torch.nn.Linear(2, 2).to("meta")) == torch.device("meta")
    assert utils.model_device(torch.nn.BatchNorm1d(2, affine=False).to("meta")) == torch.device("meta")
    assert utils.model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert utils.model_device(lambda x, t: x) == torch.device("cpu")


def test_hub_reachable_is_false_where_nothing_answers_and_true_where_a_connection_opens(monkeypatch):
    assert env.hub_reachable("127.0.0.1", timeout=0.5) is False  # nothing listens on port 443 here

    class Opened:
        def close(self):
            pass

    calls = []
    monkeypatch.setattr(env.socket, "create_connection", lambda address, timeout: calls.append(address) or Opened())
    assert utils.hub_reachable() is True
    assert calls == [("huggingface.co", 443)]


def test_machine_words_translate_cpu_records_and_keep_gpu_names():
    from utils import machine_words

    assert machine_words("CPU, 2 threads (x86_64)") == "CPU, 2 потока (x86_64)"
    assert machine_words("CPU, 1 thread (arm)") == "CPU, 1 поток (arm)"
    assert machine_words("CPU, 16 threads (x86_64)") == "CPU, 16 потоков (x86_64)"
    assert machine_words("CPU, 21 threads (x86_64)") == "CPU, 21 поток (x86_64)"
    assert machine_words("NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"


def test_the_setup_cells_switch_sets_the_mode_and_autograding_stays_fast(monkeypatch):
    import utils

    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    utils.set_fast_mode(None)
    assert not utils.is_fast_mode()
    utils.set_fast_mode(True)
    assert utils.is_fast_mode()
    utils.set_fast_mode(False)
    assert not utils.is_fast_mode()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert utils.is_fast_mode()
