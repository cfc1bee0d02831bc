# Sourced by the scripts: the toolchain path and the repository root.
if [ -d /opt/swift/usr/bin ] && ! command -v swift >/dev/null 2>&1; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
