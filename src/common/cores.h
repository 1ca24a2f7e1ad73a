// How many cores this process may use, for sizing thread pools.
//
// std::thread::hardware_concurrency() counts every online CPU of the machine. In a
// container, or under taskset, that sizes pools for CPUs the process does not have: more
// runnable threads than cores, each slowed by the others, and admission's queue-time
// predictions (queue ahead / pool size) wrong by the same factor.
#pragma once

#include <cstdint>
#include <string>

namespace contextd {

// The CPUs in this thread's affinity mask (taskset, a cpuset), capped by the cgroup's CPU
// quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us; a Kubernetes CPU
// limit), rounded up; at least 1.
int UsableCores();

// Cores a CPU quota allows, rounded up: quota / period; 0 for no quota (a quota <= 0, "max").
int CoresFromQuota(int64_t quota_us, int64_t period_us);

// The quota in a cgroup v2 cpu.max line ("max 100000", "150000 100000"); 0 for none or
// unreadable.
int CoresFromCpuMax(const std::string& line);

}  // namespace contextd
