# SPDX-License-Identifier: Apache-2.0
# Sourced by tests/integration/runtime.sh (on the sim) and tests/gpu/run (on a real GPU).
# What the remote backend cannot run yet (docs/remote.md, "Differences from a local GPU"), as
# RT_SKIP="test=reason;..." per program; every other case must pass remotely too.
remote_skips() { # program
    case $1 in
    api) echo "mapped_host_memory=remote: mapped host memory (cuMemHostGetDevicePointer) is not forwarded" ;;
    managed) echo "managed_variable=remote: managed memory (cuLibraryGetManaged) is not emulated: no unified address space across the network (docs/remote.md);malloc_managed=remote: managed memory (cuMemAllocManaged) is not emulated: no unified address space across the network (docs/remote.md)" ;;
    esac
}
