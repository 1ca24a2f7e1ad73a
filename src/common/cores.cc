#include "common/cores.h"

#include <sched.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace contextd {

namespace {

int64_t ReadNumber(const char* path) {
  std::ifstream in(path);
  int64_t v = 0;
  if (!(in >> v)) return 0;
  return v;
}

// The quota of the cgroup this process sees at the root of its CPU controller (a
// container's own cgroup is its namespace's root); 0 when there is none.
int QuotaCores() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  if (std::string line; v2 && std::getline(v2, line)) return CoresFromCpuMax(line);
  return CoresFromQuota(ReadNumber("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                        ReadNumber("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
}

}  // namespace

int CoresFromQuota(int64_t quota_us, int64_t period_us) {
  if (quota_us <= 0 || period_us <= 0) return 0;
  return static_cast<int>((quota_us + period_us - 1) / period_us);
}

int CoresFromCpuMax(const std::string& line) {
  std::istringstream in(line);
  std::string quota;
  int64_t period = 0;
  if (!(in >> quota >> period) || quota == "max") return 0;
  try {
    return CoresFromQuota(std::stoll(quota), period);
  } catch (const std::exception&) {
    return 0;
  }
}

int UsableCores() {
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (const int quota = QuotaCores(); quota > 0 && quota < cores) cores = quota;
  return cores > 0 ? cores : 1;
}

}  // namespace contextd
