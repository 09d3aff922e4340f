// SPDX-License-Identifier: Apache-2.0
// Busy-waits for ns nanoseconds of %globaltimer; the sim's driver special-cases it by name.
extern "C" __global__ void gpufuse_sim_spin(unsigned long long ns)
{
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
