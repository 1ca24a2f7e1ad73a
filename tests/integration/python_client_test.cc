// The Python client (clients/python, standard library only) against the real server with
// auth on, driven by Debian's pytest (tests/python/test_client.py).
#include <fstream>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

TEST(PythonClientTest, EverySurfaceUnderPytest) {
  const std::string source = CONTEXTD_SOURCE_DIR;
  const std::string admin = "python-admin-key-0123456789";
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"--auth"}, {{"CONTEXTD_ADMIN_KEY", admin}});
  server.Start();
  int rc = 0;
  const std::string have = RunShell("/usr/bin/python3 -m pytest --version", &rc);
  ASSERT_EQ(rc, 0) << "pytest is missing (scripts/setup installs python3-pytest): " << have;
  const std::string out =
      RunShell("cd " + source + "/tests/python && PYTHONPATH=" + source +
                   "/clients/python CONTEXTD_URL=http://127.0.0.1:" + std::to_string(server.port()) +
                   " CONTEXTD_ADMIN_KEY=" + admin + " /usr/bin/python3 -m pytest -q -p no:cacheprovider test_client.py",
               &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("4 passed"), std::string::npos) << out;
}

}  // namespace
}  // namespace contextd
