# Sourced by scripts/test: a git-ignored venv with the real Python clients the client checks drive (the official
# `openai` package), installed once, pinned.
test_venv=.cache/test-venv
if ! "$test_venv/bin/python" -c 'import openai' 2>/dev/null; then
    python3 -m venv "$test_venv"
    "$test_venv/bin/pip" install --quiet "openai==3.54.0" >&2
fi
export OMNIEMBED_TEST_PYTHON="$ROOT/$test_venv/bin/python"
