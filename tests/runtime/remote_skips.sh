# SPDX-License-Identifier: Apache-2.0
# Sourced by tests/integration/runtime.sh (on the sim) and tests/gpu/run (on a real GPU).
# What the remote backend cannot run yet (docs/remote.md, "Differences from a local GPU"), as
# RT_SKIP="test=reason;..." per program; every other case must pass remotely too. Nothing today:
# managed and mapped host memory are mirrors since docs/remote.md's "Managed and mapped host
# memory".
remote_skips() { # program
    case $1 in
    *) echo "" ;;
    esac
}
