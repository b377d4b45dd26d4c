# Режим главы — одна строка: True — быстрый (маленькие подвыборки, минуты на CPU), False — полный (настоящие
# результаты; на CPU долго, в Colab лучше включить GPU: «Среда выполнения» → «Сменить среду выполнения» → GPU),
# None — как задаёт переменная окружения COURSE_FAST (без неё — полный). При автопроверке режим всегда быстрый.
FAST_MODE = None

# В Colab скачиваем репозиторий курса; локально и в Binder находим пакет utils в родительских папках.
import subprocess
import sys
from pathlib import Path

COURSE_REPO = "{{repo_url}}"
if "google.colab" in sys.modules and not Path("course").exists():
    subprocess.run(["git", "clone", "--depth", "1", COURSE_REPO, "course"], check=True)
for _root in [Path.cwd() / "course", Path.cwd(), *Path.cwd().parents]:
    if (_root / "utils" / "__init__.py").exists():
        sys.path.insert(0, str(_root))
        break
if "google.colab" in sys.modules:
    import utils.colab

    utils.colab.install_missing("{{chapter}}")  # пакеты, которых нет в Colab (для этой главы), — один раз за сеанс

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import utils

utils.set_fast_mode(FAST_MODE)
utils.explain_unsolved()  # нерешённое упражнение: короткое сообщение по-русски вместо длинной трассировки

device = utils.get_device()
utils.seed_everything(42)
FAST = utils.is_fast_mode()
print(utils.describe_environment(device))
if not FAST and device.type == "cpu":
    print("Полный режим на CPU: обучение займёт заметно дольше. Для быстрого режима поставьте FAST_MODE = True "
          "в начале этой ячейки и перезапустите её; для полного лучше подключить GPU.")
