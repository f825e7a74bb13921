#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine with Python 3.11, then runs it.
#   - Debian packages: R with survival, mice, cmprsk, survey, nnet, MASS (the statistics oracles), PostgreSQL, Chromium
#   - the package with its test dependencies (pip)
#   - a PostgreSQL server on 127.0.0.1:5432 with a role and database for the tests
# Nothing is skipped for lack of R, PostgreSQL or Chromium: if they cannot be installed, this fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v Rscript >/dev/null 2>&1 && Rscript -e 'library(survival)' >/dev/null 2>&1 || need+=(r-base-core r-cran-survival)
# the oracles of the adjusted-comparison, competing-risk and imputation statistics (and MASS's Melanoma)
Rscript -e 'for (p in c("mice", "cmprsk", "survey", "nnet", "MASS")) library(p, character.only = TRUE)' >/dev/null 2>&1 \
  || need+=(r-cran-mice r-cran-cmprsk r-cran-survey r-cran-nnet r-cran-mass)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

# PostgreSQL on loopback, for the tests that read OMOP centres through the same code path as DuckDB.
export ONCORWE_TEST_PG="${ONCORWE_TEST_PG:-postgres://oncorwe:oncorwe@127.0.0.1:5432/oncorwe_test}"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  if [ -z "$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v && $2=="main"')" ]; then
    $SUDO pg_createcluster "$ver" main >/dev/null
  fi
  $SUDO pg_ctlcluster "$ver" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
$SUDO su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='oncorwe'\"" | grep -q 1 \
  || $SUDO su postgres -c "psql -qc \"CREATE ROLE oncorwe LOGIN SUPERUSER PASSWORD 'oncorwe'\""
$SUDO su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='oncorwe_test'\"" | grep -q 1 \
  || $SUDO su postgres -c "psql -qc \"CREATE DATABASE oncorwe_test OWNER oncorwe\""

export ONCORWE_CHROMIUM="${ONCORWE_CHROMIUM:-/usr/bin/chromium}"
python3 -m ruff check src tests tests_vantage6
python3 -m mypy
# With arguments (a subset of the suite): run in place, as asked.
if [ $# -gt 0 ]; then
  exec python3 -m pytest -n 2 "$@"
fi

# The whole suite runs from a fresh copy of the checkout in an empty temporary folder with nothing
# beside it, so that a test reaching outside the repository (a shared folder, a file left by an
# earlier run, an untracked file) fails here. The copy holds what git tracks plus new files not yet
# ignored (on CI, exactly the commit; for a developer, the working tree being tested). Its own src
# comes first on the path, so its code is what runs.
clone_root=$(mktemp -d)
trap 'rm -rf "$clone_root"' EXIT
mkdir "$clone_root/oncorwe"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -cf - --null -T - | tar -xf - -C "$clone_root/oncorwe"
checkout=$PWD
cd "$clone_root/oncorwe"
export PYTHONPATH="$PWD/src"
python3 -m pytest -n 2 -p no:cacheprovider

# The vantage6 algorithm's test runs in an environment of its own: vantage6-algorithm-tools 4.15.2
# pins click, pandas and SQLAlchemy versions the main environment does not use (pyproject's
# [vantage6] extra; the algorithm image is built the same way, Dockerfile.vantage6). The
# environment lives beside the checkout (kept between runs); the copy's code is what it tests.
venv="$checkout/.venv-vantage6"
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$checkout[vantage6]"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests_vantage6
