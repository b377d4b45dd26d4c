# Course tasks. A fresh clone needs only `make lab` and `make test`:
# every target that needs the environment creates it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp

# Grading inputs: ASSIGNMENT=01_autoencoders (default: every chapter of chapters.toml with submissions),
# SUBMISSIONS=folder with <student>/<assignment>/<notebook>.ipynb.
ASSIGNMENT ?=
SUBMISSIONS ?= submitted
# Submissions graded at once by `make autograde`; STUDENT=name regrades one student.
JOBS ?= 1
STUDENT ?=
# Gradebook URL (default: CourseDirectory.db_url of nbgrader_config.py, i.e. gradebook.db).
DB_URL ?=
# The nbgrader exchange (default: c.Exchange.root of nbgrader_config.py, nbgrader's /srv/nbgrader/exchange)
# and the due date written into the gradebook by `make release-assignment` ("2027-03-01 23:59:00 Europe/Moscow").
EXCHANGE ?=
DUEDATE ?=
# A Dask scheduler (tcp://host:8786): `make autograde` then hands each submission to the cluster's workers.
SCHEDULER ?=
NB_OPTS = $(if $(DB_URL),--CourseDirectory.db_url="$(DB_URL)") $(if $(EXCHANGE),--Exchange.root="$(EXCHANGE)")
# The unit-level tier: everything but running notebooks, grading, the PostgreSQL gradebook and the browser test.
FAST_TESTS := not notebook and not grader and not postgres and not browser and not accounts and not cluster

# Jupyter refuses to start as root (containers, CI) unless told to.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_COMMAND = $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/modules $(LAB_ROOT) $(LAB_ARGS)

# nbgrader shells out to tools in the environment; prefer its kernelspecs.
export PATH := $(abspath $(BIN)):$(PATH)
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: help install lab lab-instructor demo text2image test test-fast lint release check-release release-assignment collect \
  autograde feedback return-feedback grades data clean

help:
	@echo "make lab         start JupyterLab on the course (creates .venv first)"
	@echo "make lab-instructor  the same lab with nbgrader's instructor panels (Create Assignment, formgrader)"
	@echo "make demo        start chapter 08's search app (Streamlit) on http://localhost:8501"
	@echo "make text2image  start chapter 12's text-to-image app (Streamlit) on http://localhost:8502"
	@echo "make test        run the whole test suite, what CI runs (creates .venv first)"
	@echo "make test-fast   lint, unit tests, the build check and the exercise tables (a few minutes)"
	@echo "make release     rebuild solutions/*.ipynb, modules/, the README table and docs/results.md"
	@echo "make release-assignment ASSIGNMENT=...  register it (DUEDATE) and release it to the exchange (EXCHANGE)"
	@echo "make collect ASSIGNMENT=...  copy the newest submission of every student from the exchange to submitted/"
	@echo "make autograde   grade SUBMISSIONS (default: submitted/) for ASSIGNMENT (default: all), JOBS at once"
	@echo "                 (or on a Dask cluster: SCHEDULER=tcp://host:8786); writes grading_report.csv"
	@echo "                 (status, score, lateness and reasons per student and notebook)"
	@echo "make feedback    write HTML feedback for graded submissions"
	@echo "make return-feedback ASSIGNMENT=...  put the feedback in the exchange for students to fetch"
	@echo "make grades      export grades.csv"
	@echo "make data        download the full datasets into data/cache (needs a network)"
	@echo "make clean       remove the environment, caches and grading folders"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The student's lab: without the instructor's nbgrader panels and the news pop-up (lab/README.md).
lab: install
	JUPYTER_CONFIG_PATH="$(CURDIR)/lab/student" $(LAB_COMMAND)

lab-instructor: install
	$(LAB_COMMAND)

lint: install
	$(BIN)/ruff check .

demo: install
	$(BIN)/streamlit run demo/clip_search.py --server.headless true --browser.gatherUsageStats false $(DEMO_ARGS)

text2image: install
	$(BIN)/streamlit run demo/text_to_image.py --server.headless true --server.port 8502 \
	  --browser.gatherUsageStats false $(DEMO_ARGS)

test: install
	$(BIN)/ruff check .
	$(PY) -m pytest

test-fast: install
	$(BIN)/ruff check .
	$(PY) -m pytest -m "$(FAST_TESTS)"

release: install
	$(PY) -m tools.build

check-release: install
	$(PY) -m tools.build --check

# The exchange steps of one assignment (nbgrader's release_assignment, collect, release_feedback).
release-assignment: install
	@test -n "$(ASSIGNMENT)" || { echo "usage: make release-assignment ASSIGNMENT=01_autoencoders"; exit 2; }
	$(if $(DUEDATE),$(BIN)/nbgrader db assignment add $(ASSIGNMENT) --duedate="$(DUEDATE)" $(NB_OPTS))
	$(BIN)/nbgrader generate_assignment $(ASSIGNMENT) --force $(NB_OPTS)
	$(BIN)/nbgrader release_assignment $(ASSIGNMENT) --force $(NB_OPTS)

collect: install
	@test -n "$(ASSIGNMENT)" || { echo "usage: make collect ASSIGNMENT=01_autoencoders"; exit 2; }
	$(BIN)/nbgrader collect $(ASSIGNMENT) --update $(NB_OPTS)

autograde: install
	$(PY) -m tools.grader $(ASSIGNMENT) --submitted "$(SUBMISSIONS)" --jobs $(JOBS) \
	  $(if $(STUDENT),--student $(STUDENT)) $(if $(DB_URL),--db-url "$(DB_URL)") \
	  $(if $(SCHEDULER),--scheduler "$(SCHEDULER)")

feedback: install
	for a in $(if $(ASSIGNMENT),$(ASSIGNMENT),$(shell $(PY) -m tools.course)); do \
	  $(BIN)/nbgrader generate_feedback $$a --force $(NB_OPTS) || exit 1; \
	done

return-feedback: install
	@test -n "$(ASSIGNMENT)" || { echo "usage: make return-feedback ASSIGNMENT=01_autoencoders"; exit 2; }
	$(BIN)/nbgrader release_feedback $(ASSIGNMENT) $(NB_OPTS)

grades: install
	$(BIN)/nbgrader export --to grades.csv $(NB_OPTS)
	@echo "wrote grades.csv"

data: install
	$(PY) -c "import utils.datasets as d; [print(f'{k:15} {v}') for k, v in d.download_all().items()]"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache autograded feedback gradebook.db grades.csv grading_report.csv .grading \
	  reports executed
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
