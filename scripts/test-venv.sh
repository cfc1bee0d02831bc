# Sourced by scripts/test: a git-ignored venv with the real Python clients the client checks drive (the official
# `openai` package) and NumPy (the reference the fit's report and /match are recounted with), installed once, pinned.
test_venv=.cache/test-venv
if ! "$test_venv/bin/python" -c 'import openai, numpy' 2>/dev/null; then
    python3 -m venv "$test_venv"
    "$test_venv/bin/pip" install --quiet "openai==3.54.0" "numpy==2.4.6" >&2
fi
export OMNIEMBED_TEST_PYTHON="$ROOT/$test_venv/bin/python"
