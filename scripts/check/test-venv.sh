# Sourced by scripts/test: a git-ignored venv with the real Python clients the client checks drive (the official
# `openai` package), NumPy (the reference the fit's report and /match are recounted with), and the contract and
# HTTP checkers (schemathesis, openapi-spec-validator, REDbot), and the Kubernetes schemas' validator, installed
# once, pinned.
test_venv=.cache/test-venv
if ! "$test_venv/bin/python" -c 'import openai, numpy' 2>/dev/null \
    || ! [ -x "$test_venv/bin/schemathesis" ] || ! [ -x "$test_venv/bin/redbot" ] || ! [ -x "$test_venv/bin/openapi-spec-validator" ] \
    || ! [ -x "$test_venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$test_venv"
    "$test_venv/bin/pip" install --quiet "openai==3.54.0" "numpy==2.4.6" "schemathesis==4.32.5" \
        "openapi-spec-validator==0.9.0" "redbot==2.7.1" "kubernetes-validate==1.37.0" >&2
fi
export OMNIEMBED_TEST_PYTHON="$ROOT/$test_venv/bin/python"
